//! Attribution reports: the paths of won deals, every model's credits, groupings, the Markov
//! model, and the ledger that keeps the configured models' credits per touchpoint.
//! The rules are in `docs/attribution.md`.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::{attribution_credit, attribution_model, lead_persona_match};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde_json::json;

use crate::auth::Principal;
use crate::cache::ReportCache;
use crate::db::Db;
use crate::domain::attribution::{
    self as rules, Credit, DEFAULT_LOOKBACK_DAYS, Deal, Kind, ONE_CONVERSION, Rule, Touch, month_start, next_month, path_order,
    whole_months,
};
use crate::domain::change::{ChangeEntity, ChangeKind, FieldChange};
use crate::domain::markov::{self, Journey};
use crate::domain::scoring::Cell;
use crate::domain::vocab::OpportunityStatus;
use crate::error::{ServiceError, ServiceResult, Validator};
use crate::events::changes::{self, Author, NewChange};
use crate::store::attribution::{self as store, DealRow, LedgerGroup};
use crate::store::{self as stores, Scoped};

pub const MAX_LOOKBACK_DAYS: i64 = 3_650;
/// Touchpoints without a campaign are credited to this channel.
pub const DIRECT: &str = "DIRECT";

/// A model as a query asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Model {
    Rule(Rule),
    Markov,
}

impl Model {
    pub fn kind(&self) -> Kind {
        match self {
            Model::Rule(r) => r.kind(),
            Model::Markov => Kind::Markov,
        }
    }
}

/// What a report's rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Campaign,
    Channel,
    TouchpointType,
    Persona,
    ScoringCell,
}

/// Where the credits of a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read from the ledger of this model version.
    Ledger {
        model_id: i64,
        version: i32,
    },
    Computed,
}

/// Whether a query may, must or must not read the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceChoice {
    #[default]
    Auto,
    Ledger,
    Compute,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKey {
    /// A campaign, or none (`None`: the "no campaign" row, channel DIRECT).
    Campaign(Option<i64>),
    Channel(String),
    TouchpointType(String),
    Persona(Option<i64>),
    ScoringCell(Option<Cell>),
    /// The deals no touch earned.
    Unattributed,
}

impl RowKey {
    /// The row's key as the API shows it (campaign and persona IDs are filled in by the caller).
    pub fn label(&self) -> String {
        match self {
            RowKey::Campaign(None) => "NO_CAMPAIGN".into(),
            RowKey::Campaign(Some(id)) | RowKey::Persona(Some(id)) => id.to_string(),
            RowKey::Channel(c) | RowKey::TouchpointType(c) => c.clone(),
            RowKey::Persona(None) => "NO_PERSONA".into(),
            RowKey::ScoringCell(Some(c)) => c.to_string(),
            RowKey::ScoringCell(None) => "UNSCORED".into(),
            RowKey::Unattributed => "UNATTRIBUTED".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub revenue_minor: i64,
    pub conversion_micros: i64,
    /// Touches credited (a touch on two deals' paths counts twice).
    pub touchpoints: i64,
    /// Deals with a credited touch in the row.
    pub deals: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub currency: String,
    /// By revenue, largest first, then by key.
    pub rows: Vec<(RowKey, Row)>,
    /// Won revenue in the range: the sum of the rows.
    pub revenue_minor: i64,
    pub conversion_micros: i64,
    pub deals: i64,
    pub unattributed_minor: i64,
    pub source: Source,
}

/// A report's question, for one or several models.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub grouping: Grouping,
    pub lookback_days: i64,
    /// Default: the workspace's currency.
    pub currency: Option<String>,
    pub source: SourceChoice,
}

/// One credited touch (or the whole of an unattributed deal when `lead_id` is `None`).
#[derive(Debug, Clone)]
struct Item {
    deal_id: i64,
    closed_at: DateTime<Utc>,
    lead_id: Option<i64>,
    campaign_id: Option<i64>,
    touch_type: Option<String>,
    credit: Credit,
    /// Touches the item stands for (1 for a touch, 0 for an unattributed deal, more for a sum).
    touches: i64,
}

fn bad(field: &str, code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(&[field], code, message)
}

pub fn validate_lookback(days: i64) -> ServiceResult<i64> {
    if (1..=MAX_LOOKBACK_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(bad("lookbackDays", "INVALID", format!("must be between 1 and {MAX_LOOKBACK_DAYS}")))
    }
}

/// The attribution report of a range under one model.
pub async fn report(db: &impl ConnectionTrait, ws: i64, model: Model, q: Query) -> ServiceResult<Report> {
    Ok(reports(db, ws, &[model], q).await?.pop().expect("one report per model"))
}

/// [`reports`], served from `cache` while the workspace's data do not change.
pub async fn reports_cached(db: &Db, cache: &ReportCache, p: Principal, models: &[Model], q: Query) -> ServiceResult<Arc<Vec<Report>>> {
    let key = format!("attribution {models:?} {q:?}");
    cache
        .get_or_compute(&db.conn, p.workspace_id, key, || reports(&db.conn, p.workspace_id, models, q))
        .await
}

/// One report per model over the same range and grouping (the side-by-side comparison): the
/// won deals' paths are read once for all the models that are computed.
pub async fn reports(conn: &impl ConnectionTrait, ws: i64, models: &[Model], q: Query) -> ServiceResult<Vec<Report>> {
    if q.to <= q.from {
        return Err(bad("range", "INVALID", "`to` must be after `from`"));
    }
    validate_lookback(q.lookback_days)?;
    let currency = match q.currency.clone() {
        Some(c) => {
            crate::domain::money::parse_currency(&c).ok_or_else(|| bad("currency", "INVALID", "must be a three-letter ISO 4217 code"))?
        }
        None => stores::workspace::by_id(conn, ws)
            .await?
            .map(|w| w.currency)
            .unwrap_or_else(|| "EUR".into()),
    };
    let mut computed: Option<(Vec<DealRow>, Vec<Deal>)> = None;
    let mut out = Vec::with_capacity(models.len());
    for model in models {
        let rule = match model {
            Model::Markov => {
                if !matches!(q.grouping, Grouping::Campaign | Grouping::Channel) {
                    return Err(bad("groupBy", "INVALID", "MARKOV groups by CAMPAIGN or CHANNEL only"));
                }
                if q.source == SourceChoice::Ledger {
                    return Err(bad("source", "INVALID", "MARKOV is computed over all paths; it has no ledger"));
                }
                out.push(markov_report(conn, ws, &q, currency.clone()).await?);
                continue;
            }
            Model::Rule(r) => r,
        };
        let stored = match q.source {
            SourceChoice::Compute => None,
            _ => ledger_version(conn, ws, rule, q.lookback_days).await?,
        };
        if q.source == SourceChoice::Ledger && stored.is_none() {
            return Err(bad(
                "source",
                "NOT_IN_LEDGER",
                "the ledger keeps the workspace's current models with the default lookback only",
            ));
        }
        let mut report = match stored {
            Some(m) => {
                let mut r = ledger_report(conn, ws, &m, &currency, &q).await?;
                r.source = Source::Ledger {
                    model_id: m.id,
                    version: m.version,
                };
                r
            }
            None => {
                if computed.is_none() {
                    let deals = store::closed_deals(conn, ws, OpportunityStatus::Won.as_str(), &currency, q.from, q.to).await?;
                    let paths = paths(conn, ws, &deals, q.lookback_days).await?;
                    computed = Some((deals, paths));
                }
                let (deals, paths) = computed.as_ref().expect("just computed");
                group(conn, ws, q.grouping, &credit_items(rule, deals, paths)).await?
            }
        };
        report.currency = currency.clone();
        out.push(report);
    }
    Ok(out)
}

/// A report from the ledger: summed in SQL by campaign, type or channel; by (lead, deal) for
/// the groupings that need to know more of the lead.
async fn ledger_report(
    db: &impl ConnectionTrait,
    ws: i64,
    m: &attribution_model::Model,
    currency: &str,
    q: &Query,
) -> Result<Report, DbErr> {
    let by = match q.grouping {
        Grouping::Campaign => LedgerGroup::Campaign,
        Grouping::TouchpointType => LedgerGroup::TouchpointType,
        Grouping::Channel => LedgerGroup::Channel,
        Grouping::Persona | Grouping::ScoringCell => LedgerGroup::LeadAndDeal,
    };
    let sums = match by {
        LedgerGroup::Campaign => campaign_sums(db, ws, m.id, currency, q.from, q.to).await?,
        _ => store::credits_summed(db, ws, m.id, currency, q.from, q.to, by).await?,
    };
    let mut report = if by == LedgerGroup::LeadAndDeal {
        let items: Vec<Item> = sums
            .into_iter()
            .map(|s| {
                let (deal_id, closed_at) = s.deal.expect("pairs carry their deal");
                Item {
                    deal_id,
                    closed_at,
                    lead_id: if s.attributed { s.key.and_then(|k| k.parse().ok()) } else { None },
                    campaign_id: None,
                    touch_type: None,
                    credit: Credit {
                        amount_minor: s.amount_minor,
                        conversion_micros: s.conversion_micros,
                    },
                    touches: s.touchpoints,
                }
            })
            .collect();
        group(db, ws, q.grouping, &items).await?
    } else {
        let mut r = empty_report();
        for s in sums {
            let key = if !s.attributed {
                RowKey::Unattributed
            } else {
                match by {
                    LedgerGroup::Campaign => RowKey::Campaign(s.key.and_then(|k| k.parse().ok())),
                    LedgerGroup::TouchpointType => RowKey::TouchpointType(s.key.unwrap_or_default()),
                    _ => RowKey::Channel(s.key.unwrap_or_else(|| DIRECT.into())),
                }
            };
            if key == RowKey::Unattributed {
                r.unattributed_minor += s.amount_minor;
            }
            r.revenue_minor += s.amount_minor;
            r.conversion_micros += s.conversion_micros;
            r.rows.push((
                key,
                Row {
                    revenue_minor: s.amount_minor,
                    conversion_micros: s.conversion_micros,
                    touchpoints: s.touchpoints,
                    deals: s.deals,
                },
            ));
        }
        sort_rows(&mut r.rows);
        r
    };
    report.deals = store::count_closed_deals(db, ws, OpportunityStatus::Won.as_str(), currency, q.from, q.to).await?;
    Ok(report)
}

/// The ledger summed per campaign: the whole months of the range from the monthly sums, the
/// ragged ends (if any) from the ledger itself; the parts are disjoint sets of deals, so their
/// sums, deal counts included, add up.
async fn campaign_sums(
    db: &impl ConnectionTrait,
    ws: i64,
    model_id: i64,
    currency: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<store::LedgerSum>, DbErr> {
    let raw = |a, b| store::credits_summed(db, ws, model_id, currency, a, b, LedgerGroup::Campaign);
    let Some((first, end)) = whole_months(from, to) else {
        return raw(from, to).await;
    };
    let mut parts = store::campaign_months_summed(db, ws, model_id, currency, first, end).await?;
    if from < first {
        parts.extend(raw(from, first).await?);
    }
    if end < to {
        parts.extend(raw(end, to).await?);
    }
    let mut merged: HashMap<(Option<String>, bool), store::LedgerSum> = HashMap::new();
    for p in parts {
        match merged.entry((p.key.clone(), p.attributed)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(p);
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let s = e.get_mut();
                s.amount_minor += p.amount_minor;
                s.conversion_micros += p.conversion_micros;
                s.touchpoints += p.touchpoints;
                s.deals += p.deals;
            }
        }
    }
    Ok(merged.into_values().collect())
}

fn empty_report() -> Report {
    Report {
        currency: String::new(),
        rows: Vec::new(),
        revenue_minor: 0,
        conversion_micros: 0,
        deals: 0,
        unattributed_minor: 0,
        source: Source::Computed,
    }
}

/// By revenue, largest first, then by key.
fn sort_rows(rows: &mut [(RowKey, Row)]) {
    rows.sort_by(|a, b| b.1.revenue_minor.cmp(&a.1.revenue_minor).then_with(|| a.0.cmp(&b.0)));
}

/// The credited touches of deals under a rule (zero credits left out), and an unattributed
/// item per deal no touch earned.
fn credit_items(rule: &Rule, deals: &[DealRow], paths: &[Deal]) -> Vec<Item> {
    let mut items = Vec::new();
    for (d, path) in deals.iter().zip(paths) {
        match rule.credit(path) {
            Some(credits) => {
                for (t, c) in path.touches.iter().zip(credits) {
                    if c != Credit::default() {
                        items.push(Item {
                            deal_id: d.id,
                            closed_at: d.closed_at,
                            lead_id: Some(t.lead_id),
                            campaign_id: t.campaign_id,
                            touch_type: Some(t.touch_type.clone()),
                            credit: c,
                            touches: 1,
                        });
                    }
                }
            }
            None => items.push(unattributed(d)),
        }
    }
    items
}

/// Exact attributed conversions per campaign (`None`: touches without one) under a rule-based
/// model, over the won deals closed in [from, to) in `currency`: a deal's touches on a campaign
/// add their weight over the deal's total weight, unrounded (cost per order divides by these).
pub async fn exact_campaign_conversions(
    conn: &impl ConnectionTrait,
    ws: i64,
    rule: &Rule,
    range: (DateTime<Utc>, DateTime<Utc>),
    lookback_days: i64,
    currency: &str,
) -> Result<HashMap<Option<i64>, rules::Conversions>, DbErr> {
    let deals = store::closed_deals(conn, ws, OpportunityStatus::Won.as_str(), currency, range.0, range.1).await?;
    let paths = paths(conn, ws, &deals, lookback_days).await?;
    let mut out: HashMap<Option<i64>, rules::Conversions> = HashMap::new();
    for path in &paths {
        let weights = rule.weights(path);
        let total: u128 = weights.iter().sum();
        let mut parts: HashMap<Option<i64>, u128> = HashMap::new();
        for (t, w) in path.touches.iter().zip(&weights) {
            *parts.entry(t.campaign_id).or_default() += w;
        }
        for (campaign, part) in parts {
            out.entry(campaign).or_default().add_share(part, total);
        }
    }
    Ok(out)
}

fn unattributed(d: &DealRow) -> Item {
    Item {
        deal_id: d.id,
        closed_at: d.closed_at,
        lead_id: None,
        campaign_id: None,
        touch_type: None,
        credit: Credit {
            amount_minor: d.amount_minor,
            conversion_micros: ONE_CONVERSION,
        },
        touches: 0,
    }
}

/// The path of each deal (same order as `deals`): the touches of its buying center in
/// [closedAt - lookback, closedAt), in path order, with the primary contact's conversion time.
pub async fn paths(db: &impl ConnectionTrait, ws: i64, deals: &[DealRow], lookback_days: i64) -> Result<Vec<Deal>, DbErr> {
    let lookback = Duration::days(lookback_days);
    let ids: Vec<i64> = deals.iter().map(|d| d.id).collect();
    let mut members: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut primary: HashMap<i64, i64> = HashMap::new();
    for (deal, lead, is_primary) in store::buying_centers(db, ws, &ids).await? {
        members.entry(deal).or_default().push(lead);
        if is_primary {
            primary.insert(deal, lead);
        }
    }
    let mut leads: Vec<i64> = members.values().flatten().copied().collect();
    leads.sort_unstable();
    leads.dedup();
    let mut by_lead: HashMap<i64, Vec<Touch>> = HashMap::new();
    if let (Some(first), Some(last)) = (deals.iter().map(|d| d.closed_at).min(), deals.iter().map(|d| d.closed_at).max()) {
        for t in store::touches_of_leads(db, ws, &leads, first - lookback, last).await? {
            by_lead.entry(t.lead_id).or_default().push(t);
        }
    }
    let primaries: Vec<i64> = primary.values().copied().collect();
    let converted = store::conversions(db, ws, &primaries).await?;
    let mut out: Vec<Deal> = deals
        .iter()
        .map(|d| {
            let start = d.closed_at - lookback;
            let touches: Vec<Touch> = members
                .get(&d.id)
                .into_iter()
                .flatten()
                .flat_map(|l| by_lead.get(l).into_iter().flatten())
                .filter(|t| t.occurred_at >= start && t.occurred_at < d.closed_at)
                .cloned()
                .collect();
            Deal {
                amount_minor: d.amount_minor,
                closed_at: d.closed_at,
                created_at: d.created_at,
                primary: primary.get(&d.id).map(|l| (*l, converted.get(l).copied())),
                touches,
            }
        })
        .collect();
    order_paths(db, ws, out.iter_mut().map(|d| &mut d.touches)).await?;
    Ok(out)
}

/// Sorts paths into [`path_order`], reading external IDs only for touches that share their
/// time with another touch of the same path (the only place they decide anything).
async fn order_paths<'a>(db: &impl ConnectionTrait, ws: i64, paths: impl Iterator<Item = &'a mut Vec<Touch>>) -> Result<(), DbErr> {
    let mut paths: Vec<&mut Vec<Touch>> = paths.collect();
    let mut tied = Vec::new();
    for p in paths.iter_mut() {
        p.sort_by(path_order);
        for w in p.windows(2) {
            if w[0].occurred_at == w[1].occurred_at {
                tied.push(w[0].id);
                tied.push(w[1].id);
            }
        }
    }
    if tied.is_empty() {
        return Ok(());
    }
    tied.sort_unstable();
    tied.dedup();
    let external = store::external_ids(db, ws, &tied).await?;
    if external.is_empty() {
        return Ok(());
    }
    for p in paths {
        for t in p.iter_mut() {
            if let Some(x) = external.get(&t.id) {
                t.external_id = Some(x.clone());
            }
        }
        p.sort_by(path_order);
    }
    Ok(())
}

/// The row of each credited touch, summed.
async fn group(db: &impl ConnectionTrait, ws: i64, grouping: Grouping, items: &[Item]) -> Result<Report, DbErr> {
    let keys = Keys::load(db, ws, grouping, items).await?;
    let mut rows: BTreeMap<RowKey, (Row, HashSet<i64>)> = BTreeMap::new();
    let mut report = empty_report();
    let mut deals = HashSet::new();
    for it in items {
        let key = keys.of(grouping, it);
        if key == RowKey::Unattributed {
            report.unattributed_minor += it.credit.amount_minor;
        }
        report.revenue_minor += it.credit.amount_minor;
        report.conversion_micros += it.credit.conversion_micros;
        deals.insert(it.deal_id);
        let (row, row_deals) = rows.entry(key).or_default();
        row.revenue_minor += it.credit.amount_minor;
        row.conversion_micros += it.credit.conversion_micros;
        row.touchpoints += it.touches;
        row_deals.insert(it.deal_id);
    }
    report.deals = deals.len() as i64;
    report.rows = rows
        .into_iter()
        .map(|(k, (mut row, d))| {
            row.deals = d.len() as i64;
            (k, row)
        })
        .collect();
    sort_rows(&mut report.rows);
    Ok(report)
}

/// What a grouping needs to know about the credited touches' campaigns and leads.
#[derive(Default)]
struct Keys {
    channels: HashMap<i64, String>,
    personas: HashMap<i64, i64>,
    cells: HashMap<(i64, DateTime<Utc>), Cell>,
}

impl Keys {
    async fn load(db: &impl ConnectionTrait, ws: i64, grouping: Grouping, items: &[Item]) -> Result<Keys, DbErr> {
        let mut keys = Keys::default();
        let mut leads: Vec<i64> = items.iter().filter_map(|i| i.lead_id).collect();
        leads.sort_unstable();
        leads.dedup();
        match grouping {
            Grouping::Channel => keys.channels = store::campaign_channels(db, ws).await?,
            Grouping::Persona => keys.personas = best_personas(db, ws, &leads).await?,
            Grouping::ScoringCell => {
                if let Some(s) = super::scoring::scorer(db, ws, None).await? {
                    let mut wanted: Vec<(&super::scoring::Scorer, i64, DateTime<Utc>)> =
                        items.iter().filter_map(|i| Some((&s, i.lead_id?, i.closed_at))).collect();
                    wanted.sort_by_key(|(_, l, t)| (*l, *t));
                    wanted.dedup_by_key(|(_, l, t)| (*l, *t));
                    keys.cells = super::scoring::scores_for(db, ws, &wanted)
                        .await?
                        .into_iter()
                        .map(|((_, lead, at), score)| ((lead, at), score.cell()))
                        .collect();
                }
            }
            Grouping::Campaign | Grouping::TouchpointType => {}
        }
        Ok(keys)
    }

    fn of(&self, grouping: Grouping, it: &Item) -> RowKey {
        let Some(lead) = it.lead_id else {
            return RowKey::Unattributed;
        };
        match grouping {
            Grouping::Campaign => RowKey::Campaign(it.campaign_id),
            Grouping::Channel => RowKey::Channel(
                it.campaign_id
                    .and_then(|c| self.channels.get(&c).cloned())
                    .unwrap_or_else(|| DIRECT.into()),
            ),
            Grouping::TouchpointType => RowKey::TouchpointType(it.touch_type.clone().unwrap_or_default()),
            Grouping::Persona => RowKey::Persona(self.personas.get(&lead).copied()),
            Grouping::ScoringCell => RowKey::ScoringCell(self.cells.get(&(lead, it.closed_at)).copied()),
        }
    }
}

/// Each lead's persona: of the personas it is a member of, the best match (matched weight over
/// total weight), ties to the older persona.
async fn best_personas(db: &impl ConnectionTrait, ws: i64, leads: &[i64]) -> Result<HashMap<i64, i64>, DbErr> {
    use lead_persona_match::Column as C;
    let mut best: HashMap<i64, (i64, i64, i64)> = HashMap::new(); // lead -> (matched, total, persona)
    for chunk in leads.chunks(1_000) {
        let rows = lead_persona_match::Entity::in_workspace(ws)
            .filter(C::LeadId.is_in(chunk.iter().copied()))
            .filter(C::IsMember.eq(true))
            .all(db)
            .await?;
        for r in rows {
            let cand = (i64::from(r.matched_weight), i64::from(r.total_weight.max(1)), r.persona_id);
            let e = best.entry(r.lead_id).or_insert(cand);
            // a/b > c/d  <=>  a*d > c*b (weights are positive).
            let better = cand.0 * e.1 > e.0 * cand.1 || (cand.0 * e.1 == e.0 * cand.1 && cand.2 < e.2);
            if better {
                *e = cand;
            }
        }
    }
    Ok(best.into_iter().map(|(l, (_, _, p))| (l, p)).collect())
}

/// MARKOV's input over a range: the keys (channels or campaigns), one journey per path, and
/// the won deals without a touch (UNATTRIBUTED).
pub struct Journeys {
    pub keys: Vec<RowKey>,
    pub journeys: Vec<Journey>,
    pub won: Vec<DealRow>,
    pub unattributed: Vec<DealRow>,
    /// Per key: touches on won paths, and the won deals they are on.
    touched: HashMap<usize, (i64, HashSet<i64>)>,
}

/// Converting journeys are the won deals' paths; non-converting ones the lost deals' paths and
/// the touches before `to` of leads in no opportunity.
pub async fn journeys(db: &impl ConnectionTrait, ws: i64, q: &Query, currency: &str) -> Result<Journeys, DbErr> {
    let won = store::closed_deals(db, ws, OpportunityStatus::Won.as_str(), currency, q.from, q.to).await?;
    let lost = store::closed_deals(db, ws, OpportunityStatus::Lost.as_str(), currency, q.from, q.to).await?;
    let won_paths = paths(db, ws, &won, q.lookback_days).await?;
    let lost_paths = paths(db, ws, &lost, q.lookback_days).await?;
    let mut lonely = store::touches_of_leads_without_deals(db, ws, q.to).await?;
    order_paths(db, ws, lonely.values_mut()).await?;
    let mut lonely: Vec<(i64, Vec<Touch>)> = lonely.into_iter().collect();
    lonely.sort_unstable_by_key(|(l, _)| *l);

    let channels: HashMap<i64, String> = if q.grouping == Grouping::Channel {
        store::campaign_channels(db, ws).await?
    } else {
        HashMap::new()
    };
    let key_of = |t: &Touch| match q.grouping {
        Grouping::Channel => RowKey::Channel(
            t.campaign_id
                .and_then(|c| channels.get(&c).cloned())
                .unwrap_or_else(|| DIRECT.into()),
        ),
        _ => RowKey::Campaign(t.campaign_id),
    };
    let mut index: HashMap<RowKey, usize> = HashMap::new();
    let mut keys: Vec<RowKey> = Vec::new();
    let mut journey = |touches: &[Touch], conversion: Option<i64>| Journey {
        keys: touches
            .iter()
            .map(|t| {
                let k = key_of(t);
                *index.entry(k.clone()).or_insert_with(|| {
                    keys.push(k);
                    keys.len() - 1
                })
            })
            .collect(),
        conversion,
    };
    let mut out = Vec::with_capacity(won.len() + lost.len() + lonely.len());
    let mut unattributed = Vec::new();
    let mut touched: HashMap<usize, (i64, HashSet<i64>)> = HashMap::new();
    for (d, p) in won.iter().zip(&won_paths) {
        if p.touches.is_empty() {
            unattributed.push(d.clone());
            continue;
        }
        let j = journey(&p.touches, Some(d.amount_minor));
        for &k in &j.keys {
            let e = touched.entry(k).or_default();
            e.0 += 1;
            e.1.insert(d.id);
        }
        out.push(j);
    }
    for p in &lost_paths {
        out.push(journey(&p.touches, None));
    }
    for (_, touches) in &lonely {
        out.push(journey(touches, None));
    }
    Ok(Journeys {
        keys,
        journeys: out,
        won,
        unattributed,
        touched,
    })
}

async fn markov_report(db: &impl ConnectionTrait, ws: i64, q: &Query, currency: String) -> ServiceResult<Report> {
    let j = journeys(db, ws, q, &currency).await?;
    let mut report = Report {
        currency,
        deals: j.won.len() as i64,
        ..empty_report()
    };
    if let Some(m) = markov::attribute(j.keys.len(), &j.journeys) {
        for (i, k) in j.keys.iter().enumerate() {
            if m.revenue_minor[i] == 0 && m.conversion_micros[i] == 0 {
                continue;
            }
            let (touchpoints, deals) = j.touched.get(&i).map(|(n, d)| (*n, d.len() as i64)).unwrap_or_default();
            report.rows.push((
                k.clone(),
                Row {
                    revenue_minor: m.revenue_minor[i],
                    conversion_micros: m.conversion_micros[i],
                    touchpoints,
                    deals,
                },
            ));
        }
    }
    if !j.unattributed.is_empty() {
        report.unattributed_minor = j.unattributed.iter().map(|d| d.amount_minor).sum();
        report.rows.push((
            RowKey::Unattributed,
            Row {
                revenue_minor: report.unattributed_minor,
                conversion_micros: j.unattributed.len() as i64 * ONE_CONVERSION,
                touchpoints: 0,
                deals: j.unattributed.len() as i64,
            },
        ));
    }
    report.revenue_minor = report.rows.iter().map(|(_, r)| r.revenue_minor).sum();
    report.conversion_micros = report.rows.iter().map(|(_, r)| r.conversion_micros).sum();
    sort_rows(&mut report.rows);
    Ok(report)
}

/// The credit of each touch of one deal's path under a rule: the explanation of its numbers.
pub struct Explained {
    pub touches: Vec<Touch>,
    /// `None`: no touch earned anything (the deal is UNATTRIBUTED).
    pub credits: Option<Vec<Credit>>,
}

pub fn explain(rule: &Rule, path: &Deal) -> Explained {
    Explained {
        touches: path.touches.clone(),
        credits: rule.credit(path),
    }
}

// ---------------------------------------------------------------------------------------------
// Model versions and the ledger

/// The stored version whose parameters equal a rule's, if it is current and kept with the
/// lookback asked for.
async fn ledger_version(
    db: &impl ConnectionTrait,
    ws: i64,
    rule: &Rule,
    lookback_days: i64,
) -> Result<Option<attribution_model::Model>, DbErr> {
    if lookback_days != DEFAULT_LOOKBACK_DAYS {
        return Ok(None);
    }
    let current = attribution_model::Entity::in_workspace(ws)
        .filter(attribution_model::Column::Kind.eq(rule.kind().as_str()))
        .filter(attribution_model::Column::IsCurrent.eq(true))
        .one(db)
        .await?;
    Ok(current.filter(|m| rule_of(m).as_ref() == Some(rule)))
}

/// A stored version's rule (`None` for an unreadable row).
pub fn rule_of(m: &attribution_model::Model) -> Option<Rule> {
    let kind = Kind::parse(&m.kind)?;
    Some(match kind {
        Kind::TimeDecay => Rule::TimeDecay {
            half_life_secs: m.params.get("halfLifeSeconds")?.as_i64()?,
        },
        Kind::Custom => Rule::Custom(
            m.params
                .get("weights")?
                .as_object()?
                .iter()
                .map(|(t, w)| Some((t.clone(), w.as_str()?.parse::<Decimal>().ok()?)))
                .collect::<Option<BTreeMap<_, _>>>()?,
        ),
        k => Rule::default_of(k)?,
    })
}

fn params_of(rule: &Rule) -> serde_json::Value {
    let mut p = json!({ "lookbackDays": DEFAULT_LOOKBACK_DAYS });
    match rule {
        Rule::TimeDecay { half_life_secs } => p["halfLifeSeconds"] = json!(half_life_secs),
        Rule::Custom(w) => {
            p["weights"] = w
                .iter()
                .map(|(t, d)| (t.clone(), json!(d.normalize().to_string())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
        _ => {}
    }
    p
}

/// The current version of every rule-based kind, creating version 1 with the defaults where
/// a kind has none yet (inside the caller's write transaction; a new workspace gets them at
/// once, and start-up's catch-up gives them to workspaces older than the ledger).
/// Takes the workspace's ledger lock: every ledger write goes through here first.
pub async fn current_models(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<(attribution_model::Model, Rule)>, DbErr> {
    crate::store::raw::lock_workspace(db, crate::store::raw::LOCK_LEDGER, ws).await?;
    let mut current: Vec<attribution_model::Model> = store::models(db, ws).await?.into_iter().filter(|m| m.is_current).collect();
    let now = Utc::now();
    for kind in Kind::RULES {
        if current.iter().any(|m| m.kind == kind.as_str()) {
            continue;
        }
        let rule = Rule::default_of(kind).expect("a rule-based kind");
        let row = attribution_model::ActiveModel {
            workspace_id: Set(ws),
            kind: Set(kind.as_str().to_owned()),
            version: Set(1),
            params: Set(params_of(&rule)),
            is_current: Set(true),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
        current.push(row);
    }
    Ok(current
        .into_iter()
        .filter_map(|m| {
            let r = rule_of(&m)?;
            Some((m, r))
        })
        .collect())
}

/// Recomputes the ledger of these deals under the current models, inside the caller's write
/// transaction: won deals get fresh credits, any other deal loses its credits.
pub async fn refresh_deals(db: &impl ConnectionTrait, ws: i64, deal_ids: &[i64]) -> Result<(), DbErr> {
    if deal_ids.is_empty() {
        return Ok(());
    }
    let models = current_models(db, ws).await?;
    write_credits(db, ws, &models, deal_ids).await
}

/// Deals up to which a rewrite moves the monthly campaign sums by what these deals' credits
/// change (their old credits taken out, the new put in); a larger rewrite (a model version for
/// every won deal, a catch-up) sums its months from the ledger again.
const MONTH_DELTA_DEALS: usize = 50;

/// Rewrites the ledger of these deals under these model versions, 500 deals at a time, and the
/// monthly campaign sums of every month a deal left or entered.
async fn write_credits(
    db: &impl ConnectionTrait,
    ws: i64,
    models: &[(attribution_model::Model, Rule)],
    deal_ids: &[i64],
) -> Result<(), DbErr> {
    let model_ids: Vec<i64> = models.iter().map(|(m, _)| m.id).collect();
    if deal_ids.len() <= MONTH_DELTA_DEALS {
        // A touch or a stitch: re-summing a whole month of the ledger would cost more than the
        // deal's own rows.
        let mut delta = store::MonthDelta::default();
        let (_, written, old) = write_deal_credits(db, ws, models, &model_ids, deal_ids).await?;
        delta.take_out(&old);
        delta.put_in(&written);
        let stale = store::apply_month_delta(db, ws, delta).await?;
        return refresh_months(db, ws, &model_ids, stale).await;
    }
    let mut months = std::collections::BTreeSet::new();
    for chunk in deal_ids.chunks(500) {
        let closes = store::credited_closes(db, ws, chunk, &model_ids).await?;
        months.extend(closes.into_iter().map(month_start));
        months.extend(
            write_deal_credits(db, ws, models, &model_ids, chunk)
                .await?
                .0
                .into_iter()
                .map(month_start),
        );
    }
    refresh_months(db, ws, &model_ids, months).await
}

/// Sums these months (each a month's start) of the ledger again into the monthly campaign sums.
async fn refresh_months(
    db: &impl ConnectionTrait,
    ws: i64,
    model_ids: &[i64],
    months: impl IntoIterator<Item = DateTime<Utc>>,
) -> Result<(), DbErr> {
    for month in months {
        let next = next_month(month).ok_or_else(|| DbErr::Custom(format!("no month after {month}")))?;
        store::refresh_campaign_month(db, ws, model_ids, month, next).await?;
    }
    Ok(())
}

/// The ledger rows of some deals: written, and as they were before.
type Rewritten = (Vec<DateTime<Utc>>, Vec<attribution_credit::Model>, Vec<attribution_credit::Model>);

/// Replaces the ledger rows of these deals under these model versions (`model_ids` are their
/// IDs), and tells the change feed of each deal whose credits per campaign changed under a
/// model version (CREDITS_CHANGED); returns the close times of the won deals among them, the
/// rows written, and the rows they replaced.
async fn write_deal_credits(
    db: &impl ConnectionTrait,
    ws: i64,
    models: &[(attribution_model::Model, Rule)],
    model_ids: &[i64],
    deal_ids: &[i64],
) -> Result<Rewritten, DbErr> {
    let old = store::credits_of_deals(db, ws, deal_ids, model_ids).await?;
    store::delete_credits(db, ws, deal_ids, model_ids).await?;
    let deals: Vec<DealRow> = store::closed_deals_by_ids(db, ws, deal_ids)
        .await?
        .into_iter()
        .filter(|d| d.status == OpportunityStatus::Won.as_str())
        .collect();
    if deals.is_empty() {
        credits_changed(db, ws, models, &old, &[]).await?;
        return Ok((Vec::new(), Vec::new(), old));
    }
    let paths = paths(db, ws, &deals, DEFAULT_LOOKBACK_DAYS).await?;
    let mut rows = Vec::new();
    for (m, rule) in models {
        for (d, path) in deals.iter().zip(&paths) {
            let row = |position: usize, t: Option<&Touch>, c: Credit, touches: i64| attribution_credit::Model {
                id: 0,
                workspace_id: ws,
                model_id: m.id,
                opportunity_id: d.id,
                closed_at: d.closed_at,
                currency: d.currency.clone(),
                position: position as i32,
                touchpoint_id: t.map(|t| t.id),
                lead_id: t.map(|t| t.lead_id),
                campaign_id: t.and_then(|t| t.campaign_id),
                touch_type: t.map(|t| t.touch_type.clone()),
                amount_minor: c.amount_minor,
                conversion_micros: c.conversion_micros,
                touches,
            };
            match rule.credit(path) {
                Some(credits) => {
                    // One row per (lead, campaign, type) of the path, in the order of its first
                    // credited touch: every report groups by these or coarser keys, so the sums
                    // are the touches' own, to the cent.
                    let mut at: HashMap<(i64, Option<i64>, &str), usize> = HashMap::new();
                    let first = rows.len();
                    for (i, (t, c)) in path.touches.iter().zip(credits).enumerate() {
                        if c == Credit::default() {
                            continue;
                        }
                        match at.entry((t.lead_id, t.campaign_id, t.touch_type.as_str())) {
                            std::collections::hash_map::Entry::Occupied(e) => {
                                let r: &mut attribution_credit::Model = &mut rows[first + *e.get()];
                                r.amount_minor += c.amount_minor;
                                r.conversion_micros += c.conversion_micros;
                                r.touches += 1;
                            }
                            std::collections::hash_map::Entry::Vacant(e) => {
                                e.insert(rows.len() - first);
                                rows.push(row(i, Some(t), c, 1));
                            }
                        }
                    }
                }
                None => rows.push(row(0, None, unattributed(d).credit, 0)),
            }
        }
    }
    store::insert_credits(db, ws, &rows).await?;
    credits_changed(db, ws, models, &old, &rows).await?;
    Ok((deals.iter().map(|d| d.closed_at).collect(), rows, old))
}

/// CREDITS_CHANGED changes of the deals whose credits per campaign differ between `old` and
/// `new` under a model version: `model` and `modelVersion` (the same before and after), and
/// `credits`, the deal's credits by campaign (global ID; `none` for touches without a campaign
/// and unattributed deals) before and after, as exact decimal text.
async fn credits_changed(
    db: &impl ConnectionTrait,
    ws: i64,
    models: &[(attribution_model::Model, Rule)],
    old: &[attribution_credit::Model],
    new: &[attribution_credit::Model],
) -> Result<(), DbErr> {
    type ByCampaign = BTreeMap<String, i64>;
    let mut per: BTreeMap<(i64, i64), (ByCampaign, ByCampaign)> = BTreeMap::new();
    for (rows, after) in [(old, false), (new, true)] {
        for r in rows {
            let key = r
                .campaign_id
                .map_or_else(|| "none".to_owned(), |c| crate::domain::ids::global_id("Campaign", c));
            let (before, now) = per.entry((r.opportunity_id, r.model_id)).or_default();
            *(if after { now } else { before }).entry(key).or_default() += r.amount_minor;
        }
    }
    let as_json = |m: &ByCampaign| {
        serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::Value::String(crate::domain::money::from_minor(*v).to_string()),
                    )
                })
                .collect(),
        )
    };
    let mut items = Vec::new();
    for ((deal, model_id), (before, now)) in &per {
        if before == now {
            continue;
        }
        let Some((m, _)) = models.iter().find(|(m, _)| m.id == *model_id) else {
            continue;
        };
        let same = |field: &str, v: serde_json::Value| FieldChange {
            field: field.to_owned(),
            old: v.clone(),
            new: v,
        };
        items.push(NewChange {
            entity: ChangeEntity::Opportunity,
            entity_id: *deal,
            kind: ChangeKind::CreditsChanged,
            version: None,
            fields: vec![
                same("model", json!(m.kind)),
                same("modelVersion", json!(m.version)),
                FieldChange {
                    field: "credits".into(),
                    old: if before.is_empty() {
                        serde_json::Value::Null
                    } else {
                        as_json(before)
                    },
                    new: if now.is_empty() { serde_json::Value::Null } else { as_json(now) },
                },
            ],
        });
    }
    changes::record(db, ws, &Author::new("attribution"), Utc::now(), items).await
}

/// Writes the credits that won deals are missing under the current models (after an upgrade
/// or a bulk import), inside the caller's write transaction. Returns the number of deals.
pub async fn catch_up(db: &impl ConnectionTrait, ws: i64) -> Result<usize, DbErr> {
    let models = current_models(db, ws).await?;
    let mut missing = Vec::new();
    for (m, _) in &models {
        missing.extend(store::won_deals_missing_credits(db, ws, m.id).await?);
    }
    missing.sort_unstable();
    missing.dedup();
    write_credits(db, ws, &models, &missing).await?;
    Ok(missing.len())
}

/// Catches up every workspace, one transaction each (at start-up).
pub async fn catch_up_all(db: &Db) -> Result<usize, DbErr> {
    let mut n = 0;
    for w in entity::workspace::Entity::find().all(&db.conn).await? {
        let txn = db.begin_write(w.id).await?;
        n += catch_up(&*txn, w.id).await?;
        txn.commit().await?;
    }
    Ok(n)
}

/// Recomputes the ledger for the won deals whose paths these new touchpoints may enter.
pub async fn touchpoints_recorded(db: &impl ConnectionTrait, ws: i64, touches: &[entity::touchpoint::Model]) -> Result<(), DbErr> {
    let Some(earliest) = touches.iter().map(|t| t.occurred_at).min() else {
        return Ok(());
    };
    let mut leads: Vec<i64> = touches.iter().map(|t| t.lead_id).collect();
    leads.sort_unstable();
    leads.dedup();
    let deals = store::won_deals_of_leads(db, ws, &leads, Some(earliest)).await?;
    refresh_deals(db, ws, &deals).await
}

/// Recomputes the ledger for the won deals of a lead (its conversion time changed).
pub async fn lead_changed(db: &impl ConnectionTrait, ws: i64, lead_id: i64) -> Result<(), DbErr> {
    let deals = store::won_deals_of_leads(db, ws, &[lead_id], None).await?;
    refresh_deals(db, ws, &deals).await
}

/// A change of a model's parameters, by an ADMIN.
pub struct Configure {
    pub kind: Kind,
    pub half_life_days: Option<Decimal>,
    pub weights: Option<Vec<(String, Decimal)>>,
}

/// Validates a model's parameters into its rule.
pub fn rule_from(
    kind: Kind,
    half_life_days: Option<Decimal>,
    weights: Option<Vec<(String, Decimal)>>,
    field: &str,
) -> ServiceResult<Option<Rule>> {
    let mut v = Validator::default();
    if kind != Kind::TimeDecay && half_life_days.is_some() {
        v.push(&[field, "halfLifeDays"], "INVALID", "only TIME_DECAY has a half-life");
    }
    if kind != Kind::Custom && weights.is_some() {
        v.push(&[field, "weights"], "INVALID", "only CUSTOM has weights");
    }
    let rule = match kind {
        Kind::Markov => None,
        Kind::TimeDecay => {
            let days = half_life_days.unwrap_or(Decimal::from(rules::DEFAULT_HALF_LIFE_DAYS));
            let secs = (days * Decimal::from(86_400)).round();
            match i64::try_from(secs) {
                Ok(s) if (1..=MAX_LOOKBACK_DAYS * 86_400).contains(&s) => Some(Rule::TimeDecay { half_life_secs: s }),
                _ => {
                    v.push(
                        &[field, "halfLifeDays"],
                        "INVALID",
                        "must be at least one second and at most 3650 days",
                    );
                    None
                }
            }
        }
        Kind::Custom => match weights {
            None => Some(Rule::default_custom()),
            Some(list) => {
                let mut table = BTreeMap::new();
                for (i, (t, w)) in list.into_iter().enumerate() {
                    let idx = i.to_string();
                    let t = t.trim().to_ascii_uppercase();
                    if t.is_empty() {
                        v.push(&[field, "weights", &idx, "type"], "REQUIRED", "a touchpoint type is required");
                    }
                    if w.is_sign_negative() && !w.is_zero() {
                        v.push(&[field, "weights", &idx, "weight"], "INVALID", "must not be negative");
                    } else if w.normalize().scale() > 6 || w > Decimal::from(1_000_000) {
                        v.push(
                            &[field, "weights", &idx, "weight"],
                            "INVALID",
                            "at most 1,000,000 with 6 decimal places",
                        );
                    }
                    if table.insert(t, w.normalize()).is_some() {
                        v.push(&[field, "weights", &idx, "type"], "DUPLICATE", "the type is listed twice");
                    }
                }
                Some(Rule::Custom(table))
            }
        },
        k => Rule::default_of(k),
    };
    v.finish()?;
    Ok(rule)
}

/// A new version of a model with new parameters becomes current, and the ledger of every won
/// deal is written for it; the old version's credits stay. The same parameters again change
/// nothing.
pub async fn configure(db: &Db, p: Principal, c: Configure) -> ServiceResult<(attribution_model::Model, bool)> {
    let ws = p.workspace_id;
    if c.kind == Kind::Markov {
        return Err(bad(
            "input",
            "INVALID",
            "MARKOV has no parameters to keep; it is computed per query",
        ));
    }
    let rule = rule_from(c.kind, c.half_life_days, c.weights, "input")?.expect("a rule-based kind");
    let txn = db.begin_write(ws).await?;
    let current = current_models(&*txn, ws).await?;
    let (old, old_rule) = current
        .into_iter()
        .find(|(m, _)| m.kind == c.kind.as_str())
        .expect("every kind has a current version");
    if old_rule == rule {
        txn.commit().await?;
        return Ok((old, false));
    }
    let mut am: attribution_model::ActiveModel = old.clone().into();
    am.is_current = Set(false);
    am.update(&*txn).await?;
    let row = attribution_model::ActiveModel {
        workspace_id: Set(ws),
        kind: Set(c.kind.as_str().to_owned()),
        version: Set(old.version + 1),
        params: Set(params_of(&rule)),
        is_current: Set(true),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    let all_won: Vec<i64> = store::won_deals_missing_credits(&*txn, ws, row.id).await?;
    write_credits(&*txn, ws, &[(row.clone(), rule.clone())], &all_won).await?;
    txn.commit().await?;
    Ok((row, true))
}
