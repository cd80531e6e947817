//! Rule-based multi-touch attribution: which share of a won deal each touchpoint of its path
//! earns, exactly to the cent. The rules are written out in `docs/attribution.md`; this module is
//! their only implementation, used by the on-the-fly query, the ledger and the explanation of a
//! deal alike.
//!
//! Every model produces non-negative *integer* weights over the touches of a path (a model's
//! fractions are scaled to a common denominator, and time decay is carried to 18 decimal places
//! in fixed point), so the split of an amount is integer arithmetic throughout: each touch gets
//! the floor of its exact share and the cents left over go to the largest remainders
//! ([`largest_remainder`]). Nothing on this path is a float.
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use num_bigint::BigUint;
use rust_decimal::Decimal;

/// Fractional deals (conversion credit) are reported with this many decimal places.
pub const CONVERSION_DIGITS: u32 = 6;
/// One whole deal in units of the last conversion digit.
pub const ONE_CONVERSION: i64 = 1_000_000;
pub const DEFAULT_LOOKBACK_DAYS: i64 = 365;
pub const DEFAULT_HALF_LIFE_DAYS: i64 = 7;
/// The CUSTOM model's weights per touchpoint type when a workspace has not set its own (the
/// seed's example: a newsletter read counts 5, a whitepaper download 30). Types not listed
/// weigh nothing.
pub const DEFAULT_CUSTOM_WEIGHTS: &[(&str, i64)] = &[
    ("EMAIL_OPEN", 5),
    ("EMAIL_CLICK", 10),
    ("PAGE_VIEW", 2),
    ("FORM_SUBMIT", 20),
    ("WHITEPAPER_DOWNLOAD", 30),
    ("WEBINAR_REGISTER", 15),
    ("WEBINAR_ATTEND", 30),
    ("AD_CLICK", 5),
    ("TRADE_FAIR_SCAN", 30),
    ("EVENT_VISIT", 25),
    ("MEETING", 40),
    ("SALES_CALL", 20),
];

/// The attribution models by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay,
    PositionBased,
    WShaped,
    FullPath,
    Custom,
    Markov,
}

impl Kind {
    /// The rule-based kinds: the ones a workspace keeps a ledger for.
    pub const RULES: [Kind; 8] = [
        Kind::FirstTouch,
        Kind::LastTouch,
        Kind::Linear,
        Kind::TimeDecay,
        Kind::PositionBased,
        Kind::WShaped,
        Kind::FullPath,
        Kind::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FirstTouch => "FIRST_TOUCH",
            Kind::LastTouch => "LAST_TOUCH",
            Kind::Linear => "LINEAR",
            Kind::TimeDecay => "TIME_DECAY",
            Kind::PositionBased => "POSITION_BASED",
            Kind::WShaped => "W_SHAPED",
            Kind::FullPath => "FULL_PATH",
            Kind::Custom => "CUSTOM",
            Kind::Markov => "MARKOV",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::RULES.into_iter().chain([Kind::Markov]).find(|k| k.as_str() == s)
    }
}

/// One touchpoint on a deal's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub id: i64,
    pub external_id: Option<String>,
    pub lead_id: i64,
    pub campaign_id: Option<i64>,
    pub touch_type: String,
    pub occurred_at: DateTime<Utc>,
}

/// The order of a path: by time, ties by external ID in string order (a touch without one
/// first), then by internal ID.
pub fn path_order(a: &Touch, b: &Touch) -> Ordering {
    a.occurred_at
        .cmp(&b.occurred_at)
        .then_with(|| a.external_id.cmp(&b.external_id))
        .then(a.id.cmp(&b.id))
}

/// A won deal with everything the models look at.
#[derive(Debug, Clone)]
pub struct Deal {
    pub amount_minor: i64,
    pub closed_at: DateTime<Utc>,
    /// When the opportunity was created (W_SHAPED and FULL_PATH's opportunity-creation touch).
    pub created_at: DateTime<Utc>,
    /// The buying center's primary contact and when that contact became an MQL
    /// (W_SHAPED and FULL_PATH's lead-conversion touch).
    pub primary: Option<(i64, Option<DateTime<Utc>>)>,
    /// The path, in [`path_order`].
    pub touches: Vec<Touch>,
}

/// A rule-based model with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    FirstTouch,
    LastTouch,
    Linear,
    /// Half-life in whole seconds (> 0).
    TimeDecay {
        half_life_secs: i64,
    },
    PositionBased,
    WShaped,
    FullPath,
    /// Weight per touchpoint type (>= 0); a type not listed weighs nothing.
    Custom(BTreeMap<String, Decimal>),
}

impl Rule {
    pub fn kind(&self) -> Kind {
        match self {
            Rule::FirstTouch => Kind::FirstTouch,
            Rule::LastTouch => Kind::LastTouch,
            Rule::Linear => Kind::Linear,
            Rule::TimeDecay { .. } => Kind::TimeDecay,
            Rule::PositionBased => Kind::PositionBased,
            Rule::WShaped => Kind::WShaped,
            Rule::FullPath => Kind::FullPath,
            Rule::Custom(_) => Kind::Custom,
        }
    }

    /// The rule of a kind with its default parameters (`None` for MARKOV).
    pub fn default_of(kind: Kind) -> Option<Rule> {
        Some(match kind {
            Kind::FirstTouch => Rule::FirstTouch,
            Kind::LastTouch => Rule::LastTouch,
            Kind::Linear => Rule::Linear,
            Kind::TimeDecay => Rule::time_decay_days(DEFAULT_HALF_LIFE_DAYS),
            Kind::PositionBased => Rule::PositionBased,
            Kind::WShaped => Rule::WShaped,
            Kind::FullPath => Rule::FullPath,
            Kind::Custom => Rule::default_custom(),
            Kind::Markov => return None,
        })
    }

    pub fn time_decay_days(days: i64) -> Rule {
        Rule::TimeDecay {
            half_life_secs: days * 86_400,
        }
    }

    pub fn default_custom() -> Rule {
        Rule::Custom(
            DEFAULT_CUSTOM_WEIGHTS
                .iter()
                .map(|(t, w)| ((*t).to_owned(), Decimal::from(*w)))
                .collect(),
        )
    }

    /// Raw integer weights over the path's touches; all zero when the model gives the deal to
    /// nobody (an empty path, or CUSTOM with only weightless types).
    pub fn weights(&self, deal: &Deal) -> Vec<u128> {
        let t = &deal.touches;
        let n = t.len();
        if n == 0 {
            return Vec::new();
        }
        let mut w = vec![0u128; n];
        match self {
            Rule::FirstTouch => w[0] = 1,
            Rule::LastTouch => w[n - 1] = 1,
            Rule::Linear => w.fill(1),
            Rule::TimeDecay { half_life_secs } => {
                // Relative to the latest touch, which has weight 1: the same ratios as
                // 2^(-(closedAt - occurredAt)/h), without underflow for old paths.
                let last = t[n - 1].occurred_at.timestamp();
                for (wi, ti) in w.iter_mut().zip(t) {
                    *wi = half_power(last - ti.occurred_at.timestamp(), *half_life_secs);
                }
            }
            Rule::PositionBased => match n {
                1 => w[0] = 1,
                2 => w.fill(1),
                _ => {
                    // 40 / 20 / 40, the middle 20 split over n - 2 touches: scaled by n - 2.
                    let m = (n - 2) as u128;
                    w.fill(20);
                    w[0] = 40 * m;
                    w[n - 1] = 40 * m;
                }
            },
            Rule::WShaped => keyed(&mut w, &key_touches(deal, false), 30, 10),
            Rule::FullPath => keyed(&mut w, &key_touches(deal, true), 45, 20),
            Rule::Custom(table) => {
                let scale = table.values().map(|d| d.scale()).max().unwrap_or(0);
                for (wi, ti) in w.iter_mut().zip(t) {
                    if let Some(d) = table.get(&ti.touch_type) {
                        *wi = scaled_integer(*d, scale);
                    }
                }
            }
        }
        w
    }

    /// Each touch's credit, or `None` when the deal is unattributed.
    pub fn credit(&self, deal: &Deal) -> Option<Vec<Credit>> {
        split(deal.amount_minor, &self.weights(deal))
    }
}

/// A touch's share of one deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credit {
    /// In minor units (cents).
    pub amount_minor: i64,
    /// Of the deal, in millionths: the deal's conversions split the same way.
    pub conversion_micros: i64,
}

impl Credit {
    pub fn conversions(&self) -> Decimal {
        Decimal::new(self.conversion_micros, CONVERSION_DIGITS)
    }
}

/// Attributed conversions for ratios over them (cost per order): a sum of deal shares
/// `part / whole` (the weights of the touches a row gets over the deal's total weight), each
/// share to 24 decimal places, rounded down. The millionths of [`Credit`] are each rounded to
/// make a deal's rows add up to one; this sum is not, and a ratio divides by it and rounds once,
/// at the end. A fraction of integers kept whole would be exact, but TIME_DECAY's weights (about
/// 10^18 each) make its denominator grow by some 60 bits with every deal; 24 places keep each
/// share's error under 10^-24, far below a cent on any cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversions {
    /// The sum in units of 10^-24 of a deal.
    units: u128,
}

/// Units of [`Conversions`] in one deal.
const SHARE_UNITS: u128 = 10u128.pow(24);

impl Conversions {
    /// `micros` millionths of a deal (MARKOV credits, which have no per-deal weights).
    pub fn from_micros(micros: i64) -> Self {
        let mut c = Self::default();
        c.add_share(u128::try_from(micros.max(0)).unwrap_or_default(), ONE_CONVERSION as u128);
        c
    }

    /// Adds `part / whole` of one deal; nothing when `whole` is zero.
    pub fn add_share(&mut self, part: u128, whole: u128) {
        if part == 0 || whole == 0 {
            return;
        }
        let share = BigUint::from(part) * SHARE_UNITS / BigUint::from(whole);
        self.units = self.units.saturating_add(u128::try_from(share).unwrap_or(u128::MAX));
    }

    pub fn is_zero(&self) -> bool {
        self.units == 0
    }

    /// The value rounded half away from zero to `dp` places; `None` past Decimal's range.
    pub fn round(&self, dp: u32) -> Option<Decimal> {
        rounded_quotient(&BigUint::from(self.units), &BigUint::from(SHARE_UNITS), dp)
    }

    /// `amount_minor` (cents) per conversion, rounded once to cents; `None` without conversions
    /// or past Decimal's range.
    pub fn money_per(&self, amount_minor: i64) -> Option<Decimal> {
        if self.is_zero() || amount_minor < 0 {
            return None;
        }
        // amount / (units / 10^24) = amount_minor * 10^24 / (units * 100), to 2 places.
        let amount = BigUint::from(amount_minor as u64) * SHARE_UNITS;
        rounded_quotient(&amount, &(BigUint::from(self.units) * 100u8), 2)
    }
}

/// `n / d` rounded half away from zero to `dp` places, for non-negative n and positive d.
fn rounded_quotient(n: &BigUint, d: &BigUint, dp: u32) -> Option<Decimal> {
    let scaled = n * BigUint::from(10u8).pow(dp);
    let q = (scaled * 2u8 + d) / (d * 2u8);
    let q = i128::try_from(&q).ok()?;
    Decimal::try_from_i128_with_scale(q, dp).ok()
}

/// An amount and one whole conversion split by the weights; `None` when all weights are zero.
pub fn split(amount_minor: i64, weights: &[u128]) -> Option<Vec<Credit>> {
    let amounts = largest_remainder(amount_minor, weights)?;
    let conversions = largest_remainder(ONE_CONVERSION, weights)?;
    Some(
        amounts
            .into_iter()
            .zip(conversions)
            .map(|(amount_minor, conversion_micros)| Credit {
                amount_minor,
                conversion_micros,
            })
            .collect(),
    )
}

/// Splits a non-negative integer `total` in proportion to `weights`, exactly: each part is the
/// floor of its exact share, and the units left over go one each to the largest remainders,
/// ties to the earlier position. A zero weight never gets a unit. `None` when every weight is
/// zero. Weights up to 2^64 and totals up to 2^63 cannot overflow for paths of up to 2^60 touches.
pub fn largest_remainder(total: i64, weights: &[u128]) -> Option<Vec<i64>> {
    let sum: u128 = weights.iter().sum();
    if sum == 0 {
        return None;
    }
    assert!(total >= 0, "only non-negative totals are split");
    let total = total as u128;
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given = 0u128;
    for (i, w) in weights.iter().enumerate() {
        let (q, r) = mul_div_rem(total, *w, sum);
        given += q;
        parts.push(q as i64);
        remainders.push((r, i));
    }
    let left = (total - given) as usize;
    if left > 0 {
        remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in remainders.into_iter().take(left) {
            parts[i] += 1;
        }
    }
    Some(parts)
}

/// (a * b / d, a * b % d) without overflow when a * b exceeds u128.
fn mul_div_rem(a: u128, b: u128, d: u128) -> (u128, u128) {
    match a.checked_mul(b) {
        Some(p) => (p / d, p % d),
        None => {
            // Huge custom weights: multiply into 256 bits and divide back.
            let (hi, lo) = widening_mul(a, b);
            div_wide(hi, lo, d)
        }
    }
}

fn widening_mul(a: u128, b: u128) -> (u128, u128) {
    let mask = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & mask);
    let (b1, b0) = (b >> 64, b & mask);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
    let lo = (p00 & mask) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// (hi:lo) / d and remainder, bit by bit (only for the rare overflowing case).
fn div_wide(hi: u128, lo: u128, d: u128) -> (u128, u128) {
    let mut rem = hi % d;
    let mut q = 0u128;
    for i in (0..128).rev() {
        let carry = rem >> 127;
        rem = (rem << 1) | ((lo >> i) & 1);
        q <<= 1;
        if carry == 1 || rem >= d {
            rem = rem.wrapping_sub(d);
            q |= 1;
        }
    }
    (q, rem)
}

/// Decimal weight as an integer at a common scale: 2.5 at scale 1 is 25.
fn scaled_integer(d: Decimal, scale: u32) -> u128 {
    if d.is_sign_negative() {
        return 0;
    }
    d.mantissa() as u128 * 10u128.pow(scale - d.scale())
}

/// Positions of the key touches of W_SHAPED (first, lead conversion, opportunity creation)
/// and FULL_PATH (the same and the last touch); a missing key touch is `None`.
pub fn key_touches(deal: &Deal, with_last: bool) -> Vec<Option<usize>> {
    let t = &deal.touches;
    let first = (!t.is_empty()).then_some(0);
    let lead_conversion = deal.primary.and_then(|(lead, converted)| {
        let at = converted?;
        t.iter().rposition(|x| x.lead_id == lead && x.occurred_at <= at)
    });
    let opportunity_creation = t.iter().rposition(|x| x.occurred_at <= deal.created_at);
    let mut keys = vec![first, lead_conversion, opportunity_creation];
    if with_last {
        keys.push(t.len().checked_sub(1));
    }
    keys
}

/// `key` per key touch (adding up where they coincide) and `rest` split over the others,
/// scaled by the number of others so that everything stays an integer.
fn keyed(w: &mut [u128], keys: &[Option<usize>], key: u128, rest: u128) {
    let mut is_key = vec![false; w.len()];
    for k in keys.iter().flatten() {
        is_key[*k] = true;
    }
    let others = is_key.iter().filter(|k| !**k).count() as u128;
    let per_key = key * others.max(1);
    for k in keys.iter().flatten() {
        w[*k] += per_key;
    }
    for (wi, k) in w.iter_mut().zip(is_key) {
        if !k {
            *wi = rest;
        }
    }
}

/// Fixed-point one: time-decay weights carry 18 decimal places.
pub const DECAY_ONE: u128 = 1_000_000_000_000_000_000;

/// 2^(-k/2^i) for i = 1..=62 at [`DECAY_ONE`], by repeated integer square roots of 1/2.
fn root_table() -> &'static [u128; 62] {
    static TABLE: OnceLock<[u128; 62]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u128; 62];
        let mut x = DECAY_ONE / 2;
        for slot in t.iter_mut() {
            x = isqrt(x * DECAY_ONE);
            *slot = x;
        }
        t
    })
}

fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128; // a starting guess only; corrected exactly below
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// 2^(-dt/h) at [`DECAY_ONE`], in integers: the whole half-lives shift, the fraction's binary
/// digits (by long division of the remainder) multiply in 2^(-1/2^i). Accurate to a few units
/// of the 18th decimal place; 0 once below that.
pub fn half_power(dt_secs: i64, half_life_secs: i64) -> u128 {
    assert!(half_life_secs > 0);
    let dt = dt_secs.max(0);
    let whole = dt / half_life_secs;
    let mut rem = (dt % half_life_secs) as u128;
    let h = half_life_secs as u128;
    let mut v = DECAY_ONE;
    for root in root_table() {
        if rem == 0 {
            break;
        }
        rem *= 2;
        if rem >= h {
            rem -= h;
            v = v * root / DECAY_ONE;
        }
    }
    if whole >= 64 { 0 } else { v >> whole }
}

// ---------------------------------------------------------------------------------------------
// Calendar months of the ledger's monthly sums

/// 00:00 UTC of the first day of `t`'s month.
pub fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Datelike;
    let d = t.date_naive();
    d.with_day(1).unwrap_or(d).and_time(chrono::NaiveTime::MIN).and_utc()
}

/// The first instant of the month after `t`'s (`None` past chrono's last year).
pub fn next_month(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    month_start(t).checked_add_months(chrono::Months::new(1))
}

/// The whole calendar months inside [from, to): (first month's start, end of the last), or
/// `None` when no month fits. The rest of the range is at most the part before the first and
/// the part after the last.
pub fn whole_months(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = if month_start(from) == from { from } else { next_month(from)? };
    let end = month_start(to);
    (first < end).then_some((first, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(day)
    }

    #[test]
    fn whole_months_of_a_range() {
        let t = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        assert_eq!(month_start(t(2025, 3, 17, 9)), t(2025, 3, 1, 0));
        assert_eq!(next_month(t(2025, 12, 31, 23)), Some(t(2026, 1, 1, 0)));
        // Aligned at both ends: all of it.
        assert_eq!(
            whole_months(t(2025, 1, 1, 0), t(2025, 4, 1, 0)),
            Some((t(2025, 1, 1, 0), t(2025, 4, 1, 0)))
        );
        // Ragged ends: the months strictly inside.
        assert_eq!(
            whole_months(t(2025, 1, 1, 1), t(2025, 4, 30, 0)),
            Some((t(2025, 2, 1, 0), t(2025, 4, 1, 0)))
        );
        // Inside one month, or across one boundary only: none.
        assert_eq!(whole_months(t(2025, 1, 2, 0), t(2025, 1, 30, 0)), None);
        assert_eq!(whole_months(t(2025, 1, 2, 0), t(2025, 2, 27, 0)), None);
        assert_eq!(
            whole_months(t(2025, 1, 2, 0), t(2025, 3, 1, 0)),
            Some((t(2025, 2, 1, 0), t(2025, 3, 1, 0)))
        );
    }

    fn touch(id: i64, lead: i64, day: i64, ty: &str) -> Touch {
        Touch {
            id,
            external_id: None,
            lead_id: lead,
            campaign_id: Some(id),
            touch_type: ty.into(),
            occurred_at: at(day),
        }
    }

    fn deal(amount: i64, touches: Vec<Touch>) -> Deal {
        Deal {
            amount_minor: amount,
            closed_at: at(100),
            created_at: at(60),
            primary: Some((1, Some(at(30)))),
            touches,
        }
    }

    fn amounts(rule: &Rule, d: &Deal) -> Vec<i64> {
        rule.credit(d).unwrap().iter().map(|c| c.amount_minor).collect()
    }

    /// Cost per order divides by the exact conversions, rounded once: a campaign holds the first
    /// touch of a deal split three ways and of one split seven ways (LINEAR).
    #[test]
    fn cost_per_order_divides_by_exact_conversions_split_three_and_seven_ways() {
        let linear = Rule::default_of(Kind::Linear).unwrap();
        let three = deal(90_000, (1..=3).map(|i| touch(i, 1, i, "EMAIL_OPEN")).collect());
        let seven = deal(70_000, (1..=7).map(|i| touch(i, 1, i, "EMAIL_OPEN")).collect());
        let mut exact = Conversions::default();
        let mut micros = 0;
        for d in [&three, &seven] {
            let w = linear.weights(d);
            exact.add_share(w[0], w.iter().sum());
            micros += linear.credit(d).unwrap()[0].conversion_micros;
        }
        // Exact: 1/3 + 1/7 = 10/21 = 0.476190476... Millionths: 1,000,000 / 3 = 333,333 rest 1,
        // which goes to the first touch: 333,334; 1,000,000 / 7 = 142,857 rest 1: 142,858.
        assert_eq!(micros, 333_334 + 142_858);
        assert_eq!(exact.round(6), Some(Decimal::new(476_190, 6)));
        assert_eq!(exact.round(9), Some(Decimal::new(476_190_476, 9)));
        // Costs 1,000.00: 1,000 / (10/21) = 21,000 / 10 = 2,100.00 exactly. The rounded shares
        // would give 1,000 / 0.476192 = 2,099.9908... = 2,099.99, a cent short.
        assert_eq!(exact.money_per(100_000), Some(Decimal::new(210_000, 2)));
        assert_eq!(Conversions::from_micros(micros).money_per(100_000), Some(Decimal::new(209_999, 2)));
        // Costs 0.01 over 2/3 of a deal: 0.015 exactly, half a cent, rounded away from zero.
        let mut two_thirds = Conversions::default();
        two_thirds.add_share(2, 3);
        assert_eq!(two_thirds.money_per(1), Some(Decimal::new(2, 2)));
        // 7.00 over 3/7 + 4/7 = 1 deal: 7.00.
        let mut whole = Conversions::default();
        whole.add_share(3, 7);
        whole.add_share(4, 7);
        assert_eq!(
            (whole.round(6), whole.money_per(700)),
            (Some(Decimal::new(1_000_000, 6)), Some(Decimal::new(700, 2)))
        );
        assert_eq!(Conversions::default().money_per(100), None);
    }

    #[test]
    fn conversions_of_many_deals_with_large_weights_stay_a_fixed_size() {
        // 10,000 deals whose wholes are distinct numbers near 10^18 (TIME_DECAY's scale): a
        // fraction kept whole would grow by some 60 bits a deal. Each share is a quarter.
        let mut c = Conversions::default();
        for i in 0..10_000u128 {
            let whole = 4 * (1_000_000_000_000_000_000 + 7 * i + 1);
            c.add_share(whole / 4, whole);
        }
        assert_eq!(c.round(6), Some(Decimal::new(2_500_000_000, 6)));
        // 1,000.00 over 2,500 conversions: 0.40.
        assert_eq!(c.money_per(100_000), Some(Decimal::new(40, 2)));
    }

    #[test]
    fn largest_remainder_gives_left_over_cents_to_largest_remainders_then_earliest() {
        // 100.00 over three equal touches: 33.33 each and one cent left, to the first.
        assert_eq!(largest_remainder(10_000, &[1, 1, 1]), Some(vec![3_334, 3_333, 3_333]));
        // 0.05 by 1:2:2: exact 1, 2, 2.
        assert_eq!(largest_remainder(5, &[1, 2, 2]), Some(vec![1, 2, 2]));
        // 0.10 by 1:1:1:3 -> exact 1.666, 1.666, 1.666, 5: floors 1,1,1,5 and 2 cents to the
        // first two (equal remainders, earlier first).
        assert_eq!(largest_remainder(10, &[1, 1, 1, 3]), Some(vec![2, 2, 1, 5]));
        assert_eq!(largest_remainder(10, &[0, 0]), None);
        assert_eq!(largest_remainder(7, &[0, 5, 0]), Some(vec![0, 7, 0]));
    }

    #[test]
    fn wide_multiplication_is_exact() {
        let big = u128::from(u64::MAX) * 4;
        let (q, r) = mul_div_rem(i64::MAX as u128, big, big + 1);
        let (hi, lo) = widening_mul(i64::MAX as u128, big);
        assert_eq!(hi, 1);
        assert!(lo > 0);
        assert!(q < i64::MAX as u128);
        assert!(r < big + 1);
        // (2^63-1) * big / (big + 1) = 2^63 - 1 - (2^63-1)/(big+1) -> floor is 2^63 - 2.
        assert_eq!(q, i64::MAX as u128 - 1);
    }

    #[test]
    fn half_power_matches_powers_of_two() {
        let day = 86_400;
        assert_eq!(half_power(0, 7 * day), DECAY_ONE);
        assert_eq!(half_power(7 * day, 7 * day), DECAY_ONE / 2);
        assert_eq!(half_power(14 * day, 7 * day), DECAY_ONE / 4);
        // 2^-0.5 = 0.707106781186547524...
        let v = half_power(day, 2 * day);
        assert!((v as i128 - 707_106_781_186_547_524).abs() <= 2, "{v}");
        // 2^-(1/3) = 0.793700525984099737...
        let v = half_power(day, 3 * day);
        assert!((v as i128 - 793_700_525_984_099_737).abs() <= 60, "{v}");
        assert_eq!(half_power(70 * day, day), 0);
    }

    #[test]
    fn each_model_on_a_five_touch_path() {
        // Touch 1 (lead 1, day 10), 2 (lead 2, day 20), 3 (lead 1, day 30 = converted),
        // 4 (lead 2, day 50), 5 (lead 1, day 80); opportunity created day 60 -> key touch 4.
        let d = deal(
            100_000,
            vec![
                touch(1, 1, 10, "EMAIL_OPEN"),
                touch(2, 2, 20, "WHITEPAPER_DOWNLOAD"),
                touch(3, 1, 30, "WEBINAR_ATTEND"),
                touch(4, 2, 50, "PAGE_VIEW"),
                touch(5, 1, 80, "MEETING"),
            ],
        );
        assert_eq!(amounts(&Rule::FirstTouch, &d), vec![100_000, 0, 0, 0, 0]);
        assert_eq!(amounts(&Rule::LastTouch, &d), vec![0, 0, 0, 0, 100_000]);
        assert_eq!(amounts(&Rule::Linear, &d), vec![20_000; 5]);
        // 40 / 20/3 x3 / 40: 400.00, 66.67, 66.67, 66.66, 400.00 (remainders equal: earliest).
        assert_eq!(amounts(&Rule::PositionBased, &d), vec![40_000, 6_667, 6_667, 6_666, 40_000]);
        // W: keys 1 (first), 3 (conversion), 4 (creation) 30 each; 10 over 2 and 5.
        assert_eq!(amounts(&Rule::WShaped, &d), vec![30_000, 5_000, 30_000, 30_000, 5_000]);
        // Full path: keys 1, 3, 4, 5 at 22.5; 10 to touch 2.
        assert_eq!(amounts(&Rule::FullPath, &d), vec![22_500, 10_000, 22_500, 22_500, 22_500]);
        // Custom 5 / 30 / 30 / 2 / 40 of 107: floors 46.72, 280.37, 280.37, 18.69, 373.83
        // (999.98); the two cents left go to remainders .897 and the first .380.
        assert_eq!(amounts(&Rule::default_custom(), &d), vec![4_673, 28_038, 28_037, 1_869, 37_383]);
        let c = Rule::default_custom().credit(&d).unwrap();
        assert_eq!(c.iter().map(|c| c.amount_minor).sum::<i64>(), 100_000);
        // Time decay, half-life 10 days: 1/128, 1/64, 1/32, 1/8, 1 relative to touch 5.
        let decay = Rule::time_decay_days(10);
        let w = decay.weights(&d);
        assert_eq!(w, vec![DECAY_ONE / 128, DECAY_ONE / 64, DECAY_ONE / 32, DECAY_ONE / 8, DECAY_ONE]);
        // Sum 151/128: shares 1, 2, 4, 16 and 128 in 151 of 1000.00 = 6.6225, 13.2450,
        // 26.4901, 105.9603, 847.6821: floors sum to 999.99, the cent to remainder .50.
        assert_eq!(amounts(&decay, &d), vec![662, 1_325, 2_649, 10_596, 84_768]);
        // One deal in millionths: 6622.5, 13245.0, 26490.1, 105960.3, 847682.1 -> the unit
        // left to the first.
        assert_eq!(
            decay.credit(&d).unwrap().iter().map(|c| c.conversion_micros).collect::<Vec<_>>(),
            vec![6_623, 13_245, 26_490, 105_960, 847_682]
        );
    }

    #[test]
    fn short_paths_and_missing_keys() {
        let one = deal(999, vec![touch(1, 1, 10, "X")]);
        for r in [Rule::PositionBased, Rule::WShaped, Rule::FullPath, Rule::Linear] {
            assert_eq!(amounts(&r, &one), vec![999]);
        }
        let two = deal(1_001, vec![touch(1, 1, 10, "X"), touch(2, 1, 90, "X")]);
        assert_eq!(amounts(&Rule::PositionBased, &two), vec![501, 500]);
        // No primary contact and the opportunity created before every touch: only the first
        // touch is key (30) and 10 goes over the other: 3:1.
        let mut d = deal(400, vec![touch(1, 1, 70, "X"), touch(2, 1, 90, "X")]);
        d.primary = None;
        assert_eq!(amounts(&Rule::WShaped, &d), vec![300, 100]);
        assert!(Rule::Linear.credit(&deal(100, vec![])).is_none());
        let weightless = deal(100, vec![touch(1, 1, 10, "EMAIL_SENT")]);
        assert!(Rule::default_custom().credit(&weightless).is_none());
    }

    #[test]
    fn ties_order_by_external_id_then_id() {
        let mut a = touch(2, 1, 10, "X");
        let mut b = touch(1, 1, 10, "X");
        assert_eq!(path_order(&a, &b), Ordering::Greater);
        a.external_id = Some("a".into());
        b.external_id = Some("b".into());
        assert_eq!(path_order(&a, &b), Ordering::Less);
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        prop_oneof![
            Just(Rule::FirstTouch),
            Just(Rule::LastTouch),
            Just(Rule::Linear),
            (1i64..2_000_000).prop_map(|h| Rule::TimeDecay { half_life_secs: h }),
            Just(Rule::PositionBased),
            Just(Rule::WShaped),
            Just(Rule::FullPath),
            Just(Rule::default_custom()),
        ]
    }

    const TYPES: [&str; 4] = ["EMAIL_OPEN", "EMAIL_SENT", "MEETING", "PAGE_VIEW"];

    proptest! {
        #[test]
        fn credits_are_non_negative_and_sum_exactly(
            rule in arb_rule(),
            amount in 0i64..1_000_000_000_000,
            raw in prop::collection::vec((0i64..400, 1i64..4, 0usize..4), 0..40),
            created in 0i64..400,
            converted in prop::option::of(0i64..400),
        ) {
            let mut touches: Vec<Touch> = raw
                .iter()
                .enumerate()
                .map(|(i, (day, lead, ty))| touch(i as i64, *lead, *day, TYPES[*ty]))
                .collect();
            touches.sort_by(path_order);
            let d = Deal {
                amount_minor: amount,
                closed_at: at(400),
                created_at: at(created),
                primary: Some((1, converted.map(at))),
                touches,
            };
            match rule.credit(&d) {
                None => prop_assert!(d.touches.is_empty() || matches!(rule, Rule::Custom(_))),
                Some(c) => {
                    prop_assert_eq!(c.len(), d.touches.len());
                    prop_assert!(c.iter().all(|x| x.amount_minor >= 0 && x.conversion_micros >= 0));
                    prop_assert_eq!(c.iter().map(|x| x.amount_minor).sum::<i64>(), amount);
                    prop_assert_eq!(c.iter().map(|x| x.conversion_micros).sum::<i64>(), ONE_CONVERSION);
                }
            }
        }

        #[test]
        fn largest_remainder_is_within_one_unit_of_the_exact_share(
            total in 0i64..10_000_000,
            weights in prop::collection::vec(0u128..1_000, 1..30),
        ) {
            let sum: u128 = weights.iter().sum();
            prop_assume!(sum > 0);
            let parts = largest_remainder(total, &weights).unwrap();
            for (p, w) in parts.iter().zip(&weights) {
                let exact_floor = (total as u128 * w / sum) as i64;
                prop_assert!(*p == exact_floor || *p == exact_floor + 1);
                if *w == 0 { prop_assert_eq!(*p, 0); }
            }
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
        }
    }
}
