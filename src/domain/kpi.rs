//! Revenue Performance Management KPIs: conversion, flow and velocity through the funnel,
//! sales cycle, lead value, ROI and cost ratios, customer lifetime value. One function per
//! definition of `docs/kpis.md`; every figure is exact (`Decimal`) and rounded once, at the
//! end, half away from zero: money to cents, rates, ratios and days to 4 places.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

/// Rates, ratios and days carry this many decimal places.
pub const RATE_DIGITS: u32 = 4;
pub const SECONDS_PER_DAY: i64 = 86_400;

/// A rate, ratio or number of days, rounded as the KPIs are and shown with exactly 4 places.
pub fn round4(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(RATE_DIGITS, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(RATE_DIGITS);
    r
}

/// Money rounded to cents, half away from zero, shown with exactly 2 places.
pub fn round_money(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// `n / d` rounded to 4 places; `None` when `d` is zero.
pub fn ratio(n: Decimal, d: Decimal) -> Option<Decimal> {
    (!d.is_zero()).then(|| round4(n / d))
}

/// One row of stage history: a lead moved into `to` at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub lead: i64,
    pub from: Option<i64>,
    pub to: i64,
    pub at: DateTime<Utc>,
}

/// The funnel as the KPIs see it: the success path in order, and the side stages.
#[derive(Debug, Clone, Default)]
pub struct Funnel {
    pub success: Vec<i64>,
    pub side: HashSet<i64>,
}

impl Funnel {
    fn rank(&self, stage: i64) -> Option<usize> {
        self.success.iter().position(|s| *s == stage)
    }
}

/// Moves grouped by lead, each lead's in time order: what every funnel KPI walks.
pub type ByLead = HashMap<i64, Vec<Move>>;

/// Each lead's moves in time order (ties by input order, which is the history's order).
pub fn by_lead(moves: &[Move]) -> ByLead {
    let mut out: HashMap<i64, Vec<Move>> = HashMap::new();
    for m in moves {
        out.entry(m.lead).or_default().push(*m);
    }
    for v in out.values_mut() {
        v.sort_by_key(|m| m.at);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageConversion {
    pub stage: i64,
    pub next: i64,
    /// Leads that entered the stage in the range.
    pub cohort: i64,
    /// Of them, those that later (by `asOf`) entered any later success-path stage.
    pub converted: i64,
    pub rate: Option<Decimal>,
}

/// Conversion from each success-path stage to the next, and from the first to the last
/// (Lead -> Customer) as the final entry.
pub fn conversion(f: &Funnel, moves: &[Move], from: DateTime<Utc>, to: DateTime<Utc>, as_of: DateTime<Utc>) -> Vec<StageConversion> {
    conversion_of(f, &by_lead(moves), from, to, as_of)
}

/// [`conversion`] over moves already grouped by lead.
pub fn conversion_of(f: &Funnel, leads: &ByLead, from: DateTime<Utc>, to: DateTime<Utc>, as_of: DateTime<Utc>) -> Vec<StageConversion> {
    let mut out = Vec::new();
    let n = f.success.len();
    let mut pairs: Vec<(usize, usize)> = (0..n.saturating_sub(1)).map(|i| (i, i + 1)).collect();
    if n >= 2 {
        pairs.push((0, n - 1));
    }
    for (i, j) in pairs {
        let (mut cohort, mut converted) = (0, 0);
        for mv in leads.values() {
            // The first entry into stage i within the range.
            let Some(entry) = mv.iter().find(|m| m.to == f.success[i] && m.at >= from && m.at < to) else {
                continue;
            };
            cohort += 1;
            let target = |m: &&Move| f.rank(m.to).is_some_and(|r| if j == i + 1 { r > i } else { r >= j });
            if mv.iter().filter(|m| m.at >= entry.at && m.at < as_of).any(|m| target(&m)) {
                converted += 1;
            }
        }
        out.push(StageConversion {
            stage: f.success[i],
            next: f.success[j],
            cohort,
            converted,
            rate: ratio(Decimal::from(converted), Decimal::from(cohort)),
        });
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageFlow {
    pub stage: i64,
    /// Moves into the stage in the range.
    pub inflow: i64,
    /// Moves from the stage to the next success-path stage in the range.
    pub to_next: i64,
    /// Moves from the stage into a side stage in the range.
    pub to_side: i64,
    /// Moves from the stage anywhere else (back, or skipping ahead) in the range.
    pub to_other: i64,
    /// Leads in the stage just before `from` and just before `to`:
    /// `balance_to = balance_from + inflow - to_next - to_side - to_other`.
    pub balance_from: i64,
    pub balance_to: i64,
}

/// Flow through every stage (success path and side stages) in [from, to).
pub fn flow(f: &Funnel, stages: &[i64], moves: &[Move], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<StageFlow> {
    flow_of(f, stages, &by_lead(moves), from, to)
}

/// [`flow`] over moves already grouped by lead.
pub fn flow_of(f: &Funnel, stages: &[i64], leads: &ByLead, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<StageFlow> {
    let mut rows: HashMap<i64, StageFlow> = stages
        .iter()
        .map(|s| {
            (
                *s,
                StageFlow {
                    stage: *s,
                    ..StageFlow::default()
                },
            )
        })
        .collect();
    let next_of = |s: i64| f.rank(s).and_then(|r| f.success.get(r + 1)).copied();
    for mv in leads.values() {
        let stage_before = |t: DateTime<Utc>| mv.iter().rfind(|m| m.at < t).map(|m| m.to);
        if let Some(r) = stage_before(from).and_then(|s| rows.get_mut(&s)) {
            r.balance_from += 1;
        }
        if let Some(r) = stage_before(to).and_then(|s| rows.get_mut(&s)) {
            r.balance_to += 1;
        }
        let mut current: Option<i64> = None;
        for m in mv {
            let prev = m.from.or(current);
            if m.at >= from && m.at < to {
                if let Some(r) = rows.get_mut(&m.to) {
                    r.inflow += 1;
                }
                if let Some(p) = prev
                    && let Some(r) = rows.get_mut(&p)
                {
                    if Some(m.to) == next_of(p) {
                        r.to_next += 1;
                    } else if f.side.contains(&m.to) {
                        r.to_side += 1;
                    } else {
                        r.to_other += 1;
                    }
                }
            }
            current = Some(m.to);
        }
    }
    stages.iter().filter_map(|s| rows.remove(s)).collect()
}

/// Median and mean of a list of durations in seconds, in days (4 places); `None` when empty.
pub fn median_mean_days(mut secs: Vec<i64>) -> Option<(Decimal, Decimal)> {
    if secs.is_empty() {
        return None;
    }
    secs.sort_unstable();
    let n = secs.len();
    let day = Decimal::from(SECONDS_PER_DAY);
    let median = if n % 2 == 1 {
        Decimal::from(secs[n / 2]) / day
    } else {
        Decimal::from(secs[n / 2 - 1] + secs[n / 2]) / Decimal::from(2) / day
    };
    let mean = Decimal::from(secs.iter().sum::<i64>()) / Decimal::from(n as i64) / day;
    Some((round4(median), round4(mean)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageVelocity {
    pub stage: i64,
    pub moves: i64,
    pub median_days: Option<Decimal>,
    pub mean_days: Option<Decimal>,
}

/// Per success-path stage: days from entering it to entering a later success-path stage, for
/// the moves onward that happened in [from, to) (the entry is the latest one before the move).
/// The final entry is Lead -> Customer: from entering the first stage to entering the last.
pub fn velocity(f: &Funnel, moves: &[Move], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<StageVelocity> {
    velocity_of(f, &by_lead(moves), from, to)
}

/// [`velocity`] over moves already grouped by lead.
pub fn velocity_of(f: &Funnel, leads: &ByLead, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<StageVelocity> {
    let n = f.success.len();
    let mut secs: Vec<Vec<i64>> = vec![Vec::new(); n];
    let mut whole = Vec::new();
    for mv in leads.values() {
        for (k, m) in mv.iter().enumerate() {
            if m.at < from || m.at >= to {
                continue;
            }
            let Some(r) = f.rank(m.to) else { continue };
            // The stage the lead leaves: its latest success-path entry below r before this move.
            if let Some(entry) = mv[..k].iter().rev().find(|e| f.rank(e.to).is_some_and(|q| q < r))
                && let Some(q) = f.rank(entry.to)
                && !mv[..k].iter().any(|x| x.at > entry.at && f.rank(x.to).is_some_and(|y| y > q))
            {
                secs[q].push((m.at - entry.at).num_seconds());
            }
            if r == n - 1
                && let Some(first) = mv[..k].iter().find(|e| e.to == f.success[0])
            {
                whole.push((m.at - first.at).num_seconds());
            }
        }
    }
    let mut out: Vec<StageVelocity> = secs
        .into_iter()
        .enumerate()
        .take(n.saturating_sub(1))
        .map(|(i, s)| stage_velocity(f.success[i], s))
        .collect();
    if n >= 2 {
        out.push(stage_velocity(f.success[0], whole));
    }
    out
}

fn stage_velocity(stage: i64, secs: Vec<i64>) -> StageVelocity {
    let moves = secs.len() as i64;
    let mm = median_mean_days(secs);
    StageVelocity {
        stage,
        moves,
        median_days: mm.map(|m| m.0),
        mean_days: mm.map(|m| m.1),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageValue {
    pub stage: i64,
    /// P(reach the last success-path stage | entered this one) in the reference window, 4 places.
    pub probability: Option<Decimal>,
    /// probability x revenue per customer contact, to cents.
    pub value: Option<Decimal>,
    /// Leads in the stage just before `to`.
    pub leads: i64,
}

/// Lead value per success-path stage over the reference window [window_from, to), and the
/// database value (the sum of leads x value, rounded once): P(reach the last stage | entered S)
/// is the conversion of the cohort that entered S in the window to the last stage by `to`.
pub fn stage_values(
    f: &Funnel,
    moves: &[Move],
    window_from: DateTime<Utc>,
    to: DateTime<Utc>,
    per_contact: Option<Decimal>,
) -> (Vec<StageValue>, Decimal) {
    stage_values_of(f, &by_lead(moves), window_from, to, per_contact)
}

/// [`stage_values`] over moves already grouped by lead.
pub fn stage_values_of(
    f: &Funnel,
    grouped: &ByLead,
    window_from: DateTime<Utc>,
    to: DateTime<Utc>,
    per_contact: Option<Decimal>,
) -> (Vec<StageValue>, Decimal) {
    let last = f.success.len().saturating_sub(1);
    let at_to = flow_of(f, &f.success, grouped, to, to + chrono::Duration::seconds(1));
    let mut database = Decimal::ZERO;
    let mut out = Vec::with_capacity(f.success.len());
    for (i, s) in f.success.iter().enumerate() {
        let leads = at_to.iter().find(|x| x.stage == *s).map_or(0, |x| x.balance_from);
        let probability = if i == last {
            Some(Decimal::ONE)
        } else {
            let sub = Funnel {
                success: vec![*s, f.success[last]],
                side: HashSet::new(),
            };
            // Exact: rounded only where it is reported.
            conversion_of(&sub, grouped, window_from, to, to)
                .first()
                .filter(|c| c.cohort > 0)
                .map(|c| Decimal::from(c.converted) / Decimal::from(c.cohort))
        };
        let exact = probability.zip(per_contact).map(|(p, v)| p * v);
        if let Some(v) = exact {
            database += v * Decimal::from(leads);
        }
        out.push(StageValue {
            stage: *s,
            probability: probability.map(round4),
            value: exact.map(round_money),
            leads,
        });
    }
    (out, round_money(database))
}

/// Sales velocity (revenue per day) = open deals x average won amount x win rate / mean sales
/// cycle in days; `None` when a factor is undefined (no won or lost deal, no cycle).
pub fn sales_velocity(open: i64, won_amounts: &[Decimal], lost: i64, mean_cycle_days: Option<Decimal>) -> Option<Decimal> {
    let won = won_amounts.len() as i64;
    if won == 0 {
        return None;
    }
    let avg = won_amounts.iter().sum::<Decimal>() / Decimal::from(won);
    let win_rate = Decimal::from(won) / Decimal::from(won + lost);
    let days = mean_cycle_days.filter(|d| !d.is_zero())?;
    Some(round_money(Decimal::from(open) * avg * win_rate / days))
}

/// Customer lifetime value: W + W / max(1, tenure in years) x remaining years, where W is the
/// won revenue closed before `asOf` and tenure runs from the first won close (days / 365.25).
pub fn lifetime_value(won: &[(DateTime<Utc>, Decimal)], as_of: DateTime<Utc>, remaining_years: Decimal) -> Option<Decimal> {
    let before: Vec<&(DateTime<Utc>, Decimal)> = won.iter().filter(|(t, _)| *t < as_of).collect();
    let first = before.iter().map(|(t, _)| *t).min()?;
    let w: Decimal = before.iter().map(|(_, a)| *a).sum();
    let days = Decimal::from((as_of - first).num_seconds()) / Decimal::from(SECONDS_PER_DAY);
    let tenure = (days / Decimal::new(36_525, 2)).max(Decimal::ONE);
    Some(round_money(w + w / tenure * remaining_years))
}

/// ROI and the cost ratios of one campaign (or a sum of campaigns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roi {
    pub revenue: Decimal,
    pub costs: Decimal,
    pub production_costs: Decimal,
    /// (revenue - production costs - costs) / costs; `None` without costs.
    pub roi: Option<Decimal>,
    pub revenue_per_cost: Option<Decimal>,
    pub cost_per_revenue: Option<Decimal>,
}

pub fn roi(revenue: Decimal, costs: Decimal, cogs_ratio: Decimal) -> Roi {
    let production = revenue * cogs_ratio;
    Roi {
        revenue: round_money(revenue),
        costs: round_money(costs),
        production_costs: round_money(production),
        roi: ratio(revenue - production - costs, costs),
        revenue_per_cost: ratio(revenue, costs),
        cost_per_revenue: ratio(costs, revenue),
    }
}

/// Forecast against actual: (actual - expected, actual / expected); both `None` without an
/// expectation, the ratio also when it is zero.
pub fn forecast(actual: Decimal, expected: Option<Decimal>) -> (Option<Decimal>, Option<Decimal>) {
    match expected {
        None => (None, None),
        Some(e) => (Some(round_money(actual - e)), ratio(actual, e)),
    }
}

/// Leads sourced against expected: (sourced - expected, sourced / expected); both `None`
/// without a forecast, the ratio also when it is 0.
pub fn leads_forecast(sourced: i64, expected: Option<i64>) -> (Option<i64>, Option<Decimal>) {
    match expected {
        None => (None, None),
        Some(e) => (Some(sourced - e), ratio(Decimal::from(sourced), Decimal::from(e))),
    }
}

/// Money per unit (cost per lead, per MQL, per order), to cents; `None` when there are none.
pub fn per(costs: Decimal, count: Decimal) -> Option<Decimal> {
    (!count.is_zero()).then(|| round_money(costs / count))
}

/// The funnel now: per success-path stage, its leads and those that reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub stage: i64,
    /// Leads whose current stage it is.
    pub leads: i64,
    /// Leads whose current stage is it or a later success-path stage.
    pub reached: i64,
    /// reached / the previous stage's reached, 4 places; `None` for the first stage or when the
    /// previous stage was reached by nobody.
    pub conversion: Option<Decimal>,
}

/// The funnel snapshot from the count of leads per current stage (side stages count nowhere).
pub fn snapshot(f: &Funnel, leads_in: &HashMap<i64, i64>) -> Vec<SnapshotRow> {
    let counts: Vec<i64> = f.success.iter().map(|s| leads_in.get(s).copied().unwrap_or(0)).collect();
    let mut reached: Vec<i64> = counts.clone();
    for i in (0..reached.len().saturating_sub(1)).rev() {
        reached[i] += reached[i + 1];
    }
    f.success
        .iter()
        .enumerate()
        .map(|(i, s)| SnapshotRow {
            stage: *s,
            leads: counts[i],
            reached: reached[i],
            conversion: (i > 0)
                .then(|| ratio(Decimal::from(reached[i]), Decimal::from(reached[i - 1])))
                .flatten(),
        })
        .collect()
}

/// A KPI's time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// ISO weeks, Monday 00:00 UTC to Monday.
    Week,
    Month,
    Quarter,
}

/// At most this many periods in a series.
pub const MAX_PERIODS: usize = 366;

/// The periods of a range: [from, to) cut at each bucket boundary (00:00 UTC of a Monday, of
/// the first of a month, of the first of January, April, July or October), the first and the
/// last clipped to the range. `None` when there would be more than [`MAX_PERIODS`].
pub fn periods(from: DateTime<Utc>, to: DateTime<Utc>, bucket: Bucket) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    use chrono::{Datelike, Months, NaiveTime};
    // The first boundary strictly after `t`.
    let next = |t: DateTime<Utc>| -> Option<DateTime<Utc>> {
        let d = t.date_naive();
        let start = match bucket {
            Bucket::Week => d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Bucket::Month => d.with_day(1)?,
            Bucket::Quarter => d.with_day(1)?.with_month((d.month0() / 3) * 3 + 1)?,
        };
        let after = match bucket {
            Bucket::Week => start + chrono::Duration::days(7),
            Bucket::Month => start.checked_add_months(Months::new(1))?,
            Bucket::Quarter => start.checked_add_months(Months::new(3))?,
        };
        Some(after.and_time(NaiveTime::MIN).and_utc())
    };
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        if out.len() == MAX_PERIODS {
            return None;
        }
        let end = next(start)?.min(to);
        out.push((start, end));
        start = end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(d)
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    const LEAD: i64 = 1;
    const MQL: i64 = 2;
    const SQL: i64 = 3;
    const CUSTOMER: i64 = 4;
    const NURTURE: i64 = 5;

    fn funnel() -> Funnel {
        Funnel {
            success: vec![LEAD, MQL, SQL, CUSTOMER],
            side: [NURTURE].into_iter().collect(),
        }
    }

    fn mv(lead: i64, from: Option<i64>, to: i64, d: i64) -> Move {
        Move {
            lead,
            from,
            to,
            at: day(d),
        }
    }

    /// Lead 1: Lead day 0, MQL day 10, SQL day 20, Customer day 50.
    /// Lead 2: Lead day 5, MQL day 12, Nurture day 30, MQL day 40.
    /// Lead 3: Lead day 8, MQL day 15.
    /// Lead 4: Lead day -10 (before the range), MQL day 2.
    fn history() -> Vec<Move> {
        vec![
            mv(1, None, LEAD, 0),
            mv(1, Some(LEAD), MQL, 10),
            mv(1, Some(MQL), SQL, 20),
            mv(1, Some(SQL), CUSTOMER, 50),
            mv(2, None, LEAD, 5),
            mv(2, Some(LEAD), MQL, 12),
            mv(2, Some(MQL), NURTURE, 30),
            mv(2, Some(NURTURE), MQL, 40),
            mv(3, None, LEAD, 8),
            mv(3, Some(LEAD), MQL, 15),
            mv(4, None, LEAD, -10),
            mv(4, Some(LEAD), MQL, 2),
        ]
    }

    #[test]
    fn conversion_by_hand() {
        // Range days 0-31, as of day 60.
        let c = conversion(&funnel(), &history(), day(0), day(31), day(60));
        let got: Vec<(i64, i64, i64, i64, Option<Decimal>)> = c.iter().map(|x| (x.stage, x.next, x.cohort, x.converted, x.rate)).collect();
        assert_eq!(
            got,
            vec![
                // Leads 1, 2, 3 entered Lead in the range (4 before); all three reached MQL.
                (LEAD, MQL, 3, 3, Some(dec("1"))),
                // Leads 1, 2, 3, 4 entered MQL; only lead 1 went further (SQL).
                (MQL, SQL, 4, 1, Some(dec("0.25"))),
                // Lead 1 entered SQL and became a customer.
                (SQL, CUSTOMER, 1, 1, Some(dec("1"))),
                // Lead -> Customer: 1 of 3.
                (LEAD, CUSTOMER, 3, 1, Some(dec("0.3333"))),
            ]
        );
        // As of day 40, lead 1 was not yet a customer.
        let c = conversion(&funnel(), &history(), day(0), day(31), day(40));
        assert_eq!((c[2].converted, c[2].rate), (0, Some(Decimal::ZERO)));
        // An empty cohort has no rate.
        let c = conversion(&funnel(), &history(), day(100), day(200), day(300));
        assert!(c.iter().all(|x| x.cohort == 0 && x.rate.is_none()));
    }

    #[test]
    fn flow_by_hand() {
        let stages = [LEAD, MQL, SQL, CUSTOMER, NURTURE];
        let f = flow(&funnel(), &stages, &history(), day(0), day(31));
        let get = |s: i64| f.iter().find(|x| x.stage == s).unwrap().clone();
        // Lead: before day 0 only lead 4 was in Lead; 3 came in, 4 left to MQL (next).
        let lead = get(LEAD);
        assert_eq!(
            (lead.balance_from, lead.inflow, lead.to_next, lead.to_side, lead.balance_to),
            (1, 3, 4, 0, 0)
        );
        // MQL: 4 in; lead 1 to SQL (next), lead 2 to Nurture (side); leads 3 and 4 stay.
        let mql = get(MQL);
        assert_eq!(
            (mql.balance_from, mql.inflow, mql.to_next, mql.to_side, mql.to_other, mql.balance_to),
            (0, 4, 1, 1, 0, 2)
        );
        let nurture = get(NURTURE);
        assert_eq!((nurture.inflow, nurture.balance_to), (1, 1));
        for x in &f {
            assert_eq!(
                x.balance_to,
                x.balance_from + x.inflow - x.to_next - x.to_side - x.to_other,
                "{x:?}"
            );
        }
    }

    #[test]
    fn velocity_by_hand() {
        // All moves in days 0-60.
        let v = velocity(&funnel(), &history(), day(-20), day(60));
        let got: Vec<(i64, i64, Option<Decimal>, Option<Decimal>)> =
            v.iter().map(|x| (x.stage, x.moves, x.median_days, x.mean_days)).collect();
        assert_eq!(
            got,
            vec![
                // Lead -> MQL: 10, 7, 7, 12 days (lead 2 re-entering MQL from Nurture is not a
                // move out of Lead): median 8.5, mean 9.
                (LEAD, 4, Some(dec("8.5")), Some(dec("9"))),
                // MQL -> SQL: lead 1, 10 days.
                (MQL, 1, Some(dec("10")), Some(dec("10"))),
                (SQL, 1, Some(dec("30")), Some(dec("30"))),
                // Lead -> Customer: lead 1, 50 days.
                (LEAD, 1, Some(dec("50")), Some(dec("50"))),
            ]
        );
        assert_eq!(
            median_mean_days(vec![86_400, 2 * 86_400, 4 * 86_400]),
            Some((dec("2"), dec("2.3333")))
        );
    }

    #[test]
    fn lead_value_by_hand() {
        // Window: the 365 days before day 60 (the whole history). Cohorts: Lead 4 (lead 1 became
        // a customer), MQL 4 (lead 1), SQL 1 (lead 1). Revenue per customer contact 4,000.
        // Just before day 60 lead 1 is a customer, leads 2, 3 and 4 are MQLs:
        // 3 x 1,000 + 1 x 4,000 = 7,000.
        let (v, database) = stage_values(&funnel(), &history(), day(60 - 365), day(60), Some(dec("4000")));
        let got: Vec<(i64, Option<Decimal>, Option<Decimal>, i64)> = v.iter().map(|s| (s.stage, s.probability, s.value, s.leads)).collect();
        assert_eq!(
            got,
            vec![
                (LEAD, Some(dec("0.25")), Some(dec("1000")), 0),
                (MQL, Some(dec("0.25")), Some(dec("1000")), 3),
                (SQL, Some(dec("1")), Some(dec("4000")), 0),
                (CUSTOMER, Some(dec("1")), Some(dec("4000")), 1),
            ]
        );
        assert_eq!(database, dec("7000"));
        // No customer contact in the window: no values, database value 0.
        let (v, database) = stage_values(&funnel(), &history(), day(60 - 365), day(60), None);
        assert!(v.iter().all(|s| s.value.is_none()));
        assert_eq!(database, Decimal::ZERO);
    }

    #[test]
    fn money_kpis_by_hand() {
        // ROI: 10,000 attributed, 2,000 costs, 30 % cost of goods: (10000 - 3000 - 2000) / 2000.
        let r = roi(dec("10000"), dec("2000"), dec("0.3"));
        assert_eq!(r.roi, Some(dec("2.5")));
        assert_eq!(r.production_costs, dec("3000.00"));
        assert_eq!(r.revenue_per_cost, Some(dec("5")));
        assert_eq!(r.cost_per_revenue, Some(dec("0.2")));
        // No costs: no ROI, not infinity.
        assert_eq!(roi(dec("500"), Decimal::ZERO, Decimal::ZERO).roi, None);
        // Cost per order over fractional conversions: 1,000 / 2.999999 = 333.33.
        assert_eq!(per(dec("1000"), dec("2.999999")), Some(dec("333.33")));
        assert_eq!(per(dec("1000"), Decimal::ZERO), None);
        // docs/kpis.md: 1,000.00 of costs, 3 leads sourced, 1 handed off.
        assert_eq!(per(dec("1000"), Decimal::from(3)), Some(dec("333.33")));
        assert_eq!(per(dec("1000"), Decimal::ONE), Some(dec("1000.00")));
        // Forecast: expected 8,000, attributed 10,000.
        assert_eq!(forecast(dec("10000"), Some(dec("8000"))), (Some(dec("2000.00")), Some(dec("1.25"))));
        assert_eq!(forecast(dec("10000"), None), (None, None));
        assert_eq!(forecast(dec("10000"), Some(Decimal::ZERO)), (Some(dec("10000.00")), None));
        // Leads: expected 40, sourced 30.
        assert_eq!(leads_forecast(30, Some(40)), (Some(-10), Some(dec("0.75"))));
        assert_eq!(leads_forecast(30, None), (None, None));
        assert_eq!(leads_forecast(30, Some(0)), (Some(30), None));
        // Sales velocity: 10 open, won 1,000 and 3,000 (avg 2,000), 2 lost (win rate 0.5),
        // 40-day cycle: 10 x 2000 x 0.5 / 40 = 250.00 a day.
        assert_eq!(
            sales_velocity(10, &[dec("1000"), dec("3000")], 2, Some(dec("40"))),
            Some(dec("250.00"))
        );
        assert_eq!(sales_velocity(10, &[], 2, Some(dec("40"))), None);
    }

    #[test]
    fn lifetime_value_by_hand() {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        // 30,000 won over 730.5 days = 2 years: 30000 + 30000 / 2 x 3 = 75,000.
        let won = [(t0, dec("10000")), (t0 + chrono::Duration::days(400), dec("20000"))];
        let as_of = t0 + chrono::Duration::hours(730 * 24 + 12);
        assert_eq!(lifetime_value(&won, as_of, dec("3")), Some(dec("75000.00")));
        // A fresh first deal counts one year: 10,000 + 10,000 x 3.
        assert_eq!(
            lifetime_value(&won[..1], t0 + chrono::Duration::days(10), dec("3")),
            Some(dec("40000.00"))
        );
        // Nothing won before asOf: no value.
        assert_eq!(lifetime_value(&won, t0, dec("3")), None);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round4(dec("0.33335")), dec("0.3334"));
        assert_eq!(round4(dec("-0.33335")), dec("-0.3334"));
        assert_eq!(round_money(dec("2.005")), dec("2.01"));
        // Fixed places, as the API shows them.
        assert_eq!(round4(dec("1")).to_string(), "1.0000");
        assert_eq!(round_money(dec("750")).to_string(), "750.00");
    }

    #[test]
    fn periods_cut_at_calendar_boundaries() {
        let t = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        // docs/kpis.md, Time buckets: 15 Feb 12:00 to 1 Jun by month and by quarter.
        let months = periods(t(2026, 2, 15, 12), t(2026, 6, 1, 0), Bucket::Month).unwrap();
        assert_eq!(
            months,
            vec![
                (t(2026, 2, 15, 12), t(2026, 3, 1, 0)),
                (t(2026, 3, 1, 0), t(2026, 4, 1, 0)),
                (t(2026, 4, 1, 0), t(2026, 5, 1, 0)),
                (t(2026, 5, 1, 0), t(2026, 6, 1, 0)),
            ]
        );
        let quarters = periods(t(2026, 2, 15, 12), t(2026, 6, 1, 0), Bucket::Quarter).unwrap();
        assert_eq!(
            quarters,
            vec![(t(2026, 2, 15, 12), t(2026, 4, 1, 0)), (t(2026, 4, 1, 0), t(2026, 6, 1, 0))]
        );
        // 1 Jan 2026 is a Thursday: the first week ends on Monday 5 Jan.
        let weeks = periods(t(2026, 1, 1, 0), t(2026, 1, 20, 0), Bucket::Week).unwrap();
        assert_eq!(weeks.len(), 4);
        assert_eq!(weeks[0], (t(2026, 1, 1, 0), t(2026, 1, 5, 0)));
        assert_eq!(weeks[3], (t(2026, 1, 19, 0), t(2026, 1, 20, 0)));
        // December rolls into the next year.
        let q4 = periods(t(2025, 11, 1, 0), t(2026, 2, 1, 0), Bucket::Quarter).unwrap();
        assert_eq!(q4[0].1, t(2026, 1, 1, 0));
        assert!(periods(t(2000, 1, 1, 0), t(2026, 1, 1, 0), Bucket::Week).is_none());
    }

    /// docs/kpis.md, Funnel snapshot: 50 leads in Lead, 30 in MQL, 15 in SQL, 5 Customers and
    /// 20 in Nurture.
    #[test]
    fn snapshot_by_hand() {
        let counts: HashMap<i64, i64> = [(LEAD, 50), (MQL, 30), (SQL, 15), (CUSTOMER, 5), (NURTURE, 20)]
            .into_iter()
            .collect();
        let rows = snapshot(&funnel(), &counts);
        let got: Vec<(i64, i64, Option<Decimal>)> = rows.iter().map(|r| (r.leads, r.reached, r.conversion)).collect();
        assert_eq!(
            got,
            vec![
                (50, 100, None),
                (30, 50, Some(dec("0.5000"))),
                (15, 20, Some(dec("0.4000"))),
                (5, 5, Some(dec("0.2500"))),
            ]
        );
        let empty = snapshot(&funnel(), &HashMap::new());
        assert_eq!(empty[1].conversion, None);
    }
}
