//! The handoff state machine: marketing hands a qualified lead to sales, sales answers once.
//!
//! ```text
//!            handOffLead                 acceptHandoff
//!  (any) ───────────────▶ PENDING ──────────────────────▶ ACCEPTED   lead -> SQL
//!                         │  ▲  │      rejectHandoff
//!          reassignHandoff└──┘  ├──────────────────────▶ REJECTED   lead -> DISQUALIFIED
//!                               │      recycleHandoff
//!                               └──────────────────────▶ RECYCLED   lead -> NURTURE
//! ```
//! Handing off moves the lead to MQL. Only a PENDING handoff can be answered or reassigned; a
//! lead has at most one PENDING handoff (the database enforces it).
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{event_cursor, global_id};

use super::vocab::{normalize_code, string_enum};

string_enum!(HandoffStatus { Pending => "PENDING", Accepted => "ACCEPTED", Rejected => "REJECTED", Recycled => "RECYCLED" });
string_enum!(EventKind {
    Created => "CREATED", Accepted => "ACCEPTED", Rejected => "REJECTED", Recycled => "RECYCLED", Reassigned => "REASSIGNED",
});

/// The stage keys the machine moves leads to.
pub const MQL: &str = "MQL";
pub const SQL: &str = "SQL";
pub const NURTURE: &str = "NURTURE";
pub const DISQUALIFIED: &str = "DISQUALIFIED";

/// Vocabulary kind of the reasons sales gives for a rejection.
pub const VOCAB_REJECT_REASON: &str = "REJECT_REASON";
pub const DEFAULT_REJECT_REASONS: &[&str] = &["NO_BUDGET", "NO_NEED", "WRONG_CONTACT", "COMPETITOR", "DUPLICATE", "OTHER"];

/// What a handoff event says, as stored in the event row (internal IDs; stage keys as well as
/// IDs, so that the event reads correctly even after the funnel is edited).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffEventData {
    pub handoff_id: i64,
    pub lead_id: i64,
    pub owner_id: Option<i64>,
    /// Set on REASSIGNED: who owned the handoff before.
    pub previous_owner_id: Option<i64>,
    pub from_stage_id: Option<i64>,
    pub from_stage: Option<String>,
    pub to_stage_id: Option<i64>,
    pub to_stage: Option<String>,
    /// The handoff's status after the change.
    pub status: String,
    pub note: Option<String>,
    pub reason_code: Option<String>,
    /// Sales' words: the rejection comment or the recycling feedback.
    pub feedback: Option<String>,
    pub nurture_until: Option<DateTime<Utc>>,
    /// The lead's scoring cell (e.g. "A1") when a default scoring model knows it.
    pub scoring_cell: Option<String>,
    pub actor: String,
}

impl HandoffEventData {
    /// The event as webhooks receive it: global IDs, the cursor, RFC 3339 times.
    pub fn public_json(&self, kind: &str, seq: i64, occurred_at: DateTime<Utc>) -> serde_json::Value {
        let user = |id: Option<i64>| id.map(|i| global_id("User", i));
        let stage =
            |id: Option<i64>, key: &Option<String>| id.map(|i| serde_json::json!({ "id": global_id("FunnelStage", i), "key": key }));
        serde_json::json!({
            "cursor": event_cursor(seq),
            "seq": seq,
            "kind": kind,
            "occurredAt": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "handoffId": global_id("Handoff", self.handoff_id),
            "leadId": global_id("Lead", self.lead_id),
            "status": self.status,
            "ownerId": user(self.owner_id),
            "previousOwnerId": user(self.previous_owner_id),
            "fromStage": stage(self.from_stage_id, &self.from_stage),
            "toStage": stage(self.to_stage_id, &self.to_stage),
            "note": self.note,
            "reasonCode": self.reason_code,
            "feedback": self.feedback,
            "nurtureUntil": self.nurture_until.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            "scoringCell": self.scoring_cell,
            "actor": self.actor,
        })
    }
}

/// Sales' answer to a pending handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    Recycle,
}

impl Answer {
    pub fn status(self) -> HandoffStatus {
        match self {
            Answer::Accept => HandoffStatus::Accepted,
            Answer::Reject => HandoffStatus::Rejected,
            Answer::Recycle => HandoffStatus::Recycled,
        }
    }

    pub fn event(self) -> EventKind {
        match self {
            Answer::Accept => EventKind::Accepted,
            Answer::Reject => EventKind::Rejected,
            Answer::Recycle => EventKind::Recycled,
        }
    }

    /// The stage the lead moves to.
    pub fn stage_key(self) -> &'static str {
        match self {
            Answer::Accept => SQL,
            Answer::Reject => DISQUALIFIED,
            Answer::Recycle => NURTURE,
        }
    }
}

/// Why a handoff cannot take a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// It was answered already (the status it has).
    NotPending(HandoffStatus),
}

/// Checks that a handoff in `status` can be answered or reassigned.
pub fn check_pending(status: HandoffStatus) -> Result<(), StepError> {
    match status {
        HandoffStatus::Pending => Ok(()),
        done => Err(StepError::NotPending(done)),
    }
}

/// When sales must have answered: `sla_hours` after the handoff, if the MQL stage has an SLA.
pub fn due_at(created_at: DateTime<Utc>, sla_hours: Option<i32>) -> Option<DateTime<Utc>> {
    sla_hours.filter(|h| *h > 0).map(|h| created_at + TimeDelta::hours(i64::from(h)))
}

/// Whether a handoff breached its SLA as of `now`: answered after its deadline, or still
/// pending past it.
pub fn breached(due_at: Option<DateTime<Utc>>, responded_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    match (due_at, responded_at) {
        (None, _) => false,
        (Some(due), Some(answered)) => answered > due,
        (Some(due), None) => now > due,
    }
}

/// A routing rule as the router sees it: conditions and the users it assigns in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// ISO codes; `None` matches every country.
    pub countries: Option<Vec<String>>,
    /// The persona the lead must match; `None` matches every lead.
    pub persona_id: Option<i64>,
    pub user_ids: Vec<i64>,
    /// Index of the next owner in `user_ids`.
    pub next_index: i32,
}

/// The first rule that matches a lead (by country and persona) and the owner it assigns, with
/// the rule's next round-robin index. `None`: no rule matches, the default owner applies.
pub fn route(rules: &[Rule], country: Option<&str>, personas: &[i64]) -> Option<(usize, i64, i32)> {
    rules.iter().enumerate().find_map(|(i, r)| {
        let country_ok = match (&r.countries, country) {
            (None, _) => true,
            (Some(list), Some(c)) => list.iter().any(|x| x.eq_ignore_ascii_case(c)),
            (Some(_), None) => false,
        };
        let persona_ok = r.persona_id.is_none_or(|p| personas.contains(&p));
        if !(country_ok && persona_ok) || r.user_ids.is_empty() {
            return None;
        }
        let n = r.user_ids.len();
        let at = usize::try_from(r.next_index).unwrap_or(0) % n;
        Some((i, r.user_ids[at], ((at + 1) % n) as i32))
    })
}

/// A reason code as stored (canonical SCREAMING_SNAKE_CASE), if it can be one.
pub fn reason_code(raw: &str) -> Option<String> {
    normalize_code(raw)
}

/// Median and a percentile of durations in seconds (nearest rank: the smallest value with at
/// least `p` percent of the values at or below it). The median of an even count is the mean of
/// the two middle values, rounded down to the second.
pub fn median_seconds(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]).div_euclid(2)),
    }
}

/// Nearest-rank percentile (`p` in 1..=100) of sorted values.
pub fn percentile_seconds(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_handoffs_take_a_step() {
        assert_eq!(check_pending(HandoffStatus::Pending), Ok(()));
        assert_eq!(
            check_pending(HandoffStatus::Accepted),
            Err(StepError::NotPending(HandoffStatus::Accepted))
        );
        assert_eq!(Answer::Recycle.stage_key(), "NURTURE");
        assert_eq!(Answer::Reject.event(), EventKind::Rejected);
    }

    #[test]
    fn sla_deadlines() {
        let t = DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z").unwrap().to_utc();
        let due = due_at(t, Some(48));
        assert_eq!(due, Some(t + TimeDelta::hours(48)));
        assert_eq!(due_at(t, None), None);
        assert!(!breached(due, Some(t + TimeDelta::hours(48)), t + TimeDelta::days(9)));
        assert!(breached(due, Some(t + TimeDelta::hours(49)), t));
        assert!(breached(due, None, t + TimeDelta::hours(50)));
        assert!(!breached(None, None, t + TimeDelta::days(400)));
    }

    #[test]
    fn first_matching_rule_wins_and_turns_round() {
        let rules = vec![
            Rule {
                countries: Some(vec!["FR".into()]),
                persona_id: None,
                user_ids: vec![7],
                next_index: 0,
            },
            Rule {
                countries: None,
                persona_id: Some(3),
                user_ids: vec![8],
                next_index: 0,
            },
            Rule {
                countries: None,
                persona_id: None,
                user_ids: vec![1, 2, 3],
                next_index: 2,
            },
        ];
        assert_eq!(route(&rules, Some("fr"), &[3]), Some((0, 7, 0)));
        assert_eq!(route(&rules, Some("DE"), &[3]), Some((1, 8, 0)));
        // Round-robin: index 2 gives user 3 and wraps to 0.
        assert_eq!(route(&rules, None, &[]), Some((2, 3, 0)));
        assert_eq!(route(&rules[..2], Some("DE"), &[]), None);
    }

    #[test]
    fn median_and_percentile_by_hand() {
        assert_eq!(median_seconds(&[]), None);
        assert_eq!(median_seconds(&[5]), Some(5));
        assert_eq!(median_seconds(&[1, 2, 10, 11]), Some(6));
        let ten: Vec<i64> = (1..=10).collect();
        // 90% of 10 values: rank 9.
        assert_eq!(percentile_seconds(&ten, 90), Some(9));
        assert_eq!(percentile_seconds(&[4, 8], 90), Some(8));
        assert_eq!(percentile_seconds(&[4], 1), Some(4));
    }
}
