//! Handoff, stage-history and routing queries.
use chrono::{DateTime, Utc};
use entity::{handoff, lead_stage_history, routing_rule};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, QuerySelect, Select};

use super::Scoped;
use crate::domain::handoff::HandoffStatus;

/// Filters of the `handoffs` list; every set field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct HandoffFilter {
    pub statuses: Option<Vec<String>>,
    pub owner_id: Option<i64>,
    pub lead_id: Option<i64>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Pending past their SLA deadline as of this time (`Some(now)` for `overdue: true`).
    pub overdue_at: Option<DateTime<Utc>>,
    /// Pending and not (yet) past their deadline as of this time (`overdue: false`).
    pub on_time_at: Option<DateTime<Utc>>,
}

pub fn select(ws: i64, f: &HandoffFilter) -> Select<handoff::Entity> {
    use handoff::Column as C;
    let mut s = handoff::Entity::in_workspace(ws);
    if let Some(v) = &f.statuses {
        s = s.filter(C::Status.is_in(v.iter().cloned()));
    }
    if let Some(id) = f.owner_id {
        s = s.filter(C::OwnerId.eq(id));
    }
    if let Some(id) = f.lead_id {
        s = s.filter(C::LeadId.eq(id));
    }
    if let Some(t) = f.created_from {
        s = s.filter(C::CreatedAt.gte(t));
    }
    if let Some(t) = f.created_to {
        s = s.filter(C::CreatedAt.lt(t));
    }
    if let Some(now) = f.overdue_at {
        s = s.filter(C::Status.eq(HandoffStatus::Pending.as_str())).filter(C::DueAt.lt(now));
    }
    if let Some(now) = f.on_time_at {
        s = s
            .filter(C::Status.eq(HandoffStatus::Pending.as_str()))
            .filter(C::DueAt.is_null().or(C::DueAt.gte(now)));
    }
    s
}

/// The open (pending) handoff of a lead, if any.
pub async fn open_of_lead(db: &impl ConnectionTrait, ws: i64, lead_id: i64) -> Result<Option<handoff::Model>, DbErr> {
    handoff::Entity::in_workspace(ws)
        .filter(handoff::Column::OpenLeadId.eq(lead_id))
        .one(db)
        .await
}

/// The routing rules of a workspace, first match first.
pub async fn rules(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<routing_rule::Model>, DbErr> {
    routing_rule::Entity::in_workspace(ws)
        .order_by_asc(routing_rule::Column::Position)
        .order_by_asc(routing_rule::Column::Id)
        .all(db)
        .await
}

/// The stage-history rows of some leads, oldest first per lead.
pub async fn history_of(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<Vec<lead_stage_history::Model>, DbErr> {
    use lead_stage_history::Column as C;
    lead_stage_history::Entity::in_workspace(ws)
        .filter(super::id_in(db, C::LeadId, lead_ids))
        .order_by_asc(C::LeadId)
        .order_by_asc(C::ChangedAt)
        .order_by_asc(C::Id)
        .all(db)
        .await
}

/// What `handoffStats` needs of the handoffs created in a range (of one owner's, when given).
pub async fn for_stats(
    db: &impl ConnectionTrait,
    ws: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner_id: Option<i64>,
) -> Result<Vec<(String, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>, DbErr> {
    use handoff::Column as C;
    let filter = HandoffFilter {
        owner_id,
        created_from: Some(from),
        created_to: Some(to),
        ..Default::default()
    };
    select(ws, &filter)
        .select_only()
        .columns([C::Status, C::ReasonCode, C::CreatedAt, C::RespondedAt, C::DueAt])
        .into_tuple()
        .all(db)
        .await
}
