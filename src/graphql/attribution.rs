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
pub use crate::graphql::enums::AttributionModelKind;
use crate::graphql::errors::{IntoGql, UserError, query_result, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{CampaignId, DealPath, LeadId, Loaders, PersonaId, TouchpointId};
use crate::graphql::persona::Persona;
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::graphql::scoring::ScoringCell;
use crate::graphql::touchpoint::Touchpoint;
use crate::service::attribution::{self as service, Grouping, Model, Report, RowKey, Source, SourceChoice};

/// What a report's rows are keyed by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttributionGrouping {
    /// Row key: the campaign's ID, or NO_CAMPAIGN (channel DIRECT).
    Campaign,
    /// Row key: the campaign's channel; DIRECT for touches without a campaign.
    Channel,
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
    Ledger,
    Computed,
}

#[derive(InputObject, Clone)]
pub struct TouchpointWeightInput {
    /// A touchpoint type, e.g. WHITEPAPER_DOWNLOAD.
    #[graphql(name = "type")]
    pub touch_type: String,
    pub weight: Decimal,
}

#[derive(InputObject, Clone)]
pub struct AttributionModelInput {
    pub kind: AttributionModelKind,
    /// TIME_DECAY only (default 7).
    pub half_life_days: Option<Decimal>,
    /// CUSTOM only: the weight per touchpoint type (types not listed weigh nothing). Default:
    /// the workspace's current CUSTOM version.
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

/// A report's range: both bounds are required (BAD_USER_INPUT on `range` otherwise).
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

#[derive(SimpleObject)]
pub struct AttributionReport {
    pub model: AttributionModelKind,
    pub source: AttributionSource,
    /// The ledger's model version the credits were read from.
    pub model_version: Option<i32>,
    pub currency: String,
    /// By revenue, largest first.
    pub rows: Vec<AttributionRow>,
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
    pub model: AttributionModelKind,
    pub revenue: Money,
    pub conversions: Decimal,
}

/// A key with a column per model, in the order the models were asked for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AttributionComparisonRow {
    pub key: String,
    pub models: Vec<AttributionCell>,
    #[graphql(skip)]
    row: AttributionRow,
}

#[ComplexObject]
impl AttributionComparisonRow {
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        self.row.campaign(ctx).await
    }
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        self.row.channel(ctx).await
    }
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        self.row.persona(ctx).await
    }
    async fn cell(&self) -> Option<ScoringCell> {
        self.row.scoring_cell()
    }
}

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

/// A version of one of the workspace's rule-based models.
pub struct AttributionModelVersion(pub attribution_model::Model);

#[derive(SimpleObject)]
pub struct TouchpointWeight {
    #[graphql(name = "type")]
    pub touch_type: String,
    pub weight: Decimal,
}

#[Object]
impl AttributionModelVersion {
    async fn kind(&self) -> AttributionModelKind {
        AttributionModelKind::from_db(&self.0.kind)
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The version the ledger is kept for.
    async fn is_current(&self) -> bool {
        self.0.is_current
    }
    async fn lookback_days(&self) -> i64 {
        self.0
            .params
            .get("lookbackDays")
            .and_then(|v| v.as_i64())
            .unwrap_or(crate::domain::attribution::DEFAULT_LOOKBACK_DAYS)
    }
    /// TIME_DECAY: the half-life in days.
    async fn half_life_days(&self) -> Option<Decimal> {
        match service::rule_of(&self.0)? {
            Rule::TimeDecay { half_life_secs } => Some(Decimal((Dec::from(half_life_secs) / Dec::from(86_400)).normalize())),
            _ => None,
        }
    }
    /// CUSTOM: the weight per touchpoint type.
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
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// One touch of a deal's path and what it earned.
pub struct TouchpointCredit {
    position: usize,
    touch: crate::domain::attribution::Touch,
    credit: crate::domain::attribution::Credit,
    currency: String,
}

#[Object]
impl TouchpointCredit {
    /// Place on the path, from 0.
    async fn position(&self) -> i32 {
        self.position as i32
    }
    async fn occurred_at(&self) -> DateTime {
        self.touch.occurred_at.into()
    }
    #[graphql(name = "type")]
    async fn touch_type(&self) -> &str {
        &self.touch.touch_type
    }
    async fn touchpoint(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Touchpoint>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(TouchpointId(self.touch.id))
            .await?
            .map(Touchpoint))
    }
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadId(self.touch.lead_id))
            .await?
            .map(Lead))
    }
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let Some(id) = self.touch.campaign_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
    /// Share of the deal, 6 decimal places; the shares of a path sum to 1.
    async fn share(&self) -> Decimal {
        Decimal(self.credit.conversions())
    }
    /// The touch's credit; the amounts of a path sum to the deal's amount.
    async fn amount(&self) -> Money {
        Money::from_minor(self.credit.amount_minor, &self.currency)
    }
}

/// How a won deal's amount is split over its path.
#[derive(SimpleObject)]
pub struct OpportunityAttribution {
    pub model: AttributionModelKind,
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
    /// in `currency` (default: the workspace's) count.
    #[allow(clippy::too_many_arguments)]
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        model: AttributionModelInput,
        range: DateTimeRange,
        group_by: AttributionGrouping,
        #[graphql(desc = "Days before the close a touch may lie (default 365).")] lookback_days: Option<i64>,
        currency: Option<String>,
        #[graphql(desc = "Default AUTO.")] source: Option<AttributionSourceChoice>,
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
    async fn attribution_comparison(
        &self,
        ctx: &Context<'_>,
        models: Vec<AttributionModelInput>,
        range: DateTimeRange,
        group_by: AttributionGrouping,
        #[graphql(desc = "Days before the close a touch may lie (default 365).")] lookback_days: Option<i64>,
        currency: Option<String>,
        #[graphql(desc = "Default AUTO.")] source: Option<AttributionSourceChoice>,
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

    /// Every version of the workspace's rule-based models, current ones first.
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

#[derive(InputObject)]
pub struct ConfigureAttributionModelInput {
    /// A rule-based kind (not MARKOV).
    pub kind: AttributionModelKind,
    /// TIME_DECAY: the half-life in days (default 7).
    pub half_life_days: Option<Decimal>,
    /// CUSTOM: the weight per touchpoint type (default: the built-in table).
    pub weights: Option<Vec<TouchpointWeightInput>>,
}

#[derive(SimpleObject)]
pub struct AttributionModelPayload {
    pub model: Option<AttributionModelVersion>,
    /// A new version was made (false: the parameters were the current ones already).
    pub changed: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct AttributionMutation;

#[Object]
impl AttributionMutation {
    /// New parameters for one of the workspace's models (ADMIN): a new version becomes current
    /// and the ledger of every won deal is written for it; the old version's credits stay.
    async fn configure_attribution_model(
        &self,
        ctx: &Context<'_>,
        input: ConfigureAttributionModelInput,
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
