//! RPM KPIs over the workspace's data: the funnel from stage history, velocity and the sales
//! cycle from deals, lead value, ROI and cost ratios per campaign from the attribution ledger
//! and cost lines, customer lifetime value. The math is `domain::kpi`; the definitions are
//! `docs/kpis.md`.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use entity::{campaign, campaign_cost, funnel_stage, handoff, lead, lead_persona_match, lead_stage_history, opportunity};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QuerySelect};

use super::attribution::{self as attribution, Grouping, Model, RowKey, SourceChoice};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::attribution::{DEFAULT_LOOKBACK_DAYS, Touch, path_order};
use crate::domain::kpi::{self, Funnel, Move, Roi, StageConversion, StageFlow, StageValue, StageVelocity};
use crate::domain::money::from_minor;
use crate::domain::vocab::{OpportunityStatus, STAGE_SUCCESS};
use crate::error::{ServiceError, ServiceResult};
use crate::store::Scoped;

/// The workspace setting keys and their defaults.
pub const COGS_RATIO: &str = "costOfGoodsRatio";
pub const REMAINING_YEARS: &str = "expectedRemainingYears";
pub const DEFAULT_REMAINING_YEARS: i64 = 3;
/// Lead value's reference window: the days before `to`.
pub const VALUE_WINDOW_DAYS: i64 = 365;

/// Which leads and campaigns a KPI looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Leads that are members of this persona.
    pub persona_id: Option<i64>,
    /// Leads owned by this user.
    pub owner_id: Option<i64>,
    /// Campaigns of this channel (ROI).
    pub channel: Option<String>,
    /// Campaigns of this kind (ROI).
    pub campaign_kind: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

pub fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> ServiceResult<Range> {
    if to <= from {
        return Err(ServiceError::invalid(&["range"], "INVALID", "`to` must be after `from`"));
    }
    Ok(Range { from, to })
}

/// The funnel and the stage history (of the leads the filter keeps).
pub struct History {
    pub funnel: Funnel,
    pub stages: Vec<funnel_stage::Model>,
    pub moves: Vec<Move>,
}

async fn lead_set(db: &impl ConnectionTrait, ws: i64, f: &Filter) -> Result<Option<HashSet<i64>>, DbErr> {
    let mut set: Option<HashSet<i64>> = None;
    if let Some(p) = f.persona_id {
        let ids: HashSet<i64> = lead_persona_match::Entity::in_workspace(ws)
            .filter(lead_persona_match::Column::PersonaId.eq(p))
            .filter(lead_persona_match::Column::IsMember.eq(true))
            .select_only()
            .column(lead_persona_match::Column::LeadId)
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        set = Some(ids);
    }
    if let Some(o) = f.owner_id {
        let ids: HashSet<i64> = lead::Entity::in_workspace(ws)
            .filter(lead::Column::OwnerId.eq(o))
            .select_only()
            .column(lead::Column::Id)
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        set = Some(match set {
            Some(s) => s.intersection(&ids).copied().collect(),
            None => ids,
        });
    }
    Ok(set)
}

pub async fn history(db: &impl ConnectionTrait, ws: i64, f: &Filter, until: DateTime<Utc>) -> Result<History, DbErr> {
    let stages = crate::store::workspace::stages(db, ws).await?;
    let funnel = Funnel {
        success: stages.iter().filter(|s| s.kind == STAGE_SUCCESS).map(|s| s.id).collect(),
        side: stages.iter().filter(|s| s.kind != STAGE_SUCCESS).map(|s| s.id).collect(),
    };
    let keep = lead_set(db, ws, f).await?;
    use lead_stage_history::Column as C;
    let rows = lead_stage_history::Entity::in_workspace(ws)
        .filter(C::ChangedAt.lt(until))
        .select_only()
        .columns([C::LeadId, C::FromStageId, C::ToStageId, C::ChangedAt])
        .into_tuple::<(i64, Option<i64>, i64, DateTime<Utc>)>()
        .all(db)
        .await?;
    let moves = rows
        .into_iter()
        .filter(|(l, ..)| keep.as_ref().is_none_or(|k| k.contains(l)))
        .map(|(lead, from, to, at)| Move { lead, from, to, at })
        .collect();
    Ok(History { funnel, stages, moves })
}

pub async fn conversion(db: &Db, p: Principal, r: &Range, as_of: DateTime<Utc>, f: &Filter) -> ServiceResult<Vec<StageConversion>> {
    let h = history(&db.conn, p.workspace_id, f, as_of.max(r.to)).await?;
    Ok(kpi::conversion(&h.funnel, &h.moves, r.from, r.to, as_of))
}

pub async fn flow(db: &Db, p: Principal, r: &Range, f: &Filter) -> ServiceResult<Vec<StageFlow>> {
    let h = history(&db.conn, p.workspace_id, f, r.to).await?;
    let ids: Vec<i64> = h.stages.iter().map(|s| s.id).collect();
    Ok(kpi::flow(&h.funnel, &ids, &h.moves, r.from, r.to))
}

/// Sales cycle and sales velocity of the deals closed in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesCycle {
    pub won: i64,
    pub lost: i64,
    pub open: i64,
    pub median_days: Option<Decimal>,
    pub mean_days: Option<Decimal>,
    pub win_rate: Option<Decimal>,
    pub average_won_amount: Option<Decimal>,
    /// Revenue per day.
    pub sales_velocity: Option<Decimal>,
    pub currency: String,
}

pub struct Velocity {
    /// Per success-path stage but the last, then Lead -> Customer.
    pub stages: Vec<StageVelocity>,
    pub sales: SalesCycle,
}

pub async fn velocity(db: &Db, p: Principal, r: &Range, f: &Filter) -> ServiceResult<Velocity> {
    let ws = p.workspace_id;
    let h = history(&db.conn, ws, f, r.to).await?;
    let stages = kpi::velocity(&h.funnel, &h.moves, r.from, r.to);
    let sales = sales_cycle(&db.conn, ws, r).await?;
    Ok(Velocity { stages, sales })
}

/// (status, amount in minor units, created at, closed at).
type ClosedDeal = (String, i64, DateTime<Utc>, Option<DateTime<Utc>>);

async fn sales_cycle(db: &impl ConnectionTrait, ws: i64, r: &Range) -> Result<SalesCycle, DbErr> {
    let currency = settings(db, ws).await?.currency;
    use opportunity::Column as C;
    let closed = opportunity::Entity::in_workspace(ws)
        .filter(C::ClosedAt.gte(r.from))
        .filter(C::ClosedAt.lt(r.to))
        .filter(C::Currency.eq(currency.as_str()))
        .select_only()
        .columns([C::Status, C::AmountMinor, C::CreatedAt, C::ClosedAt])
        .into_tuple::<ClosedDeal>()
        .all(db)
        .await?;
    let won: Vec<&ClosedDeal> = closed.iter().filter(|d| d.0 == OpportunityStatus::Won.as_str()).collect();
    let lost = closed.iter().filter(|d| d.0 == OpportunityStatus::Lost.as_str()).count() as i64;
    let open = opportunity::Entity::in_workspace(ws)
        .filter(C::Status.eq(OpportunityStatus::Open.as_str()))
        .filter(C::Currency.eq(currency.as_str()))
        .select_only()
        .column(C::Id)
        .into_tuple::<i64>()
        .all(db)
        .await?
        .len() as i64;
    let secs: Vec<i64> = won.iter().filter_map(|d| Some((d.3? - d.2).num_seconds())).collect();
    // Sales velocity divides by the exact mean, not the rounded one it reports.
    let exact_mean_days = (!secs.is_empty())
        .then(|| Decimal::from(secs.iter().sum::<i64>()) / Decimal::from(secs.len() as i64) / Decimal::from(kpi::SECONDS_PER_DAY));
    let cycle = kpi::median_mean_days(secs);
    let amounts: Vec<Decimal> = won.iter().map(|d| from_minor(d.1)).collect();
    let n = won.len() as i64;
    Ok(SalesCycle {
        won: n,
        lost,
        open,
        median_days: cycle.map(|c| c.0),
        mean_days: cycle.map(|c| c.1),
        win_rate: kpi::ratio(Decimal::from(n), Decimal::from(n + lost)),
        average_won_amount: (n > 0).then(|| kpi::round_money(amounts.iter().sum::<Decimal>() / Decimal::from(n))),
        sales_velocity: kpi::sales_velocity(open, &amounts, lost, exact_mean_days),
        currency,
    })
}

/// What the KPIs take from the workspace row, read once.
struct Settings {
    currency: String,
    /// Production costs as a share of revenue (`costOfGoodsRatio`, default 0).
    cogs_ratio: Decimal,
    /// Customer lifetime value's expected remaining years (`expectedRemainingYears`, default 3).
    remaining_years: Decimal,
}

async fn settings(db: &impl ConnectionTrait, ws: i64) -> Result<Settings, DbErr> {
    let w = crate::store::workspace::by_id(db, ws).await?;
    // A setting is a decimal string or a JSON number, read from its text (no float on the way).
    let get = |key: &str, default: Decimal| {
        w.as_ref()
            .and_then(|w| w.settings.get(key))
            .and_then(|v| match v {
                serde_json::Value::String(s) => s.parse().ok(),
                serde_json::Value::Number(n) => n.to_string().parse().ok(),
                _ => None,
            })
            .unwrap_or(default)
    };
    Ok(Settings {
        cogs_ratio: get(COGS_RATIO, Decimal::ZERO),
        remaining_years: get(REMAINING_YEARS, Decimal::from(DEFAULT_REMAINING_YEARS)),
        currency: w.as_ref().map_or_else(|| "EUR".into(), |w| w.currency.clone()),
    })
}

/// Lead value per success-path stage and the database value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadValue {
    pub stages: Vec<StageValue>,
    pub revenue_per_customer_contact: Option<Decimal>,
    pub database_value: Decimal,
    pub currency: String,
    pub window_from: DateTime<Utc>,
}

pub async fn lead_value(db: &Db, p: Principal, to: DateTime<Utc>, f: &Filter) -> ServiceResult<LeadValue> {
    let ws = p.workspace_id;
    let conn = &db.conn;
    let window_from = to - Duration::days(VALUE_WINDOW_DAYS);
    let h = history(conn, ws, f, to).await?;
    let currency = settings(conn, ws).await?.currency;
    // Revenue per customer contact: each won deal of the window split equally over its buying
    // center, averaged over the contacts that got a share.
    use opportunity::Column as C;
    let won = opportunity::Entity::in_workspace(ws)
        .filter(C::Status.eq(OpportunityStatus::Won.as_str()))
        .filter(C::ClosedAt.gte(window_from))
        .filter(C::ClosedAt.lt(to))
        .filter(C::Currency.eq(currency.as_str()))
        .select_only()
        .columns([C::Id, C::AmountMinor])
        .into_tuple::<(i64, i64)>()
        .all(conn)
        .await?;
    let ids: Vec<i64> = won.iter().map(|d| d.0).collect();
    let contacts = crate::store::attribution::buying_centers(conn, ws, &ids).await?;
    let mut per_deal: HashMap<i64, i64> = HashMap::new();
    let mut people: HashSet<i64> = HashSet::new();
    for (deal, lead, _) in &contacts {
        *per_deal.entry(*deal).or_default() += 1;
        people.insert(*lead);
    }
    let shared: Decimal = won.iter().filter(|d| per_deal.contains_key(&d.0)).map(|d| from_minor(d.1)).sum();
    let per_contact = (!people.is_empty()).then(|| shared / Decimal::from(people.len() as i64));
    let (stages, database) = kpi::stage_values(&h.funnel, &h.moves, window_from, to, per_contact);
    Ok(LeadValue {
        stages,
        revenue_per_customer_contact: per_contact.map(kpi::round_money),
        database_value: kpi::round_money(database),
        currency,
        window_from,
    })
}

/// ROI and the cost ratios of one campaign in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRoi {
    pub campaign: campaign::Model,
    pub roi: Roi,
    /// Attributed conversions (fractional deals), exact.
    pub conversions: Decimal,
    /// Leads whose first touch of all was this campaign, in the range.
    pub leads: i64,
    /// Of them, those handed to sales.
    pub mqls: i64,
    pub cost_per_lead: Option<Decimal>,
    pub cost_per_mql: Option<Decimal>,
    pub cost_per_order: Option<Decimal>,
    pub expected_revenue: Option<Decimal>,
    /// Attributed revenue - expected revenue.
    pub forecast_difference: Option<Decimal>,
    /// Attributed revenue / expected revenue.
    pub forecast_ratio: Option<Decimal>,
}

pub struct RoiReport {
    pub campaigns: Vec<CampaignRoi>,
    /// Summed per channel, then over all campaigns.
    pub channels: Vec<(String, Roi)>,
    pub total: Roi,
    pub currency: String,
    pub model: Model,
}

pub async fn campaign_roi(
    conn: &impl ConnectionTrait,
    ws: i64,
    r: &Range,
    model: Model,
    f: &Filter,
    only: Option<&[i64]>,
) -> ServiceResult<RoiReport> {
    let Settings {
        currency,
        cogs_ratio: cogs,
        ..
    } = settings(conn, ws).await?;
    let q = attribution::Query {
        from: r.from,
        to: r.to,
        grouping: Grouping::Campaign,
        lookback_days: DEFAULT_LOOKBACK_DAYS,
        currency: Some(currency.clone()),
        source: SourceChoice::Auto,
    };
    let report = attribution::report(conn, ws, model.clone(), q).await?;
    let mut credited: HashMap<i64, (i64, i64)> = HashMap::new();
    for (k, row) in &report.rows {
        if let RowKey::Campaign(Some(id)) = k {
            credited.insert(*id, (row.revenue_minor, row.conversion_micros));
        }
    }
    let mut q = campaign::Entity::in_workspace(ws);
    if let Some(c) = &f.channel {
        q = q.filter(campaign::Column::Channel.eq(c.as_str()));
    }
    if let Some(k) = &f.campaign_kind {
        q = q.filter(campaign::Column::Kind.eq(k.as_str()));
    }
    if let Some(ids) = only {
        q = q.filter(campaign::Column::Id.is_in(ids.iter().copied()));
    }
    let campaigns = q.all(conn).await?;
    let ids: Vec<i64> = campaigns.iter().map(|c| c.id).collect();
    let costs = costs_in(conn, ws, &ids, r).await?;
    let (leads, mqls) = first_touch_leads(conn, ws, r, f).await?;
    let mut rows = Vec::with_capacity(campaigns.len());
    let mut by_channel: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    let (mut all_revenue, mut all_costs) = (Decimal::ZERO, Decimal::ZERO);
    for c in campaigns {
        let (rev, micros) = credited.get(&c.id).copied().unwrap_or_default();
        let revenue = from_minor(rev);
        let cost = from_minor(costs.get(&c.id).copied().unwrap_or(0));
        let conversions = Decimal::new(micros, crate::domain::attribution::CONVERSION_DIGITS);
        let e = by_channel.entry(c.channel.clone()).or_default();
        e.0 += revenue;
        e.1 += cost;
        all_revenue += revenue;
        all_costs += cost;
        let n_leads = leads.get(&c.id).copied().unwrap_or(0);
        let n_mqls = mqls.get(&c.id).copied().unwrap_or(0);
        let expected = c.expected_revenue_minor.map(from_minor);
        let (forecast_difference, forecast_ratio) = kpi::forecast(revenue, expected);
        rows.push(CampaignRoi {
            roi: kpi::roi(revenue, cost, cogs),
            conversions,
            leads: n_leads,
            mqls: n_mqls,
            cost_per_lead: kpi::per(cost, Decimal::from(n_leads)),
            cost_per_mql: kpi::per(cost, Decimal::from(n_mqls)),
            cost_per_order: kpi::per(cost, conversions),
            expected_revenue: expected,
            forecast_difference,
            forecast_ratio,
            campaign: c,
        });
    }
    rows.sort_by(|a, b| b.roi.revenue.cmp(&a.roi.revenue).then(a.campaign.id.cmp(&b.campaign.id)));
    let mut channels: Vec<(String, Roi)> = by_channel
        .into_iter()
        .map(|(k, (rev, cost))| (k, kpi::roi(rev, cost, cogs)))
        .collect();
    channels.sort_by(|a, b| b.1.revenue.cmp(&a.1.revenue).then_with(|| a.0.cmp(&b.0)));
    Ok(RoiReport {
        campaigns: rows,
        channels,
        total: kpi::roi(all_revenue, all_costs, cogs),
        currency,
        model,
    })
}

/// Cost lines per campaign dated (at 00:00 UTC) in [from, to).
async fn costs_in(db: &impl ConnectionTrait, ws: i64, ids: &[i64], r: &Range) -> Result<HashMap<i64, i64>, DbErr> {
    use campaign_cost::Column as C;
    let midnight = |t: DateTime<Utc>| {
        let d = t.date_naive();
        if d.and_time(NaiveTime::MIN).and_utc() >= t {
            d
        } else {
            d.succ_opt().unwrap_or(d)
        }
    };
    // Dates d with from <= d 00:00 < to.
    let (first, end) = (midnight(r.from), midnight(r.to));
    let mut out: HashMap<i64, i64> = HashMap::new();
    for chunk in ids.chunks(1_000) {
        let rows = campaign_cost::Entity::in_workspace(ws)
            .filter(C::CampaignId.is_in(chunk.iter().copied()))
            .filter(C::IncurredOn.gte(first))
            .filter(C::IncurredOn.lt(end))
            .select_only()
            .columns([C::CampaignId, C::AmountMinor])
            .into_tuple::<(i64, i64)>()
            .all(db)
            .await?;
        for (c, a) in rows {
            *out.entry(c).or_default() += a;
        }
    }
    Ok(out)
}

/// Per campaign: the leads whose first touchpoint of all (ties as in attribution) was on it and
/// lies in the range, and of them those that were handed to sales.
async fn first_touch_leads(
    db: &impl ConnectionTrait,
    ws: i64,
    r: &Range,
    f: &Filter,
) -> Result<(HashMap<i64, i64>, HashMap<i64, i64>), DbErr> {
    let keep = lead_set(db, ws, f).await?;
    let firsts = crate::store::attribution::first_touches(db, ws, r.from, r.to).await?;
    let mut by_lead: HashMap<i64, Vec<Touch>> = HashMap::new();
    for t in firsts {
        if keep.as_ref().is_none_or(|k| k.contains(&t.lead_id)) {
            by_lead.entry(t.lead_id).or_default().push(t);
        }
    }
    // Ties on the first instant: external IDs decide.
    let tied: Vec<i64> = by_lead.values().filter(|v| v.len() > 1).flatten().map(|t| t.id).collect();
    let external = crate::store::attribution::external_ids(db, ws, &tied).await?;
    let mut first_campaign: HashMap<i64, i64> = HashMap::new();
    for (lead, mut touches) in by_lead {
        for t in touches.iter_mut() {
            t.external_id = external.get(&t.id).cloned();
        }
        touches.sort_by(path_order);
        if let Some(c) = touches[0].campaign_id {
            first_campaign.insert(lead, c);
        }
    }
    let lead_ids: Vec<i64> = first_campaign.keys().copied().collect();
    let mut handed: HashSet<i64> = HashSet::new();
    for chunk in lead_ids.chunks(1_000) {
        handed.extend(
            handoff::Entity::in_workspace(ws)
                .filter(handoff::Column::LeadId.is_in(chunk.iter().copied()))
                .select_only()
                .column(handoff::Column::LeadId)
                .into_tuple::<i64>()
                .all(db)
                .await?,
        );
    }
    let (mut leads, mut mqls): (HashMap<i64, i64>, HashMap<i64, i64>) = (HashMap::new(), HashMap::new());
    for (lead, c) in first_campaign {
        *leads.entry(c).or_default() += 1;
        if handed.contains(&lead) {
            *mqls.entry(c).or_default() += 1;
        }
    }
    Ok((leads, mqls))
}

/// An account's customer lifetime value as of a time (`None` without a won deal before it).
/// Deals in the workspace's currency only.
pub async fn lifetime_value(
    db: &impl ConnectionTrait,
    ws: i64,
    account_ids: &[i64],
    as_of: DateTime<Utc>,
) -> Result<HashMap<i64, Decimal>, DbErr> {
    let Settings {
        currency,
        remaining_years: years,
        ..
    } = settings(db, ws).await?;
    use opportunity::Column as C;
    let mut won: HashMap<i64, Vec<(DateTime<Utc>, Decimal)>> = HashMap::new();
    for chunk in account_ids.chunks(1_000) {
        let rows = opportunity::Entity::in_workspace(ws)
            .filter(C::AccountId.is_in(chunk.iter().copied()))
            .filter(C::Status.eq(OpportunityStatus::Won.as_str()))
            .filter(C::Currency.eq(currency.as_str()))
            .select_only()
            .columns([C::AccountId, C::ClosedAt, C::AmountMinor])
            .into_tuple::<(i64, Option<DateTime<Utc>>, i64)>()
            .all(db)
            .await?;
        for (a, t, amount) in rows {
            if let Some(t) = t {
                won.entry(a).or_default().push((t, from_minor(amount)));
            }
        }
    }
    Ok(won
        .into_iter()
        .filter_map(|(a, deals)| Some((a, kpi::lifetime_value(&deals, as_of, years)?)))
        .collect())
}
