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

/// Which leads and campaigns the KPIs count (docs/kpis.md, Conventions: Filters). Conditions
/// combine with AND; absent conditions count everything. The sales cycle, revenue per
/// customer contact and attributed revenue are not filtered by persona or owner.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "KpiFilterInput")]
pub struct KpiFilter {
    /// Leads that are members of this persona (global ID; NOT_FOUND when malformed or of
    /// another type): conversion, flow, stage velocity, value, reach, the snapshot, cost per
    /// lead and MQL, and a campaign's activity.
    pub persona_id: Option<ID>,
    /// Leads owned by this user (global ID), with the same reach as `personaId`.
    pub owner_id: Option<ID>,
    /// Campaigns of this channel code, case-insensitive (ROI report). A code the workspace's
    /// channel vocabulary lacks is BAD_USER_INPUT (UNKNOWN_VALUE) naming the allowed ones.
    pub channel: Option<String>,
    /// Campaigns of this kind (ROI report).
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

pub struct StageConversionRow(StageConversion);

/// Conversion from a success-path stage to the next (or, in the last row, from the first
/// success-path stage to the last: Lead -> Customer). docs/kpis.md, Conversion.
#[Object(name = "StageConversion")]
impl StageConversionRow {
    /// The stage the cohort entered.
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    /// The next success-path stage (the last one in the Lead -> Customer row).
    async fn next(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.next).await
    }
    /// Leads that entered `stage` in [from, to), each counted once by its first entry in the
    /// range.
    async fn cohort(&self) -> i64 {
        self.0.cohort
    }
    /// Of them, those that entered `next` or a later success-path stage at or after that
    /// entry and before `asOf` (a skipped stage converts too; a side stage does not).
    async fn converted(&self) -> i64 {
        self.0.converted
    }
    /// converted / cohort, rounded half away from zero to 4 decimal places (a fraction, 0 to
    /// 1); null for an empty cohort.
    async fn rate(&self) -> Option<Decimal> {
        self.0.rate.map(Decimal)
    }
}

pub struct SnapshotRow(crate::domain::kpi::SnapshotRow);

/// A success-path stage as the funnel stands now, from each lead's current stage (docs/kpis.md,
/// Funnel snapshot). Leads in side stages count in no row.
#[Object(name = "FunnelSnapshotRow")]
impl SnapshotRow {
    /// The stage.
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
    /// reached / the previous stage's reached, a fraction to 4 decimal places (half away from
    /// zero); null for the first stage and when the previous stage was reached by nobody.
    async fn conversion_from_previous(&self) -> Option<Decimal> {
        self.0.conversion.map(Decimal)
    }
}

pub struct StageFlowRow(StageFlow);

/// Moves into and out of one stage in [from, to), and the leads in it before and after
/// (docs/kpis.md, Flow). balanceTo = balanceFrom + inflow - toNext - toSide - toOther.
#[Object(name = "StageFlow")]
impl StageFlowRow {
    /// The stage (every stage of the funnel, side stages included, in funnel order).
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    /// Moves into the stage in the range (a lead entering twice counts twice).
    async fn inflow(&self) -> i64 {
        self.0.inflow
    }
    /// Moves out of the stage into the next success-path stage in the range.
    async fn to_next(&self) -> i64 {
        self.0.to_next
    }
    /// Moves out of the stage into a side stage (Nurture, Disqualified) in the range.
    async fn to_side(&self) -> i64 {
        self.0.to_side
    }
    /// Moves out of the stage anywhere else in the range: back, skipping ahead, or from a side
    /// stage onto the success path.
    async fn to_other(&self) -> i64 {
        self.0.to_other
    }
    /// Leads in the stage just before `from` (from stage history: valid for any past date).
    async fn balance_from(&self) -> i64 {
        self.0.balance_from
    }
    /// Leads in the stage just before `to`.
    async fn balance_to(&self) -> i64 {
        self.0.balance_to
    }
}

pub struct StageVelocityRow(StageVelocity);

/// Days from entering a success-path stage to moving on to a later one, for the moves onward
/// made in [from, to) (docs/kpis.md, Velocity).
#[Object(name = "StageVelocity")]
impl StageVelocityRow {
    /// The stage left (the first success-path stage for the Lead -> Customer figure).
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.0.stage).await
    }
    /// Moves onward in the range that count for the stage (a move skipping stages counts for
    /// the stage left; a re-entry from a side stage does not count).
    async fn moves(&self) -> i64 {
        self.0.moves
    }
    /// Median of the moves' durations in days (seconds / 86,400; an even count takes the mean
    /// of the middle two), 4 decimal places; null without moves.
    async fn median_days(&self) -> Option<Decimal> {
        self.0.median_days.map(Decimal)
    }
    /// Mean of the moves' durations in days, 4 decimal places; null without moves.
    async fn mean_days(&self) -> Option<Decimal> {
        self.0.mean_days.map(Decimal)
    }
}

/// The deals (in the workspace currency) closed in the range: cycle length, win rate and sales
/// velocity (docs/kpis.md, Velocity: Sales cycle). Not filtered by persona or owner.
#[derive(SimpleObject)]
pub struct SalesCycleReport {
    /// Opportunities closed WON in the range.
    pub won: i64,
    /// Opportunities closed LOST in the range.
    pub lost: i64,
    /// Opportunities OPEN now, whatever the range.
    pub open: i64,
    /// Median days from createdAt to closedAt of the won deals, 4 decimal places; null
    /// without a won deal.
    pub median_days: Option<Decimal>,
    /// Mean days from createdAt to closedAt of the won deals, 4 decimal places; null without
    /// a won deal.
    pub mean_days: Option<Decimal>,
    /// won / (won + lost), a fraction to 4 decimal places; null when neither.
    pub win_rate: Option<Decimal>,
    /// Mean amount of the won deals, to the cent; null without a won deal.
    pub average_won_amount: Option<Money>,
    /// Revenue per day: open x average won amount x win rate / mean cycle days (the exact
    /// mean), to the cent; null without a won deal or with a mean cycle of 0.
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

/// How fast leads move through the funnel in a range, and how long deals take to close
/// (docs/kpis.md, Velocity).
#[Object(name = "Velocity")]
impl VelocityReport {
    /// Per success-path stage (but the last), in funnel order: days to a later one.
    async fn stages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageVelocityRow>> {
        let rows = self.stage_rows(ctx).await?;
        let n = rows.len().saturating_sub(1);
        Ok(rows[..n].iter().cloned().map(StageVelocityRow).collect())
    }
    /// For every move in the range into the last success-path stage, the days since the lead
    /// first entered the first one; null when the funnel has fewer than two success-path stages.
    async fn lead_to_customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StageVelocityRow>> {
        Ok(self.stage_rows(ctx).await?.last().cloned().map(StageVelocityRow))
    }
    /// Deals closed in the range (not filtered by persona or owner; workspace currency only).
    async fn sales_cycle(&self, ctx: &Context<'_>) -> async_graphql::Result<SalesCycleReport> {
        let r = &self.range;
        let key = format!("sales cycle {:?}", (r.from, r.to));
        let s = cached(ctx, self.ws, key, service::sales_cycle(&ctx.db().conn, self.ws, r)).await?;
        Ok(s.as_ref().into())
    }
}

pub struct LeadValueReport(Arc<LeadValue>);

/// What one lead in a success-path stage is worth (docs/kpis.md, Value).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct StageLeadValue {
    #[graphql(skip)]
    stage_id: i64,
    /// P(reaching the last success-path stage | entered this one) in the reference window: of
    /// the leads that first entered the stage in the window, the share that entered the last
    /// success-path stage before `to`. A fraction to 4 decimal places; 1 for the last stage;
    /// null when no lead entered the stage in the window.
    pub probability: Option<Decimal>,
    /// The expected revenue of one lead in the stage: probability (exact) x revenue per
    /// customer contact, in the workspace currency to the cent; null when either is null.
    pub value: Option<Money>,
    /// Leads whose stage just before `to` is this one.
    pub leads: i64,
}

#[async_graphql::ComplexObject]
impl StageLeadValue {
    /// The stage.
    async fn stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.stage_id).await
    }
}

/// What a lead in each success-path stage and the whole lead database are worth at `to`,
/// from the reference window [to - 365 days, to) (docs/kpis.md, Value).
#[Object(name = "LeadValue")]
impl LeadValueReport {
    /// One row per success-path stage, in funnel order.
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
    /// The won deals closed in the reference window (workspace currency, with a buying center):
    /// their amounts summed / the number of distinct contacts in their buying centers, to the
    /// cent; null when there is no such deal. Not filtered by persona or owner.
    async fn revenue_per_customer_contact(&self) -> Option<Money> {
        self.0.revenue_per_customer_contact.map(|d| money(d, &self.0.currency))
    }
    /// Sum over the success-path stages of leads x value (exact, rounded once to the cent);
    /// leads in side stages add nothing.
    async fn database_value(&self) -> Money {
        money(self.0.database_value, &self.0.currency)
    }
    /// Start of the reference window: 365 days before `to` (UTC).
    async fn window_from(&self) -> DateTime {
        self.0.window_from.into()
    }
}

/// ROI figures of a campaign, a channel or all campaigns over a range (docs/kpis.md, ROI).
/// Money in the workspace currency to the cent; ratios to 4 decimal places, half away from
/// zero.
#[derive(SimpleObject)]
pub struct RoiFigures {
    /// Attributed revenue: won deals closed in the range credited by the report's model
    /// (their paths may start before `from`).
    pub revenue: Money,
    /// Cost lines dated in the range (0.00 without any).
    pub costs: Money,
    /// revenue x the workspace's cost-of-goods ratio (setting `costOfGoodsRatio`, default 0).
    pub production_costs: Money,
    /// (revenue - production costs - costs) / costs, e.g. 2.5 for 250 %; null when costs are 0.
    pub roi: Option<Decimal>,
    /// revenue / costs; null when costs are 0.
    pub revenue_per_cost: Option<Decimal>,
    /// costs / revenue; null when revenue is 0.
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
        Fut: Future<Output = crate::error::ServiceResult<HashMap<i64, T>>> + Send,
    {
        let (r, f) = (&self.report.range, &self.report.filter);
        let ws = self.row().campaign.workspace_id;
        let all = cell
            .get_or_try_init(|| Box::pin(cached(ctx, ws, format!("{report} {:?} {f:?}", (r.from, r.to)), compute())))
            .await?;
        Ok(all.get(&self.row().campaign.id).cloned().unwrap_or_default())
    }
}

/// A campaign's costs of one category in the range.
#[derive(SimpleObject)]
pub struct CategoryCost {
    /// A cost category code.
    pub category: CostCategory,
    /// The sum of the category's lines dated in the range, in the workspace currency.
    pub amount: Money,
}

/// An e-mail campaign's statistics over the distinct leads of its touchpoints in the range
/// (docs/kpis.md, E-mail statistics). Rates are fractions to 4 decimal places, null when the
/// divisor is 0.
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
    /// Opens by mail privacy proxies and scanners (hits of the campaign's open pixels in the
    /// range), kept apart from `uniqueOpens` and from every other figure (docs/tracking.md).
    pub machine_opens: i64,
    /// Clicks by link scanners on the campaign's tracking links in the range.
    pub machine_clicks: i64,
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
            machine_opens: e.machine_opens,
            machine_clicks: e.machine_clicks,
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

/// One campaign's closed loop over a range: a row of the ROI report (docs/kpis.md, Campaign
/// performance). Money in the workspace currency, to the cent.
#[Object]
impl CampaignPerformance {
    /// The campaign.
    async fn campaign(&self) -> Campaign {
        Campaign(self.row().campaign.clone())
    }
    /// Attributed revenue, costs, ROI and the cost ratios.
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
    /// Attributed conversions: the fractional deals the model credits to the campaign, 6
    /// decimal places (each deal split in millionths).
    async fn conversions(&self) -> Decimal {
        Decimal(self.row().conversions)
    }
    /// Won deals closed in the range that the model credits to the campaign, whole.
    async fn deals_won(&self) -> i64 {
        self.row().deals_won
    }
    /// Leads whose first touchpoint of all was on this campaign and lies in the range (filtered
    /// by persona and owner).
    async fn leads_sourced(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.leads)
    }
    /// Of the sourced leads, those ever handed to sales (any handoff, whatever its status or
    /// date).
    async fn mqls(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.mqls)
    }
    /// Of the sourced leads, those that ever entered the stage with key SQL.
    async fn sqls(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.sourced(ctx).await?.sqls)
    }
    /// Distinct leads with a touchpoint on the campaign in the range.
    async fn leads_touched(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.leads_touched)
    }
    /// Distinct site visitors (first-party capture; bots left out) with a hit on the campaign
    /// in the range, known or not yet (docs/kpis.md, Site visitors).
    async fn visitors(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.visitors.visitors)
    }
    /// Of `visitors`, those no lead is known for yet.
    async fn anonymous_visitors(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.visitors.anonymous)
    }
    /// The visitors' sessions on the campaign: a visitor's hits on it with no gap over 30
    /// minutes are one session.
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.activity(ctx).await?.visitors.sessions)
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
    /// Costs / leads sourced, to the cent; null without sourced leads.
    async fn cost_per_lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().cost_per_lead(s).map(|d| self.money(d)))
    }
    /// Costs / MQLs (sourced leads handed to sales), to the cent; null without any.
    async fn cost_per_mql(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().cost_per_mql(s).map(|d| self.money(d)))
    }
    /// Costs / the exact attributed conversions (not the rounded `conversions`), rounded once
    /// to the cent; null without conversions.
    async fn cost_per_order(&self) -> Option<Money> {
        self.row().cost_per_order.map(|d| self.money(d))
    }
    /// The campaign's whole expected revenue (not pro-rated to the range); null when not set.
    async fn expected_revenue(&self) -> Option<Money> {
        self.row().expected_revenue.map(|d| self.money(d))
    }
    /// Attributed revenue - expected revenue (negative: short of the forecast); null without
    /// an expected revenue.
    async fn forecast_difference(&self) -> Option<Money> {
        self.row().forecast_difference.map(|d| self.money(d))
    }
    /// Attributed revenue / expected revenue, 4 decimal places; null without an expected
    /// revenue or when it is 0.
    async fn forecast_ratio(&self) -> Option<Decimal> {
        self.row().forecast_ratio.map(Decimal)
    }
    /// The leads the campaign is expected to source; null when not set.
    async fn expected_leads(&self) -> Option<i64> {
        self.row().campaign.expected_leads
    }
    /// Leads sourced - expected leads; null without expected leads.
    async fn leads_difference(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().leads_forecast(s).0)
    }
    /// Leads sourced / expected leads, 4 decimal places; null without a forecast or when it
    /// is 0.
    async fn leads_ratio(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Decimal>> {
        let s = self.sourced(ctx).await?;
        Ok(self.row().leads_forecast(s).1.map(Decimal))
    }
}

/// ROI of one channel: revenue and costs summed over its campaigns, then the ratios.
#[derive(SimpleObject)]
pub struct ChannelRoi {
    /// The channel code.
    pub channel: String,
    /// The channel's summed figures.
    pub figures: RoiFigures,
}

pub struct CampaignRoiReport(Arc<RoiReport>);

/// ROI per campaign, per channel and overall over a range (docs/kpis.md, ROI). NO_CAMPAIGN
/// and UNATTRIBUTED revenue belong to no campaign and are in none of the sums.
#[Object(name = "CampaignRoiReport")]
impl CampaignRoiReport {
    /// The attribution model of the revenue.
    async fn model(&self) -> AttributionModelKind {
        self.0.model.kind().into()
    }
    /// The campaigns the filter keeps, by attributed revenue, largest first.
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
    /// Per channel, by revenue, largest first: revenue and costs summed over the channel's
    /// campaigns first, then the ratios.
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
    /// All the kept campaigns summed, then the ratios.
    async fn total(&self) -> RoiFigures {
        figures(&self.0.total, &self.0.currency)
    }
}

/// How many leads can be contacted on one channel (docs/kpis.md, Reach).
#[derive(SimpleObject)]
pub struct ChannelReach {
    /// The channel.
    pub channel: ReachChannel,
    /// Leads with the channel's contact data and consent given (for EMAIL also neither
    /// bounced nor unsubscribed before the moment).
    pub reachable: i64,
    /// reachable / leads counted, a fraction to 4 decimal places; null without leads.
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
    /// Member leads counted (created before the moment, kept by the filter).
    pub leads: i64,
    /// Reach per channel among them.
    pub channels: Vec<ChannelReach>,
}

#[async_graphql::ComplexObject]
impl PersonaReach {
    /// The persona.
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaId(self.persona_id))
            .await?
            .map(Persona))
    }
}

pub struct ReachReport(Arc<Reach>);

/// How many leads can be contacted, per channel, just before a moment (docs/kpis.md, Reach).
/// Consents and contact data are today's; bounces and unsubscribes are taken at the moment.
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

/// A KPI time bucket: where `rpm` cuts its range into periods (UTC calendar boundaries; the
/// first and last period are clipped to the range; at most 366 periods).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum KpiBucket {
    /// ISO weeks, from Monday 00:00 UTC.
    Week,
    /// Calendar months, from the 1st 00:00 UTC.
    Month,
    /// Calendar quarters, from 1 January, April, July and October 00:00 UTC.
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

/// Every Revenue Performance Management KPI of one range and filter (docs/kpis.md); each
/// section is computed only when selected. Stocks (reach, value) are taken at `to`.
#[Object(name = "Rpm")]
impl Rpm {
    /// Start of the period (inclusive, UTC).
    async fn from(&self) -> DateTime {
        self.range.0.into()
    }
    /// End of the period (exclusive, UTC).
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
    /// Reach just before `to` (as the `reach` query).
    async fn reach(&self, ctx: &Context<'_>) -> async_graphql::Result<ReachReport> {
        KpiQuery.reach(ctx, Some(self.range.1.into()), self.filter.clone()).await
    }
    /// Conversion of the period's cohorts by now (as `funnelConversion` without `asOf`).
    async fn conversion(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageConversionRow>> {
        KpiQuery.funnel_conversion(ctx, self.dtr(), None, self.filter.clone()).await
    }
    /// Flow per stage (as `funnelFlow`).
    async fn flow(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StageFlowRow>> {
        KpiQuery.funnel_flow(ctx, self.dtr(), self.filter.clone()).await
    }
    /// Velocity and the sales cycle (as `velocity`).
    async fn velocity(&self, ctx: &Context<'_>) -> async_graphql::Result<VelocityReport> {
        KpiQuery.velocity(ctx, self.dtr(), self.filter.clone()).await
    }
    /// Lead value at `to` (as `leadValue`).
    async fn value(&self, ctx: &Context<'_>) -> async_graphql::Result<LeadValueReport> {
        KpiQuery.lead_value(ctx, Some(self.range.1.into()), self.filter.clone()).await
    }
    /// ROI with the query's model (as `campaignRoi`).
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
            last_days: None,
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct KpiQuery;

#[Object]
impl KpiQuery {
    /// The Revenue Performance Management KPIs of a range (docs/kpis.md): conversion, flow,
    /// velocity, value, reach and ROI, as a whole or per period. Any role; every section is
    /// cached until the workspace's data change.
    async fn rpm(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC: both bounds, `to` after `from`, or `lastDays` alone (BAD_USER_INPUT otherwise).")]
        range: DateTimeRange,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
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
    /// unsubscribed (docs/kpis.md, Reach). Overall and per persona. Any role.
    async fn reach(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The moment reach is measured just before (default now).")] to: Option<DateTime>,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
    ) -> async_graphql::Result<ReachReport> {
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
    /// Lead -> Customer (docs/kpis.md, Conversion). Any role.
    async fn funnel_conversion(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC in which the cohorts entered their stage; both bounds, or `lastDays`.")]
        range: DateTimeRange,
        #[graphql(desc = "Moves onward count until this moment (default now); it may lie after `to`.")] as_of: Option<DateTime>,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
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
    /// Any role.
    async fn funnel_snapshot(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which leads count (persona and owner; default: all).")] filter: Option<KpiFilter>,
    ) -> async_graphql::Result<Vec<SnapshotRow>> {
        let p = ctx.principal()?;
        let f = filter_of(ctx, filter).await?;
        let key = format!("snapshot {f:?}");
        let rows = cached(ctx, p.workspace_id, key, service::snapshot(&ctx.db().conn, p.workspace_id, &f)).await?;
        Ok(rows.iter().cloned().map(SnapshotRow).collect())
    }

    /// Moves in and out of every stage in the range, and its balance before and after
    /// (docs/kpis.md, Flow). Any role.
    async fn funnel_flow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC: both bounds, `to` after `from`, or `lastDays` alone (BAD_USER_INPUT otherwise).")]
        range: DateTimeRange,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
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
    /// range (docs/kpis.md, Velocity). Any role.
    async fn velocity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC: both bounds, `to` after `from`, or `lastDays` alone (BAD_USER_INPUT otherwise).")]
        range: DateTimeRange,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
    ) -> async_graphql::Result<VelocityReport> {
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
    /// (default now), from the 365 days before it (docs/kpis.md, Value). Any role.
    async fn lead_value(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The moment of the valuation (default now); the reference window is the 365 days before it.")] to: Option<
            DateTime,
        >,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
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
    /// per channel and overall, with an attribution model (docs/kpis.md, ROI). Any role.
    async fn campaign_roi(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period [from, to) in UTC: both bounds, `to` after `from`, or `lastDays` alone (BAD_USER_INPUT otherwise).")]
        range: DateTimeRange,
        #[graphql(desc = "The attribution model of the revenue (default LINEAR).")] model: Option<AttributionModelInput>,
        #[graphql(desc = "Which leads and campaigns count (default: all).")] filter: Option<KpiFilter>,
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

/// The report under `key` of workspace `ws`: from the report cache, or computed by `compute`
/// and kept there until the workspace's data changes.
///
/// The returned future is boxed: a report's computation is a large future (`campaignRoi`'s was
/// 19 KB), and held inline it made every query resolver's future as large, moved on each
/// request of any query (Q1 of BENCHMARKS.md spent 4 % of its instructions copying it).
fn cached<'a, T: Send + Sync + 'static>(
    ctx: &'a Context<'_>,
    ws: i64,
    key: String,
    compute: impl Future<Output = crate::error::ServiceResult<T>> + Send + 'a,
) -> futures_util::future::BoxFuture<'a, async_graphql::Result<Arc<T>>> {
    Box::pin(cached_inline(ctx, ws, key, compute))
}

async fn cached_inline<T: Send + Sync + 'static>(
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
