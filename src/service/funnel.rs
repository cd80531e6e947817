//! The funnel: stages agreed by marketing and sales (ADMIN edits them), and moving leads
//! between them. Every move writes a stage-history row.
use chrono::{DateTime, Utc};
use entity::{funnel_stage, handoff, lead, lead_stage_history};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
};

use super::{Patch, author, clean};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::{ChangeKind, FieldChange};
use crate::domain::handoff::MQL;
use crate::domain::vocab::{DEFAULT_STAGES, STAGE_SIDE, STAGE_SUCCESS, normalize_code};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::changes::Author;
use crate::store::{self, Scoped};

/// A new stage. `position` is where it goes (0 first); the stages from there on move down one.
#[derive(Debug, Clone)]
pub struct NewStage {
    pub key: String,
    pub name: String,
    pub success: bool,
    pub position: Option<i32>,
    pub sla_hours: Option<i32>,
}

/// Whether a stage key is one the handoff machine and the reports rely on.
pub fn is_builtin(key: &str) -> bool {
    DEFAULT_STAGES.iter().any(|(k, _, _)| *k == key)
}

fn check_sla(v: &mut Validator, sla: Option<i32>) {
    if let Some(h) = sla
        && !(1..=8760).contains(&h)
    {
        v.push(&["input", "slaHours"], "INVALID", "must be between 1 and 8760 hours");
    }
}

pub async fn create_stage(db: &Db, p: Principal, input: NewStage) -> ServiceResult<funnel_stage::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let key = normalize_code(&input.key);
    if key.is_none() {
        v.push(&["input", "key"], "INVALID", "use letters, digits and underscores (at most 64)");
    }
    let name = clean(Some(input.name));
    if name.is_none() {
        v.push(&["input", "name"], "REQUIRED", "a stage needs a name");
    }
    check_sla(&mut v, input.sla_hours);
    let txn = db.begin_write(ws).await?;
    let stages = store::workspace::stages(&*txn, ws).await?;
    if let Some(k) = &key
        && stages.iter().any(|s| &s.key == k)
    {
        v.push(&["input", "key"], "TAKEN", format!("the funnel has a stage {k} already"));
    }
    let end = stages.len() as i32;
    let position = input.position.unwrap_or(end);
    if !(0..=end).contains(&position) {
        v.push(&["input", "position"], "INVALID", format!("must be between 0 and {end}"));
    }
    v.finish()?;
    let now = Utc::now();
    // Make room: the stages from `position` on move down one.
    for s in stages.into_iter().filter(|s| s.position >= position) {
        let mut am = s.into_active_model();
        let next = *am.position.as_ref() + 1;
        am.position = Set(next);
        am.updated_at = Set(now);
        am.update(&*txn).await?;
    }
    let stage = funnel_stage::ActiveModel {
        workspace_id: Set(ws),
        key: Set(key.expect("validated")),
        name: Set(name.expect("validated")),
        kind: Set(if input.success { STAGE_SUCCESS } else { STAGE_SIDE }.to_owned()),
        position: Set(position),
        sla_hours: Set(input.sla_hours),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    txn.commit().await?;
    Ok(stage)
}

/// Changes a stage's name, kind or SLA. The key stays (reports and integrations use it); the
/// kind of a built-in stage stays too, since the handoff machine relies on it.
pub async fn update_stage(
    db: &Db,
    p: Principal,
    id: i64,
    name: Option<String>,
    success: Option<bool>,
    sla_hours: Patch<i32>,
) -> ServiceResult<funnel_stage::Model> {
    let mut v = Validator::default();
    check_sla(&mut v, sla_hours.as_set().copied());
    let txn = db.begin_write(p.workspace_id).await?;
    let stage = store::by_id::<funnel_stage::Entity>(&*txn, p.workspace_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("funnel stage"))?;
    let name = match name {
        Some(n) => match clean(Some(n)) {
            Some(n) => Some(n),
            None => {
                v.push(&["input", "name"], "REQUIRED", "a stage needs a name");
                None
            }
        },
        None => None,
    };
    let kind = success.map(|s| if s { STAGE_SUCCESS } else { STAGE_SIDE });
    if let Some(k) = kind
        && k != stage.kind
        && is_builtin(&stage.key)
    {
        v.push(
            &["input", "success"],
            "BUILT_IN",
            format!("{} is a built-in stage; its kind stays", stage.key),
        );
    }
    v.finish()?;
    let mut next = stage.clone();
    let mut changed = false;
    if let Some(n) = name {
        changed |= next.name != n;
        next.name = n;
    }
    if let Some(k) = kind {
        changed |= next.kind != k;
        next.kind = k.to_owned();
    }
    changed |= sla_hours.apply(&mut next.sla_hours);
    if !changed {
        return Ok(stage);
    }
    next.updated_at = Utc::now();
    let saved = next.into_active_model().reset_all().update(&*txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// Puts the stages in the given order; `ids` must name every stage of the funnel once.
pub async fn reorder(db: &Db, p: Principal, ids: &[i64]) -> ServiceResult<Vec<funnel_stage::Model>> {
    let txn = db.begin_write(p.workspace_id).await?;
    let stages = store::workspace::stages(&*txn, p.workspace_id).await?;
    let mut wanted: Vec<i64> = ids.to_vec();
    wanted.sort_unstable();
    let mut have: Vec<i64> = stages.iter().map(|s| s.id).collect();
    have.sort_unstable();
    if wanted != have {
        return Err(ServiceError::invalid(
            &["input", "stageIds"],
            "INVALID",
            format!("name each of the funnel's {} stages exactly once", have.len()),
        ));
    }
    let now = Utc::now();
    let mut out = Vec::with_capacity(stages.len());
    for s in stages {
        let position = ids.iter().position(|id| *id == s.id).expect("checked") as i32;
        if s.position == position {
            out.push(s);
            continue;
        }
        let mut am = s.into_active_model();
        am.position = Set(position);
        am.updated_at = Set(now);
        out.push(am.update(&*txn).await?);
    }
    out.sort_by_key(|s| s.position);
    txn.commit().await?;
    Ok(out)
}

/// Deletes a stage nobody uses: no lead in it, none ever moved through it, not built in.
pub async fn delete_stage(db: &Db, p: Principal, id: i64) -> ServiceResult<funnel_stage::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let stage = store::by_id::<funnel_stage::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("funnel stage"))?;
    if is_builtin(&stage.key) {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "BUILT_IN",
            format!("{} is a built-in stage of the handoff loop", stage.key),
        ));
    }
    let leads = lead::Entity::in_workspace(ws)
        .filter(lead::Column::StageId.eq(id))
        .count(&*txn)
        .await?;
    let history = lead_stage_history::Entity::in_workspace(ws)
        .filter(
            lead_stage_history::Column::ToStageId
                .eq(id)
                .or(lead_stage_history::Column::FromStageId.eq(id)),
        )
        .count(&*txn)
        .await?;
    let handoffs = handoff::Entity::in_workspace(ws)
        .filter(handoff::Column::FromStageId.eq(id))
        .count(&*txn)
        .await?;
    if leads + history + handoffs > 0 {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "IN_USE",
            format!("{leads} leads are in the stage and {history} history rows refer to it"),
        ));
    }
    funnel_stage::Entity::delete_by_id(id).exec(&*txn).await?;
    // Close the gap in the order.
    for s in store::workspace::stages(&*txn, ws)
        .await?
        .into_iter()
        .filter(|s| s.position > stage.position)
    {
        let mut am = s.into_active_model();
        let next = *am.position.as_ref() - 1;
        am.position = Set(next);
        am.update(&*txn).await?;
    }
    txn.commit().await?;
    Ok(stage)
}

/// Moves a lead to a stage inside the caller's transaction: the lead row and a history row.
/// Entering MQL for the first time sets `convertedAt`.
pub async fn move_lead(
    db: &impl ConnectionTrait,
    current: lead::Model,
    to: &funnel_stage::Model,
    at: DateTime<Utc>,
    by: &Author,
    reason: Option<&str>,
) -> Result<lead::Model, AppError> {
    let from = current.stage_id;
    let mut next = current.clone();
    next.stage_id = to.id;
    let converts = to.key == MQL && current.converted_at.is_none();
    if converts {
        next.converted_at = Some(at);
    }
    // The stage keys as they are at the move (a stage may be renamed or deleted later).
    let from_key = store::by_id::<funnel_stage::Entity>(db, current.workspace_id, from)
        .await?
        .map(|s| s.key);
    let extra = vec![
        FieldChange {
            field: "stage".into(),
            old: from_key.map_or(serde_json::Value::Null, serde_json::Value::String),
            new: serde_json::Value::String(to.key.clone()),
        },
        FieldChange {
            field: "reason".into(),
            old: serde_json::Value::Null,
            new: reason.map_or(serde_json::Value::Null, |r| serde_json::Value::String(r.to_owned())),
        },
    ];
    let saved = Box::pin(super::lead::save_with(db, by, ChangeKind::StageChanged, current, next, extra)).await?;
    super::lead::record_stage(db, &saved, Some(from), to.id, at, &by.actor, reason).await?;
    if converts {
        // W_SHAPED and FULL_PATH key on when a deal's primary contact converted.
        super::attribution::lead_changed(db, saved.workspace_id, saved.id).await?;
    }
    Ok(saved)
}

/// A manual move (`moveLeadToStage`). Refused: a stage of another workspace (not found), the
/// stage the lead is in (no silent no-op), and a lead with an open handoff (answer it instead).
pub async fn move_lead_to_stage(db: &Db, p: Principal, lead_id: i64, stage_id: i64, reason: Option<String>) -> ServiceResult<lead::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let current = super::lead::live_lead(&*txn, ws, lead_id).await?;
    let Some(stage) = store::by_id::<funnel_stage::Entity>(&*txn, ws, stage_id).await? else {
        return Err(ServiceError::invalid(&["input", "stageId"], "NOT_FOUND", "no such funnel stage"));
    };
    if current.stage_id == stage.id {
        return Err(ServiceError::invalid(
            &["input", "stageId"],
            "NO_CHANGE",
            format!("the lead is in {} already", stage.key),
        ));
    }
    if store::handoff::open_of_lead(&*txn, ws, lead_id).await?.is_some() {
        return Err(ServiceError::invalid(
            &["input", "leadId"],
            "HANDOFF_OPEN",
            "the lead has a pending handoff; accept, reject or recycle it first",
        ));
    }
    let reason = clean(reason);
    let saved = move_lead(
        &*txn,
        current,
        &stage,
        Utc::now(),
        &author(&p),
        reason.as_deref().or(Some("manual move")),
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}
