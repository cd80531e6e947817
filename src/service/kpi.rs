//! RPM KPIs over the workspace's data: the funnel from stage history, velocity and the sales
//! cycle from deals, lead value, ROI and cost ratios per campaign from the attribution ledger
//! and cost lines, customer lifetime value. The math is `domain::kpi`; the definitions are
//! `docs/kpis.md`.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use entity::{campaign, campaign_cost, funnel_stage, lead, lead_persona_match, lead_stage_history, opportunity};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, PaginatorTrait, QueryFilter, QuerySelect};

use super::attribution::{self as attribution, Grouping, Model, RowKey, SourceChoice};
use crate::domain::attribution::{Conversions, DEFAULT_LOOKBACK_DAYS};
use crate::domain::kpi::{self, Funnel, Move, Roi, StageConversion, StageFlow, StageValue, StageVelocity};
use crate::domain::money::from_minor;
use crate::domain::reach::{self, ChannelReach, Contact};
use crate::domain::vocab::{OpportunityStatus, STAGE_SUCCESS};
use crate::error::{ServiceError, ServiceResult};
use crate::store::{self, Scoped};

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

/// The funnel and the whole stage history of the leads the filter keeps: read once per data
/// revision and shared by every funnel KPI of any range (each selects its moves by time).
pub struct History {
    pub funnel: Funnel,
    pub stages: Vec<funnel_stage::Model>,
    /// The moves, grouped by lead once here instead of once per KPI.
    pub by_lead: kpi::ByLead,
}

async fn lead_set(db: &impl ConnectionTrait, ws: i64, f: &Filter) -> Result<Option<HashSet<i64>>, DbErr> {
    let mut set: Option<HashSet<i64>> = None;
    if let Some(p) = f.persona_id {
        let members = lead_persona_match::Entity::in_workspace(ws)
            .filter(lead_persona_match::Column::PersonaId.eq(p))
            .filter(lead_persona_match::Column::IsMember.eq(true));
        let ids = store::id_set(db, members, lead_persona_match::Column::LeadId).await?;
        set = Some(ids);
    }
    if let Some(o) = f.owner_id {
        let owned = lead::Entity::in_workspace(ws).filter(lead::Column::OwnerId.eq(o));
        let ids = store::id_set(db, owned, lead::Column::Id).await?;
        set = Some(match set {
            Some(s) => s.intersection(&ids).copied().collect(),
            None => ids,
        });
    }
    Ok(set)
}

/// The funnel as the KPIs see it: the SUCCESS stages in funnel order, the others as side stages.
fn funnel_of(stages: &[funnel_stage::Model]) -> Funnel {
    Funnel {
        success: stages.iter().filter(|s| s.kind == STAGE_SUCCESS).map(|s| s.id).collect(),
        side: stages.iter().filter(|s| s.kind != STAGE_SUCCESS).map(|s| s.id).collect(),
    }
}

pub async fn history(db: &impl ConnectionTrait, ws: i64, f: &Filter) -> ServiceResult<History> {
    let stages = crate::store::workspace::stages(db, ws).await?;
    let funnel = funnel_of(&stages);
    let keep = lead_set(db, ws, f).await?;
    use lead_stage_history::Column as C;
    let rows = lead_stage_history::Entity::in_workspace(ws)
        .select_only()
        .columns([C::LeadId, C::FromStageId, C::ToStageId, C::ChangedAt])
        .into_tuple::<(i64, Option<i64>, i64, DateTime<Utc>)>()
        .all(db)
        .await?;
    let moves: Vec<Move> = rows
        .into_iter()
        .filter(|(l, ..)| keep.as_ref().is_none_or(|k| k.contains(l)))
        .map(|(lead, from, to, at)| Move { lead, from, to, at })
        .collect();
    Ok(History {
        funnel,
        stages,
        by_lead: kpi::by_lead(&moves),
    })
}

pub fn conversion(h: &History, r: &Range, as_of: DateTime<Utc>) -> Vec<StageConversion> {
    kpi::conversion_of(&h.funnel, &h.by_lead, r.from, r.to, as_of)
}

pub fn flow(h: &History, r: &Range) -> Vec<StageFlow> {
    let ids: Vec<i64> = h.stages.iter().map(|s| s.id).collect();
    kpi::flow_of(&h.funnel, &ids, &h.by_lead, r.from, r.to)
}

/// The funnel now: leads per current stage and how many reached each success-path stage.
pub async fn snapshot(conn: &impl ConnectionTrait, ws: i64, f: &Filter) -> ServiceResult<Vec<kpi::SnapshotRow>> {
    let stages = crate::store::workspace::stages(conn, ws).await?;
    let funnel = funnel_of(&stages);
    use lead::Column as C;
    let mut counts: HashMap<i64, i64> = HashMap::new();
    match f.persona_id {
        // Counted by the (workspace, stage) index.
        None => {
            let per_stage = |merged_only: bool| {
                let mut q = lead::Entity::in_workspace(ws);
                if let Some(o) = f.owner_id {
                    q = q.filter(C::OwnerId.eq(o));
                }
                if merged_only {
                    q = q.filter(C::MergedIntoId.is_not_null());
                }
                q.select_only()
                    .column(C::StageId)
                    .column_as(C::Id.count(), "n")
                    .group_by(C::StageId)
                    .into_tuple::<(i64, i64)>()
                    .all(conn)
            };
            counts.extend(per_stage(false).await?);
            // A merged lead's stub is the same person as the lead it was merged into (erased
            // leads still count). Few, found by their own index.
            for (stage, n) in per_stage(true).await? {
                *counts.entry(stage).or_default() -= n;
            }
        }
        Some(_) => {
            let keep = lead_set(conn, ws, f).await?.unwrap_or_default();
            let rows = lead::Entity::in_workspace(ws)
                .select_only()
                .columns([C::Id, C::StageId])
                .into_tuple::<(i64, i64)>()
                .all(conn)
                .await?;
            for (id, stage) in rows {
                if keep.contains(&id) {
                    *counts.entry(stage).or_default() += 1;
                }
            }
        }
    }
    Ok(kpi::snapshot(&funnel, &counts))
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

/// Velocity per success-path stage but the last, then Lead -> Customer.
pub fn stage_velocity(h: &History, r: &Range) -> Vec<StageVelocity> {
    kpi::velocity_of(&h.funnel, &h.by_lead, r.from, r.to)
}

/// (amount in minor units, created at, closed at) of a won deal.
type WonDeal = (i64, DateTime<Utc>, Option<DateTime<Utc>>);

pub async fn sales_cycle(db: &impl ConnectionTrait, ws: i64, r: &Range) -> ServiceResult<SalesCycle> {
    let currency = settings(db, ws).await?.currency;
    use opportunity::Column as C;
    // Only the won deals are read row by row (for the median); the others are counted in SQL,
    // each through the (workspace, status, closed_at) index.
    let with_status = |status: OpportunityStatus| {
        opportunity::Entity::in_workspace(ws)
            .filter(C::Status.eq(status.as_str()))
            .filter(C::Currency.eq(currency.as_str()))
    };
    let closed_in = |q: sea_orm::Select<opportunity::Entity>| q.filter(C::ClosedAt.gte(r.from)).filter(C::ClosedAt.lt(r.to));
    let won = closed_in(with_status(OpportunityStatus::Won))
        .select_only()
        .columns([C::AmountMinor, C::CreatedAt, C::ClosedAt])
        .into_tuple::<WonDeal>()
        .all(db)
        .await?;
    let lost = closed_in(with_status(OpportunityStatus::Lost)).count(db).await? as i64;
    let open = with_status(OpportunityStatus::Open).count(db).await? as i64;
    let secs: Vec<i64> = won.iter().filter_map(|d| Some((d.2? - d.1).num_seconds())).collect();
    // Sales velocity divides by the exact mean, not the rounded one it reports.
    let exact_mean_days = (!secs.is_empty())
        .then(|| Decimal::from(secs.iter().sum::<i64>()) / Decimal::from(secs.len() as i64) / Decimal::from(kpi::SECONDS_PER_DAY));
    let cycle = kpi::median_mean_days(secs);
    let amounts: Vec<Decimal> = won.iter().map(|d| from_minor(d.0)).collect();
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

pub async fn lead_value(conn: &impl ConnectionTrait, ws: i64, h: &History, to: DateTime<Utc>) -> ServiceResult<LeadValue> {
    let window_from = to - Duration::days(VALUE_WINDOW_DAYS);
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
    let (stages, database) = kpi::stage_values_of(&h.funnel, &h.by_lead, window_from, to, per_contact);
    Ok(LeadValue {
        stages,
        revenue_per_customer_contact: per_contact.map(kpi::round_money),
        database_value: kpi::round_money(database),
        currency,
        window_from,
    })
}

/// ROI and the cost ratios of one campaign in a range. What depends on the leads the campaign
/// sourced (cost per lead and per MQL, leads against the forecast) is in [`Sourced`], read
/// apart by [`campaign_sourcing`] only when asked for: it counts every lead first touched in
/// the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRoi {
    pub campaign: campaign::Model,
    pub roi: Roi,
    /// Attributed conversions (fractional deals) as the attribution report credits them: the
    /// sum of each deal's millionths, so that a deal's rows add up to one.
    pub conversions: Decimal,
    /// Won deals closed in the range that the model credits to the campaign.
    pub deals_won: i64,
    /// Cost lines dated in the range, summed per category (categories with lines only).
    pub costs_by_category: Vec<(String, Decimal)>,
    /// Costs / the exact (unrounded) attributed conversions, rounded once to cents.
    pub cost_per_order: Option<Decimal>,
    pub expected_revenue: Option<Decimal>,
    /// Attributed revenue - expected revenue.
    pub forecast_difference: Option<Decimal>,
    /// Attributed revenue / expected revenue.
    pub forecast_ratio: Option<Decimal>,
}

impl CampaignRoi {
    /// Costs per lead sourced; `None` without leads.
    pub fn cost_per_lead(&self, s: Sourced) -> Option<Decimal> {
        kpi::per(self.roi.costs, Decimal::from(s.leads))
    }
    /// Costs per sourced lead handed to sales; `None` without any.
    pub fn cost_per_mql(&self, s: Sourced) -> Option<Decimal> {
        kpi::per(self.roi.costs, Decimal::from(s.mqls))
    }
    /// Leads sourced - expected leads, and their ratio (`None` without a forecast).
    pub fn leads_forecast(&self, s: Sourced) -> (Option<i64>, Option<Decimal>) {
        kpi::leads_forecast(s.leads, self.campaign.expected_leads)
    }
}

pub struct RoiReport {
    pub campaigns: Vec<CampaignRoi>,
    /// Summed per channel, then over all campaigns.
    pub channels: Vec<(String, Roi)>,
    pub total: Roi,
    pub currency: String,
    pub model: Model,
    /// What the report was asked for.
    pub range: Range,
    pub filter: Filter,
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
    // Cost per order divides by exact conversions: the report's millionths are each rounded.
    let exact = match &model {
        Model::Rule(rule) => {
            Some(attribution::exact_campaign_conversions(conn, ws, rule, (r.from, r.to), DEFAULT_LOOKBACK_DAYS, &currency).await?)
        }
        Model::Markov => None,
    };
    let mut credited: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    for (k, row) in &report.rows {
        if let RowKey::Campaign(Some(id)) = k {
            credited.insert(*id, (row.revenue_minor, row.conversion_micros, row.deals));
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
    let mut rows = Vec::with_capacity(campaigns.len());
    let mut by_channel: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    let (mut all_revenue, mut all_costs) = (Decimal::ZERO, Decimal::ZERO);
    for c in campaigns {
        let (rev, micros, deals_won) = credited.get(&c.id).copied().unwrap_or_default();
        let revenue = from_minor(rev);
        let by_category = costs.get(&c.id).cloned().unwrap_or_default();
        let cost_minor: i64 = by_category.iter().map(|(_, a)| a).sum();
        let cost = from_minor(cost_minor);
        let conversions = Decimal::new(micros, crate::domain::attribution::CONVERSION_DIGITS);
        let cost_per_order = match &exact {
            Some(exact) => exact.get(&Some(c.id)).and_then(|x| x.money_per(cost_minor)),
            // MARKOV splits the range's conversions once, in millionths: nothing finer exists.
            None => Conversions::from_micros(micros).money_per(cost_minor),
        };
        let e = by_channel.entry(c.channel.clone()).or_default();
        e.0 += revenue;
        e.1 += cost;
        all_revenue += revenue;
        all_costs += cost;
        let expected = c.expected_revenue_minor.map(from_minor);
        let (forecast_difference, forecast_ratio) = kpi::forecast(revenue, expected);
        rows.push(CampaignRoi {
            roi: kpi::roi(revenue, cost, cogs),
            conversions,
            deals_won,
            costs_by_category: by_category.into_iter().map(|(k, a)| (k, from_minor(a))).collect(),
            cost_per_order,
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
        range: r.clone(),
        filter: f.clone(),
    })
}

/// Cost lines per campaign dated (at 00:00 UTC) in [from, to), summed per category (in
/// category order).
async fn costs_in(db: &impl ConnectionTrait, ws: i64, ids: &[i64], r: &Range) -> Result<HashMap<i64, Vec<(String, i64)>>, DbErr> {
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
    let mut sums: std::collections::BTreeMap<(i64, String), i64> = std::collections::BTreeMap::new();
    for chunk in ids.chunks(1_000) {
        let rows = campaign_cost::Entity::in_workspace(ws)
            .filter(C::CampaignId.is_in(chunk.iter().copied()))
            .filter(C::IncurredOn.gte(first))
            .filter(C::IncurredOn.lt(end))
            .select_only()
            .columns([C::CampaignId, C::Category, C::AmountMinor])
            .into_tuple::<(i64, String, i64)>()
            .all(db)
            .await?;
        for (c, k, a) in rows {
            *sums.entry((c, k)).or_default() += a;
        }
    }
    let mut out: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    for ((c, k), a) in sums {
        out.entry(c).or_default().push((k, a));
    }
    Ok(out)
}

/// The leads a campaign sourced, and how far they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sourced {
    pub leads: i64,
    /// Handed to sales.
    pub mqls: i64,
    /// Entered the SQL stage.
    pub sqls: i64,
}

/// Per campaign: the leads whose first touchpoint of all (ties as in attribution) was on it and
/// lies in the range, of them those that were handed to sales and those that entered the SQL
/// stage (by now). One aggregate in SQL ([`crate::store::lead::sourced_by_campaign`]).
pub async fn campaign_sourcing(db: &impl ConnectionTrait, ws: i64, r: &Range, f: &Filter) -> ServiceResult<HashMap<i64, Sourced>> {
    let sql_stage = super::stage_by_key(db, ws, crate::domain::handoff::SQL).await?;
    let rows = crate::store::lead::sourced_by_campaign(db, ws, (r.from, r.to), sql_stage.map(|s| s.id), f.owner_id, f.persona_id).await?;
    Ok(rows
        .into_iter()
        .map(|(campaign, leads, mqls, sqls)| (campaign, Sourced { leads, mqls, sqls }))
        .collect())
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

/// Reach at a moment: per channel over all leads that existed then, and per persona over its
/// members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub at: DateTime<Utc>,
    pub leads: i64,
    pub channels: Vec<ChannelReach>,
    /// (persona, its member leads, reach among them), by persona ID.
    pub personas: Vec<(i64, i64, Vec<ChannelReach>)>,
}

/// A lead as reach sees it.
pub fn contact_of(r: &lead::Model) -> Contact {
    Contact {
        email: r.email.is_some(),
        phone: r.phone.is_some(),
        linkedin: r.linkedin_url.is_some(),
        twitter: r.twitter_handle.is_some(),
        facebook: r.facebook_url.is_some(),
        postal: r.street.is_some() && r.postal_code.is_some() && r.city.is_some(),
        consents: Contact::consents_of(&r.consents),
        email_bounced_at: r.email_bounced_at,
        unsubscribed_at: r.unsubscribed_at,
    }
}

/// Reach of the leads created before `at` (erased leads have no contact data and count as
/// unreachable), with the current consents and contact data and the bounce and unsubscribe
/// times.
pub async fn reach(conn: &impl ConnectionTrait, ws: i64, at: DateTime<Utc>, f: &Filter) -> ServiceResult<Reach> {
    let keep = lead_set(conn, ws, f).await?;
    let contacts: HashMap<i64, Contact> = crate::store::lead::contact_facts(conn, ws, at)
        .await?
        .into_iter()
        .filter(|(id, _)| keep.as_ref().is_none_or(|k| k.contains(id)))
        .collect();
    let (leads, channels) = reach::reach(contacts.values(), at);
    let members = lead_persona_match::Entity::in_workspace(ws)
        .filter(lead_persona_match::Column::IsMember.eq(true))
        .select_only()
        .columns([lead_persona_match::Column::PersonaId, lead_persona_match::Column::LeadId])
        .into_tuple::<(i64, i64)>()
        .all(conn)
        .await?;
    let mut by_persona: std::collections::BTreeMap<i64, Vec<&Contact>> = std::collections::BTreeMap::new();
    for (persona, lead) in members {
        if let Some(c) = contacts.get(&lead) {
            by_persona.entry(persona).or_default().push(c);
        }
    }
    let personas = by_persona
        .into_iter()
        .map(|(p, cs)| {
            let (n, rows) = reach::reach(cs, at);
            (p, n, rows)
        })
        .collect();
    Ok(Reach {
        at,
        leads,
        channels,
        personas,
    })
}

/// What a campaign did in a range beyond ROI: its reach into leads and deals, and its e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignActivity {
    /// Distinct leads with a touchpoint on the campaign in the range.
    pub leads_touched: i64,
    /// Opportunities with a buying-center member touched by the campaign in the range before
    /// the deal closed (any status).
    pub opportunities_influenced: i64,
    /// Of them, the open ones: their amounts summed (workspace currency).
    pub open_pipeline: Decimal,
    /// Of them, the open ones.
    pub open_opportunities: i64,
    /// E-mail statistics, when the campaign sent or tracked e-mail in the range.
    pub email: Option<reach::EmailStats>,
    /// Site visitors of the campaign in the range, anonymous ones, and their sessions
    /// (first-party capture, docs/tracking.md).
    pub visitors: crate::store::campaign::VisitorCounts,
}

/// Per campaign with a touchpoint in the range: leads touched, opportunities influenced and
/// their open pipeline, e-mail statistics. Leads as the filter keeps them. Counted in SQL.
pub async fn campaign_activity(
    conn: &impl ConnectionTrait,
    ws: i64,
    r: &Range,
    f: &Filter,
) -> ServiceResult<HashMap<i64, CampaignActivity>> {
    use crate::store::campaign::{LeadScope, first_touches_of_buying_centers, machine_mail_hits, touch_counts, visitor_activity};
    let scope = LeadScope {
        persona_id: f.persona_id,
        owner_id: f.owner_id,
    };
    let counts = touch_counts(conn, ws, r.from, r.to, scope).await?;
    let touched = first_touches_of_buying_centers(conn, ws, r.from, r.to, scope).await?;
    let mut machines = machine_mail_hits(conn, ws, r.from, r.to, scope).await?;
    let mut visitors = visitor_activity(conn, ws, r.from, r.to, scope).await?;
    let currency = settings(conn, ws).await?.currency;
    use opportunity::Column as O;
    /// (status, amount in minor units, currency, closed at).
    type Deal = (String, i64, String, Option<DateTime<Utc>>);
    let deals: HashMap<i64, Deal> = opportunity::Entity::in_workspace(ws)
        .select_only()
        .columns([O::Id, O::Status, O::AmountMinor, O::Currency, O::ClosedAt])
        .into_tuple::<(i64, String, i64, String, Option<DateTime<Utc>>)>()
        .all(conn)
        .await?
        .into_iter()
        .map(|(id, st, amount, cur, closed)| (id, (st, amount, cur, closed)))
        .collect();
    let open = OpportunityStatus::Open.as_str();
    // Influenced: touched before the deal closed (an open deal: at any time in the range).
    let mut influenced: HashMap<i64, Vec<&Deal>> = HashMap::new();
    for (campaign, deal, first) in &touched {
        if let Some(d) = deals.get(deal)
            && d.3.is_none_or(|closed| *first < closed)
        {
            influenced.entry(*campaign).or_default().push(d);
        }
    }
    // Campaigns with hits but no touchpoint in the range have activity too.
    let mut counts = counts;
    for c in machines.keys().chain(visitors.keys()) {
        counts.entry(*c).or_default();
    }
    Ok(counts
        .into_iter()
        .map(|(c, n)| {
            let deals = influenced.remove(&c).unwrap_or_default();
            let machine = machines.remove(&c);
            let open_deals: Vec<&&Deal> = deals.iter().filter(|d| d.0 == open).collect();
            let activity = CampaignActivity {
                leads_touched: n.leads,
                opportunities_influenced: deals.len() as i64,
                open_opportunities: open_deals.len() as i64,
                open_pipeline: from_minor(open_deals.iter().filter(|d| d.2 == currency).map(|d| d.1).sum()),
                email: (n.email_touched || machine.is_some())
                    .then(|| reach::EmailStats::new(n.sent, n.delivered, n.opened, n.clicked).with_machine(machine.unwrap_or_default())),
                visitors: visitors.remove(&c).unwrap_or_default(),
            };
            (c, activity)
        })
        .collect())
}
