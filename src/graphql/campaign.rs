//! Campaigns, their cost lines and touchpoints.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::{campaign, campaign_cost};
use futures_util::FutureExt;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{CampaignKind, CampaignStatus, CostCategory};
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::filter::{self, Known};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{CampaignCosts, CampaignTouchpoints, Loaders};
use crate::graphql::pagination::{Conn, CursorCheck, OrderDirection, PageArgs, TotalCount, connection, is_text, is_time};
use crate::graphql::patch;
use crate::graphql::scalars::{Date, DateTime, Decimal, Money};
use crate::graphql::touchpoint::{Touchpoint, TouchpointOrder, touchpoint_key};
use crate::service::campaign::{CampaignFields, NewCost};
use crate::store::page::{CursorKey, PageRows, Sort, SortValue, fetch_page};
use crate::store::{self, campaign::CampaignFilter as StoreFilter};

pub struct Campaign(pub campaign::Model);

#[Object]
impl Campaign {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Campaign, self.0.id)
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// A code of the workspace's channel vocabulary, e.g. WEBINAR.
    /// The campaign's closed loop over a range (docs/kpis.md): attributed revenue and
    /// conversions under a model (default LINEAR), costs, ROI, leads sourced, MQLs, cost per
    /// lead, MQL and order, forecast against actual. Batched over a page of campaigns.
    async fn performance(
        &self,
        ctx: &Context<'_>,
        range: crate::graphql::lead::DateTimeRange,
        model: Option<crate::graphql::attribution::AttributionModelInput>,
    ) -> async_graphql::Result<Option<crate::graphql::kpi::CampaignPerformance>> {
        crate::graphql::kpi::campaign_performance(ctx, &self.0, range, model).boxed().await
    }
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn kind(&self) -> CampaignKind {
        CampaignKind::from_db(&self.0.kind)
    }
    async fn status(&self) -> CampaignStatus {
        CampaignStatus::from_db(&self.0.status)
    }
    /// Code used in links and forms to attribute responses to this campaign.
    async fn tracking_code(&self) -> Option<&str> {
        self.0.tracking_code.as_deref()
    }
    async fn start_date(&self) -> Option<Date> {
        self.0.start_date.map(Date)
    }
    async fn end_date(&self) -> Option<Date> {
        self.0.end_date.map(Date)
    }
    async fn budget(&self) -> Option<Money> {
        self.0.budget_minor.map(|m| Money::from_minor(m, &self.0.currency))
    }
    /// The revenue the campaign is forecast to bring.
    async fn expected_revenue(&self) -> Option<Money> {
        self.0.expected_revenue_minor.map(|m| Money::from_minor(m, &self.0.currency))
    }
    /// The leads the campaign is expected to source.
    async fn expected_leads(&self) -> Option<i64> {
        self.0.expected_leads
    }
    async fn costs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CampaignCost>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(CampaignCosts(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(|c| CampaignCost(c, self.0.currency.clone())).collect())
    }
    /// Sum of all cost lines.
    async fn total_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(CampaignCosts(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(Money::from_minor(rows.iter().map(|c| c.amount_minor).sum(), &self.0.currency))
    }
    /// Number of touchpoints of the campaign (kept current as they are recorded).
    async fn touchpoint_count(&self) -> i64 {
        self.0.touchpoint_count
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The campaign's touchpoints, newest first unless ordered otherwise.
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
        let total = TotalCount::Known(self.0.touchpoint_count.max(0) as u64);
        if let (None, false, Some(newest)) = (&req.cursor, req.backward, order.newest()) {
            let key = CampaignTouchpoints {
                campaign_id: self.0.id,
                limit: req.limit + 1,
                newest,
            };
            let rows = ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default();
            let page = PageRows::from_overfetch(rows, req.limit);
            return Ok(connection(page, &req, total, touchpoint_key(order), Touchpoint));
        }
        let p = ctx.principal()?;
        let filter = store::touchpoint::TouchpointFilter {
            campaign_id: Some(self.0.id),
            ..Default::default()
        };
        let select = store::touchpoint::select(p.workspace_id, &filter);
        let page = fetch_page(&ctx.db().conn, select, &order.sort(), &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, touchpoint_key(order), Touchpoint))
    }
}

/// One cost line of a campaign.
pub struct CampaignCost(pub campaign_cost::Model, pub String);

#[Object]
impl CampaignCost {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::CampaignCost, self.0.id)
    }
    async fn category(&self) -> CostCategory {
        CostCategory(self.0.category.clone())
    }
    async fn amount(&self) -> Money {
        Money::from_minor(self.0.amount_minor, &self.1)
    }
    /// The day the cost was incurred (what KPI ranges select on).
    async fn incurred_on(&self) -> Date {
        Date(self.0.incurred_on)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum CampaignOrderField {
    #[default]
    Id,
    Name,
    CreatedAt,
}

#[derive(InputObject, Default)]
pub struct CampaignOrder {
    pub field: CampaignOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct CampaignFilter {
    pub channel: Option<Vec<String>>,
    pub kind: Option<Vec<CampaignKind>>,
    pub status: Option<Vec<CampaignStatus>>,
    /// Campaigns running on this day.
    pub active_on: Option<Date>,
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        filter: Option<CampaignFilter>,
        order_by: Option<CampaignOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Campaign>> {
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
        };
        let order = order_by.unwrap_or_default();
        use campaign::Column as C;
        let (column, expects): (Option<C>, CursorCheck) = match order.field {
            CampaignOrderField::Id => (None, None),
            CampaignOrderField::Name => (Some(C::Name), Some(is_text)),
            CampaignOrderField::CreatedAt => (Some(C::CreatedAt), Some(is_time)),
        };
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::campaign::select(p.workspace_id, &sf);
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
            move |c| CursorKey {
                value: match field {
                    CampaignOrderField::Id => None,
                    CampaignOrderField::Name => Some(SortValue::Text(c.name.clone())),
                    CampaignOrderField::CreatedAt => Some(SortValue::Time(c.created_at)),
                },
                id: c.id,
            },
            Campaign,
        ))
    }

    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Campaign>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Campaign, &id).gql()?;
        Ok(store::by_id::<campaign::Entity>(&ctx.db().conn, p.workspace_id, id)
            .await
            .gql()?
            .map(Campaign))
    }

    async fn campaign_by_external_id(&self, ctx: &Context<'_>, external_id: String) -> async_graphql::Result<Option<Campaign>> {
        let p = ctx.principal()?;
        Ok(store::campaign::by_external_id(&ctx.db().conn, p.workspace_id, &external_id)
            .await
            .gql()?
            .map(Campaign))
    }
}

#[derive(InputObject)]
pub struct CreateCampaignInput {
    pub external_id: Option<String>,
    pub name: String,
    /// A code of the workspace's channel vocabulary (case-insensitive).
    pub channel: String,
    pub kind: CampaignKind,
    pub status: Option<CampaignStatus>,
    pub tracking_code: Option<String>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub budget: Option<Decimal>,
    pub expected_revenue: Option<Decimal>,
    /// The leads the campaign is expected to source.
    pub expected_leads: Option<i64>,
}

#[derive(InputObject)]
pub struct UpdateCampaignInput {
    pub id: ID,
    pub name: Option<String>,
    pub channel: Option<String>,
    pub kind: Option<CampaignKind>,
    pub status: Option<CampaignStatus>,
    pub tracking_code: MaybeUndefined<String>,
    pub start_date: MaybeUndefined<Date>,
    pub end_date: MaybeUndefined<Date>,
    pub budget: MaybeUndefined<Decimal>,
    pub expected_revenue: MaybeUndefined<Decimal>,
    pub expected_leads: MaybeUndefined<i64>,
}

#[derive(InputObject)]
pub struct AddCampaignCostInput {
    pub campaign_id: ID,
    /// Case-insensitive; spaces and dashes count as underscores.
    pub category: CostCategory,
    /// In the workspace currency; a negative amount corrects an earlier line.
    pub amount: Decimal,
    pub incurred_on: Date,
    pub note: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CampaignPayload {
    #[graphql(skip)]
    pub campaign: Option<campaign::Model>,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl CampaignPayload {
    async fn campaign(&self) -> Option<Campaign> {
        self.campaign.clone().map(Campaign)
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AddCampaignCostPayload {
    #[graphql(skip)]
    pub result: Option<(campaign_cost::Model, campaign::Model)>,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl AddCampaignCostPayload {
    async fn cost(&self) -> Option<CampaignCost> {
        self.result.as_ref().map(|(c, camp)| CampaignCost(c.clone(), camp.currency.clone()))
    }
    async fn campaign(&self) -> Option<Campaign> {
        self.result.as_ref().map(|(_, c)| Campaign(c.clone()))
    }
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    async fn create_campaign(&self, ctx: &Context<'_>, input: CreateCampaignInput) -> async_graphql::Result<CampaignPayload> {
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
        };
        let (campaign, user_errors) = split(crate::service::campaign::create(ctx.db(), p, input.external_id, fields).await)?;
        Ok(CampaignPayload { campaign, user_errors })
    }

    async fn update_campaign(&self, ctx: &Context<'_>, input: UpdateCampaignInput) -> async_graphql::Result<CampaignPayload> {
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
        };
        let (campaign, user_errors) = split(crate::service::campaign::update(ctx.db(), p, id, fields).await)?;
        Ok(CampaignPayload { campaign, user_errors })
    }

    async fn add_campaign_cost(&self, ctx: &Context<'_>, input: AddCampaignCostInput) -> async_graphql::Result<AddCampaignCostPayload> {
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
