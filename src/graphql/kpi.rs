//! RPM KPIs as typed objects: funnel conversion and flow, velocity and the sales cycle, lead
//! value, campaign ROI with cost ratios and forecast, and all of them at once (`rpm`). Every
//! root field is served from the report cache while the workspace's data do not change.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::Utc;
use rust_decimal::Decimal as Dec;

use crate::cache::ReportCache;
use crate::domain::kpi::{Roi, StageConversion, StageFlow, StageVelocity};
use crate::graphql::attribution::{AttributionModelInput, AttributionModelKind, model_of};
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::CampaignKind;
use crate::graphql::errors::{IntoGql, query_result};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::DateTimeRange;
use crate::graphql::loaders::{AccountLifetimeValue, Loaders, StageId, WorkspaceKey};
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::service::attribution::Model;
use crate::service::kpi::{self as service, Filter, LeadValue, Range, RoiReport, SalesCycle, Velocity};

#[derive(InputObject, Default, Clone)]
pub struct KpiFilter {
    /// Leads that are members of this persona (funnel, velocity, value, cost per lead).
    pub persona_id: Option<ID>,
    /// Leads owned by this user.
    pub owner_id: Option<ID>,
    /// Campaigns of this channel (ROI).
    pub channel: Option<String>,
    /// Campaigns of this kind (ROI).
    pub campaign_kind: Option<CampaignKind>,
}

fn filter_of(f: Option<KpiFilter>) -> async_graphql::Result<Filter> {
    let f = f.unwrap_or_default();
    Ok(Filter {
        persona_id: f.persona_id.map(|id| ids::decode(NodeType::Persona, &id)).transpose().gql()?,
        owner_id: f.owner_id.map(|id| ids::decode(NodeType::User, &id)).transpose().gql()?,
        channel: f.channel.and_then(|c| crate::domain::vocab::normalize_code(&c)),
        campaign_kind: f
            .campaign_kind
            .map(|k| crate::domain::vocab::CampaignKind::from(k).as_str().to_owned()),
    })
}

fn range_of(range: DateTimeRange) -> async_graphql::Result<Range> {
    let (from, to) = crate::graphql::attribution::range_of(range)?;
    query_result(service::check_range(from, to))
}

async fn stage(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<FunnelStage>> {
    Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
}

fn money(d: Dec, currency: &str) -> Money {
    Money {
        amount: Decimal(d),
        currency: currency.to_owned(),
    }
}

/// Conversion from a success-path stage to the next (or, last, from the first to the last).
pub struct StageConversionRow(StageConversion);

#[Object(name = "StageConversion")]
impl StageConversionRow {
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    async fn next(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.next).await
    }
    /// Leads that entered `stage` in the range.
    async fn cohort(&self) -> i64 {
        self.0.cohort
    }
    /// Of them, those that later (by `asOf`) entered `next` or a later success-path stage.
    async fn converted(&self) -> i64 {
        self.0.converted
    }
    /// converted / cohort, 4 places; null for an empty cohort.
    async fn rate(&self) -> Option<Decimal> {
        self.0.rate.map(Decimal)
    }
}

pub struct StageFlowRow(StageFlow);

#[Object(name = "StageFlow")]
impl StageFlowRow {
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    async fn inflow(&self) -> i64 {
        self.0.inflow
    }
    /// To the next success-path stage.
    async fn to_next(&self) -> i64 {
        self.0.to_next
    }
    /// To a side stage (Nurture, Disqualified).
    async fn to_side(&self) -> i64 {
        self.0.to_side
    }
    /// Anywhere else: back, or skipping ahead.
    async fn to_other(&self) -> i64 {
        self.0.to_other
    }
    /// Leads in the stage just before `from`.
    async fn balance_from(&self) -> i64 {
        self.0.balance_from
    }
    /// Leads in the stage just before `to`.
    async fn balance_to(&self) -> i64 {
        self.0.balance_to
    }
}

pub struct StageVelocityRow(StageVelocity);

#[Object(name = "StageVelocity")]
impl StageVelocityRow {
    /// The stage left (Lead for the Lead -> Customer figure).
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    /// Moves onward in the range.
    async fn moves(&self) -> i64 {
        self.0.moves
    }
    async fn median_days(&self) -> Option<Decimal> {
        self.0.median_days.map(Decimal)
    }
    async fn mean_days(&self) -> Option<Decimal> {
        self.0.mean_days.map(Decimal)
    }
}

/// Deals closed in the range: cycle length, win rate and sales velocity.
#[derive(SimpleObject)]
pub struct SalesCycleReport {
    pub won: i64,
    pub lost: i64,
    /// Open deals now.
    pub open: i64,
    /// Days from createdAt to closedAt of the won deals.
    pub median_days: Option<Decimal>,
    pub mean_days: Option<Decimal>,
    /// won / (won + lost).
    pub win_rate: Option<Decimal>,
    pub average_won_amount: Option<Money>,
    /// open x average won amount x win rate / mean cycle days: revenue per day.
    pub sales_velocity: Option<Money>,
}

impl From<&SalesCycle> for SalesCycleReport {
    fn from(s: &SalesCycle) -> Self {
        SalesCycleReport {
            won: s.won,
            lost: s.lost,
            open: s.open,
            median_days: s.median_days.map(Decimal),
            mean_days: s.mean_days.map(Decimal),
            win_rate: s.win_rate.map(Decimal),
            average_won_amount: s.average_won_amount.map(|d| money(d, &s.currency)),
            sales_velocity: s.sales_velocity.map(|d| money(d, &s.currency)),
        }
    }
}

pub struct VelocityReport(Arc<Velocity>);

#[Object(name = "Velocity")]
impl VelocityReport {
    /// Per success-path stage (but the last): days to the next.
    async fn stages(&self) -> Vec<StageVelocityRow> {
        let n = self.0.stages.len().saturating_sub(1);
        self.0.stages[..n].iter().cloned().map(StageVelocityRow).collect()
    }
    /// From entering the first success-path stage to entering the last.
    async fn lead_to_customer(&self) -> Option<StageVelocityRow> {
        self.0.stages.last().cloned().map(StageVelocityRow)
    }
    async fn sales_cycle(&self) -> SalesCycleReport {
        (&self.0.sales).into()
    }
}

pub struct LeadValueReport(Arc<LeadValue>);

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct StageLeadValue {
    #[graphql(skip)]
    stage_id: i64,
    /// P(reaching the last success-path stage | entered this one), in the reference window.
    pub probability: Option<Decimal>,
    /// The expected revenue of one lead in the stage.
    pub value: Option<Money>,
    /// Leads in the stage at `to`.
    pub leads: i64,
}

#[async_graphql::ComplexObject]
impl StageLeadValue {
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.stage_id).await
    }
}

#[Object(name = "LeadValue")]
impl LeadValueReport {
    async fn stages(&self) -> Vec<StageLeadValue> {
        let c = &self.0.currency;
        self.0
            .stages
            .iter()
            .map(|s| StageLeadValue {
                stage_id: s.stage,
                probability: s.probability.map(Decimal),
                value: s.value.map(|v| money(v, c)),
                leads: s.leads,
            })
            .collect()
    }
    /// Won revenue of the reference window split equally over each deal's buying center,
    /// averaged over those contacts.
    async fn revenue_per_customer_contact(&self) -> Option<Money> {
        self.0.revenue_per_customer_contact.map(|d| money(d, &self.0.currency))
    }
    /// Sum over the stages of leads x value.
    async fn database_value(&self) -> Money {
        money(self.0.database_value, &self.0.currency)
    }
    /// Start of the reference window (365 days before `to`).
    async fn window_from(&self) -> DateTime {
        self.0.window_from.into()
    }
}

/// ROI figures of a campaign, a channel or all campaigns.
#[derive(SimpleObject)]
pub struct RoiFigures {
    /// Attributed revenue.
    pub revenue: Money,
    /// Cost lines dated in the range.
    pub costs: Money,
    /// revenue x the workspace's cost-of-goods ratio.
    pub production_costs: Money,
    /// (revenue - production costs - costs) / costs; null without costs.
    pub roi: Option<Decimal>,
    pub revenue_per_cost: Option<Decimal>,
    pub cost_per_revenue: Option<Decimal>,
}

fn figures(r: &Roi, currency: &str) -> RoiFigures {
    RoiFigures {
        revenue: money(r.revenue, currency),
        costs: money(r.costs, currency),
        production_costs: money(r.production_costs, currency),
        roi: r.roi.map(Decimal),
        revenue_per_cost: r.revenue_per_cost.map(Decimal),
        cost_per_revenue: r.cost_per_revenue.map(Decimal),
    }
}

/// The closed loop of one campaign in a range.
pub struct CampaignPerformance {
    row: service::CampaignRoi,
    currency: String,
}

/// `campaign.performance`, batched over a page of campaigns (one ROI computation per page).
pub async fn campaign_performance(
    ctx: &Context<'_>,
    campaign: &entity::campaign::Model,
    range: DateTimeRange,
    model: Option<AttributionModelInput>,
) -> async_graphql::Result<Option<CampaignPerformance>> {
    ctx.principal()?;
    let r = range_of(range)?;
    let model = match model {
        Some(m) => model_of(ctx, m, "model").await?,
        None => Model::Rule(crate::domain::attribution::Rule::Linear),
    };
    // The same cache entry as `campaignRoi` without a filter: the first field of a page
    // computes it, the others wait for it.
    let ws = campaign.workspace_id;
    let f = Filter::default();
    let key = roi_key(&r, &model, &f);
    let report = cached(ctx, ws, key, service::campaign_roi(&ctx.db().conn, ws, &r, model.clone(), &f, None)).await?;
    Ok(report
        .campaigns
        .iter()
        .find(|c| c.campaign.id == campaign.id)
        .map(|row| CampaignPerformance {
            row: row.clone(),
            currency: report.currency.clone(),
        }))
}

#[Object]
impl CampaignPerformance {
    async fn campaign(&self) -> Campaign {
        Campaign(self.row.campaign.clone())
    }
    async fn figures(&self) -> RoiFigures {
        figures(&self.row.roi, &self.currency)
    }
    /// Attributed conversions (fractional deals).
    async fn conversions(&self) -> Decimal {
        Decimal(self.row.conversions)
    }
    /// Leads whose first touchpoint of all was on this campaign, in the range.
    async fn leads_sourced(&self) -> i64 {
        self.row.leads
    }
    /// Of them, those handed to sales.
    async fn mqls(&self) -> i64 {
        self.row.mqls
    }
    async fn cost_per_lead(&self) -> Option<Money> {
        self.row.cost_per_lead.map(|d| money(d, &self.currency))
    }
    async fn cost_per_mql(&self) -> Option<Money> {
        self.row.cost_per_mql.map(|d| money(d, &self.currency))
    }
    /// Costs / attributed conversions.
    async fn cost_per_order(&self) -> Option<Money> {
        self.row.cost_per_order.map(|d| money(d, &self.currency))
    }
    /// The campaign's whole expected revenue.
    async fn expected_revenue(&self) -> Option<Money> {
        self.row.expected_revenue.map(|d| money(d, &self.currency))
    }
    /// Attributed revenue - expected revenue.
    async fn forecast_difference(&self) -> Option<Money> {
        self.row.forecast_difference.map(|d| money(d, &self.currency))
    }
    /// Attributed revenue / expected revenue.
    async fn forecast_ratio(&self) -> Option<Decimal> {
        self.row.forecast_ratio.map(Decimal)
    }
}

#[derive(SimpleObject)]
pub struct ChannelRoi {
    pub channel: String,
    pub figures: RoiFigures,
}

pub struct CampaignRoiReport(Arc<RoiReport>);

#[Object(name = "CampaignRoiReport")]
impl CampaignRoiReport {
    async fn model(&self) -> AttributionModelKind {
        self.0.model.kind().into()
    }
    /// By attributed revenue, largest first.
    async fn campaigns(&self) -> Vec<CampaignPerformance> {
        self.0
            .campaigns
            .iter()
            .map(|row| CampaignPerformance {
                row: row.clone(),
                currency: self.0.currency.clone(),
            })
            .collect()
    }
    /// Revenue and costs summed over each channel's campaigns first.
    async fn channels(&self) -> Vec<ChannelRoi> {
        self.0
            .channels
            .iter()
            .map(|(c, r)| ChannelRoi {
                channel: c.clone(),
                figures: figures(r, &self.0.currency),
            })
            .collect()
    }
    async fn total(&self) -> RoiFigures {
        figures(&self.0.total, &self.0.currency)
    }
}

/// All five RPM sections for one range and filter.
pub struct Rpm {
    range: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    filter: Option<KpiFilter>,
    model: Option<AttributionModelInput>,
}

#[Object(name = "Rpm")]
impl Rpm {
    async fn conversion(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageConversionRow>> {
        KpiQuery.funnel_conversion(ctx, self.dtr(), None, self.filter.clone()).await
    }
    async fn flow(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageFlowRow>> {
        KpiQuery.funnel_flow(ctx, self.dtr(), self.filter.clone()).await
    }
    async fn velocity(&self, ctx: &Context<'_>) -> async_graphql::Result<VelocityReport> {
        KpiQuery.velocity(ctx, self.dtr(), self.filter.clone()).await
    }
    async fn value(&self, ctx: &Context<'_>) -> async_graphql::Result<LeadValueReport> {
        KpiQuery.lead_value(ctx, Some(self.range.1.into()), self.filter.clone()).await
    }
    async fn roi(&self, ctx: &Context<'_>) -> async_graphql::Result<CampaignRoiReport> {
        KpiQuery
            .campaign_roi(ctx, self.dtr(), self.model.clone(), self.filter.clone())
            .await
    }
}

impl Rpm {
    fn dtr(&self) -> DateTimeRange {
        DateTimeRange {
            from: Some(self.range.0.into()),
            to: Some(self.range.1.into()),
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct KpiQuery;

#[Object]
impl KpiQuery {
    /// The Revenue Performance Management KPIs of a range (docs/kpis.md): conversion, flow,
    /// velocity, value and ROI.
    async fn rpm(
        &self,
        ctx: &Context<'_>,
        range: DateTimeRange,
        filter: Option<KpiFilter>,
        #[graphql(desc = "The attribution model of the ROI section (default LINEAR).")] model: Option<AttributionModelInput>,
    ) -> async_graphql::Result<Rpm> {
        ctx.principal()?;
        let r = range_of(range)?;
        Ok(Rpm {
            range: (r.from, r.to),
            filter,
            model,
        })
    }

    /// Conversion per success-path stage: of the leads that entered it in the range, those that
    /// later entered a later success-path stage by `asOf` (default now); the last entry is
    /// Lead -> Customer.
    async fn funnel_conversion(
        &self,
        ctx: &Context<'_>,
        range: DateTimeRange,
        as_of: Option<DateTime>,
        filter: Option<KpiFilter>,
    ) -> async_graphql::Result<Vec<StageConversionRow>> {
        let p = ctx.principal()?;
        let r = range_of(range)?;
        let f = filter_of(filter)?;
        // Without `asOf` the answer is "by now", which only a write can change: cached as such.
        let key = format!("conversion {:?} {:?} {f:?}", (r.from, r.to), as_of.as_ref().map(|t| t.0));
        let as_of = as_of.map_or_else(Utc::now, |t| t.0);
        let rows = cached(ctx, p.workspace_id, key, service::conversion(ctx.db(), p, &r, as_of, &f)).await?;
        Ok(rows.iter().cloned().map(StageConversionRow).collect())
    }

    /// Moves in and out of every stage in the range, and its balance before and after.
    async fn funnel_flow(
        &self,
        ctx: &Context<'_>,
        range: DateTimeRange,
        filter: Option<KpiFilter>,
    ) -> async_graphql::Result<Vec<StageFlowRow>> {
        let p = ctx.principal()?;
        let r = range_of(range)?;
        let f = filter_of(filter)?;
        let key = format!("flow {:?} {f:?}", (r.from, r.to));
        let rows = cached(ctx, p.workspace_id, key, service::flow(ctx.db(), p, &r, &f)).await?;
        Ok(rows.iter().cloned().map(StageFlowRow).collect())
    }

    /// Days per funnel stage, lead to customer, and the sales cycle of the deals closed in the
    /// range.
    async fn velocity(&self, ctx: &Context<'_>, range: DateTimeRange, filter: Option<KpiFilter>) -> async_graphql::Result<VelocityReport> {
        let p = ctx.principal()?;
        let r = range_of(range)?;
        let f = filter_of(filter)?;
        let key = format!("velocity {:?} {f:?}", (r.from, r.to));
        Ok(VelocityReport(
            cached(ctx, p.workspace_id, key, service::velocity(ctx.db(), p, &r, &f)).await?,
        ))
    }

    /// What a lead in each success-path stage is worth, and the whole database, at `to`
    /// (default now), from the 365 days before it.
    async fn lead_value(
        &self,
        ctx: &Context<'_>,
        to: Option<DateTime>,
        filter: Option<KpiFilter>,
    ) -> async_graphql::Result<LeadValueReport> {
        let p = ctx.principal()?;
        let f = filter_of(filter)?;
        let key = format!("value {:?} {f:?}", to.as_ref().map(|t| t.0));
        let to = to.map_or_else(Utc::now, |t| t.0);
        Ok(LeadValueReport(
            cached(ctx, p.workspace_id, key, service::lead_value(ctx.db(), p, to, &f)).await?,
        ))
    }

    /// ROI, cost per lead, MQL and order, and forecast against actual, per campaign, summed
    /// per channel and overall, with an attribution model (default LINEAR).
    async fn campaign_roi(
        &self,
        ctx: &Context<'_>,
        range: DateTimeRange,
        model: Option<AttributionModelInput>,
        filter: Option<KpiFilter>,
    ) -> async_graphql::Result<CampaignRoiReport> {
        let p = ctx.principal()?;
        let r = range_of(range)?;
        let f = filter_of(filter)?;
        let model = match model {
            Some(m) => model_of(ctx, m, "model").await?,
            None => Model::Rule(crate::domain::attribution::Rule::Linear),
        };
        let key = roi_key(&r, &model, &f);
        Ok(CampaignRoiReport(
            cached(
                ctx,
                p.workspace_id,
                key,
                service::campaign_roi(&ctx.db().conn, p.workspace_id, &r, model.clone(), &f, None),
            )
            .await?,
        ))
    }
}

fn roi_key(r: &Range, model: &Model, f: &Filter) -> String {
    format!("roi {:?} {model:?} {f:?}", (r.from, r.to))
}

async fn cached<T: Send + Sync + 'static>(
    ctx: &Context<'_>,
    ws: i64,
    key: String,
    compute: impl Future<Output = crate::error::ServiceResult<T>>,
) -> async_graphql::Result<Arc<T>> {
    let cache = ctx.data_unchecked::<ReportCache>();
    query_result(cache.get_or_compute(&ctx.db().conn, ws, key, || compute).await)
}

/// `account.lifetimeValue`, batched over a page of accounts.
pub async fn account_lifetime_value(
    ctx: &Context<'_>,
    account: &entity::account::Model,
    as_of: Option<DateTime>,
) -> async_graphql::Result<Option<Money>> {
    let as_of = as_of.map_or_else(Utc::now, |t| t.0);
    let loaders = ctx.data_unchecked::<Loaders>();
    let key = AccountLifetimeValue {
        id: account.id,
        as_of_micros: as_of.timestamp_micros(),
    };
    let Some(value) = loaders.load_one(key).await? else {
        return Ok(None);
    };
    let currency = loaders
        .load_one(WorkspaceKey)
        .await?
        .map_or_else(|| "EUR".to_owned(), |w| w.currency);
    Ok(Some(money(value, &currency)))
}
