//! Leads: people at accounts, with their funnel stage, touchpoints and deals.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use entity::{lead, lead_stage_history};
use futures_util::FutureExt;

use crate::domain::vocab::Action;
use crate::graphql::account::Account;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{LifecycleStatus, ReachChannel};
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::filter::{self, Known};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::handoff::Handoff;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{
    AccountId, CountKey, LeadDeals, LeadHistory, LeadOpenHandoff, LeadPersonaMatches, LeadTouchpointCount, LeadTouchpoints, Loaders,
    StageId, UserId,
};
use crate::graphql::opportunity::Opportunity;
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection, is_time};
use crate::graphql::persona::PersonaMatch;
use crate::graphql::scalars::DateTime;
use crate::graphql::scoring::{Grade, LeadScore, ScoreBreakdown, ScoringCell};
use crate::graphql::touchpoint::{Touchpoint, TouchpointOrder, touchpoint_key};
use crate::graphql::user::User;
use crate::graphql::{decode_opt, patch, patch_id};
use crate::service::lead::{LeadFields, UpsertLead};
use crate::store::page::{CursorKey, PageRows, Sort, SortValue, fetch_page, page_in_memory};
use crate::store::{self, lead::LeadFilter as StoreFilter};

pub struct Lead(pub lead::Model);

#[Object]
impl Lead {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Lead, self.0.id)
    }
    /// The source system's ID (CRM), unique in the workspace.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Lower-cased; null once the lead is erased.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    /// First and last name, or null when neither is known.
    async fn name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.0.first_name, &self.0.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }
    /// Role in buying decisions, e.g. "Decision maker", "Influencer".
    async fn decision_role(&self) -> Option<&str> {
        self.0.decision_role.as_deref()
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// A size band such as "51-200".
    async fn company_size(&self) -> Option<&str> {
        self.0.company_size.as_deref()
    }
    /// ISO 3166 alpha-2.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn linkedin_url(&self) -> Option<&str> {
        self.0.linkedin_url.as_deref()
    }
    async fn twitter_handle(&self) -> Option<&str> {
        self.0.twitter_handle.as_deref()
    }
    async fn facebook_url(&self) -> Option<&str> {
        self.0.facebook_url.as_deref()
    }
    async fn street(&self) -> Option<&str> {
        self.0.street.as_deref()
    }
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    /// The channels the lead can be contacted on now: contact data present, consent given,
    /// and for e-mail neither bounced nor unsubscribed (docs/kpis.md, Reach).
    async fn reachable_channels(&self) -> Vec<ReachChannel> {
        crate::service::kpi::contact_of(&self.0)
            .reachable_channels(chrono::Utc::now())
            .into_iter()
            .map(Into::into)
            .collect()
    }
    async fn status(&self) -> LifecycleStatus {
        LifecycleStatus::from_db(&self.0.lifecycle_status)
    }
    /// Consent per channel, e.g. {"EMAIL": true}.
    async fn consents(&self) -> Json<&serde_json::Value> {
        Json(&self.0.consents)
    }
    async fn custom_fields(&self) -> Json<&serde_json::Value> {
        Json(&self.0.custom_fields)
    }
    /// When the lead became a marketing qualified lead.
    async fn converted_at(&self) -> Option<DateTime> {
        self.0.converted_at.map(Into::into)
    }
    /// The time of the lead's earliest touchpoint.
    async fn first_touch_at(&self) -> Option<DateTime> {
        self.0.first_touch_at.map(Into::into)
    }
    async fn email_bounced_at(&self) -> Option<DateTime> {
        self.0.email_bounced_at.map(Into::into)
    }
    async fn unsubscribed_at(&self) -> Option<DateTime> {
        self.0.unsubscribed_at.map(Into::into)
    }
    /// Set when the personal data was erased (GDPR); the stub keeps its touchpoints and deals.
    async fn erased_at(&self) -> Option<DateTime> {
        self.0.erased_at.map(Into::into)
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The current funnel stage.
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(StageId(self.0.stage_id))
            .await?
            .map(FunnelStage))
    }
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        let Some(id) = self.0.account_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(AccountId(id)).await?.map(Account))
    }
    /// The sales or marketing user who owns the lead.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The opportunities whose buying center this lead is in.
    async fn opportunities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Opportunity>> {
        let deals = ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadDeals(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(deals.into_iter().map(Opportunity).collect())
    }
    /// Every change of the lead's stage, oldest first: forward, backward and by the system.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn stage_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<StageChange>> {
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(Some(is_time))
        .gql()?;
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadHistory(self.0.id))
            .await?
            .unwrap_or_default();
        let total = TotalCount::Known(rows.len() as u64);
        let page = page_in_memory(rows, &req, |h| (h.changed_at, h.id));
        Ok(connection(
            page,
            &req,
            total,
            |h| CursorKey {
                value: Some(SortValue::Time(h.changed_at)),
                id: h.id,
            },
            StageChange,
        ))
    }
    /// The stage the lead was in at `at` (null before it existed).
    async fn stage_at(&self, ctx: &Context<'_>, at: DateTime) -> async_graphql::Result<Option<FunnelStage>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadHistory(self.0.id))
            .await?
            .unwrap_or_default();
        let Some(stage_id) = stage_at(&rows, at.0) else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(stage_id)).await?.map(FunnelStage))
    }
    /// The personas the lead matches to any degree, with the criteria it meets.
    async fn persona_matches(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PersonaMatch>> {
        let mut rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadPersonaMatches(self.0.id))
            .await?
            .unwrap_or_default();
        // Best match first: compare matched/total as fractions, exactly.
        rows.sort_by(|a, b| {
            (i64::from(b.matched_weight) * i64::from(a.total_weight))
                .cmp(&(i64::from(a.matched_weight) * i64::from(b.total_weight)))
                .then(a.persona_id.cmp(&b.persona_id))
        });
        Ok(rows.into_iter().map(PersonaMatch).collect())
    }
    /// The lead's score under a scoring model (default: the default model) at `asOf` (default:
    /// now). Null for an erased lead.
    async fn score(&self, ctx: &Context<'_>, model: Option<ID>, as_of: Option<DateTime>) -> async_graphql::Result<Option<LeadScore>> {
        crate::graphql::scoring::lead_score(ctx, self.0.id, model, as_of).boxed().await
    }
    /// Why the lead has its score: each profile rule, met or not, and each touchpoint up to
    /// `asOf` with its points, daily cap, decay and contribution.
    async fn score_breakdown(
        &self,
        ctx: &Context<'_>,
        model: Option<ID>,
        as_of: Option<DateTime>,
    ) -> async_graphql::Result<Option<ScoreBreakdown>> {
        crate::graphql::scoring::lead_breakdown(ctx, self.0.id, model, as_of).boxed().await
    }
    /// The pending handoff to sales, if there is one (for a SALES key made for a user: if that
    /// user owns it).
    async fn open_handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Handoff>> {
        let p = ctx.principal()?;
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadOpenHandoff(self.0.id))
            .await?
            .filter(|h| crate::service::handoff::visible(&p, h))
            .map(Handoff))
    }
    /// The lead's touchpoints, newest first unless ordered otherwise.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn touchpoints(
        &self,
        ctx: &Context<'_>,
        order_by: Option<TouchpointOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Touchpoint>> {
        let order = order_by.unwrap_or(TouchpointOrder::NEWEST_FIRST);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(order.expects())
        .gql()?;
        let total = TotalCount::Loaded(CountKey::LeadTouchpoints(LeadTouchpointCount(self.0.id)));
        if let (None, false, Some(newest)) = (&req.cursor, req.backward, order.newest()) {
            let key = LeadTouchpoints {
                lead_id: self.0.id,
                limit: req.limit + 1,
                newest,
            };
            let rows = ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default();
            let page = PageRows::from_overfetch(rows, req.limit);
            return Ok(connection(page, &req, total, touchpoint_key(order), Touchpoint));
        }
        let p = ctx.principal()?;
        let filter = store::touchpoint::TouchpointFilter {
            lead_id: Some(self.0.id),
            ..Default::default()
        };
        let select = store::touchpoint::select(p.workspace_id, &filter);
        let page = fetch_page(&ctx.db().conn, select, &order.sort(), &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, touchpoint_key(order), Touchpoint))
    }
}

/// The stage a lead was in at `at`: the last change at or before it (history oldest first).
pub fn stage_at(history: &[lead_stage_history::Model], at: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    history.iter().rev().find(|h| h.changed_at <= at).map(|h| h.to_stage_id)
}

/// One change of a lead's funnel stage.
pub struct StageChange(lead_stage_history::Model);

#[Object]
impl StageChange {
    /// Null for the stage a lead was created in.
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        let Some(id) = self.0.from_stage_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
    }
    async fn to_stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(StageId(self.0.to_stage_id))
            .await?
            .map(FunnelStage))
    }
    /// When the lead entered `toStage`.
    async fn changed_at(&self) -> DateTime {
        self.0.changed_at.into()
    }
    /// Who moved it: `api-key:<id>`, `import`, `system:...`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum LeadOrderField {
    #[default]
    Id,
    CreatedAt,
    UpdatedAt,
}

#[derive(InputObject, Default)]
pub struct LeadOrder {
    pub field: LeadOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct DateTimeRange {
    /// Inclusive lower bound.
    pub from: Option<DateTime>,
    /// Exclusive upper bound.
    pub to: Option<DateTime>,
}

#[derive(InputObject, Default)]
pub struct LeadFilter {
    /// Funnel stage keys, e.g. ["MQL", "SQL"].
    pub stage: Option<Vec<String>>,
    pub status: Option<Vec<LifecycleStatus>>,
    pub owner_id: Option<ID>,
    pub account_id: Option<ID>,
    /// ISO 3166 alpha-2 codes.
    pub country: Option<Vec<String>>,
    pub industry: Option<Vec<String>>,
    pub created_at: Option<DateTimeRange>,
    /// Leads changed at or after this time (for incremental sync).
    pub updated_since: Option<DateTime>,
    /// Case-insensitive text contained in the e-mail, first or last name.
    pub search: Option<String>,
    /// Members of this persona (leads that reach its match threshold).
    pub persona: Option<ID>,
    /// The scoring model `scoringCell`, `grade` and `minActivityScore` refer to (default: the
    /// workspace's default model). Scores are taken now.
    pub scoring_model: Option<ID>,
    /// Leads in one of these cells of the scoring matrix.
    pub scoring_cell: Option<Vec<ScoringCell>>,
    /// Leads with one of these profile grades.
    pub grade: Option<Vec<Grade>>,
    /// Leads whose activity score now is at least this.
    pub min_activity_score: Option<f64>,
}

/// The store's form of a lead filter (resolving the scoring model when a score condition is
/// given); the `leads` list, `scoringMatrix` and the CSV export share it.
pub async fn store_filter(ctx: &Context<'_>, f: LeadFilter) -> async_graphql::Result<StoreFilter> {
    let p = ctx.principal()?;
    let query = crate::service::scoring::ScoreQuery {
        cells: f
            .scoring_cell
            .map(|c| c.into_iter().map(crate::domain::scoring::Cell::from).collect()),
        grades: f.grade.map(|g| g.into_iter().map(crate::domain::scoring::Grade::from).collect()),
        min_activity: f.min_activity_score,
    };
    let scoring = if query.is_empty() {
        None
    } else {
        let s = crate::graphql::scoring::resolve_model(ctx, f.scoring_model.as_ref()).await?;
        Some(
            crate::service::scoring::score_filter(&ctx.db().conn, p.workspace_id, &s, chrono::Utc::now(), query)
                .await
                .gql()?,
        )
    };
    let created = f.created_at.unwrap_or_default();
    Ok(StoreFilter {
        stage_keys: filter::codes(ctx, &["filter", "stage"], Known::StageKey, f.stage).await?,
        statuses: f.status.map(|v| {
            v.into_iter()
                .map(|s| crate::domain::vocab::LifecycleStatus::from(s).as_str().to_owned())
                .collect()
        }),
        owner_id: decode_opt(NodeType::User, f.owner_id.as_ref())?,
        account_id: decode_opt(NodeType::Account, f.account_id.as_ref())?,
        countries: filter::countries(&["filter", "country"], f.country)?,
        industries: f.industry,
        created_from: created.from.map(|t| t.0),
        created_to: created.to.map(|t| t.0),
        updated_since: f.updated_since.map(|t| t.0),
        search: f.search,
        include_erased: false,
        persona: decode_opt(NodeType::Persona, f.persona.as_ref())?.map(|persona_id| store::lead::PersonaMatchFilter {
            persona_id,
            min_match: None,
        }),
        scoring,
    })
}

#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// Leads of the workspace (erased leads are left out).
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilter>,
        order_by: Option<LeadOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Lead>> {
        let p = ctx.principal()?;
        let sf = store_filter(ctx, filter.unwrap_or_default()).await?;
        let order = order_by.unwrap_or_default();
        use lead::Column as C;
        let column = match order.field {
            LeadOrderField::Id => None,
            LeadOrderField::CreatedAt => Some(C::CreatedAt),
            LeadOrderField::UpdatedAt => Some(C::UpdatedAt),
        };
        let expects = column.map(|_| is_time as fn(&SortValue) -> bool);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::lead::select(p.workspace_id, &sf);
        let sort = Sort {
            column,
            id: C::Id,
            desc: order.direction == OrderDirection::Desc,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        let field = order.field;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            move |l| CursorKey {
                value: match field {
                    LeadOrderField::Id => None,
                    LeadOrderField::CreatedAt => Some(SortValue::Time(l.created_at)),
                    LeadOrderField::UpdatedAt => Some(SortValue::Time(l.updated_at)),
                },
                id: l.id,
            },
            Lead,
        ))
    }

    /// One lead by ID; erased leads are found (as stubs) too.
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Lead>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Lead, &id).gql()?;
        Ok(store::by_id::<lead::Entity>(&ctx.db().conn, p.workspace_id, id)
            .await
            .gql()?
            .map(Lead))
    }

    /// One lead by e-mail (case-insensitive).
    async fn lead_by_email(&self, ctx: &Context<'_>, email: String) -> async_graphql::Result<Option<Lead>> {
        let p = ctx.principal()?;
        let email = email.trim().to_lowercase();
        Ok(store::lead::by_email(&ctx.db().conn, p.workspace_id, &email).await.gql()?.map(Lead))
    }

    async fn lead_by_external_id(&self, ctx: &Context<'_>, external_id: String) -> async_graphql::Result<Option<Lead>> {
        let p = ctx.principal()?;
        Ok(store::lead::by_external_id(&ctx.db().conn, p.workspace_id, &external_id)
            .await
            .gql()?
            .map(Lead))
    }
}

/// The editable fields of a lead: an absent field is left as it is, `null` clears it.
#[derive(InputObject, Default)]
pub struct LeadFieldsInput {
    pub email: MaybeUndefined<String>,
    pub account_id: MaybeUndefined<ID>,
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub job_title: MaybeUndefined<String>,
    pub decision_role: MaybeUndefined<String>,
    pub industry: MaybeUndefined<String>,
    pub company_size: MaybeUndefined<String>,
    /// ISO 3166 alpha-2, e.g. "DE".
    pub country: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub linkedin_url: MaybeUndefined<String>,
    pub twitter_handle: MaybeUndefined<String>,
    pub facebook_url: MaybeUndefined<String>,
    /// Postal address: reachable by post with street, postal code and city.
    pub street: MaybeUndefined<String>,
    pub postal_code: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
    pub status: Option<LifecycleStatus>,
    pub owner_id: MaybeUndefined<ID>,
    /// Consent per channel, merged into the stored map: {"EMAIL": true}; null removes a key.
    pub consents: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// Custom attributes, merged like consents.
    pub custom_fields: Option<Json<serde_json::Map<String, serde_json::Value>>>,
}

impl LeadFieldsInput {
    fn into_fields(self) -> async_graphql::Result<LeadFields> {
        Ok(LeadFields {
            email: patch(self.email),
            account_id: patch_id(NodeType::Account, self.account_id)?,
            first_name: patch(self.first_name),
            last_name: patch(self.last_name),
            job_title: patch(self.job_title),
            decision_role: patch(self.decision_role),
            industry: patch(self.industry),
            company_size: patch(self.company_size),
            country: patch(self.country),
            phone: patch(self.phone),
            linkedin_url: patch(self.linkedin_url),
            twitter_handle: patch(self.twitter_handle),
            facebook_url: patch(self.facebook_url),
            street: patch(self.street),
            postal_code: patch(self.postal_code),
            city: patch(self.city),
            status: self.status.map(Into::into),
            owner_id: patch_id(NodeType::User, self.owner_id)?,
            consents: self.consents.map(|j| j.0),
            custom_fields: self.custom_fields.map(|j| j.0),
        })
    }
}

#[derive(InputObject)]
pub struct UpsertLeadInput {
    /// The source system's ID; matched first. Without it, the e-mail is matched.
    pub external_id: Option<String>,
    #[graphql(flatten)]
    pub fields: LeadFieldsInput,
    /// Funnel stage key of a new lead (default LEAD); existing leads keep their stage.
    pub stage: Option<String>,
    /// When a new lead was created in the source system (default now).
    pub created_at: Option<DateTime>,
}

#[derive(InputObject)]
pub struct UpdateLeadInput {
    pub id: ID,
    #[graphql(flatten)]
    pub fields: LeadFieldsInput,
}

#[derive(InputObject)]
pub struct EraseLeadInput {
    pub id: ID,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LeadPayload {
    #[graphql(skip)]
    pub lead: Option<lead::Model>,
    /// True when the mutation created the lead.
    pub created: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl LeadPayload {
    async fn lead(&self) -> Option<Lead> {
        self.lead.clone().map(Lead)
    }
}

#[derive(Default)]
pub struct LeadMutation;

#[Object]
impl LeadMutation {
    /// Creates a lead or updates the one with the same externalId or e-mail (idempotent).
    async fn upsert_lead(&self, ctx: &Context<'_>, input: UpsertLeadInput) -> async_graphql::Result<LeadPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let upsert = UpsertLead {
            external_id: input.external_id,
            fields: input.fields.into_fields()?,
            stage: input.stage,
            created_at: input.created_at.map(|t| t.0),
        };
        let (result, user_errors) =
            split(crate::service::lead::upsert(ctx.db(), ctx.data_unchecked::<crate::events::Bus>(), p, upsert).await)?;
        let created = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(LeadPayload {
            lead: result.map(|(l, _)| l),
            created,
            user_errors,
        })
    }

    /// Changes the given fields of a lead.
    async fn update_lead(&self, ctx: &Context<'_>, input: UpdateLeadInput) -> async_graphql::Result<LeadPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let id = ids::decode(NodeType::Lead, &input.id).gql()?;
        let fields = input.fields.into_fields()?;
        let (lead, user_errors) =
            split(crate::service::lead::update(ctx.db(), ctx.data_unchecked::<crate::events::Bus>(), p, id, fields).await)?;
        Ok(LeadPayload {
            lead,
            created: false,
            user_errors,
        })
    }

    /// GDPR erasure (ADMIN): removes personal data, keeps an anonymous stub so that
    /// touchpoints, stage history and deal credits still add up.
    async fn erase_lead(&self, ctx: &Context<'_>, input: EraseLeadInput) -> async_graphql::Result<LeadPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::Lead, &input.id).gql()?;
        let (lead, user_errors) = split(crate::service::lead::erase(ctx.db(), p, id).await)?;
        Ok(LeadPayload {
            lead,
            created: false,
            user_errors,
        })
    }
}
