//! Opportunities (deals) with their buying centers.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::{opportunity, opportunity_contact};

use crate::domain::vocab::{Action, OpportunityStatus as DomainStatus};
use crate::graphql::account::Account;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{CloseOutcome, OpportunityStatus};
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{AccountId, BuyingCenter, LeadId, Loaders, UserId};
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs};
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::{Date, DateTime, Decimal, Money};
use crate::graphql::user::User;
use crate::graphql::{decode_opt, patch, patch_id};
use crate::service::opportunity::{AccountRef, Contact, UpsertOpportunity};
use crate::store::{self, opportunity::OpportunityFilter as StoreFilter};

pub struct Opportunity(pub opportunity::Model);

/// A deal with an account: an exact amount, OPEN until `closeOpportunity` makes it WON or LOST,
/// and its buying center (`contacts`). A WON deal's amount is the revenue that attribution
/// credits to the touchpoints of its buying center (docs/attribution.md); the sales cycle
/// runs from `createdAt` to `closedAt` (docs/kpis.md).
#[Object]
impl Opportunity {
    /// Opaque global ID (`node(id:)` resolves it).
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Opportunity, self.0.id)
    }
    /// The source system's ID (CRM), unique in the workspace; null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// The deal's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The deal's amount in its own currency (`amount.currency`, by default the workspace's);
    /// for a closed deal, the final amount. KPIs and attribution sum only deals in the
    /// workspace currency (or the currency a report names).
    async fn amount(&self) -> Money {
        Money::from_minor(self.0.amount_minor, &self.0.currency)
    }
    /// OPEN, or WON or LOST once closed.
    async fn status(&self) -> OpportunityStatus {
        OpportunityStatus::from_db(&self.0.status)
    }
    /// When the deal is expected to close (a calendar date, no time zone); null when unknown.
    async fn expected_close_date(&self) -> Option<Date> {
        self.0.expected_close_date.map(Date)
    }
    /// When the deal was won or lost (UTC); null while it is OPEN. Reports select deals by it.
    async fn closed_at(&self) -> Option<DateTime> {
        self.0.closed_at.map(Into::into)
    }
    /// When the deal was opened (UTC): given by the source system or the time of creation.
    /// W-shaped attribution's opportunity-creation touch is the last touch at or before it.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When a field of the deal or its buying center last changed (UTC).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The company the deal is with.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(AccountId(self.0.account_id))
            .await?
            .map(Account))
    }
    /// The sales user who owns the deal; null when none is set.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The buying center: the contacts involved in the deal, with their roles; empty until
    /// `setBuyingCenter` sets it.
    async fn contacts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BuyingCenterMember>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(BuyingCenter(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(BuyingCenterMember).collect())
    }
    /// A won deal's amount split over the touches of its path by a rule-based model (MARKOV is
    /// BAD_USER_INPUT: it credits over all paths, not one deal's touches): the explanation of
    /// every number of `attribution` (docs/attribution.md). Null unless the deal is WON.
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model; CUSTOM without weights and TIME_DECAY without a half-life use the workspace's current version.")]
        model: crate::graphql::attribution::AttributionModelInput,
        #[graphql(desc = "Days before `closedAt` a touch may lie to count: 1 to 3650, default 365.")] lookback_days: Option<i64>,
    ) -> async_graphql::Result<Option<crate::graphql::attribution::OpportunityAttribution>> {
        crate::graphql::attribution::opportunity_attribution(ctx, &self.0, model, lookback_days).await
    }
}

pub struct BuyingCenterMember(pub opportunity_contact::Model);

/// A contact in an opportunity's buying center. Every member's touchpoints form the deal's
/// path for attribution.
#[Object]
impl BuyingCenterMember {
    /// Free text, e.g. "Decision maker", "Champion", "Economic buyer", "Technical evaluator".
    async fn role(&self) -> &str {
        &self.0.role
    }
    /// The primary contact (at most one per deal) is the one whose conversion to MQL gives
    /// W_SHAPED and FULL_PATH attribution their lead-conversion touch.
    async fn is_primary(&self) -> bool {
        self.0.is_primary
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The contact (a lead of the workspace).
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(self.0.lead_id)).await?.map(Lead))
    }
}

/// What `opportunities` may be ordered by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum OpportunityOrderField {
    /// Creation order here (the default).
    #[default]
    Id,
    /// When the deal was opened (`createdAt`).
    CreatedAt,
}

/// The order of `opportunities`; ties are broken by ID. A cursor is valid only for the order
/// it was made with (BAD_USER_INPUT otherwise).
#[derive(InputObject, Default)]
#[graphql(name = "OpportunityOrderInput")]
pub struct OpportunityOrder {
    /// The field to order by.
    pub field: OpportunityOrderField,
    /// ASC (the default) or DESC.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// Which opportunities `opportunities` lists. Conditions combine with AND; a list matches any
/// of its values; an absent or null condition matches every deal.
#[derive(InputObject, Default)]
#[graphql(name = "OpportunityFilterInput")]
pub struct OpportunityFilter {
    /// Statuses.
    pub status: Option<Vec<OpportunityStatus>>,
    /// The account's global ID; one of another type or workspace matches nothing.
    pub account_id: Option<ID>,
    /// Deals closed in [from, to) (UTC); open deals never match.
    pub closed_at: Option<DateTimeRange>,
    /// Changed at or after this time (`updatedAt`): an incremental sync's filter (the change
    /// feed, `changes`, also says what changed).
    pub updated_since: Option<DateTime>,
}

#[derive(Default)]
pub struct OpportunityQuery;

#[Object]
impl OpportunityQuery {
    /// The workspace's opportunities, one page at a time. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which deals (default: all).")] filter: Option<OpportunityFilter>,
        #[graphql(desc = "The order (default: by ID, ascending).")] order_by: Option<OpportunityOrder>,
        #[graphql(desc = "Page size from the start (after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        first: Option<i32>,
        #[graphql(
            desc = "Cursor of this list and order (an edge's `cursor` or `pageInfo.endCursor`): the items after it. Only with `first`."
        )]
        after: Option<String>,
        #[graphql(desc = "Page size from the end (before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        last: Option<i32>,
        #[graphql(desc = "Cursor of this list and order (`pageInfo.startCursor`): the items before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Planned<Conn<Opportunity>>> {
        let p = ctx.principal()?;
        let f = filter.unwrap_or_default();
        let (closed_from, closed_to) = f.closed_at.unwrap_or_default().bounds()?;
        let sf = StoreFilter {
            statuses: f
                .status
                .map(|v| v.into_iter().map(|s| DomainStatus::from(s).as_str().to_owned()).collect()),
            account_id: decode_opt(NodeType::Account, f.account_id.as_ref())?,
            closed_from,
            closed_to,
            updated_since: f.updated_since.map(|t| t.0),
        };
        let order = order_by.unwrap_or_default();
        let (sort, expects) = plan::sort::<opportunity::Entity>(&plan::describe::OPPORTUNITY, order.field, order.direction);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::opportunity::select(p.workspace_id, &sf);
        plan::page(ctx, &plan::describe::OPPORTUNITY, select, sort, req, Opportunity).await
    }

    /// One opportunity by its ID; null when no deal of the workspace has it. Any role.
    async fn opportunity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The deal's global ID (`Opportunity.id`); a malformed ID or one of another type is NOT_FOUND.")] id: ID,
    ) -> async_graphql::Result<Planned<Option<Opportunity>>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Opportunity, &id).gql()?;
        let select = store::with_id::<opportunity::Entity>(p.workspace_id, id);
        plan::one(ctx, &plan::describe::OPPORTUNITY, select, Opportunity).await
    }
}

/// An opportunity to create or update. Fields left out keep their value; `ownerId` and
/// `expectedCloseDate` set to null are cleared. The status changes only by `closeOpportunity`.
#[derive(InputObject)]
pub struct UpsertOpportunityInput {
    /// Updates this opportunity (NOT_FOUND, a top-level error, when there is none) ...
    pub id: Option<ID>,
    /// ... or the one with this source-system ID, created when missing. Without `id` and
    /// `externalId` a new opportunity is created.
    pub external_id: Option<String>,
    /// The account (global ID); required for a new deal. Give this or `accountExternalId`,
    /// not both (INVALID).
    pub account_id: Option<ID>,
    /// The account by its source-system ID, instead of `accountId`.
    pub account_external_id: Option<String>,
    /// Required for a new deal.
    pub name: Option<String>,
    /// Required for a new deal: not negative, at most 2 decimal places, in `currency`.
    pub amount: Option<Decimal>,
    /// ISO 4217 code of `amount`, e.g. "EUR"; a new deal defaults to the workspace currency.
    pub currency: Option<String>,
    /// The owning user's global ID (NOT_FOUND when unknown); null clears it.
    pub owner_id: MaybeUndefined<ID>,
    /// A calendar date; null clears it.
    pub expected_close_date: MaybeUndefined<Date>,
    /// When the deal was opened in the source system (a new deal: default now).
    pub created_at: Option<DateTime>,
    /// Optimistic concurrency for two-way syncs: write only if the opportunity is at this
    /// `version` now (a CONFLICT userError with `currentVersion` otherwise, and nothing is
    /// written); 0 means "only create". Absent: write whatever the version.
    pub expected_version: Option<i64>,
}

/// One member of a buying center.
#[derive(InputObject)]
pub struct BuyingCenterContactInput {
    /// The lead's global ID (NOT_FOUND when it is not a lead of the workspace; DUPLICATE when
    /// listed twice).
    pub lead_id: ID,
    /// The contact's role in the deal, free text (REQUIRED: not blank), e.g. "Champion".
    pub role: String,
    /// At most one member is primary (INVALID otherwise). Default false.
    #[graphql(default)]
    pub is_primary: bool,
}

/// The whole buying center of a deal.
#[derive(InputObject)]
pub struct SetBuyingCenterInput {
    /// The opportunity's global ID (NOT_FOUND, a top-level error, when unknown).
    pub opportunity_id: ID,
    /// The whole buying center; replaces the current one (an empty list clears it).
    pub contacts: Vec<BuyingCenterContactInput>,
}

/// How an open opportunity closes.
#[derive(InputObject)]
pub struct CloseOpportunityInput {
    /// The opportunity's global ID (NOT_FOUND, a top-level error, when unknown). A deal that
    /// is not OPEN is ALREADY_CLOSED.
    pub id: ID,
    /// WON or LOST.
    pub outcome: CloseOutcome,
    /// The final amount in the deal's currency, if it differs from the current one (not
    /// negative, at most 2 decimal places).
    pub amount: Option<Decimal>,
    /// When the deal closed (default now); not before `createdAt` (INVALID).
    pub closed_at: Option<DateTime>,
}

/// The result of `upsertOpportunity`, `setBuyingCenter` and `closeOpportunity`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OpportunityPayload {
    #[graphql(skip)]
    pub opportunity: Option<opportunity::Model>,
    /// True when `upsertOpportunity` created the deal; false otherwise.
    pub created: bool,
    /// What the caller must fix (field path, message, code: INVALID, REQUIRED, NOT_FOUND,
    /// DUPLICATE, ALREADY_CLOSED); nothing is written when not empty.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl OpportunityPayload {
    /// The opportunity as stored; null when `userErrors` is not empty.
    async fn opportunity(&self) -> Option<Opportunity> {
        self.opportunity.clone().map(Opportunity)
    }
}

#[derive(Default)]
pub struct OpportunityMutation;

#[Object]
impl OpportunityMutation {
    /// Creates or updates an opportunity (by id or externalId; sending the same input twice
    /// changes nothing the second time). A change to a WON deal's amount, currency or
    /// `createdAt` rewrites its attribution credits. ADMIN or SALES (others: FORBIDDEN).
    async fn upsert_opportunity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The opportunity, found by id or externalId.")] input: UpsertOpportunityInput,
    ) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let account = match (input.account_id, input.account_external_id) {
            (Some(id), None) => Some(AccountRef::Id(ids::decode(NodeType::Account, &id).gql()?)),
            (None, Some(x)) => Some(AccountRef::ExternalId(x)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                let e = UserError {
                    field: vec!["input".into(), "accountId".into()],
                    message: "give accountId or accountExternalId, not both".into(),
                    code: "INVALID".into(),
                    current_version: None,
                };
                return Ok(OpportunityPayload {
                    opportunity: None,
                    created: false,
                    user_errors: vec![e],
                });
            }
        };
        let upsert = UpsertOpportunity {
            id: decode_opt(NodeType::Opportunity, input.id.as_ref())?,
            external_id: input.external_id,
            account,
            name: input.name,
            amount: input.amount.map(|d| d.0),
            currency: input.currency,
            owner_id: patch_id(NodeType::User, input.owner_id)?,
            expected_close_date: patch(input.expected_close_date).map(|d| d.0),
            created_at: input.created_at.map(|t| t.0),
            expected_version: input.expected_version,
        };
        let (result, user_errors) = split(crate::service::opportunity::upsert(ctx.db(), p, upsert).await)?;
        let created = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(OpportunityPayload {
            opportunity: result.map(|(o, _)| o),
            created,
            user_errors,
        })
    }

    /// Replaces the buying center of an opportunity; a WON deal's attribution credits are
    /// rewritten. ADMIN or SALES (others: FORBIDDEN).
    async fn set_buying_center(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The opportunity and all its contacts (replaces the buying center).")] input: SetBuyingCenterInput,
    ) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let id = ids::decode(NodeType::Opportunity, &input.opportunity_id).gql()?;
        let mut contacts = Vec::with_capacity(input.contacts.len());
        for c in input.contacts {
            // An ID that does not decode cannot be a lead of this workspace: id 0 reports NOT_FOUND.
            let lead_id = ids::decode(NodeType::Lead, &c.lead_id).unwrap_or(0);
            contacts.push(Contact {
                lead_id,
                role: c.role,
                is_primary: c.is_primary,
            });
        }
        let (opportunity, user_errors) = split(crate::service::opportunity::set_buying_center(ctx.db(), p, id, contacts).await)?;
        Ok(OpportunityPayload {
            opportunity,
            created: false,
            user_errors,
        })
    }

    /// Closes an open opportunity as WON or LOST; a WON deal's credits are written to the
    /// attribution ledger. ADMIN or SALES (others: FORBIDDEN).
    async fn close_opportunity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The opportunity and its outcome.")] input: CloseOpportunityInput,
    ) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let id = ids::decode(NodeType::Opportunity, &input.id).gql()?;
        let outcome = match input.outcome {
            CloseOutcome::Won => DomainStatus::Won,
            CloseOutcome::Lost => DomainStatus::Lost,
        };
        let result =
            crate::service::opportunity::close(ctx.db(), p, id, outcome, input.amount.map(|d| d.0), input.closed_at.map(|t| t.0)).await;
        let (opportunity, user_errors) = split(result)?;
        Ok(OpportunityPayload {
            opportunity,
            created: false,
            user_errors,
        })
    }
}
