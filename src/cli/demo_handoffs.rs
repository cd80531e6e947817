//! The demo's handoff loop: routing rules per subsidiary, a 48-hour SLA on MQLs, and a handoff
//! (with its events) for every time a demo lead became an MQL, answered the way its stage
//! history went on: to SQL or later (accepted), Disqualified (rejected with a reason), Nurture
//! (recycled with feedback), or not yet (pending; MQLs older than a month were answered by
//! sales: rejected with a reason or recycled, which moves the lead on). Marketing nurtures an MQL
//! for days before it hands it off; sales answers within hours, so that time in MQL is days and
//! time to accept is hours, as in a real loop.
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use entity::{event, funnel_stage, handoff, lead, lead_stage_history, routing_rule, user, workspace};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::demo::SUBSIDIARIES;
use crate::BoxError;
use crate::domain::handoff::{EventKind, HandoffEventData, HandoffStatus, MQL};
use crate::domain::vocab::STAGE_SUCCESS;
use crate::store::Scoped;

const SLA_HOURS: i32 = 120;
/// MQLs older than this at the demo's "now" that the stage history leaves in MQL were answered:
/// rejected or recycled a few days after the handoff (written to the history as well).
const STALE_DAYS: i64 = 30;
const ACTOR: &str = "import";
const REASONS: &[&str] = &[
    "NO_BUDGET",
    "NO_NEED",
    "NO_BUDGET",
    "WRONG_CONTACT",
    "COMPETITOR",
    "DUPLICATE",
    "NO_NEED",
    "OTHER",
];
const FEEDBACK: &[&str] = &[
    "Interested, but the investment is planned for next year; call again after the budget round.",
    "Only collecting information for a study; nurture with the HydroStat case studies.",
    "Wants to see the unit at the trade fair first.",
    "The plant is being rebuilt; no decisions before the summer.",
];

/// How long sales took to answer a handoff: 1 to 48 hours, mostly few, from a hash of the lead.
fn answer_delay(lead_id: i64) -> TimeDelta {
    let u = ((lead_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 1_000;
    TimeDelta::minutes(60 + (u * u * 47 * 60 / 1_000_000) as i64)
}

/// One handoff to write and its events.
struct Planned {
    lead_id: i64,
    owner_id: Option<i64>,
    rule_id: Option<i64>,
    from_stage: i64,
    created_at: DateTime<Utc>,
    /// (status, answered at, stage after) when sales answered.
    answer: Option<(HandoffStatus, DateTime<Utc>, i64)>,
    reason: Option<String>,
    feedback: Option<String>,
}

/// Writes the handoff loop of the demo whose "now" is `now`.
pub async fn write(db: &impl ConnectionTrait, ws: i64, now: DateTime<Utc>) -> Result<u64, BoxError> {
    funnel_stage::Entity::update_many()
        .col_expr(funnel_stage::Column::SlaHours, Expr::value(SLA_HOURS))
        .filter(funnel_stage::Column::WorkspaceId.eq(ws))
        .filter(funnel_stage::Column::Key.eq(MQL))
        .exec(db)
        .await?;
    let stages: HashMap<i64, funnel_stage::Model> = crate::store::workspace::stages(db, ws)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let key_of = |id: i64| stages.get(&id).map(|s| s.key.clone());
    let mql = stages
        .values()
        .find(|s| s.key == MQL)
        .ok_or("the demo funnel has no MQL stage")?
        .clone();
    let users: HashMap<String, i64> = user::Entity::in_workspace(ws)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|u| Some((u.external_id?, u.id)))
        .collect();

    // One routing rule per subsidiary: its markets, its reps in turn; Katrin Becker by default.
    let mut rule_of_country: HashMap<&str, i64> = HashMap::new();
    for (i, s) in SUBSIDIARIES.iter().enumerate() {
        let reps: Vec<i64> = (1..=s.reps.len())
            .filter_map(|n| users.get(&format!("rep-{}-{n}", s.country.to_lowercase())).copied())
            .collect();
        let rule = routing_rule::Entity::insert(routing_rule::ActiveModel {
            workspace_id: Set(ws),
            position: Set(i as i32),
            name: Set(format!("{} ({})", s.company, s.markets.join(", "))),
            countries: Set(Some(serde_json::json!(s.markets))),
            persona_id: Set(None),
            user_ids: Set(serde_json::json!(reps)),
            next_index: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec_with_returning(db)
        .await?;
        for m in s.markets {
            rule_of_country.insert(m, rule.id);
        }
    }
    workspace::Entity::update_many()
        .col_expr(workspace::Column::HandoffOwnerId, Expr::value(users.get("rep-de-1").copied()))
        .filter(workspace::Column::Id.eq(ws))
        .exec(db)
        .await?;

    // Every entry into MQL, and what followed it.
    let leads: HashMap<i64, lead::Model> = lead::Entity::in_workspace(ws)
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let history = lead_stage_history::Entity::in_workspace(ws)
        .order_by_asc(lead_stage_history::Column::LeadId)
        .order_by_asc(lead_stage_history::Column::ChangedAt)
        .order_by_asc(lead_stage_history::Column::Id)
        .all(db)
        .await?;
    let stage_id = |key: &str| stages.values().find(|s| s.key == key).map(|s| s.id);
    let (disqualified, nurture) = (
        stage_id("DISQUALIFIED").ok_or("no DISQUALIFIED stage")?,
        stage_id("NURTURE").ok_or("no NURTURE stage")?,
    );
    // Leads moved on from a stale MQL: (lead, stage, at).
    let mut moved: Vec<(i64, i64, DateTime<Utc>)> = Vec::new();
    let mut planned = Vec::new();
    for (i, row) in history.iter().enumerate() {
        if row.to_stage_id != mql.id {
            continue;
        }
        let Some(l) = leads.get(&row.lead_id) else { continue };
        let next = history.get(i + 1).filter(|n| n.lead_id == row.lead_id);
        let mut answer = next.map(|n| {
            let to = stages.get(&n.to_stage_id);
            let status = match to.map(|s| (s.key.as_str(), s.kind.as_str())) {
                Some(("DISQUALIFIED", _)) => HandoffStatus::Rejected,
                Some(("NURTURE", _)) => HandoffStatus::Recycled,
                Some((_, STAGE_SUCCESS)) => HandoffStatus::Accepted,
                _ => HandoffStatus::Recycled,
            };
            (status, n.changed_at, n.to_stage_id)
        });
        if answer.is_none() && row.changed_at < now - TimeDelta::days(STALE_DAYS) {
            // Two in three rejected, one in three recycled, one to six days later.
            let h = (row.lead_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
            let at = row.changed_at + TimeDelta::hours(24 + (h % 120) as i64);
            let (status, to) = if h.is_multiple_of(3) {
                (HandoffStatus::Recycled, nurture)
            } else {
                (HandoffStatus::Rejected, disqualified)
            };
            answer = Some((status, at, to));
            moved.push((row.lead_id, to, at));
        }
        let pick = |list: &[&str]| list[(row.lead_id as usize) % list.len()].to_owned();
        // Handed off a few hours before sales answered it, not before it became an MQL.
        let created_at = match (next, answer) {
            (Some(_), Some((_, at, _))) => (at - answer_delay(row.lead_id)).max(row.changed_at),
            _ => row.changed_at,
        };
        planned.push(Planned {
            lead_id: l.id,
            owner_id: l.owner_id,
            rule_id: l.country.as_deref().and_then(|c| rule_of_country.get(c).copied()),
            from_stage: if created_at > row.changed_at {
                mql.id
            } else {
                row.from_stage_id.unwrap_or(row.to_stage_id)
            },
            created_at,
            reason: matches!(answer, Some((HandoffStatus::Rejected, ..))).then(|| pick(REASONS)),
            feedback: matches!(answer, Some((HandoffStatus::Recycled, ..))).then(|| pick(FEEDBACK)),
            answer,
        });
    }

    for (lead_id, to, at) in &moved {
        lead_stage_history::Entity::insert(lead_stage_history::ActiveModel {
            workspace_id: Set(ws),
            lead_id: Set(*lead_id),
            from_stage_id: Set(Some(mql.id)),
            to_stage_id: Set(*to),
            changed_at: Set(*at),
            actor: Set(ACTOR.into()),
            reason: Set(Some(
                if *to == disqualified {
                    "handoff rejected"
                } else {
                    "handoff recycled"
                }
                .into(),
            )),
            created_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
        lead::Entity::update_many()
            .col_expr(lead::Column::StageId, Expr::value(*to))
            .filter(lead::Column::Id.eq(*lead_id))
            .exec(db)
            .await?;
    }

    // Events are numbered in the order they happened.
    let mut events: Vec<(DateTime<Utc>, usize, EventKind)> = Vec::new();
    let mut ids = Vec::with_capacity(planned.len());
    for (n, p) in planned.iter().enumerate() {
        let pending = p.answer.is_none();
        let row = handoff::Entity::insert(handoff::ActiveModel {
            workspace_id: Set(ws),
            lead_id: Set(p.lead_id),
            open_lead_id: Set(pending.then_some(p.lead_id)),
            status: Set(p.answer.map_or(HandoffStatus::Pending, |a| a.0).as_str().to_owned()),
            owner_id: Set(p.owner_id),
            note: Set(Some("qualified by marketing".into())),
            reason_code: Set(p.reason.clone()),
            feedback: Set(p.feedback.clone()),
            nurture_until: Set(None),
            created_by: Set(ACTOR.into()),
            responded_at: Set(p.answer.map(|a| a.1)),
            created_at: Set(p.created_at),
            updated_at: Set(p.answer.map_or(p.created_at, |a| a.1)),
            from_stage_id: Set(Some(p.from_stage)),
            routing_rule_id: Set(p.rule_id),
            due_at: Set(Some(p.created_at + TimeDelta::hours(i64::from(SLA_HOURS)))),
            responded_by: Set(p.answer.map(|_| ACTOR.to_owned())),
            ..Default::default()
        })
        .exec(db)
        .await?;
        ids.push(row.last_insert_id);
        events.push((p.created_at, n, EventKind::Created));
        if let Some((status, at, _)) = p.answer {
            let kind = match status {
                HandoffStatus::Accepted => EventKind::Accepted,
                HandoffStatus::Rejected => EventKind::Rejected,
                _ => EventKind::Recycled,
            };
            events.push((at, n, kind));
        }
    }
    events.sort_by_key(|(at, n, kind)| (*at, *n, *kind != EventKind::Created));
    let mut rows = Vec::with_capacity(events.len());
    for (seq, (at, n, kind)) in events.iter().enumerate() {
        let p = &planned[*n];
        let (from, to, status) = match (kind, p.answer) {
            (EventKind::Created, _) => (p.from_stage, mql.id, HandoffStatus::Pending),
            (_, Some((status, _, to))) => (mql.id, to, status),
            _ => continue,
        };
        let data = HandoffEventData {
            handoff_id: ids[*n],
            lead_id: p.lead_id,
            owner_id: p.owner_id,
            from_stage_id: Some(from),
            from_stage: key_of(from),
            to_stage_id: Some(to),
            to_stage: key_of(to),
            status: status.as_str().to_owned(),
            note: Some("qualified by marketing".into()),
            reason_code: (*kind == EventKind::Rejected).then(|| p.reason.clone()).flatten(),
            feedback: (*kind == EventKind::Recycled).then(|| p.feedback.clone()).flatten(),
            actor: ACTOR.into(),
            ..Default::default()
        };
        rows.push(event::ActiveModel {
            workspace_id: Set(ws),
            seq: Set(seq as i64 + 1),
            kind: Set(kind.as_str().to_owned()),
            handoff_id: Set(Some(ids[*n])),
            lead_id: Set(Some(p.lead_id)),
            payload: Set(serde_json::to_value(&data)?),
            created_at: Set(*at),
            ..Default::default()
        });
    }
    let count = rows.len() as i64;
    for chunk in rows.chunks(500) {
        event::Entity::insert_many(chunk.to_vec()).exec(db).await?;
    }
    let backend = db.get_database_backend();
    db.execute_raw(crate::store::raw::statement(
        backend,
        "INSERT INTO event_counters (workspace_id, seq) VALUES (?, ?)",
        vec![ws.into(), count.into()],
    ))
    .await?;
    Ok(planned.len() as u64)
}
