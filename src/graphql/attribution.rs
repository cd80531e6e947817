//! Attribution: reports by model and grouping, the side-by-side comparison, each deal's
//! explanation, and the versions of the workspace's models.
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use entity::attribution_model;
use rust_decimal::Decimal as Dec;

use crate::cache::ReportCache;
use crate::domain::attribution::{DEFAULT_LOOKBACK_DAYS, Kind, Rule};
use crate::domain::vocab::Action;
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, query_result, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{CampaignId, DealPath, LeadId, Loaders, PersonaId, TouchpointId};
use crate::graphql::persona::Persona;
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::graphql::scoring::ScoringCell;
use crate::graphql::touchpoint::Touchpoint;
use crate::service::attribution::{self as service, Grouping, Model, Report, RowKey, Source, SourceChoice};

/// An attribution model: how a won deal's amount is split over the touches of its path (the
/// touchpoints of its buying center in the lookback window before the close, in time order).
/// Every rule-based split is exact: credits are whole cents by largest remainder and sum to the
/// deal's amount; conversions are millionths summing to 1 per deal. docs/attribution.md holds
/// the definitions and worked examples.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "Kind")]
pub enum AttributionModelKind {
    /// All of a deal to its first touch.
    FirstTouch,
    /// All of a deal to its last touch before the close.
    LastTouch,
    /// Equal shares to every touch.
    Linear,
    /// Weight 2^(-(closedAt - occurredAt) / halfLife) per touch (times in seconds; half-life
    /// default 7 days), shares proportional to the weights.
    TimeDecay,
    /// 40 % to the first touch, 40 % to the last, 20 % split equally over the touches between
    /// (two touches: 50/50; one: 100 %).
    PositionBased,
    /// Weight 30 to each key touch, adding up where they coincide: the first touch; the
    /// primary contact's last touch at or before it first became an MQL; the last touch at or
    /// before the opportunity's `createdAt`. 10 split equally over the other touches. Shares
    /// are the weights over their sum: a missing key touch adds nothing.
    WShaped,
    /// As W_SHAPED with the last touch as a fourth key touch: 22.5 to each key touch, 10 split
    /// over the others.
    FullPath,
    /// Per touchpoint type weights (the workspace's current CUSTOM version, or the ones a query
    /// gives); a touch weighs its type's weight, types not listed weigh 0, shares proportional.
    /// A path of zero weights is UNATTRIBUTED.
    Custom,
    /// Data-driven: removal effects of a Markov chain over all journeys of the range (won
    /// deals' paths converting; lost deals' and leads without a deal not converting), computed
    /// exactly (docs/attribution.md, MARKOV). Credits campaigns or channels only (`groupBy`
    /// CAMPAIGN or CHANNEL), not single touches.
    Markov,
}

impl AttributionModelKind {
    /// From the stored string; unknown values (never written by us) read as FIRST_TOUCH.
    pub fn from_db(s: &str) -> Self {
        Kind::parse(s).map_or(AttributionModelKind::FirstTouch, Into::into)
    }
}

/// What a report's rows are keyed by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttributionGrouping {
    /// Row key: the campaign's ID, or NO_CAMPAIGN (channel DIRECT).
    Campaign,
    /// Row key: the campaign's channel; DIRECT for touches without a campaign.
    Channel,
    /// Row key: the credited touch's type, e.g. WEBINAR_ATTEND.
    TouchpointType,
    /// Row key: the persona ID of the credited touch's lead (its best match among the personas
    /// it is a member of), or NO_PERSONA.
    Persona,
    /// Row key: the cell of the credited touch's lead under the default scoring model when the
    /// deal closed ("A1" ... "D4"), or UNSCORED.
    ScoringCell,
}

impl From<AttributionGrouping> for Grouping {
    fn from(g: AttributionGrouping) -> Grouping {
        match g {
            AttributionGrouping::Campaign => Grouping::Campaign,
            AttributionGrouping::Channel => Grouping::Channel,
            AttributionGrouping::TouchpointType => Grouping::TouchpointType,
            AttributionGrouping::Persona => Grouping::Persona,
            AttributionGrouping::ScoringCell => Grouping::ScoringCell,
        }
    }
}

/// Where a report's credits may come from.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum AttributionSourceChoice {
    /// The ledger when the model and lookback match a current stored version, else computed.
    #[default]
    Auto,
    /// The ledger only (an error when it does not keep the model).
    Ledger,
    /// Computed from the touchpoints now.
    Compute,
}

/// Where a report's credits came from.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttributionSource {
    /// The attribution ledger: credits written when each deal was won, for the workspace's
    /// current model version (`modelVersion`).
    Ledger,
    /// Computed from the touchpoints for this request.
    Computed,
}

/// The weight of one touchpoint type in a CUSTOM model.
#[derive(InputObject, Clone)]
pub struct TouchpointWeightInput {
    /// A touchpoint type, e.g. WHITEPAPER_DOWNLOAD.
    #[graphql(name = "type")]
    pub touch_type: String,
    /// 0 to 1,000,000 with at most 6 decimal places; only the ratios between weights matter.
    pub weight: Decimal,
}

/// The model a report or explanation uses.
#[derive(InputObject, Clone)]
pub struct AttributionModelInput {
    /// The model.
    pub kind: AttributionModelKind,
    /// TIME_DECAY only: the half-life in days, from one second to 3650 days (default: the
    /// workspace's current TIME_DECAY version, or 7).
    pub half_life_days: Option<Decimal>,
    /// CUSTOM only: the weight per touchpoint type (types not listed weigh nothing). Default:
    /// the workspace's current CUSTOM version, or the built-in table (docs/attribution.md).
    pub weights: Option<Vec<TouchpointWeightInput>>,
}

fn weights_of(w: Option<Vec<TouchpointWeightInput>>) -> Option<Vec<(String, Dec)>> {
    w.map(|list| list.into_iter().map(|x| (x.touch_type, x.weight.0)).collect())
}

/// The model a query names. CUSTOM without weights and TIME_DECAY without a half-life mean the
/// workspace's current version (or the defaults when it has none yet).
pub(crate) async fn model_of(ctx: &Context<'_>, input: AttributionModelInput, field: &str) -> async_graphql::Result<Model> {
    let kind: Kind = input.kind.into();
    let given = input.half_life_days.is_some() || input.weights.is_some();
    let rule = query_result(service::rule_from(
        kind,
        input.half_life_days.map(|d| d.0),
        weights_of(input.weights),
        field,
    ))?;
    let Some(rule) = rule else { return Ok(Model::Markov) };
    if !given && matches!(kind, Kind::TimeDecay | Kind::Custom) {
        let p = ctx.principal()?;
        let stored = crate::store::attribution::models(&ctx.db().conn, p.workspace_id).await.gql()?;
        if let Some(r) = stored
            .iter()
            .find(|m| m.is_current && m.kind == kind.as_str())
            .and_then(service::rule_of)
        {
            return Ok(Model::Rule(r));
        }
    }
    Ok(Model::Rule(rule))
}

/// A report's range: both bounds, or `lastDays` (BAD_USER_INPUT on `range` otherwise).
pub(crate) fn range_of(range: DateTimeRange) -> async_graphql::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    match range.bounds()? {
        (Some(f), Some(t)) => Ok((f, t)),
        _ => query_result(Err(crate::error::ServiceError::invalid(
            &["range"],
            "REQUIRED",
            "a report needs both `from` and `to`, or `lastDays`",
        ))),
    }
}

/// One row of a report.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AttributionRow {
    /// The campaign's or persona's ID, the channel, the touchpoint type, the cell; NO_CAMPAIGN,
    /// NO_PERSONA, UNSCORED; or UNATTRIBUTED for the deals no touch earned.
    pub key: String,
    /// The won revenue credited to the row, in the report's currency: whole cents, so that
    /// the rows sum exactly to `totals.revenue`.
    pub revenue: Money,
    /// Deals credited, fractional, 6 decimal places.
    pub conversions: Decimal,
    /// Touches credited (a touch on the paths of two deals counts twice).
    pub touchpoints: i64,
    /// Deals with a credited touch in the row.
    pub deals: i64,
    #[graphql(skip)]
    row_key: RowKey,
}

#[ComplexObject]
impl AttributionRow {
    /// Grouped by campaign: the campaign (null for NO_CAMPAIGN and UNATTRIBUTED).
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let RowKey::Campaign(Some(id)) = self.row_key else {
            return Ok(None);
        };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
    /// Grouped by campaign or channel: the channel.
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(match &self.row_key {
            RowKey::Channel(c) => Some(c.clone()),
            RowKey::Campaign(None) => Some(service::DIRECT.to_owned()),
            RowKey::Campaign(Some(id)) => ctx.data_unchecked::<Loaders>().load_one(CampaignId(*id)).await?.map(|c| c.channel),
            _ => None,
        })
    }
    /// Grouped by persona: the persona.
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        let RowKey::Persona(Some(id)) = self.row_key else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(PersonaId(id)).await?.map(Persona))
    }
    /// Grouped by scoring cell: the cell.
    async fn cell(&self) -> Option<ScoringCell> {
        self.scoring_cell()
    }
}

impl AttributionRow {
    fn scoring_cell(&self) -> Option<ScoringCell> {
        match self.row_key {
            RowKey::ScoringCell(Some(c)) => Some(c.into()),
            _ => None,
        }
    }
}

/// A report's totals over all rows.
#[derive(SimpleObject)]
pub struct AttributionTotals {
    /// Won revenue of the range: the sum of every row, UNATTRIBUTED included.
    pub revenue: Money,
    /// The sum of the rows' conversions: the number of won deals.
    pub conversions: Decimal,
    /// Won deals closed in the range.
    pub deals: i64,
    /// The revenue of deals no touch earned.
    pub unattributed: Money,
}

/// Won revenue of a range credited to keys by one model (docs/attribution.md).
#[derive(SimpleObject)]
pub struct AttributionReport {
    /// The model the credits come from.
    pub model: AttributionModelKind,
    /// Whether the credits were read from the ledger or computed now.
    pub source: AttributionSource,
    /// The ledger's model version the credits were read from; null when computed.
    pub model_version: Option<i32>,
    /// ISO 4217 code of every amount: the deals summed are those in this currency.
    pub currency: String,
    /// By revenue, largest first.
    pub rows: Vec<AttributionRow>,
    /// The sums over the rows.
    pub totals: AttributionTotals,
}

fn conversions(micros: i64) -> Decimal {
    Decimal(Dec::new(micros, crate::domain::attribution::CONVERSION_DIGITS))
}

fn key_label(k: &RowKey) -> String {
    match k {
        RowKey::Campaign(Some(id)) => ids::encode(NodeType::Campaign, *id).to_string(),
        RowKey::Persona(Some(id)) => ids::encode(NodeType::Persona, *id).to_string(),
        other => other.label(),
    }
}

impl AttributionReport {
    fn new(kind: Kind, r: Report) -> Self {
        let (source, model_version) = match r.source {
            Source::Ledger { version, .. } => (AttributionSource::Ledger, Some(version)),
            Source::Computed => (AttributionSource::Computed, None),
        };
        let cur = r.currency.clone();
        AttributionReport {
            model: kind.into(),
            source,
            model_version,
            totals: AttributionTotals {
                revenue: Money::from_minor(r.revenue_minor, &cur),
                conversions: conversions(r.conversion_micros),
                deals: r.deals,
                unattributed: Money::from_minor(r.unattributed_minor, &cur),
            },
            rows: r
                .rows
                .into_iter()
                .map(|(k, row)| AttributionRow {
                    key: key_label(&k),
                    revenue: Money::from_minor(row.revenue_minor, &cur),
                    conversions: conversions(row.conversion_micros),
                    touchpoints: row.touchpoints,
                    deals: row.deals,
                    row_key: k,
                })
                .collect(),
            currency: r.currency,
        }
    }
}

/// One model's figures in a comparison row.
#[derive(SimpleObject)]
pub struct AttributionCell {
    /// The model of this column.
    pub model: AttributionModelKind,
    /// The revenue the model credits to the row's key (0 when it credits none).
    pub revenue: Money,
    /// The deals the model credits to the key, fractional, 6 decimal places.
    pub conversions: Decimal,
}

/// A key with a column per model, in the order the models were asked for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AttributionComparisonRow {
    /// The row's key, as `AttributionRow.key`.
    pub key: String,
    /// One cell per model, in the order of `models`.
    pub models: Vec<AttributionCell>,
    #[graphql(skip)]
    row: AttributionRow,
}

#[ComplexObject]
impl AttributionComparisonRow {
    /// Grouped by campaign: the campaign (null for NO_CAMPAIGN and UNATTRIBUTED).
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        self.row.campaign(ctx).await
    }
    /// Grouped by campaign or channel: the channel (DIRECT for NO_CAMPAIGN).
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        self.row.channel(ctx).await
    }
    /// Grouped by persona: the persona (null for NO_PERSONA).
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        self.row.persona(ctx).await
    }
    /// Grouped by scoring cell: the cell (null for UNSCORED).
    async fn cell(&self) -> Option<ScoringCell> {
        self.row.scoring_cell()
    }
}

/// Several models' reports over the same deals, side by side.
#[derive(SimpleObject)]
pub struct AttributionComparison {
    /// One report per model, in the order asked.
    pub reports: Vec<AttributionReport>,
    /// Every key any model credits, by the first model's revenue, largest first.
    pub rows: Vec<AttributionComparisonRow>,
}

fn comparison(kinds: &[Kind], reports: Vec<Report>) -> AttributionComparison {
    let mut keys: Vec<RowKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &reports {
        for (k, _) in &r.rows {
            if seen.insert(k.clone()) {
                keys.push(k.clone());
            }
        }
    }
    let reports: Vec<AttributionReport> = kinds.iter().zip(reports).map(|(k, r)| AttributionReport::new(*k, r)).collect();
    let rows = keys
        .into_iter()
        .map(|k| {
            let models = reports
                .iter()
                .map(|r| {
                    let row = r.rows.iter().find(|x| x.row_key == k);
                    AttributionCell {
                        model: r.model,
                        revenue: row.map(|x| x.revenue.clone()).unwrap_or_else(|| Money::from_minor(0, &r.currency)),
                        conversions: row.map(|x| x.conversions).unwrap_or_else(|| conversions(0)),
                    }
                })
                .collect();
            AttributionComparisonRow {
                key: key_label(&k),
                models,
                row: AttributionRow {
                    key: key_label(&k),
                    revenue: Money::from_minor(0, ""),
                    conversions: conversions(0),
                    touchpoints: 0,
                    deals: 0,
                    row_key: k,
                },
            }
        })
        .collect();
    AttributionComparison { reports, rows }
}

pub struct AttributionModelVersion(pub attribution_model::Model);

/// The weight of one touchpoint type in a CUSTOM model.
#[derive(SimpleObject)]
pub struct TouchpointWeight {
    /// A touchpoint type code, e.g. WHITEPAPER_DOWNLOAD.
    #[graphql(name = "type")]
    pub touch_type: String,
    /// The type's weight; a touch's share is its weight over the path's total.
    pub weight: Decimal,
}

/// A version of one of the workspace's rule-based models: its parameters, kept for as long as
/// the workspace exists. The current version of each kind is the one the ledger is written for.
#[Object]
impl AttributionModelVersion {
    /// The rule-based model this is a version of.
    async fn kind(&self) -> AttributionModelKind {
        AttributionModelKind::from_db(&self.0.kind)
    }
    /// 1 for the first version of a kind, one more for each change.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The version the ledger is kept for (one per kind).
    async fn is_current(&self) -> bool {
        self.0.is_current
    }
    /// Days before a deal's close a touch may lie to be on its path.
    async fn lookback_days(&self) -> i64 {
        self.0
            .params
            .get("lookbackDays")
            .and_then(|v| v.as_i64())
            .unwrap_or(crate::domain::attribution::DEFAULT_LOOKBACK_DAYS)
    }
    /// TIME_DECAY: the half-life in days; null for other kinds.
    async fn half_life_days(&self) -> Option<Decimal> {
        match service::rule_of(&self.0)? {
            Rule::TimeDecay { half_life_secs } => Some(Decimal((Dec::from(half_life_secs) / Dec::from(86_400)).normalize())),
            _ => None,
        }
    }
    /// CUSTOM: the weight per touchpoint type; null for other kinds.
    async fn weights(&self) -> Option<Vec<TouchpointWeight>> {
        match service::rule_of(&self.0)? {
            Rule::Custom(w) => Some(
                w.into_iter()
                    .map(|(touch_type, weight)| TouchpointWeight {
                        touch_type,
                        weight: Decimal(weight),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
    /// When the version was made (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

pub struct TouchpointCredit {
    position: usize,
    touch: crate::domain::attribution::Touch,
    credit: crate::domain::attribution::Credit,
    currency: String,
}

/// One touch of a deal's path and what it earned.
#[Object]
impl TouchpointCredit {
    /// Place on the path, from 0 (the path is in time order, ties by externalId, then ID).
    async fn position(&self) -> i32 {
        self.position as i32
    }
    /// When the touch happened (UTC).
    async fn occurred_at(&self) -> DateTime {
        self.touch.occurred_at.into()
    }
    /// The touch's type code, e.g. WEBINAR_ATTEND.
    #[graphql(name = "type")]
    async fn touch_type(&self) -> &str {
        &self.touch.touch_type
    }
    /// The touchpoint itself.
    async fn touchpoint(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Touchpoint>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(TouchpointId(self.touch.id))
            .await?
            .map(Touchpoint))
    }
    /// The buying-center contact the touch belongs to.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadId(self.touch.lead_id))
            .await?
            .map(Lead))
    }
    /// The touch's campaign; null for a touch without one (credited to NO_CAMPAIGN, DIRECT).
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let Some(id) = self.touch.campaign_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
    /// Share of the deal, 6 decimal places; the shares of a path sum to 1.
    async fn share(&self) -> Decimal {
        Decimal(self.credit.conversions())
    }
    /// The touch's credit in the deal's currency, whole cents by largest remainder; the
    /// amounts of a path sum to the deal's amount.
    async fn amount(&self) -> Money {
        Money::from_minor(self.credit.amount_minor, &self.currency)
    }
}

/// How a won deal's amount is split over its path.
#[derive(SimpleObject)]
pub struct OpportunityAttribution {
    /// The model of the split.
    pub model: AttributionModelKind,
    /// The deal's amount, in its currency.
    pub amount: Money,
    /// Every touch of the path, in path order, with its credit (zero ones included).
    pub credits: Vec<TouchpointCredit>,
    /// No touch earned anything: the whole amount is UNATTRIBUTED.
    pub unattributed: bool,
}

/// `opportunity.attribution`: the explanation of one deal (null unless it is won).
pub async fn opportunity_attribution(
    ctx: &Context<'_>,
    opportunity: &entity::opportunity::Model,
    model: AttributionModelInput,
    lookback_days: Option<i64>,
) -> async_graphql::Result<Option<OpportunityAttribution>> {
    let lookback_days = lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
    let Model::Rule(rule) = model_of(ctx, model, "model").await? else {
        return query_result(Err(crate::error::ServiceError::invalid(
            &["model", "kind"],
            "INVALID",
            "MARKOV credits campaigns or channels over all paths, not the touches of one deal",
        )));
    };
    query_result(service::validate_lookback(lookback_days))?;
    let Some(path) = ctx
        .data_unchecked::<Loaders>()
        .load_one(DealPath {
            id: opportunity.id,
            lookback_days,
        })
        .await?
    else {
        return Ok(None);
    };
    let e = service::explain(&rule, &path);
    let unattributed = e.credits.is_none();
    let credits = e.credits.unwrap_or_else(|| vec![Default::default(); e.touches.len()]);
    Ok(Some(OpportunityAttribution {
        model: rule.kind().into(),
        amount: Money::from_minor(opportunity.amount_minor, &opportunity.currency),
        credits: e
            .touches
            .into_iter()
            .zip(credits)
            .enumerate()
            .map(|(position, (touch, credit))| TouchpointCredit {
                position,
                touch,
                credit,
                currency: opportunity.currency.clone(),
            })
            .collect(),
        unattributed,
    }))
}

#[derive(Default)]
pub struct AttributionQuery;

#[Object]
impl AttributionQuery {
    /// Won revenue of the deals closed in [from, to), credited to campaigns, channels,
    /// touchpoint types, personas or scoring cells by a model (docs/attribution.md). Only deals
    /// in `currency` (default: the workspace's) count. Any role; cached until the workspace's
    /// data change.
    #[allow(clippy::too_many_arguments)]
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model; CUSTOM without weights and TIME_DECAY without a half-life use the workspace's current version.")]
        model: AttributionModelInput,
        #[graphql(desc = "Deals closed in [from, to) (UTC): both bounds, or lastDays.")] range: DateTimeRange,
        #[graphql(desc = "What the rows are keyed by; MARKOV takes CAMPAIGN or CHANNEL only.")] group_by: AttributionGrouping,
        #[graphql(desc = "Days before the close a touch may lie: 1 to 3650, default 365.")] lookback_days: Option<i64>,
        #[graphql(desc = "ISO 4217 code of the deals to sum (default: the workspace currency); deals in other currencies are left out.")]
        currency: Option<String>,
        #[graphql(desc = "Ledger or computed credits (default AUTO).")] source: Option<AttributionSourceChoice>,
    ) -> async_graphql::Result<AttributionReport> {
        let p = ctx.principal()?;
        let model = model_of(ctx, model, "model").await?;
        let kind = model.kind();
        let q = query(range, group_by, lookback_days, currency, source)?;
        let cache = ctx.data_unchecked::<ReportCache>();
        let r = query_result(service::reports_cached(ctx.db(), cache, p, &[model], q).await)?;
        Ok(AttributionReport::new(kind, r[0].clone()))
    }

    /// Several models side by side over the same deals: one row per key, a column per model.
    /// Any role.
    async fn attribution_comparison(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1 to 10 models (INVALID otherwise), one column each in this order.")] models: Vec<AttributionModelInput>,
        #[graphql(desc = "Deals closed in [from, to) (UTC): both bounds, or lastDays.")] range: DateTimeRange,
        #[graphql(desc = "What the rows are keyed by; with MARKOV, CAMPAIGN or CHANNEL only.")] group_by: AttributionGrouping,
        #[graphql(desc = "Days before the close a touch may lie: 1 to 3650, default 365.")] lookback_days: Option<i64>,
        #[graphql(desc = "ISO 4217 code of the deals to sum (default: the workspace currency); deals in other currencies are left out.")]
        currency: Option<String>,
        #[graphql(desc = "Ledger or computed credits (default AUTO).")] source: Option<AttributionSourceChoice>,
    ) -> async_graphql::Result<AttributionComparison> {
        let p = ctx.principal()?;
        if models.is_empty() || models.len() > 10 {
            return query_result(Err(crate::error::ServiceError::invalid(
                &["models"],
                "INVALID",
                "give between 1 and 10 models",
            )));
        }
        let mut list = Vec::with_capacity(models.len());
        for (i, m) in models.into_iter().enumerate() {
            list.push(model_of(ctx, m, &format!("models.{i}")).await?);
        }
        let kinds: Vec<Kind> = list.iter().map(Model::kind).collect();
        let q = query(range, group_by, lookback_days, currency, source)?;
        let cache = ctx.data_unchecked::<ReportCache>();
        let reports = query_result(service::reports_cached(ctx.db(), cache, p, &list, q).await)?;
        Ok(comparison(&kinds, reports.as_ref().clone()))
    }

    /// Every version of the workspace's rule-based models, current ones first. Any role.
    async fn attribution_models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttributionModelVersion>> {
        let p = ctx.principal()?;
        let rows = crate::store::attribution::models(&ctx.db().conn, p.workspace_id).await.gql()?;
        Ok(rows.into_iter().map(AttributionModelVersion).collect())
    }
}

fn query(
    range: DateTimeRange,
    group_by: AttributionGrouping,
    lookback_days: Option<i64>,
    currency: Option<String>,
    source: Option<AttributionSourceChoice>,
) -> async_graphql::Result<service::Query> {
    let (from, to) = range_of(range)?;
    Ok(service::Query {
        from,
        to,
        grouping: group_by.into(),
        lookback_days: lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
        currency,
        source: match source.unwrap_or_default() {
            AttributionSourceChoice::Auto => SourceChoice::Auto,
            AttributionSourceChoice::Ledger => SourceChoice::Ledger,
            AttributionSourceChoice::Compute => SourceChoice::Compute,
        },
    })
}

/// New parameters for one of the workspace's rule-based models.
#[derive(InputObject)]
pub struct ConfigureAttributionModelInput {
    /// A rule-based kind (not MARKOV).
    pub kind: AttributionModelKind,
    /// TIME_DECAY: the half-life in days (default 7).
    pub half_life_days: Option<Decimal>,
    /// CUSTOM: the weight per touchpoint type (default: the built-in table).
    pub weights: Option<Vec<TouchpointWeightInput>>,
}

/// The result of `configureAttributionModel`.
#[derive(SimpleObject)]
pub struct AttributionModelPayload {
    /// The current version after the call; null when `userErrors` is not empty.
    pub model: Option<AttributionModelVersion>,
    /// A new version was made (false: the parameters were the current ones already).
    pub changed: bool,
    /// What the caller must fix (INVALID, REQUIRED or DUPLICATE on `input.kind`,
    /// `input.halfLifeDays` or `input.weights`); nothing is written when not empty.
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct AttributionMutation;

#[Object]
impl AttributionMutation {
    /// New parameters for one of the workspace's models: a new version becomes current and the
    /// ledger of every won deal is written for it; the old version's credits stay. ADMIN only
    /// (others: FORBIDDEN).
    async fn configure_attribution_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model kind and its new parameters.")] input: ConfigureAttributionModelInput,
    ) -> async_graphql::Result<AttributionModelPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let c = service::Configure {
            kind: input.kind.into(),
            half_life_days: input.half_life_days.map(|d| d.0),
            weights: weights_of(input.weights),
        };
        let (result, user_errors) = split(service::configure(ctx.db(), p, c).await)?;
        let changed = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(AttributionModelPayload {
            model: result.map(|(m, _)| AttributionModelVersion(m)),
            changed,
            user_errors,
        })
    }
}
