//! Leads: people at accounts, with their funnel stage, touchpoints and deals.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use entity::{lead, lead_stage_history, touchpoint};
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
    AccountId, CountKey, LeadDeals, LeadHistory, LeadId, LeadOpenHandoff, LeadPersonaMatches, LeadTouchpointCount, LeadTouchpoints,
    Loaders, StageId, UserId,
};
use crate::graphql::opportunity::Opportunity;
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection, is_time};
use crate::graphql::persona::PersonaMatch;
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::DateTime;
use crate::graphql::scoring::{Grade, LeadScore, ScoreBreakdown, ScoringCell};
use crate::graphql::touchpoint::{Touchpoint, TouchpointOrder};
use crate::graphql::user::User;
use crate::graphql::{decode_opt, patch, patch_id};
use crate::service::lead::{LeadFields, UpsertLead};
use crate::store::page::{CursorKey, PageRows, SortValue, fetch_page, page_in_memory};
use crate::store::{self, lead::LeadFilter as StoreFilter};

pub struct Lead(pub lead::Model);

/// A person at an account (a contact) that marketing and sales work on: profile attributes,
/// consent per channel, lifecycle status, funnel stage, owner, touchpoints and deals. Text
/// fields are trimmed as given; an erased lead (GDPR) is a stub with its personal fields null.
#[Object]
impl Lead {
    /// The lead's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Lead, self.0.id)
    }
    /// The source system's ID (CRM), unique in the workspace; null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Lower-cased; null when unknown or once the lead is erased.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// Null when unknown or erased.
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    /// Null when unknown or erased.
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
    /// Free text, e.g. "Production manager" (persona criteria and profile rules test it).
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }
    /// Role in buying decisions, free text, e.g. "Decision maker", "Influencer".
    async fn decision_role(&self) -> Option<&str> {
        self.0.decision_role.as_deref()
    }
    /// Free text, e.g. "Machine building"; the `industry` filter compares it exactly.
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// A size band as given, such as "51-200".
    async fn company_size(&self) -> Option<&str> {
        self.0.company_size.as_deref()
    }
    /// ISO 3166 alpha-2 code, upper case, e.g. "DE".
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    /// As given; with PHONE consent the lead is reachable by phone.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// With LINKEDIN consent the lead is reachable on LinkedIn.
    async fn linkedin_url(&self) -> Option<&str> {
        self.0.linkedin_url.as_deref()
    }
    /// With TWITTER consent the lead is reachable on Twitter.
    async fn twitter_handle(&self) -> Option<&str> {
        self.0.twitter_handle.as_deref()
    }
    /// With FACEBOOK consent the lead is reachable on Facebook.
    async fn facebook_url(&self) -> Option<&str> {
        self.0.facebook_url.as_deref()
    }
    /// Postal address: with street, postal code, city and POSTAL consent the lead is reachable
    /// by post.
    async fn street(&self) -> Option<&str> {
        self.0.street.as_deref()
    }
    /// Postal address (see `street`).
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    /// Postal address (see `street`).
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    /// The channels the lead can be contacted on now: contact data present, consent exactly
    /// `true`, and for e-mail neither bounced nor unsubscribed (docs/kpis.md, Reach). Empty for
    /// an erased lead.
    async fn reachable_channels(&self) -> Vec<ReachChannel> {
        crate::service::kpi::contact_of(&self.0)
            .reachable_channels(chrono::Utc::now())
            .into_iter()
            .map(Into::into)
            .collect()
    }
    /// Lifecycle status: whether the lead's company already buys from you (LEAD, NEW_CUSTOMER,
    /// EXISTING_CUSTOMER). Set by upsertLead, updateLead and the import; never derived from
    /// deals. Not the funnel position: that is `stage` (LEAD, MQL, SQL, ...), which moves with
    /// handoffs, so an EXISTING_CUSTOMER can be an MQL of a cross-sell campaign.
    async fn status(&self) -> LifecycleStatus {
        LifecycleStatus::from_db(&self.0.lifecycle_status)
    }
    /// Consent per channel as a JSON object, e.g. {"EMAIL": true, "PHONE": false}. Keys EMAIL,
    /// PHONE, LINKEDIN, TWITTER, FACEBOOK, POSTAL; only the value `true` counts as consent.
    async fn consents(&self) -> Json<&serde_json::Value> {
        Json(&self.0.consents)
    }
    /// Custom attributes as a JSON object; persona criteria and profile rules name them
    /// `custom.<field>`.
    async fn custom_fields(&self) -> Json<&serde_json::Value> {
        Json(&self.0.custom_fields)
    }
    /// When the lead first entered the MQL stage (marketing qualified lead), UTC; null if it
    /// never did. Kept when the lead moves on or back.
    async fn converted_at(&self) -> Option<DateTime> {
        self.0.converted_at.map(Into::into)
    }
    /// The time of the lead's earliest touchpoint (UTC); null without touchpoints.
    async fn first_touch_at(&self) -> Option<DateTime> {
        self.0.first_touch_at.map(Into::into)
    }
    /// The latest EMAIL_BOUNCED touchpoint of the current address (UTC): from then on the lead is
    /// not reachable by e-mail. Null: no bounce; cleared when the e-mail changes.
    async fn email_bounced_at(&self) -> Option<DateTime> {
        self.0.email_bounced_at.map(Into::into)
    }
    /// The latest UNSUBSCRIBED touchpoint (UTC): from then on the lead is not reachable by
    /// e-mail. Null: not unsubscribed.
    async fn unsubscribed_at(&self) -> Option<DateTime> {
        self.0.unsubscribed_at.map(Into::into)
    }
    /// When the personal data was erased (GDPR, `eraseLead`, or the duplicate of
    /// `mergeLeads`), UTC; the stub keeps its touchpoints, stage history and deals unless it was
    /// merged. Null: not erased.
    async fn erased_at(&self) -> Option<DateTime> {
        self.0.erased_at.map(Into::into)
    }
    /// The lead this one was merged into (`mergeLeads`): it has this lead's touchpoints,
    /// visitors, handoffs and deals now, and a client that kept this lead's ID should follow it.
    /// Null: not merged.
    async fn merged_into(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        let Some(id) = self.0.merged_into_id else {
            return Ok(None);
        };
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(id)).await?.map(Lead))
    }
    /// When the lead was created (UTC): in the source system when the upsert or import gave a
    /// time, else when it was recorded here.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the lead last changed (UTC): a field, its stage, its first touch or its e-mail
    /// reachability; the `updatedSince` filter compares it.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The current funnel stage (LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER, NURTURE,
    /// DISQUALIFIED or a stage the workspace added): where the lead is between marketing and
    /// sales. Moved by handoffs, `moveLeadToStage`, automatic handoffs of the default scoring
    /// model and the import; each move is in `stageHistory`. Not the same as `status`.
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(StageId(self.0.stage_id))
            .await?
            .map(FunnelStage))
    }
    /// The company the lead works for; null when none is linked.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        let Some(id) = self.0.account_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(AccountId(id)).await?.map(Account))
    }
    /// The sales or marketing user who owns the lead; null when nobody does. Accepting a
    /// handoff makes the handoff's owner the lead's owner.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The opportunities whose buying center this lead is in (empty when none).
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
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
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
    /// The stage the lead was in at `at`, from its stage history (null before its first stage).
    async fn stage_at(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The moment asked about (ISO 8601; UTC unless it carries an offset).")] at: DateTime,
    ) -> async_graphql::Result<Option<FunnelStage>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadHistory(self.0.id))
            .await?
            .unwrap_or_default();
        let Some(stage_id) = stage_at(&rows, at.0) else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(stage_id)).await?.map(FunnelStage))
    }
    /// The personas the lead matches to any degree, best match first (ties by persona), with the
    /// criteria it meets; `isMember` tells whether a match reaches the persona's threshold.
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
    /// now). Null for an erased lead. BAD_USER_INPUT when the workspace has no scoring model,
    /// NOT_FOUND for an unknown model.
    async fn score(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A scoring model's ID; default: the workspace's default model.")] model: Option<ID>,
        #[graphql(desc = "The moment to score at (activity decays with time); default: now.")] as_of: Option<DateTime>,
    ) -> async_graphql::Result<Option<LeadScore>> {
        crate::graphql::scoring::lead_score(ctx, self.0.id, model, as_of).boxed().await
    }
    /// Why the lead has its score: each profile rule, met or not, and each touchpoint up to
    /// `asOf` with its points, daily cap, decay and contribution. Null for an erased lead.
    async fn score_breakdown(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A scoring model's ID; default: the workspace's default model.")] model: Option<ID>,
        #[graphql(desc = "The moment to score at; touchpoints after it are left out. Default: now.")] as_of: Option<DateTime>,
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
        #[graphql(desc = "Default: newest first (OCCURRED_AT, DESC).")] order_by: Option<TouchpointOrder>,
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Conn<Touchpoint>> {
        let order = order_by.unwrap_or(TouchpointOrder::NEWEST_FIRST);
        let (sort, expects) = order.sort();
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let cursor = plan::cursor::<touchpoint::Entity>(sort.column);
        let total = TotalCount::Loaded(CountKey::LeadTouchpoints(LeadTouchpointCount(self.0.id)));
        if let (None, false, Some(newest)) = (&req.cursor, req.backward, order.newest()) {
            let key = LeadTouchpoints {
                lead_id: self.0.id,
                limit: req.limit + 1,
                newest,
            };
            let rows = ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default();
            let page = PageRows::from_overfetch(rows, req.limit);
            return Ok(connection(page, &req, total, cursor, Touchpoint));
        }
        let p = ctx.principal()?;
        let filter = store::touchpoint::TouchpointFilter {
            lead_id: Some(self.0.id),
            ..Default::default()
        };
        let select = store::touchpoint::select(p.workspace_id, &filter);
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, cursor, Touchpoint))
    }
}

/// The stage a lead was in at `at`: the last change at or before it (history oldest first).
pub fn stage_at(history: &[lead_stage_history::Model], at: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    history.iter().rev().find(|h| h.changed_at <= at).map(|h| h.to_stage_id)
}

pub struct StageChange(lead_stage_history::Model);

/// One change of a lead's funnel stage, as kept in its stage history (conversion and velocity
/// KPIs are computed from these).
#[Object]
impl StageChange {
    /// Null for the stage a lead was created in.
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        let Some(id) = self.0.from_stage_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
    }
    /// The stage the lead entered.
    async fn to_stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(StageId(self.0.to_stage_id))
            .await?
            .map(FunnelStage))
    }
    /// When the lead entered `toStage` (UTC).
    async fn changed_at(&self) -> DateTime {
        self.0.changed_at.into()
    }
    /// Who moved it: `api-key:<id>` (a call with that API key), `scoring-model:<id>` (an
    /// automatic handoff) or `import` (CSV import, seed or demo).
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// Why, e.g. "created", "handed off to sales", "handoff rejected: NO_BUDGET", or the reason
    /// given to `moveLeadToStage`; null when none was given.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

/// What the `leads` list is sorted by; ties are broken by ID.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum LeadOrderField {
    /// Creation order.
    #[default]
    Id,
    /// `createdAt`.
    CreatedAt,
    /// `updatedAt` (incremental sync: ascending, with `updatedSince`).
    UpdatedAt,
}

/// The order of the `leads` list; default ID ascending. A cursor only fits the order it came
/// from (BAD_USER_INPUT otherwise).
#[derive(InputObject, Default)]
#[graphql(name = "LeadOrderInput")]
pub struct LeadOrder {
    /// The sort key.
    pub field: LeadOrderField,
    /// Default ASC.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// A span of time: `from` and `to` (either may be left open where the field allows it), or
/// `lastDays` alone for a range that moves with the calendar, as dashboards want.
#[derive(InputObject, Default)]
#[graphql(name = "DateTimeRangeInput")]
pub struct DateTimeRange {
    /// Inclusive lower bound.
    pub from: Option<DateTime>,
    /// Exclusive upper bound.
    pub to: Option<DateTime>,
    /// The last N days, today included (1 to 3660): from 00:00 UTC N - 1 days before today to
    /// 00:00 UTC tomorrow. The range moves once a day, so a dashboard's answers stay cached
    /// between writes. Not together with `from` or `to` (BAD_USER_INPUT).
    pub last_days: Option<i32>,
}

/// A range's bounds; `None` where it is open.
pub type Bounds = (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>);

/// The most days `lastDays` takes: ten years.
const MAX_LAST_DAYS: i32 = 3_660;

impl DateTimeRange {
    /// The bounds, `lastDays` turned into `from` and `to` as of `now`.
    pub fn bounds_at(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Bounds, crate::error::ServiceError> {
        use crate::error::ServiceError;
        let Some(n) = self.last_days else {
            return Ok((self.from.as_ref().map(|t| t.0), self.to.as_ref().map(|t| t.0)));
        };
        if self.from.is_some() || self.to.is_some() {
            return Err(ServiceError::invalid(
                &["lastDays"],
                "INVALID",
                "give `lastDays` alone, or `from` and `to`",
            ));
        }
        if !(1..=MAX_LAST_DAYS).contains(&n) {
            return Err(ServiceError::invalid(
                &["lastDays"],
                "INVALID",
                format!("`lastDays` is 1 to {MAX_LAST_DAYS}"),
            ));
        }
        let tomorrow = (now.date_naive() + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN).and_utc();
        Ok((Some(tomorrow - chrono::TimeDelta::days(i64::from(n))), Some(tomorrow)))
    }

    /// [`Self::bounds_at`] now; BAD_USER_INPUT for a bad `lastDays`.
    pub fn bounds(&self) -> async_graphql::Result<Bounds> {
        crate::graphql::errors::query_result(self.bounds_at(chrono::Utc::now()))
    }
}

/// Which leads to list. Every field given narrows the result (AND); a list matches any of its
/// values (OR); an absent field or null does not filter. Erased leads are never listed.
#[derive(InputObject, Default)]
#[graphql(name = "LeadFilterInput")]
pub struct LeadFilter {
    /// Funnel stage keys, e.g. ["MQL", "SQL"] (case-insensitive; spaces and dashes count as
    /// underscores).
    pub stage: Option<Vec<String>>,
    /// Lifecycle statuses (see `Lead.status`).
    pub status: Option<Vec<LifecycleStatus>>,
    /// Leads owned by this user.
    pub owner_id: Option<ID>,
    /// Leads of this account.
    pub account_id: Option<ID>,
    /// ISO 3166 alpha-2 codes, e.g. ["DE", "AT"] (case-insensitive).
    pub country: Option<Vec<String>>,
    /// Industries, compared exactly with `Lead.industry`.
    pub industry: Option<Vec<String>>,
    /// Leads created in this range (`createdAt`, from inclusive, to exclusive).
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
    /// Leads whose activity score now is at least this many points (decayed, as
    /// `LeadScore.activityScore`).
    pub min_activity_score: Option<f64>,
}

/// The store's form of a lead filter (resolving the scoring model when a score condition is
/// given); the `leads` list, `scoringMatrix` and the CSV export share it.
pub async fn store_filter(ctx: &Context<'_>, f: LeadFilter) -> async_graphql::Result<StoreFilter> {
    let p = ctx.principal()?;
    // The caller's values first: a request refused for them costs no scoring statement.
    let stage_keys = filter::codes(ctx, &["filter", "stage"], Known::StageKey, f.stage).await?;
    let countries = filter::countries(&["filter", "country"], f.country)?;
    let (created_from, created_to) = f.created_at.unwrap_or_default().bounds()?;
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
    Ok(StoreFilter {
        stage_keys,
        statuses: f.status.map(|v| {
            v.into_iter()
                .map(|s| crate::domain::vocab::LifecycleStatus::from(s).as_str().to_owned())
                .collect()
        }),
        owner_id: decode_opt(NodeType::User, f.owner_id.as_ref())?,
        account_id: decode_opt(NodeType::Account, f.account_id.as_ref())?,
        countries,
        industries: f.industry,
        created_from,
        created_to,
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
    /// Leads of the workspace (erased leads are left out). Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which leads; default: all.")] filter: Option<LeadFilter>,
        #[graphql(desc = "Default: by ID, ascending.")] order_by: Option<LeadOrder>,
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Planned<Conn<Lead>>> {
        let p = ctx.principal()?;
        let sf = store_filter(ctx, filter.unwrap_or_default()).await?;
        let order = order_by.unwrap_or_default();
        let (sort, expects) = plan::sort::<lead::Entity>(&plan::describe::LEAD, order.field, order.direction);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::lead::select(p.workspace_id, &sf);
        plan::page(ctx, &plan::describe::LEAD, select, sort, req, Lead).await
    }

    /// One lead by ID; erased leads are found (as stubs) too. Any role. NOT_FOUND for an ID that
    /// is no lead's ID; null for a lead of another workspace.
    async fn lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead's global ID.")] id: ID,
    ) -> async_graphql::Result<Planned<Option<Lead>>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Lead, &id).gql()?;
        lookup(ctx, store::with_id::<lead::Entity>(p.workspace_id, id)).await
    }

    /// One lead by e-mail (case-insensitive); null when none has it. Any role.
    async fn lead_by_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The e-mail address; trimmed and compared in lower case.")] email: String,
    ) -> async_graphql::Result<Planned<Option<Lead>>> {
        let p = ctx.principal()?;
        let email = email.trim().to_lowercase();
        lookup(ctx, store::lead::with_email(p.workspace_id, &email)).await
    }

    /// One lead by the source system's ID (exact match); null when none has it. Any role.
    async fn lead_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system's ID, as given to `upsertLead`.")] external_id: String,
    ) -> async_graphql::Result<Planned<Option<Lead>>> {
        let p = ctx.principal()?;
        lookup(ctx, store::lead::with_external_id(p.workspace_id, &external_id)).await
    }
}

/// The first lead of `select` (which is scoped to the caller's workspace).
async fn lookup(ctx: &Context<'_>, select: sea_orm::Select<lead::Entity>) -> async_graphql::Result<Planned<Option<Lead>>> {
    plan::one(ctx, &plan::describe::LEAD, select, Lead).await
}

/// The editable fields of a lead: an absent field is left as it is, `null` clears it. Texts are
/// trimmed; an empty text counts as null.
#[derive(InputObject, Default)]
pub struct LeadFieldsInput {
    /// A valid e-mail address, stored in lower case (INVALID otherwise); a new address clears
    /// `emailBouncedAt`.
    pub email: MaybeUndefined<String>,
    /// The lead's account (NOT_FOUND for an unknown one).
    pub account_id: MaybeUndefined<ID>,
    /// Given name.
    pub first_name: MaybeUndefined<String>,
    /// Family name.
    pub last_name: MaybeUndefined<String>,
    /// Free text, e.g. "Production manager".
    pub job_title: MaybeUndefined<String>,
    /// Free text, e.g. "Decision maker".
    pub decision_role: MaybeUndefined<String>,
    /// Free text, e.g. "Machine building".
    pub industry: MaybeUndefined<String>,
    /// A size band, e.g. "51-200".
    pub company_size: MaybeUndefined<String>,
    /// ISO 3166 alpha-2, e.g. "DE" (any case; INVALID otherwise).
    pub country: MaybeUndefined<String>,
    /// Phone number as written.
    pub phone: MaybeUndefined<String>,
    /// LinkedIn profile URL.
    pub linkedin_url: MaybeUndefined<String>,
    /// Twitter handle.
    pub twitter_handle: MaybeUndefined<String>,
    /// Facebook profile URL.
    pub facebook_url: MaybeUndefined<String>,
    /// Postal address: reachable by post with street, postal code and city.
    pub street: MaybeUndefined<String>,
    /// Postal address (see `street`).
    pub postal_code: MaybeUndefined<String>,
    /// Postal address (see `street`).
    pub city: MaybeUndefined<String>,
    /// Lifecycle status (see `Lead.status`); absent keeps it (a new lead: LEAD).
    pub status: Option<LifecycleStatus>,
    /// The owning user (NOT_FOUND for an unknown one).
    pub owner_id: MaybeUndefined<ID>,
    /// Consent per channel, merged into the stored map: {"EMAIL": true}; null removes a key.
    pub consents: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// Custom attributes, merged like consents.
    pub custom_fields: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// Optimistic concurrency for two-way syncs: write only if the lead is at this `version` now
    /// (a CONFLICT userError with `currentVersion` otherwise, and nothing is written); 0 means
    /// "only create" in `upsertLead`. Absent: write whatever the version.
    pub expected_version: Option<i64>,
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
            expected_version: self.expected_version,
        })
    }
}

/// A lead to create or update, matched by `externalId`, else by e-mail.
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

/// Fields to change on one lead.
#[derive(InputObject)]
pub struct UpdateLeadInput {
    /// The lead's ID.
    pub id: ID,
    #[graphql(flatten)]
    pub fields: LeadFieldsInput,
}

/// The lead to erase.
#[derive(InputObject)]
pub struct EraseLeadInput {
    /// The lead's ID.
    pub id: ID,
}

/// Two leads that are one person.
#[derive(InputObject)]
pub struct MergeLeadsInput {
    /// The lead that stays.
    pub lead_id: ID,
    /// The lead merged into it: an erased stub afterwards, with `mergedInto` set.
    pub duplicate_id: ID,
}

/// The result of a lead mutation: the lead, or `userErrors` and nothing written.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LeadPayload {
    #[graphql(skip)]
    pub lead: Option<lead::Model>,
    /// True when the mutation created the lead.
    pub created: bool,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl LeadPayload {
    /// The lead as saved; null when `userErrors` is not empty.
    async fn lead(&self) -> Option<Lead> {
        self.lead.clone().map(Lead)
    }
}

#[derive(Default)]
pub struct LeadMutation;

#[Object]
impl LeadMutation {
    /// ADMIN, MARKETING or SALES: creates a lead or updates the one with the same externalId or
    /// e-mail (idempotent: the same input twice changes nothing the second time).
    async fn upsert_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead's key and fields.")] input: UpsertLeadInput,
    ) -> async_graphql::Result<LeadPayload> {
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

    /// ADMIN, MARKETING or SALES: changes the given fields of a lead (not of an erased one).
    async fn update_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead and the fields to change.")] input: UpdateLeadInput,
    ) -> async_graphql::Result<LeadPayload> {
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

    /// ADMIN, MARKETING or SALES: merges two leads that are one person (docs/merging.md).
    /// The lead keeps its values and takes the duplicate's where it has none; it takes over the
    /// duplicate's touchpoints, visitors, handoffs and deal contacts, and its scores, persona
    /// matches, first touch and attribution credits are computed again, in one transaction. The
    /// duplicate becomes an erased stub whose `mergedInto` is the lead. userErrors: NOT_FOUND
    /// (not a live lead of yours), INVALID (the same lead twice), CONFLICT (both have a pending
    /// handoff: answer one first).
    async fn merge_leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead that stays and its duplicate.")] input: MergeLeadsInput,
    ) -> async_graphql::Result<LeadPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let lead_id = ids::decode(NodeType::Lead, &input.lead_id).gql()?;
        let duplicate_id = ids::decode(NodeType::Lead, &input.duplicate_id).gql()?;
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        let (lead, user_errors) = split(crate::service::merge::merge(ctx.db(), bus, p, lead_id, duplicate_id).await)?;
        Ok(LeadPayload {
            lead,
            created: false,
            user_errors,
        })
    }

    /// ADMIN: GDPR erasure. Removes personal data, keeps an anonymous stub so that
    /// touchpoints, stage history and deal credits still add up (docs/erasure.md).
    async fn erase_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead to erase.")] input: EraseLeadInput,
    ) -> async_graphql::Result<LeadPayload> {
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn last_days_end_with_today_whole() {
        let now = at(2026, 12, 7, 15);
        let range = |n| DateTimeRange {
            last_days: Some(n),
            ..Default::default()
        };
        assert_eq!(
            range(1).bounds_at(now).unwrap(),
            (Some(at(2026, 12, 7, 0)), Some(at(2026, 12, 8, 0)))
        );
        // The last 365 days on 2025-02-28: from 2024-03-01, 365 days before 2025-03-01.
        assert_eq!(range(365).bounds_at(at(2025, 2, 28, 23)).unwrap().0, Some(at(2024, 3, 1, 0)));
        // The same all day long, so that answers stay cached.
        assert_eq!(range(30).bounds_at(at(2026, 12, 7, 0)).unwrap(), range(30).bounds_at(now).unwrap());
    }

    #[test]
    fn last_days_alone_and_in_bounds() {
        let now = at(2026, 12, 7, 15);
        let with_from = DateTimeRange {
            from: Some(now.into()),
            last_days: Some(7),
            ..Default::default()
        };
        assert!(with_from.bounds_at(now).is_err());
        for n in [0, -1, 3_661] {
            let r = DateTimeRange {
                last_days: Some(n),
                ..Default::default()
            };
            assert!(r.bounds_at(now).is_err(), "{n}");
        }
        let open = DateTimeRange {
            from: Some(now.into()),
            ..Default::default()
        };
        assert_eq!(open.bounds_at(now).unwrap(), (Some(now), None));
    }
}
