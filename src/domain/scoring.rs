//! Lead scoring: a profile score (fit) graded A-D and a decaying activity score (engagement)
//! banded 1-4; grade and band form the cell of the scoring matrix ("A1" best, "D4" worst).
//!
//! The activity score at time t is `sum(earned_i x 0.5^((t - occurred_i) / halfLife))` over
//! the touchpoints that occurred at or before t. Because exponential decay is memoryless, the
//! whole sum is kept as one [`Activity`]: its value at a reference time (the latest touch). The
//! value at any later t follows in one multiplication, and a new touch is one multiply-add.
//!
//! For counting and filtering in SQL the activity is also kept as a time-free *key*,
//! `log2(value) + reference / halfLife` (times in seconds since the Unix epoch): the score at t
//! reaches a threshold b exactly when `key >= log2(b) + t / halfLife`, so "how many leads are in
//! band 1 now" is a range condition on one indexed column, with no power function in SQL.
//! Every band decision, in SQL or in Rust, goes through that comparison, so the matrix, the
//! filters, the export and `lead.score` always agree.
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::persona::{Attr, Criterion, meets};

/// Points per touchpoint type when a model does not say otherwise.
pub const DEFAULT_ACTIVITY_POINTS: &[(&str, i32)] = &[
    ("EMAIL_OPEN", 5),
    ("EMAIL_CLICK", 10),
    ("PAGE_VIEW", 2),
    ("WHITEPAPER_DOWNLOAD", 30),
    ("WEBINAR_REGISTER", 15),
    ("WEBINAR_ATTEND", 25),
    ("FORM_SUBMIT", 20),
    ("AD_CLICK", 8),
    ("TRADE_FAIR_SCAN", 40),
];
pub const DEFAULT_HALF_LIFE_DAYS: i64 = 30;
/// Minimum profile score of grades A, B and C.
pub const DEFAULT_GRADE_BANDS: [i32; 3] = [75, 50, 25];
/// Minimum activity score of bands 1, 2 and 3.
pub const DEFAULT_ACTIVITY_BANDS: [i32; 3] = [100, 50, 20];
pub const DEFAULT_MQL_CELLS: &[&str] = &["A1", "A2", "B1"];
pub const DEFAULT_COOLDOWN_DAYS: i32 = 30;
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Profile grade: A (best fit) to D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub const ALL: [Grade; 4] = [Grade::A, Grade::B, Grade::C, Grade::D];

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        Grade::ALL.into_iter().find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The grade of a profile score: A when it reaches `bands[0]`, B `bands[1]`, C `bands[2]`.
    pub fn of(profile: i32, bands: [i32; 3]) -> Grade {
        if profile >= bands[0] {
            Grade::A
        } else if profile >= bands[1] {
            Grade::B
        } else if profile >= bands[2] {
            Grade::C
        } else {
            Grade::D
        }
    }
}

/// A cell of the scoring matrix: grade and activity band (1 best, 4 worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub grade: Grade,
    pub band: u8,
}

impl Cell {
    /// The 16 cells, A1 first, row by row.
    pub fn all() -> impl Iterator<Item = Cell> {
        Grade::ALL
            .into_iter()
            .flat_map(|grade| (1..=4).map(move |band| Cell { grade, band }))
    }

    /// "A1" .. "D4", case-insensitive.
    pub fn parse(s: &str) -> Option<Cell> {
        let s = s.trim();
        if s.len() != 2 {
            return None;
        }
        let grade = Grade::parse(&s[..1])?;
        let band = s[1..].parse::<u8>().ok().filter(|b| (1..=4).contains(b))?;
        Some(Cell { grade, band })
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.grade.as_str(), self.band)
    }
}

/// A profile rule: a condition on one lead or account attribute, worth `points` (may be
/// negative, e.g. for competitors or students).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRule {
    pub attribute: String,
    pub operator: String,
    /// JSON array as for persona criteria (RANGE: `[min, max]`).
    pub values: serde_json::Value,
    pub points: i32,
}

impl ProfileRule {
    fn criterion(&self) -> Criterion<'_> {
        Criterion {
            attribute: &self.attribute,
            operator: &self.operator,
            values: &self.values,
            weight: 1,
        }
    }

    pub fn matches(&self, value: Option<&Attr>) -> bool {
        meets(&self.criterion(), value)
    }
}

/// Activity points for a touchpoint type, for every campaign or for one. A rule without a
/// campaign may cap the points a lead earns from the type per UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRule {
    #[serde(rename = "type")]
    pub touch_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<i64>,
    pub points: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<i32>,
}

impl ActivityRule {
    pub fn defaults() -> Vec<ActivityRule> {
        DEFAULT_ACTIVITY_POINTS
            .iter()
            .map(|(t, p)| ActivityRule {
                touch_type: (*t).to_owned(),
                campaign_id: None,
                points: *p,
                daily_cap: None,
            })
            .collect()
    }
}

/// A scoring model, as the domain computes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub half_life_seconds: i64,
    pub profile_rules: Vec<ProfileRule>,
    pub grade_bands: [i32; 3],
    pub activity_rules: Vec<ActivityRule>,
    pub activity_bands: [i32; 3],
    pub mql_cells: Vec<Cell>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            half_life_seconds: DEFAULT_HALF_LIFE_DAYS * SECONDS_PER_DAY,
            profile_rules: Vec::new(),
            grade_bands: DEFAULT_GRADE_BANDS,
            activity_rules: ActivityRule::defaults(),
            activity_bands: DEFAULT_ACTIVITY_BANDS,
            mql_cells: DEFAULT_MQL_CELLS.iter().filter_map(|c| Cell::parse(c)).collect(),
        }
    }
}

/// One touchpoint as scoring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub id: i64,
    pub touch_type: String,
    pub campaign_id: Option<i64>,
    pub occurred_at: DateTime<Utc>,
}

/// The profile score and which rules (by index) matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub score: i32,
    pub matched: Vec<bool>,
}

/// A touch's part of the activity score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub touch_id: i64,
    /// The rule's points for the touch.
    pub points: i32,
    /// What the touch earned after the daily cap (0 ..= points).
    pub earned: i32,
    /// 0.5^((asOf - occurred) / halfLife).
    pub decay: f64,
    /// earned x decay.
    pub value: f64,
}

/// The activity score kept as its value at a reference time: `value x 0.5^((t - at)/halfLife)`
/// is the score at any t at or after `at`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Activity {
    pub value: f64,
    pub at: Option<DateTime<Utc>>,
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// 0.5^(elapsed / halfLife) for `elapsed = to - from` (may be negative).
pub fn decay(from: DateTime<Utc>, to: DateTime<Utc>, half_life_seconds: i64) -> f64 {
    (-(seconds(to) - seconds(from)) / half_life_seconds as f64).exp2()
}

impl Activity {
    /// Adds `earned` points of a touch at `occurred`; the reference time moves to the later of
    /// the two, so the kept value never grows by decaying backwards.
    pub fn add(self, earned: f64, occurred: DateTime<Utc>, half_life_seconds: i64) -> Activity {
        if earned == 0.0 {
            return self;
        }
        match self.at {
            None => Activity {
                value: earned,
                at: Some(occurred),
            },
            Some(at) if occurred <= at => Activity {
                value: self.value + earned * decay(occurred, at, half_life_seconds),
                at: Some(at),
            },
            Some(at) => Activity {
                value: self.value * decay(at, occurred, half_life_seconds) + earned,
                at: Some(occurred),
            },
        }
    }

    /// The score at `t` (t at or after the reference time; 0 without touches).
    pub fn at(&self, t: DateTime<Utc>, half_life_seconds: i64) -> f64 {
        match self.at {
            Some(at) if self.value > 0.0 => self.value * decay(at, t, half_life_seconds),
            _ => 0.0,
        }
    }

    /// The time-free key `log2(value) + at / halfLife`; `None` for a zero score.
    pub fn key(&self, half_life_seconds: i64) -> Option<f64> {
        match self.at {
            Some(at) if self.value > 0.0 => Some(self.value.log2() + seconds(at) / half_life_seconds as f64),
            _ => None,
        }
    }
}

/// The bound a key must reach for the score at `t` to reach `threshold` (> 0).
pub fn key_bound(threshold: f64, t: DateTime<Utc>, half_life_seconds: i64) -> f64 {
    threshold.log2() + seconds(t) / half_life_seconds as f64
}

/// The key bounds of bands 1, 2 and 3 at `t`.
pub fn band_bounds(bands: [i32; 3], t: DateTime<Utc>, half_life_seconds: i64) -> [f64; 3] {
    bands.map(|b| key_bound(f64::from(b), t, half_life_seconds))
}

/// The band of a key given the bounds of [`band_bounds`].
pub fn band(key: Option<f64>, bounds: [f64; 3]) -> u8 {
    match key {
        Some(k) if k >= bounds[0] => 1,
        Some(k) if k >= bounds[1] => 2,
        Some(k) if k >= bounds[2] => 3,
        _ => 4,
    }
}

impl Model {
    /// The profile score of a lead whose attributes `attr` gives.
    pub fn profile(&self, attr: impl Fn(&str) -> Option<Attr>) -> Profile {
        let matched: Vec<bool> = self.profile_rules.iter().map(|r| r.matches(attr(&r.attribute).as_ref())).collect();
        let score = self
            .profile_rules
            .iter()
            .zip(&matched)
            .filter(|(_, m)| **m)
            .map(|(r, _)| r.points)
            .fold(0_i32, i32::saturating_add);
        Profile { score, matched }
    }

    pub fn grade(&self, profile: i32) -> Grade {
        Grade::of(profile, self.grade_bands)
    }

    /// The rule that prices a touch: the campaign's rule for the type, else the type's rule.
    pub fn rule_for(&self, touch_type: &str, campaign_id: Option<i64>) -> Option<&ActivityRule> {
        let of_type = |r: &&ActivityRule| r.touch_type == touch_type;
        campaign_id
            .and_then(|c| self.activity_rules.iter().filter(of_type).find(|r| r.campaign_id == Some(c)))
            .or_else(|| self.activity_rules.iter().filter(of_type).find(|r| r.campaign_id.is_none()))
    }

    /// The daily cap of a touchpoint type, if any.
    pub fn daily_cap(&self, touch_type: &str) -> Option<i32> {
        self.activity_rules
            .iter()
            .find(|r| r.touch_type == touch_type && r.campaign_id.is_none())
            .and_then(|r| r.daily_cap)
    }

    pub fn has_caps(&self) -> bool {
        self.activity_rules.iter().any(|r| r.daily_cap.is_some())
    }

    /// What each touch earns, in the order given, which must be (occurred_at, id) order.
    /// Within a (type, UTC day) group with a cap, touches earn their points until the cap is
    /// reached; the touch that crosses it earns the rest, later ones nothing.
    pub fn earned(&self, touches: &[Touch]) -> Vec<(i32, i32)> {
        let mut used: HashMap<(&str, chrono::NaiveDate), i32> = HashMap::new();
        touches
            .iter()
            .map(|t| {
                let points = self.rule_for(&t.touch_type, t.campaign_id).map_or(0, |r| r.points);
                let earned = match self.daily_cap(&t.touch_type) {
                    None => points,
                    Some(cap) => {
                        let u = used.entry((t.touch_type.as_str(), t.occurred_at.date_naive())).or_default();
                        let e = points.min((cap - *u).max(0));
                        *u += e;
                        e
                    }
                };
                (points, earned)
            })
            .collect()
    }

    /// The activity of touches, kept as a stored value (touches in any order).
    pub fn activity(&self, touches: &[Touch]) -> Activity {
        let mut sorted: Vec<&Touch> = touches.iter().collect();
        sorted.sort_by_key(|t| (t.occurred_at, t.id));
        let sorted: Vec<Touch> = sorted.into_iter().cloned().collect();
        self.earned(&sorted)
            .into_iter()
            .zip(&sorted)
            .fold(Activity::default(), |a, ((_, e), t)| {
                a.add(f64::from(e), t.occurred_at, self.half_life_seconds)
            })
    }

    /// The score at `as_of` as the direct sum over the touches at or before it, with each
    /// touch's part, in (occurred_at, id) order. The definition the stored value must equal.
    pub fn contributions(&self, touches: &[Touch], as_of: DateTime<Utc>) -> (f64, Vec<Contribution>) {
        let mut sorted: Vec<Touch> = touches.iter().filter(|t| t.occurred_at <= as_of).cloned().collect();
        sorted.sort_by_key(|t| (t.occurred_at, t.id));
        let parts: Vec<Contribution> = self
            .earned(&sorted)
            .into_iter()
            .zip(&sorted)
            .map(|((points, earned), t)| {
                let d = decay(t.occurred_at, as_of, self.half_life_seconds);
                Contribution {
                    touch_id: t.id,
                    points,
                    earned,
                    decay: d,
                    value: f64::from(earned) * d,
                }
            })
            .collect();
        (parts.iter().map(|c| c.value).sum(), parts)
    }

    pub fn band_bounds(&self, t: DateTime<Utc>) -> [f64; 3] {
        band_bounds(self.activity_bands, t, self.half_life_seconds)
    }

    pub fn is_mql(&self, cell: Cell) -> bool {
        self.mql_cells.contains(&cell)
    }
}

/// A lead's score under a model at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub profile: i32,
    pub grade: Grade,
    pub activity: f64,
    pub band: u8,
}

impl Score {
    /// The score at `t` from the stored profile score and activity (t at or after its
    /// reference time).
    pub fn at(model: &Model, profile: i32, activity: Activity, t: DateTime<Utc>) -> Score {
        Score {
            profile,
            grade: model.grade(profile),
            activity: activity.at(t, model.half_life_seconds),
            band: band(activity.key(model.half_life_seconds), model.band_bounds(t)),
        }
    }

    pub fn cell(&self) -> Cell {
        Cell {
            grade: self.grade,
            band: self.band,
        }
    }
}

/// What became of a lead in a backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One of its opportunities (created in the range) was won.
    Won,
    /// Its opportunities were closed, none won.
    Lost,
    /// It has opportunities, still open.
    Open,
    /// It was in no opportunity.
    NoOpportunity,
}

/// Leads per outcome in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CellTally {
    pub leads: u64,
    pub won: u64,
    pub lost: u64,
    pub open: u64,
    pub no_opportunity: u64,
}

/// A backtest's counts: per cell (A1 first, row by row), and how the MQL rule predicts WON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtest {
    pub cells: Vec<(Cell, CellTally)>,
    /// Leads in an MQL cell (predicted to win).
    pub predicted: u64,
    /// Of those, the ones that won.
    pub predicted_won: u64,
    /// All leads that won.
    pub won: u64,
    /// The MQL cells of the model tested.
    pub mql_cells: Vec<Cell>,
}

impl Backtest {
    /// Tallies (cell, outcome) pairs.
    pub fn tally(items: impl IntoIterator<Item = (Cell, Outcome)>, mql_cells: &[Cell]) -> Backtest {
        let mut cells: Vec<(Cell, CellTally)> = Cell::all().map(|c| (c, CellTally::default())).collect();
        let (mut predicted, mut predicted_won, mut won) = (0, 0, 0);
        for (cell, outcome) in items {
            let Some((_, t)) = cells.iter_mut().find(|(c, _)| *c == cell) else {
                continue;
            };
            t.leads += 1;
            match outcome {
                Outcome::Won => t.won += 1,
                Outcome::Lost => t.lost += 1,
                Outcome::Open => t.open += 1,
                Outcome::NoOpportunity => t.no_opportunity += 1,
            }
            let mql = mql_cells.contains(&cell);
            predicted += u64::from(mql);
            won += u64::from(outcome == Outcome::Won);
            predicted_won += u64::from(mql && outcome == Outcome::Won);
        }
        Backtest {
            cells,
            predicted,
            predicted_won,
            won,
            mql_cells: mql_cells.to_vec(),
        }
    }

    /// Won among the leads in MQL cells / leads in MQL cells, to 4 places (none: `None`).
    pub fn precision(&self) -> Option<rust_decimal::Decimal> {
        ratio(self.predicted_won, self.predicted)
    }

    /// Won among the leads in MQL cells / all won leads, to 4 places (none won: `None`).
    pub fn recall(&self) -> Option<rust_decimal::Decimal> {
        ratio(self.predicted_won, self.won)
    }
}

fn ratio(n: u64, d: u64) -> Option<rust_decimal::Decimal> {
    use rust_decimal::{Decimal, RoundingStrategy};
    (d > 0).then(|| {
        let mut r = (Decimal::from(n) / Decimal::from(d)).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
        r.rescale(4);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn day(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, h, 0, 0).unwrap()
    }

    fn touch(id: i64, t: &str, at: DateTime<Utc>) -> Touch {
        Touch {
            id,
            touch_type: t.into(),
            campaign_id: None,
            occurred_at: at,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn grades_follow_the_bands() {
        let bands = [75, 50, 25];
        assert_eq!(Grade::of(75, bands), Grade::A);
        assert_eq!(Grade::of(74, bands), Grade::B);
        assert_eq!(Grade::of(50, bands), Grade::B);
        assert_eq!(Grade::of(25, bands), Grade::C);
        assert_eq!(Grade::of(24, bands), Grade::D);
        assert_eq!(Grade::of(-10, bands), Grade::D);
    }

    #[test]
    fn cells_parse_and_print() {
        assert_eq!(Cell::parse("a1").unwrap().to_string(), "A1");
        assert_eq!(Cell::parse("D4").unwrap(), Cell { grade: Grade::D, band: 4 });
        assert!(Cell::parse("E1").is_none() && Cell::parse("A5").is_none() && Cell::parse("A").is_none());
        let all: Vec<String> = Cell::all().map(|c| c.to_string()).collect();
        assert_eq!(all.len(), 16);
        assert_eq!((all[0].as_str(), all[15].as_str()), ("A1", "D4"));
    }

    #[test]
    fn profile_score_sums_the_points_of_matching_rules() {
        let model = Model {
            profile_rules: vec![
                ProfileRule {
                    attribute: "jobTitle".into(),
                    operator: "CONTAINS".into(),
                    values: json!(["head", "director"]),
                    points: 40,
                },
                ProfileRule {
                    attribute: "employeeCount".into(),
                    operator: "RANGE".into(),
                    values: json!([500, null]),
                    points: 30,
                },
                ProfileRule {
                    attribute: "industry".into(),
                    operator: "EQUALS".into(),
                    values: json!(["Education"]),
                    points: -20,
                },
            ],
            ..Model::default()
        };
        // Head of IT at a 1,200-person school: 40 + 30 - 20 = 50, grade B.
        let p = model.profile(|a| match a {
            "jobTitle" => Some(Attr::Text("Head of IT".into())),
            "employeeCount" => Some(Attr::Number(1200.into())),
            "industry" => Some(Attr::Text("education".into())),
            _ => None,
        });
        assert_eq!(
            p,
            Profile {
                score: 50,
                matched: vec![true, true, true]
            }
        );
        assert_eq!(model.grade(p.score), Grade::B);
        // Nothing known: 0, grade D.
        let p = model.profile(|_| None);
        assert_eq!((p.score, model.grade(p.score)), (0, Grade::D));
    }

    #[test]
    fn activity_decays_by_half_each_half_life() {
        let model = Model::default(); // 30-day half-life
        // A whitepaper (30) on Jan 1, a webinar attendance (25) on Jan 31.
        let touches = [touch(1, "WHITEPAPER_DOWNLOAD", day(1, 0)), touch(2, "WEBINAR_ATTEND", day(31, 0))];
        let (at_31, parts) = model.contributions(&touches, day(31, 0));
        // 30 x 0.5 + 25 x 1 = 40
        assert!(close(at_31, 40.0), "{at_31}");
        assert_eq!(parts.len(), 2);
        assert!(close(parts[0].decay, 0.5) && close(parts[0].value, 15.0));
        // 60 days after Jan 31 (two half-lives): 40 / 4 = 10.
        let later = day(31, 0) + chrono::Duration::days(60);
        assert!(close(model.contributions(&touches, later).0, 10.0));
        let stored = model.activity(&touches);
        assert!(close(stored.at(later, model.half_life_seconds), 10.0));
        // As of Jan 16 (in the past): only the whitepaper, half a half-life old: 30 x 2^-0.5.
        let (past, parts) = model.contributions(&touches, day(16, 0));
        assert_eq!(parts.len(), 1);
        assert!(close(past, 30.0 * 0.5_f64.sqrt()), "{past}");
    }

    #[test]
    fn daily_caps_limit_points_per_type_and_day() {
        let model = Model {
            activity_rules: vec![ActivityRule {
                touch_type: "PAGE_VIEW".into(),
                campaign_id: None,
                points: 2,
                daily_cap: Some(5),
            }],
            half_life_seconds: 1_000 * SECONDS_PER_DAY,
            ..Model::default()
        };
        // Four page views on Jan 1 earn 2, 2, 1, 0; one on Jan 2 earns 2 again.
        let touches: Vec<Touch> = (0..4)
            .map(|i| touch(i, "PAGE_VIEW", day(1, 8 + i as u32)))
            .chain([touch(9, "PAGE_VIEW", day(2, 8))])
            .collect();
        let earned: Vec<i32> = model.earned(&touches).into_iter().map(|(_, e)| e).collect();
        assert_eq!(earned, vec![2, 2, 1, 0, 2]);
        let (score, _) = model.contributions(&touches, day(2, 8));
        // With a 1,000-day half-life the decay over a day is tiny but counted exactly.
        let expected: f64 = [(2.0, day(1, 8)), (2.0, day(1, 9)), (1.0, day(1, 10)), (2.0, day(2, 8))]
            .iter()
            .map(|(p, at)| p * decay(*at, day(2, 8), model.half_life_seconds))
            .sum();
        assert!(close(score, expected));
        assert!(close(model.activity(&touches).at(day(2, 8), model.half_life_seconds), expected));
    }

    #[test]
    fn campaign_rules_override_the_type_rule() {
        let mut model = Model::default();
        model.activity_rules.push(ActivityRule {
            touch_type: "WEBINAR_ATTEND".into(),
            campaign_id: Some(7),
            points: 50,
            daily_cap: None,
        });
        assert_eq!(model.rule_for("WEBINAR_ATTEND", Some(7)).unwrap().points, 50);
        assert_eq!(model.rule_for("WEBINAR_ATTEND", Some(8)).unwrap().points, 25);
        assert_eq!(model.rule_for("WEBINAR_ATTEND", None).unwrap().points, 25);
        assert!(model.rule_for("MEETING", None).is_none());
    }

    #[test]
    fn bands_and_cells_from_the_key() {
        let model = Model::default(); // bands 100 / 50 / 20, 30-day half-life
        let h = model.half_life_seconds;
        // 120 points today: band 1. A half-life later 60: band 2; two later 30: band 3; three
        // later 15: band 4.
        let a = Activity::default().add(120.0, day(1, 0), h);
        for (days, expected) in [(0, 1), (30, 2), (60, 3), (90, 4)] {
            let t = day(1, 0) + chrono::Duration::days(days);
            let s = Score::at(&model, 80, a, t);
            assert_eq!(s.band, expected, "after {days} days");
            assert_eq!(s.cell().to_string(), format!("A{expected}"));
        }
        // Exactly at a threshold counts as reaching it: 100 points, band 1.
        let a = Activity::default().add(100.0, day(1, 0), h);
        assert_eq!(Score::at(&model, 0, a, day(1, 0)).band, 1);
        // No activity: band 4.
        assert_eq!(Score::at(&model, 0, Activity::default(), day(1, 0)).band, 4);
    }

    #[test]
    fn backtest_counts_cells_and_the_mql_rule_by_hand() {
        let c = |s: &str| Cell::parse(s).unwrap();
        use Outcome::*;
        // MQL cells A1, A2, B1. In them: 3 won, 1 lost, 1 never an opportunity; elsewhere 1 won
        // (in C3), 2 lost, 1 open.
        let items = [
            (c("A1"), Won),
            (c("A1"), Won),
            (c("A2"), Lost),
            (c("B1"), Won),
            (c("B1"), NoOpportunity),
            (c("C3"), Won),
            (c("C3"), Lost),
            (c("D4"), Lost),
            (c("D4"), Open),
        ];
        let b = Backtest::tally(items, &[c("A1"), c("A2"), c("B1")]);
        assert_eq!(b.cells.len(), 16);
        assert_eq!(
            b.cells[0],
            (
                c("A1"),
                CellTally {
                    leads: 2,
                    won: 2,
                    ..Default::default()
                }
            )
        );
        assert_eq!(
            b.cells[10].1,
            CellTally {
                leads: 2,
                won: 1,
                lost: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            b.cells[15].1,
            CellTally {
                leads: 2,
                lost: 1,
                open: 1,
                ..Default::default()
            }
        );
        // Precision 3 / 5 = 0.6; recall 3 / 4 = 0.75.
        assert_eq!((b.predicted, b.predicted_won, b.won), (5, 3, 4));
        assert_eq!(b.precision().unwrap().to_string(), "0.6000");
        assert_eq!(b.recall().unwrap().to_string(), "0.7500");
        // Two thirds round to 4 places; nothing predicted: no precision.
        let b = Backtest::tally([(c("A1"), Won), (c("A1"), Won), (c("A1"), Lost)], &[c("A1")]);
        assert_eq!(b.precision().unwrap().to_string(), "0.6667");
        assert_eq!(Backtest::tally([(c("D4"), Won)], &[c("A1")]).precision(), None);
    }

    fn arb_touches() -> impl Strategy<Value = Vec<(u8, u32, u8)>> {
        // (type index, minutes since Jan 1 within ~120 days, campaign)
        prop::collection::vec((0u8..4, 0u32..172_800, 0u8..3), 0..60)
    }

    fn build(raw: &[(u8, u32, u8)]) -> Vec<Touch> {
        const TYPES: [&str; 4] = ["PAGE_VIEW", "EMAIL_OPEN", "WEBINAR_ATTEND", "MEETING"];
        raw.iter()
            .enumerate()
            .map(|(i, (t, m, c))| Touch {
                id: i as i64 + 1,
                touch_type: TYPES[*t as usize].into(),
                campaign_id: (*c > 0).then_some(i64::from(*c)),
                occurred_at: day(1, 0) + chrono::Duration::minutes(i64::from(*m)),
            })
            .collect()
    }

    fn capped_model(half_life_days: i64) -> Model {
        let mut m = Model {
            half_life_seconds: half_life_days * SECONDS_PER_DAY,
            ..Model::default()
        };
        for r in &mut m.activity_rules {
            if r.touch_type == "PAGE_VIEW" {
                r.daily_cap = Some(7);
            }
        }
        m.activity_rules.push(ActivityRule {
            touch_type: "EMAIL_OPEN".into(),
            campaign_id: Some(2),
            points: 9,
            daily_cap: None,
        });
        m
    }

    proptest! {
        /// The stored value, built by adding touches one by one in arrival order (any order),
        /// equals the direct sum over the touches at any later time.
        #[test]
        fn stored_value_equals_the_direct_sum(raw in arb_touches(), half_life in 1i64..90, extra in 0u32..200_000) {
            let model = capped_model(half_life);
            let touches = build(&raw);
            // Earned points in time order (caps), then added in arrival order.
            let mut sorted = touches.clone();
            sorted.sort_by_key(|t| (t.occurred_at, t.id));
            let earned: HashMap<i64, i32> = model.earned(&sorted).into_iter().zip(&sorted).map(|((_, e), t)| (t.id, e)).collect();
            let stored = touches.iter().fold(Activity::default(), |a, t| a.add(f64::from(earned[&t.id]), t.occurred_at, model.half_life_seconds));
            prop_assert_eq!(stored.at, model.activity(&touches).at);
            let last = touches.iter().map(|t| t.occurred_at).max().unwrap_or(day(1, 0));
            let t = last + chrono::Duration::minutes(i64::from(extra));
            let (direct, _) = model.contributions(&touches, t);
            prop_assert!(close(stored.at(t, model.half_life_seconds), direct), "{} vs {}", stored.at(t, model.half_life_seconds), direct);
            prop_assert!(close(model.activity(&touches).at(t, model.half_life_seconds), direct));
            // The band from the key is the band of the direct sum (away from the boundaries).
            let bounds = model.band_bounds(t);
            let by_key = band(stored.key(model.half_life_seconds), bounds);
            let thresholds = model.activity_bands.map(f64::from);
            let near = thresholds.iter().any(|b| (direct - b).abs() < 1e-6);
            let by_value = if direct >= thresholds[0] { 1 } else if direct >= thresholds[1] { 2 } else if direct >= thresholds[2] { 3 } else { 4 };
            prop_assert!(near || by_key == by_value);
        }
    }
}
