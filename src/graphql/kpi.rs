//! RPM KPIs as typed objects: funnel conversion and flow, velocity and the sales cycle, lead
//! value, campaign ROI with cost ratios and forecast, and all of them at once (`rpm`). Every
//! root field is served from the report cache while the workspace's data do not change.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::Utc;
use rust_decimal::Decimal as Dec;

use crate::cache::ReportCache;
use crate::domain::kpi::{Roi, StageConversion, StageFlow, StageVelocity};
use crate::graphql::attribution::{AttributionModelInput, AttributionModelKind, model_of};
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{CampaignKind, CostCategory, ReachChannel};
use crate::graphql::errors::{IntoGql, query_result};
use crate::graphql::filter::{self, Known};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::DateTimeRange;
use crate::graphql::loaders::{AccountLifetimeValue, Loaders, PersonaId, RevisionKey, StageId, WorkspaceKey};
use crate::graphql::persona::Persona;
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::service::attribution::Model;
use crate::service::kpi::{self as service, Filter, LeadValue, Range, Reach, RoiReport, SalesCycle};

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

async fn filter_of(ctx: &Context<'_>, f: Option<KpiFilter>) -> async_graphql::Result<Filter> {
    let f = f.unwrap_or_default();
    let channel = filter::codes(ctx, &["filter", "channel"], Known::Channel, f.channel.map(|c| vec![c])).await?;
    Ok(Filter {
        persona_id: f.persona_id.map(|id| ids::decode(NodeType::Persona, &id)).transpose().gql()?,
        owner_id: f.owner_id.map(|id| ids::decode(NodeType::User, &id)).transpose().gql()?,
        channel: channel.and_then(|c| c.into_iter().next()),
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

/// A success-path stage now.
pub struct SnapshotRow(crate::domain::kpi::SnapshotRow);

#[Object(name = "FunnelSnapshotRow")]
impl SnapshotRow {
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    /// Leads whose current stage it is.
    async fn leads(&self) -> i64 {
        self.0.leads
    }
    /// Leads whose current stage is it or a later success-path stage.
    async fn reached(&self) -> i64 {
        self.0.reached
    }
    /// reached / the previous stage's reached, 4 places; null for the first stage.
    async fn conversion_from_previous(&self) -> Option<Decimal> {
        self.0.conversion.map(Decimal)
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

/// Velocity of a range: the funnel part (from the stage history) and the sales cycle (from the
/// deals) are computed, and cached, only when asked.
pub struct VelocityReport {
    ws: i64,
    range: Range,
    filter: Filter,
}

impl VelocityReport {
    async fn stage_rows(&self, ctx: &Context<'_>) -> async_graphql::Result<Arc<Vec<StageVelocity>>> {
        let (r, f) = (&self.range, &self.filter);
        let h = history(ctx, self.ws, f).await?;
        let key = format!("velocity {:?} {f:?}", (r.from, r.to));
        cached(ctx, self.ws, key, async { Ok(service::stage_velocity(&h, r)) }).await
    }
}

#[Object(name = "Velocity")]
impl VelocityReport {
    /// Per success-path stage (but the last): days to the next.
    async fn stages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageVelocityRow>> {
        let rows = self.stage_rows(ctx).await?;
        let n = rows.len().saturating_sub(1);
        Ok(rows[..n].iter().cloned().map(StageVelocityRow).collect())
    }
    /// From entering the first success-path stage to entering the last.
    async fn lead_to_customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StageVelocityRow>> {
        Ok(self.stage_rows(ctx).await?.last().cloned().map(StageVelocityRow))
    }
    /// Deals closed in the range (not filtered by persona or owner).
    async fn sales_cycle(&self, ctx: &Context<'_>) -> async_graphql::Result<SalesCycleReport> {
        let r = &self.range;
        let key = format!("sales cycle {:?}", (r.from, r.to));
        let s = cached(ctx, self.ws, key, service::sales_cycle(&ctx.db().conn, self.ws, r)).await?;
        Ok(s.as_ref().into())
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

/// The closed loop of one campaign in a range: a row of a cached ROI report.
pub struct CampaignPerformance {
    report: Arc<RoiReport>,
    index: usize,
    /// The per-campaign reports the rows of one `campaignRoi` share, looked up once for all of
    /// them (each row of `campaign.performance` has its own).
    shared: Arc<SharedReports>,
}

type PerCampaign<T> = Arc<HashMap<i64, T>>;

#[derive(Default)]
struct SharedReports {
    activity: tokio::sync::OnceCell<PerCampaign<service::CampaignActivity>>,
    sourced: tokio::sync::OnceCell<PerCampaign<service::Sourced>>,
}

impl CampaignPerformance {
    fn row(&self) -> &service::CampaignRoi {
        &self.report.campaigns[self.index]
    }

    fn money(&self, d: Dec) -> Money {
        money(d, &self.report.currency)
    }

    /// The campaign's activity in the report's range: one cached report for all campaigns.
    async fn activity(&self, ctx: &Context<'_>) -> async_graphql::Result<service::CampaignActivity> {
        let (ws, r, f) = (self.row().campaign.workspace_id, &self.report.range, &self.report.filter);
        let compute = || service::campaign_activity(&ctx.db().conn, ws, r, f);
        self.per_campaign(ctx, &self.shared.activity, "activity", compute).await
    }

    /// The leads the campaign sourced in the report's range: one cached report for all
    /// campaigns, read only by the fields that need it.
    async fn sourced(&self, ctx: &Context<'_>) -> async_graphql::Result<service::Sourced> {
        let (ws, r, f) = (self.row().campaign.workspace_id, &self.report.range, &self.report.filter);
        let compute = || service::campaign_sourcing(&ctx.db().conn, ws, r, f);
        self.per_campaign(ctx, &self.shared.sourced, "sourced", compute).await
    }

    /// This campaign's entry of a per-campaign report over the report's range and filter:
    /// looked up in the report cache once for all the rows that share `cell`. `compute` makes
    /// the report's future only then, on the heap: a service future is large, and inline it
    /// would make every field's future of every row as large (async-graphql sizes a field's
    /// future by the largest field of the object).
    async fn per_campaign<T, Fut>(
        &self,
        ctx: &Context<'_>,
        cell: &tokio::sync::OnceCell<PerCampaign<T>>,
        report: &str,
        compute: impl FnOnce() -> Fut,
    ) -> async_graphql::Result<T>
    where
        T: Clone + Default + Send + Sync + 'static,
        Fut: Future<Output = crate::error::ServiceResult<HashMap<i64, T>>>,
    {
        let (r, f) = (&self.report.range, &self.report.filter);
        let ws = self.row().campaign.workspace_id;
        let all = cell
            .get_or_try_init(|| Box::pin(cached(ctx, ws, format!("{report} {:?} {f:?}", (r.from, r.to)), compute())))
            .await?;
        Ok(all.get(&self.row().campaign.id).cloned().unwrap_or_default())
    }
}

/// A campaign's costs of one category.
#[derive(SimpleObject)]
pub struct CategoryCost {
    pub category: CostCategory,
    pub amount: Money,
}

/// An e-mail campaign's statistics over distinct leads.
#[derive(SimpleObject)]
pub struct EmailStatistics {
    /// Leads sent the e-mail (EMAIL_SENT) in the range.
    pub sent: i64,
    /// Of them, those without an EMAIL_BOUNCED on the campaign.
    pub delivered: i64,
    /// Of the delivered, those with an EMAIL_OPEN on the campaign in the range.
    pub unique_opens: i64,
    /// Of the delivered, those with an EMAIL_CLICK on the campaign in the range.
    pub unique_clicks: i64,
    /// unique opens / delivered.
    pub open_rate: Option<Decimal>,
    /// unique clicks / delivered.
    pub click_rate: Option<Decimal>,
    /// unique clicks / unique opens.
    pub click_to_open_rate: Option<Decimal>,
}

impl From<crate::domain::reach::EmailStats> for EmailStatistics {
    fn from(e: crate::domain::reach::EmailStats) -> Self {
        EmailStatistics {
            sent: e.sent,
            delivered: e.delivered,
            unique_opens: e.unique_opens,
            unique_clicks: e.unique_clicks,
            open_rate: e.open_rate.map(Decimal),
            click_rate: e.click_rate.map(Decimal),
            click_to_open_rate: e.click_to_open_rate.map(Decimal),
        }
    }
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
        .position(|c| c.campaign.id == campaign.id)
        .map(|index| CampaignPerformance {
            report,
            index,
            shared: Arc::default(),
        }))
}

#[Object]
impl CampaignPerformance {
    async fn campaign(&self) -> Campaign {
        Campaign(self.row().campaign.clone())
    }
    async fn figures(&self) -> RoiFigures {
        figures(&self.row().roi, &self.report.currency)
    }
    /// Cost lines dated in the range, summed per category (categories with lines only).
    async fn costs_by_category(&self) -> Vec<CategoryCost> {
        self.row()
            .costs_by_category
            .iter()
            .map(|(k, a)| CategoryCost {
                category: CostCategory(k.clone()),
                amount: self.money(*a),
            })
            .collect()
    }
    /// Attributed conversions (fractional deals).
    async fn conversions(&self) -> Decimal {
        Decimal(self.row().conversions)
    }
    /// Won deals closed in the range that the model credits to the campaign, whole.
    async fn deals_won(&self) -> i64 {
        self.row().deals_won
    }
    /// Leads whose first touchpoint of all was on this campaign, in the range.
    async fn leads_sourced(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.leads)
    }
    /// Of them, those handed to sales.
    async fn mqls(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.mqls)
    }
    /// Of them, those that entered the SQL stage.
    async fn sqls(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.sqls)
    }
    /// Distinct leads with a touchpoint on the campaign in the range.
    async fn leads_touched(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.leads_touched)
    }
    /// Opportunities (any status) with a buying-center member the campaign touched in the
    /// range before the deal closed.
    async fn opportunities_influenced(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.opportunities_influenced)
    }
    /// Of the influenced opportunities, the open ones.
    async fn open_opportunities(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.open_opportunities)
    }
    /// The summed amounts of the open influenced opportunities (workspace currency).
    async fn open_pipeline(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        Ok(self.money(crate::domain::kpi::round_money(self.activity(ctx).await?.open_pipeline)))
    }
    /// Sends, deliveries, unique opens and clicks and their rates; null for a campaign that
    /// is not on the EMAIL channel and tracked no e-mail in the range.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<EmailStatistics>> {
        let stats = self.activity(ctx).await?.email;
        let on_email = self.row().campaign.channel == "EMAIL";
        Ok(stats
            .or_else(|| on_email.then(|| crate::domain::reach::EmailStats::new(0, 0, 0, 0)))
            .map(Into::into))
    }
    /// Costs / leads sourced.
    async fn cost_per_lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().cost_per_lead(s).map(|d| self.money(d)))
    }
    /// Costs / sourced leads handed to sales.
    async fn cost_per_mql(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().cost_per_mql(s).map(|d| self.money(d)))
    }
    /// Costs / the exact attributed conversions (not the rounded `conversions`), to cents.
    async fn cost_per_order(&self) -> Option<Money> {
        self.row().cost_per_order.map(|d| self.money(d))
    }
    /// The campaign's whole expected revenue.
    async fn expected_revenue(&self) -> Option<Money> {
        self.row().expected_revenue.map(|d| self.money(d))
    }
    /// Attributed revenue - expected revenue.
    async fn forecast_difference(&self) -> Option<Money> {
        self.row().forecast_difference.map(|d| self.money(d))
    }
    /// Attributed revenue / expected revenue.
    async fn forecast_ratio(&self) -> Option<Decimal> {
        self.row().forecast_ratio.map(Decimal)
    }
    /// The leads the campaign is expected to source.
    async fn expected_leads(&self) -> Option<i64> {
        self.row().campaign.expected_leads
    }
    /// Leads sourced - expected leads.
    async fn leads_difference(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().leads_forecast(s).0)
    }
    /// Leads sourced / expected leads; null without a forecast or when it is 0.
    async fn leads_ratio(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Decimal>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().leads_forecast(s).1.map(Decimal))
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
        let shared = Arc::<SharedReports>::default();
        (0..self.0.campaigns.len())
            .map(|index| CampaignPerformance {
                report: self.0.clone(),
                index,
                shared: shared.clone(),
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

/// How many leads can be contacted on one channel.
#[derive(SimpleObject)]
pub struct ChannelReach {
    pub channel: ReachChannel,
    pub reachable: i64,
    /// reachable / leads, 4 places; null without leads.
    pub share: Option<Decimal>,
}

fn channel_rows(rows: &[crate::domain::reach::ChannelReach]) -> Vec<ChannelReach> {
    rows.iter()
        .map(|r| ChannelReach {
            channel: r.channel.into(),
            reachable: r.reachable,
            share: r.share.map(Decimal),
        })
        .collect()
}

/// Reach among the members of one persona.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PersonaReach {
    #[graphql(skip)]
    persona_id: i64,
    /// Member leads counted.
    pub leads: i64,
    pub channels: Vec<ChannelReach>,
}

#[async_graphql::ComplexObject]
impl PersonaReach {
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaId(self.persona_id))
            .await?
            .map(Persona))
    }
}

pub struct ReachReport(Arc<Reach>);

#[Object(name = "Reach")]
impl ReachReport {
    /// The moment reach is measured at (just before it).
    async fn at(&self) -> DateTime {
        self.0.at.into()
    }
    /// Leads created before `at` (and kept by the filter).
    async fn leads(&self) -> i64 {
        self.0.leads
    }
    /// Per channel: EMAIL, PHONE, LINKEDIN, TWITTER, FACEBOOK, POSTAL.
    async fn channels(&self) -> Vec<ChannelReach> {
        channel_rows(&self.0.channels)
    }
    /// The same per persona, over its member leads (personas without members are left out).
    async fn personas(&self) -> Vec<PersonaReach> {
        self.0
            .personas
            .iter()
            .map(|(p, n, rows)| PersonaReach {
                persona_id: *p,
                leads: *n,
                channels: channel_rows(rows),
            })
            .collect()
    }
}

/// A KPI time bucket.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum KpiBucket {
    /// ISO weeks (Monday 00:00 UTC).
    Week,
    Month,
    Quarter,
}

impl From<KpiBucket> for crate::domain::kpi::Bucket {
    fn from(b: KpiBucket) -> Self {
        match b {
            KpiBucket::Week => Self::Week,
            KpiBucket::Month => Self::Month,
            KpiBucket::Quarter => Self::Quarter,
        }
    }
}

/// All RPM sections for one range and filter; each is computed only when asked.
pub struct Rpm {
    range: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    bucket: Option<KpiBucket>,
    filter: Option<KpiFilter>,
    model: Option<AttributionModelInput>,
}

#[Object(name = "Rpm")]
impl Rpm {
    async fn from(&self) -> DateTime {
        self.range.0.into()
    }
    async fn to(&self) -> DateTime {
        self.range.1.into()
    }
    /// The range cut into the query's time buckets (calendar weeks, months or quarters in UTC,
    /// the first and last clipped to the range), each with every section for its own period:
    /// the time series of any KPI. Without a bucket, the whole range as one period.
    async fn periods(&self) -> async_graphql::Result<Vec<Rpm>> {
        let Some(bucket) = self.bucket else {
            return Ok(vec![self.period(self.range)]);
        };
        let Some(cuts) = crate::domain::kpi::periods(self.range.0, self.range.1, bucket.into()) else {
            return query_result(Err(crate::error::ServiceError::invalid(
                &["bucket"],
                "TOO_MANY_PERIODS",
                format!(
                    "at most {} periods: choose a larger bucket or a shorter range",
                    crate::domain::kpi::MAX_PERIODS
                ),
            )));
        };
        Ok(cuts.into_iter().map(|r| self.period(r)).collect())
    }
    async fn reach(&self, ctx: &Context<'_>) -> async_graphql::Result<ReachReport> {
        KpiQuery.reach(ctx, Some(self.range.1.into()), self.filter.clone()).await
    }
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
    fn period(&self, range: (chrono::DateTime<Utc>, chrono::DateTime<Utc>)) -> Rpm {
        Rpm {
            range,
            bucket: None,
            filter: self.filter.clone(),
            model: self.model.clone(),
        }
    }

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
        #[graphql(desc = "Cuts the range into periods (`Rpm.periods`): a time series of every KPI.")] bucket: Option<KpiBucket>,
        #[graphql(desc = "The attribution model of the ROI section (default LINEAR).")] model: Option<AttributionModelInput>,
    ) -> async_graphql::Result<Rpm> {
        ctx.principal()?;
        let r = range_of(range)?;
        // Checked here too, so that a bad filter fails at once and not per section.
        filter_of(ctx, filter.clone()).await?;
        Ok(Rpm {
            range: (r.from, r.to),
            bucket,
            filter,
            model,
        })
    }

    /// How many leads can be contacted on each channel just before `to` (default now): contact
    /// data present, consent given and not withdrawn, and for e-mail neither bounced nor
    /// unsubscribed (docs/kpis.md, Reach). Overall and per persona.
    async fn reach(&self, ctx: &Context<'_>, to: Option<DateTime>, filter: Option<KpiFilter>) -> async_graphql::Result<ReachReport> {
        let p = ctx.principal()?;
        let f = filter_of(ctx, filter).await?;
        let key = format!("reach {:?} {f:?}", to.as_ref().map(|t| t.0));
        let to = to.map_or_else(Utc::now, |t| t.0);
        Ok(ReachReport(
            cached(ctx, p.workspace_id, key, service::reach(&ctx.db().conn, p.workspace_id, to, &f)).await?,
        ))
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
        let f = filter_of(ctx, filter).await?;
        // Without `asOf` the answer is "by now", which only a write can change: cached as such.
        let key = format!("conversion {:?} {:?} {f:?}", (r.from, r.to), as_of.as_ref().map(|t| t.0));
        let as_of = as_of.map_or_else(Utc::now, |t| t.0);
        let h = history(ctx, p.workspace_id, &f).await?;
        let rows = cached(ctx, p.workspace_id, key, async { Ok(service::conversion(&h, &r, as_of)) }).await?;
        Ok(rows.iter().cloned().map(StageConversionRow).collect())
    }

    /// The funnel as it stands: per success-path stage, the leads in it and those that reached
    /// it (now in it or a later success-path stage), and the conversion from the previous one.
    async fn funnel_snapshot(&self, ctx: &Context<'_>, filter: Option<KpiFilter>) -> async_graphql::Result<Vec<SnapshotRow>> {
        let p = ctx.principal()?;
        let f = filter_of(ctx, filter).await?;
        let key = format!("snapshot {f:?}");
        let rows = cached(ctx, p.workspace_id, key, service::snapshot(&ctx.db().conn, p.workspace_id, &f)).await?;
        Ok(rows.iter().cloned().map(SnapshotRow).collect())
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
        let f = filter_of(ctx, filter).await?;
        let key = format!("flow {:?} {f:?}", (r.from, r.to));
        let h = history(ctx, p.workspace_id, &f).await?;
        let rows = cached(ctx, p.workspace_id, key, async { Ok(service::flow(&h, &r)) }).await?;
        Ok(rows.iter().cloned().map(StageFlowRow).collect())
    }

    /// Days per funnel stage, lead to customer, and the sales cycle of the deals closed in the
    /// range.
    async fn velocity(&self, ctx: &Context<'_>, range: DateTimeRange, filter: Option<KpiFilter>) -> async_graphql::Result<VelocityReport> {
        let p = ctx.principal()?;
        let r = range_of(range)?;
        let f = filter_of(ctx, filter).await?;
        Ok(VelocityReport {
            ws: p.workspace_id,
            range: r,
            filter: f,
        })
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
        let f = filter_of(ctx, filter).await?;
        let key = format!("value {:?} {f:?}", to.as_ref().map(|t| t.0));
        let to = to.map_or_else(Utc::now, |t| t.0);
        let h = history(ctx, p.workspace_id, &f).await?;
        Ok(LeadValueReport(
            cached(
                ctx,
                p.workspace_id,
                key,
                service::lead_value(&ctx.db().conn, p.workspace_id, &h, to),
            )
            .await?,
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
        let f = filter_of(ctx, filter).await?;
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

/// The stage history the funnel KPIs share: read once per data revision and filter.
async fn history(ctx: &Context<'_>, ws: i64, f: &Filter) -> async_graphql::Result<Arc<service::History>> {
    cached(ctx, ws, format!("history {f:?}"), service::history(&ctx.db().conn, ws, f)).await
}

async fn cached<T: Send + Sync + 'static>(
    ctx: &Context<'_>,
    ws: i64,
    key: String,
    compute: impl Future<Output = crate::error::ServiceResult<T>>,
) -> async_graphql::Result<Arc<T>> {
    let cache = ctx.data_unchecked::<ReportCache>();
    // In a query over HTTP the revision is read once per request, not once for every field of
    // every row that asks for a report (a socket's loader caches nothing: there, once per
    // field). A mutation's payload reads it anew: an earlier mutation of the same request may
    // have written since.
    let mutation = ctx.query_env.operation.node.ty == async_graphql::parser::types::OperationType::Mutation;
    if mutation || ctx.principal()?.workspace_id != ws {
        return query_result(cache.get_or_compute(&ctx.db().conn, ws, key, || compute).await);
    }
    let revision = ctx
        .data_unchecked::<Loaders>()
        .load_one(RevisionKey)
        .await?
        .ok_or_else(|| async_graphql::Error::new("the workspace's revision is missing"))?;
    query_result(cache.get_or_compute_at(ws, revision, key, || compute).await)
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
