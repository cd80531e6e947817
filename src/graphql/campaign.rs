//! Campaigns, their cost lines and touchpoints.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::{campaign, campaign_cost, touchpoint};
use futures_util::FutureExt;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{CampaignKind, CampaignStatus, CostCategory};
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::filter::{self, Known};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{CampaignCosts, CampaignTouchpoints, Loaders};
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection};
use crate::graphql::patch;
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::{Date, DateTime, Decimal, Money};
use crate::graphql::touchpoint::{Touchpoint, TouchpointOrder};
use crate::service::campaign::{CampaignFields, NewCost};
use crate::store::page::{PageRows, fetch_page};
use crate::store::{self, campaign::CampaignFilter as StoreFilter};

pub struct Campaign(pub campaign::Model);

/// A marketing action (a webinar, a mailing, a trade fair): its channel, kind, dates, budget,
/// forecast and cost lines. Touchpoints name it; attribution credits it with won revenue.
#[Object]
impl Campaign {
    /// Opaque global ID (`node(id:)` resolves it).
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Campaign, self.0.id)
    }
    /// The source system's ID, unique in the workspace; null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// The campaign's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The campaign's closed loop over a range (docs/kpis.md, Campaign performance): attributed
    /// revenue and conversions under a model, costs, ROI, leads sourced, MQLs, cost per lead,
    /// MQL and order, forecast against actual. The campaign's row of `campaignRoi` for the same
    /// range and model without a filter, computed once for a page of campaigns. Null when the
    /// report has no row for the campaign.
    async fn performance(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC; both bounds (`to` after `from`) or `lastDays`.")]
        range: crate::graphql::lead::DateTimeRange,
        #[graphql(desc = "The attribution model of the revenue and conversions (default LINEAR).")] model: Option<
            crate::graphql::attribution::AttributionModelInput,
        >,
    ) -> async_graphql::Result<Option<crate::graphql::kpi::CampaignPerformance>> {
        crate::graphql::kpi::campaign_performance(ctx, &self.0, range, model).boxed().await
    }
    /// A code of the workspace's channel vocabulary (`viewer.workspace.channels`), e.g. WEBINAR.
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    /// The campaign's marketing goal.
    async fn kind(&self) -> CampaignKind {
        CampaignKind::from_db(&self.0.kind)
    }
    /// Where the campaign stands (PLANNED unless set otherwise); informative only, reports do
    /// not select on it.
    async fn status(&self) -> CampaignStatus {
        CampaignStatus::from_db(&self.0.status)
    }
    /// Code used in links and forms to attribute responses to this campaign; unique in the
    /// workspace. Null when none is set.
    async fn tracking_code(&self) -> Option<&str> {
        self.0.tracking_code.as_deref()
    }
    /// The first day of the campaign (a calendar date, inclusive); null when not planned.
    async fn start_date(&self) -> Option<Date> {
        self.0.start_date.map(Date)
    }
    /// The last day of the campaign (inclusive); null for an open end.
    async fn end_date(&self) -> Option<Date> {
        self.0.end_date.map(Date)
    }
    /// The planned spend, in the workspace currency; null when none is set. Informative: ROI
    /// divides by the cost lines, not the budget.
    async fn budget(&self) -> Option<Money> {
        self.0.budget_minor.map(|m| Money::from_minor(m, &self.0.currency))
    }
    /// The revenue the campaign is forecast to bring (the whole amount, not per period), in the
    /// workspace currency; null when none is set.
    async fn expected_revenue(&self) -> Option<Money> {
        self.0.expected_revenue_minor.map(|m| Money::from_minor(m, &self.0.currency))
    }
    /// The leads the campaign is expected to source; null when none is set.
    async fn expected_leads(&self) -> Option<i64> {
        self.0.expected_leads
    }
    /// Every cost line of the campaign, by `incurredOn`, then in the order recorded.
    async fn costs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CampaignCost>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(CampaignCosts(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(|c| CampaignCost(c, self.0.currency.clone())).collect())
    }
    /// Sum of all cost lines, whatever their date (0.00 without any), in the workspace currency.
    async fn total_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(CampaignCosts(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(Money::from_minor(rows.iter().map(|c| c.amount_minor).sum(), &self.0.currency))
    }
    /// Number of touchpoints of the campaign, all time (kept current as they are recorded).
    async fn touchpoint_count(&self) -> i64 {
        self.0.touchpoint_count
    }
    /// When the campaign was created (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When a field of the campaign last changed (UTC).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The campaign's touchpoints, newest first unless ordered otherwise.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn touchpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order (default: newest first by occurredAt).")] order_by: Option<TouchpointOrder>,
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
        let total = TotalCount::Known(self.0.touchpoint_count.max(0) as u64);
        if let (None, false, Some(newest)) = (&req.cursor, req.backward, order.newest()) {
            let key = CampaignTouchpoints {
                campaign_id: self.0.id,
                limit: req.limit + 1,
                newest,
            };
            let rows = ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default();
            let page = PageRows::from_overfetch(rows, req.limit);
            return Ok(connection(page, &req, total, cursor, Touchpoint));
        }
        let p = ctx.principal()?;
        let filter = store::touchpoint::TouchpointFilter {
            campaign_id: Some(self.0.id),
            ..Default::default()
        };
        let select = store::touchpoint::select(p.workspace_id, &filter);
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, cursor, Touchpoint))
    }
}

pub struct CampaignCost(pub campaign_cost::Model, pub String);

/// One cost line of a campaign: what ROI and the cost ratios divide by (docs/kpis.md).
#[Object]
impl CampaignCost {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::CampaignCost, self.0.id)
    }
    /// What the cost paid for: a code of the workspace's cost categories.
    async fn category(&self) -> CostCategory {
        CostCategory(self.0.category.clone())
    }
    /// The cost in the workspace currency; negative for a line that corrects an earlier one.
    async fn amount(&self) -> Money {
        Money::from_minor(self.0.amount_minor, &self.1)
    }
    /// The day the cost was incurred: a KPI range [from, to) counts the line when 00:00 UTC of
    /// this day lies in it.
    async fn incurred_on(&self) -> Date {
        Date(self.0.incurred_on)
    }
    /// Free text; null when none was given.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// When the line was recorded (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// What `campaigns` may be ordered by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum CampaignOrderField {
    /// Creation order (the default).
    #[default]
    Id,
    /// The name, by code point (case-sensitive: "Z" before "a").
    Name,
    /// When the campaign was created.
    CreatedAt,
}

/// The order of `campaigns`; ties are broken by ID. A cursor is valid only for the order it
/// was made with (BAD_USER_INPUT otherwise).
#[derive(InputObject, Default)]
#[graphql(name = "CampaignOrderInput")]
pub struct CampaignOrder {
    /// The field to order by.
    pub field: CampaignOrderField,
    /// ASC (the default) or DESC.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// Which campaigns `campaigns` lists. Conditions combine with AND; a list matches any of its
/// values; an absent or null condition matches every campaign.
#[derive(InputObject, Default)]
#[graphql(name = "CampaignFilterInput")]
pub struct CampaignFilter {
    /// Channel codes, case-insensitive ("paid social" is PAID_SOCIAL). A code the workspace's
    /// channel vocabulary lacks is BAD_USER_INPUT (UNKNOWN_VALUE) naming the allowed ones.
    pub channel: Option<Vec<String>>,
    /// Kinds.
    pub kind: Option<Vec<CampaignKind>>,
    /// Statuses.
    pub status: Option<Vec<CampaignStatus>>,
    /// Campaigns running on this day: started on or before it and not ended before it (a
    /// campaign without a start date never matches; one without an end date runs on).
    pub active_on: Option<Date>,
    /// Changed at or after this time (`updatedAt`): an incremental sync's filter (the change
    /// feed, `changes`, also says what changed).
    pub updated_since: Option<DateTime>,
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// The workspace's campaigns, one page at a time. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which campaigns (default: all).")] filter: Option<CampaignFilter>,
        #[graphql(desc = "The order (default: by ID, ascending).")] order_by: Option<CampaignOrder>,
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
    ) -> async_graphql::Result<Planned<Conn<Campaign>>> {
        let p = ctx.principal()?;
        let f = filter.unwrap_or_default();
        let sf = StoreFilter {
            channels: filter::codes(ctx, &["filter", "channel"], Known::Channel, f.channel).await?,
            kinds: f.kind.map(|v| {
                v.into_iter()
                    .map(|k| crate::domain::vocab::CampaignKind::from(k).as_str().to_owned())
                    .collect()
            }),
            statuses: f.status.map(|v| {
                v.into_iter()
                    .map(|k| crate::domain::vocab::CampaignStatus::from(k).as_str().to_owned())
                    .collect()
            }),
            active_on: f.active_on.map(|d| d.0),
            updated_since: f.updated_since.map(|t| t.0),
        };
        let order = order_by.unwrap_or_default();
        let (sort, expects) = plan::sort::<campaign::Entity>(&plan::describe::CAMPAIGN, order.field, order.direction);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::campaign::select(p.workspace_id, &sf);
        plan::page(ctx, &plan::describe::CAMPAIGN, select, sort, req, Campaign).await
    }

    /// One campaign by its ID; null when no campaign of the workspace has it. Any role.
    async fn campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The campaign's global ID (`Campaign.id`); a malformed ID or one of another type is NOT_FOUND.")] id: ID,
    ) -> async_graphql::Result<Planned<Option<Campaign>>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Campaign, &id).gql()?;
        let select = store::with_id::<campaign::Entity>(p.workspace_id, id);
        plan::one(ctx, &plan::describe::CAMPAIGN, select, Campaign).await
    }

    /// The campaign with this source-system ID; null when there is none. Any role.
    async fn campaign_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system's ID (`Campaign.externalId`), matched exactly.")] external_id: String,
    ) -> async_graphql::Result<Option<Campaign>> {
        let p = ctx.principal()?;
        Ok(store::campaign::by_external_id(&ctx.db().conn, p.workspace_id, &external_id)
            .await
            .gql()?
            .map(Campaign))
    }
}

/// A new campaign. Money is in the workspace currency: not negative, at most 2 decimal places.
#[derive(InputObject)]
pub struct CreateCampaignInput {
    /// The source system's ID, unique in the workspace (TAKEN otherwise).
    pub external_id: Option<String>,
    /// The campaign's name; not blank (REQUIRED).
    pub name: String,
    /// A code of the workspace's channel vocabulary, case-insensitive ("paid social" is
    /// PAID_SOCIAL); another is INVALID, naming the allowed codes.
    pub channel: String,
    /// The campaign's marketing goal.
    pub kind: CampaignKind,
    /// Default PLANNED.
    pub status: Option<CampaignStatus>,
    /// Code for links and forms, unique in the workspace (TAKEN otherwise); trimmed.
    pub tracking_code: Option<String>,
    /// First day (inclusive).
    pub start_date: Option<Date>,
    /// Last day (inclusive); not before `startDate` (INVALID).
    pub end_date: Option<Date>,
    /// The planned spend.
    pub budget: Option<Decimal>,
    /// The revenue the campaign is forecast to bring (forecast against actual).
    pub expected_revenue: Option<Decimal>,
    /// The leads the campaign is expected to source; not negative.
    pub expected_leads: Option<i64>,
}

/// Changes to a campaign: fields left out keep their value, and nullable fields set to null
/// are cleared. The same rules as `CreateCampaignInput`.
#[derive(InputObject)]
pub struct UpdateCampaignInput {
    /// The campaign's global ID (NOT_FOUND, a top-level error, when unknown).
    pub id: ID,
    /// A new name; not blank.
    pub name: Option<String>,
    /// A new channel code (case-insensitive).
    pub channel: Option<String>,
    /// A new kind.
    pub kind: Option<CampaignKind>,
    /// A new status.
    pub status: Option<CampaignStatus>,
    /// A new tracking code; null clears it.
    pub tracking_code: MaybeUndefined<String>,
    /// A new first day; null clears it.
    pub start_date: MaybeUndefined<Date>,
    /// A new last day; null clears it.
    pub end_date: MaybeUndefined<Date>,
    /// A new budget; null clears it.
    pub budget: MaybeUndefined<Decimal>,
    /// A new expected revenue; null clears it.
    pub expected_revenue: MaybeUndefined<Decimal>,
    /// A new number of expected leads; null clears it.
    pub expected_leads: MaybeUndefined<i64>,
    /// Optimistic concurrency: write only if the campaign is at this `version` now (a CONFLICT
    /// userError with `currentVersion` otherwise, and nothing is written).
    pub expected_version: Option<i64>,
}

/// A cost line to add to a campaign.
#[derive(InputObject)]
pub struct AddCampaignCostInput {
    /// The campaign's global ID (NOT_FOUND, a top-level error, when unknown).
    pub campaign_id: ID,
    /// A code of the workspace's cost categories (`viewer.workspace.costCategories`),
    /// case-insensitive; spaces and dashes count as underscores. Another is INVALID.
    pub category: CostCategory,
    /// In the workspace currency, at most 2 decimal places; a negative amount corrects an
    /// earlier line.
    pub amount: Decimal,
    /// The day the cost was incurred: what KPI ranges select the line by.
    pub incurred_on: Date,
    /// Free text.
    pub note: Option<String>,
}

/// The result of `createCampaign` and `updateCampaign`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CampaignPayload {
    #[graphql(skip)]
    pub campaign: Option<campaign::Model>,
    /// What the caller must fix (field path, message, code: REQUIRED, INVALID, TAKEN); nothing
    /// is written when not empty.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl CampaignPayload {
    /// The campaign as stored; null when `userErrors` is not empty.
    async fn campaign(&self) -> Option<Campaign> {
        self.campaign.clone().map(Campaign)
    }
}

/// The result of `addCampaignCost`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AddCampaignCostPayload {
    #[graphql(skip)]
    pub result: Option<(campaign_cost::Model, campaign::Model)>,
    /// What the caller must fix (INVALID on `input.category` or `input.amount`); nothing is
    /// written when not empty.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl AddCampaignCostPayload {
    /// The new cost line; null when `userErrors` is not empty.
    async fn cost(&self) -> Option<CampaignCost> {
        self.result.as_ref().map(|(c, camp)| CampaignCost(c.clone(), camp.currency.clone()))
    }
    /// The campaign the line was added to; null when `userErrors` is not empty.
    async fn campaign(&self) -> Option<Campaign> {
        self.result.as_ref().map(|(_, c)| Campaign(c.clone()))
    }
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    /// Creates a campaign. ADMIN or MARKETING (others: FORBIDDEN).
    async fn create_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new campaign.")] input: CreateCampaignInput,
    ) -> async_graphql::Result<CampaignPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let fields = CampaignFields {
            name: Some(input.name),
            channel: Some(input.channel),
            kind: Some(input.kind.into()),
            status: input.status.map(Into::into),
            tracking_code: input.tracking_code.into(),
            start_date: input.start_date.map(|d| d.0).into(),
            end_date: input.end_date.map(|d| d.0).into(),
            budget: input.budget.map(|d| d.0).into(),
            expected_revenue: input.expected_revenue.map(|d| d.0).into(),
            expected_leads: input.expected_leads.into(),
            expected_version: None,
        };
        let (campaign, user_errors) = split(crate::service::campaign::create(ctx.db(), p, input.external_id, fields).await)?;
        Ok(CampaignPayload { campaign, user_errors })
    }

    /// Changes a campaign. ADMIN or MARKETING (others: FORBIDDEN).
    async fn update_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The campaign and the fields to change.")] input: UpdateCampaignInput,
    ) -> async_graphql::Result<CampaignPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::Campaign, &input.id).gql()?;
        let fields = CampaignFields {
            name: input.name,
            channel: input.channel,
            kind: input.kind.map(Into::into),
            status: input.status.map(Into::into),
            tracking_code: patch(input.tracking_code),
            start_date: patch(input.start_date).map(|d| d.0),
            end_date: patch(input.end_date).map(|d| d.0),
            budget: patch(input.budget).map(|d| d.0),
            expected_revenue: patch(input.expected_revenue).map(|d| d.0),
            expected_leads: patch(input.expected_leads),
            expected_version: input.expected_version,
        };
        let (campaign, user_errors) = split(crate::service::campaign::update(ctx.db(), p, id, fields).await)?;
        Ok(CampaignPayload { campaign, user_errors })
    }

    /// Adds a cost line to a campaign. ADMIN or MARKETING (others: FORBIDDEN).
    async fn add_campaign_cost(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The campaign and the cost line.")] input: AddCampaignCostInput,
    ) -> async_graphql::Result<AddCampaignCostPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::Campaign, &input.campaign_id).gql()?;
        let cost = NewCost {
            category: input.category.0,
            amount: input.amount.0,
            incurred_on: input.incurred_on.0,
            note: input.note,
        };
        let (result, user_errors) = split(crate::service::campaign::add_cost(ctx.db(), p, id, cost).await)?;
        Ok(AddCampaignCostPayload { result, user_errors })
    }
}
