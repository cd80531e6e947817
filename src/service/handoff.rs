//! The handoff loop: marketing hands a lead to sales, routing picks the owner, sales answers.
//! Each step is one transaction with its stage-history row and its event; the event is
//! published to this process's subscribers after the commit.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{funnel_stage, handoff, lead, routing_rule, user, workspace};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{Patch, actor, author, clean};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::handoff::{self as machine, Answer, EventKind, HandoffEventData, HandoffStatus, MQL, VOCAB_REJECT_REASON};
use crate::domain::vocab::{Role, STAGE_SUCCESS};
use crate::error::{AppError, ServiceError, ServiceResult, Validator, is_unique_violation};
use crate::events::changes::Author;
use crate::events::{self, Bus, Notice};
use crate::service::account::{COUNTRY_HINT, country_code};
use crate::service::funnel::move_lead;
use crate::service::lead::live_lead;
use crate::store::{self, Scoped};

/// What a step of the loop produced: the handoff as it is now, and its event.
pub struct Step {
    pub handoff: handoff::Model,
    pub event: Arc<entity::event::Model>,
}

fn stage<'a>(stages: &'a [funnel_stage::Model], key: &str) -> Result<&'a funnel_stage::Model, AppError> {
    stages
        .iter()
        .find(|s| s.key == key)
        .ok_or_else(|| AppError::internal(format!("the funnel has no {key} stage")))
}

/// A second handoff of a lead with an open one.
fn conflict() -> ServiceError {
    ServiceError::invalid(&["input", "leadId"], "CONFLICT", "the lead has an open handoff already")
}

/// Commits and tells this process's subscribers (other replicas hear of it through NOTIFY).
async fn finish(txn: crate::db::WriteTxn<'_>, bus: &Bus, handoff: handoff::Model, event: entity::event::Model) -> ServiceResult<Step> {
    txn.commit().await?;
    let event = Arc::new(event);
    bus.publish(Notice::Event(Arc::clone(&event)));
    Ok(Step { handoff, event })
}

/// `handOffLead`: the lead moves to MQL and a PENDING handoff goes to the owner the routing
/// rules pick. A lead has at most one open handoff; a second attempt, even a concurrent one,
/// gets a CONFLICT user error.
pub async fn hand_off(db: &Db, bus: &Bus, p: Principal, lead_id: i64, note: Option<String>) -> ServiceResult<Step> {
    let ws = p.workspace_id;
    let note = clean(note);
    let txn = db.begin_write(ws).await?;
    let lead = live_lead(&*txn, ws, lead_id).await?;
    if store::handoff::open_of_lead(&*txn, ws, lead_id).await?.is_some() {
        return Err(conflict());
    }
    let stages = store::workspace::stages(&*txn, ws).await?;
    let mql = stage(&stages, MQL)?;
    let current = stages.iter().find(|s| s.id == lead.stage_id);
    if let Some(cur) = current
        && cur.kind == STAGE_SUCCESS
        && cur.position > mql.position
    {
        return Err(ServiceError::invalid(
            &["input", "leadId"],
            "ALREADY_WITH_SALES",
            format!("the lead is in {} already", cur.key),
        ));
    }
    let now = Utc::now();
    let cell = scoring_cell(&*txn, ws, lead.id, now).await?;
    let (h, event) = open(&*txn, ws, &stages, lead, &author(&p), note, cell, now).await?;
    finish(txn, bus, h, event).await
}

/// The lead's cell in the default scoring model, which every handoff event carries.
async fn scoring_cell(db: &impl ConnectionTrait, ws: i64, lead_id: i64, now: DateTime<Utc>) -> Result<Option<String>, AppError> {
    Ok(super::scoring::default_cell(db, ws, lead_id, now).await?.map(|c| c.to_string()))
}

/// Opens a PENDING handoff of `lead` (checked by the caller: no open handoff, not past MQL)
/// inside the caller's transaction: routes it, moves the lead to MQL, appends the event, which
/// carries `cell` (the lead's cell in the default scoring model, read by the caller).
pub(crate) async fn open(
    db: &impl ConnectionTrait,
    ws: i64,
    stages: &[funnel_stage::Model],
    lead: lead::Model,
    by: &Author,
    note: Option<String>,
    cell: Option<String>,
    now: DateTime<Utc>,
) -> ServiceResult<(handoff::Model, entity::event::Model)> {
    let mql = stage(stages, MQL)?;
    let current = stages.iter().find(|s| s.id == lead.stage_id);
    let (owner_id, rule_id) = route(db, ws, &lead).await?;
    let inserted = handoff::ActiveModel {
        workspace_id: Set(ws),
        lead_id: Set(lead.id),
        open_lead_id: Set(Some(lead.id)),
        status: Set(HandoffStatus::Pending.as_str().to_owned()),
        owner_id: Set(owner_id),
        note: Set(note.clone()),
        reason_code: Set(None),
        feedback: Set(None),
        nurture_until: Set(None),
        created_by: Set(by.actor.clone()),
        responded_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        from_stage_id: Set(Some(lead.stage_id)),
        routing_rule_id: Set(rule_id),
        due_at: Set(machine::due_at(now, mql.sla_hours)),
        responded_by: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await;
    let h = match inserted {
        Ok(h) => h,
        // A concurrent handOffLead for the same lead committed first.
        Err(e) if is_unique_violation(&e) => return Err(conflict()),
        Err(e) => return Err(e.into()),
    };
    let from = current.map(|s| (s.id, s.key.clone()));
    if lead.stage_id != mql.id {
        move_lead(db, lead, mql, now, by, Some("handed off to sales")).await?;
    }
    let data = HandoffEventData {
        handoff_id: h.id,
        lead_id: h.lead_id,
        owner_id,
        from_stage_id: from.as_ref().map(|f| f.0),
        from_stage: from.map(|f| f.1),
        to_stage_id: Some(mql.id),
        to_stage: Some(mql.key.clone()),
        status: h.status.clone(),
        note,
        scoring_cell: cell,
        actor: by.actor.clone(),
        ..Default::default()
    };
    let event = events::append(db, ws, EventKind::Created, &data, now).await?;
    Ok((h, event))
}

/// The owner for a new handoff: the first routing rule that matches the lead (turning its
/// round-robin), else the workspace's default owner.
async fn route(db: &impl ConnectionTrait, ws: i64, lead: &lead::Model) -> Result<(Option<i64>, Option<i64>), AppError> {
    let rules = store::handoff::rules(db, ws).await?;
    let personas = if rules.iter().any(|r| r.persona_id.is_some()) {
        super::persona::matching(db, ws, lead).await?
    } else {
        Vec::new()
    };
    let plain: Vec<machine::Rule> = rules.iter().map(domain_rule).collect();
    if let Some((i, owner, next)) = machine::route(&plain, lead.country.as_deref(), &personas) {
        let rule = &rules[i];
        if next != rule.next_index {
            routing_rule::Entity::update_many()
                .col_expr(routing_rule::Column::NextIndex, Expr::value(next))
                .filter(routing_rule::Column::Id.eq(rule.id))
                .exec(db)
                .await?;
        }
        return Ok((Some(owner), Some(rule.id)));
    }
    let ws_row = store::workspace::by_id(db, ws).await?;
    Ok((ws_row.and_then(|w| w.handoff_owner_id), None))
}

fn domain_rule(r: &routing_rule::Model) -> machine::Rule {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    machine::Rule {
        countries: r.countries.as_ref().map(strings),
        persona_id: r.persona_id,
        user_ids: r
            .user_ids
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
            .unwrap_or_default(),
        next_index: r.next_index,
    }
}

/// Sales' answer to a handoff.
#[derive(Debug, Clone)]
pub struct AnswerInput {
    pub answer: Answer,
    pub reason_code: Option<String>,
    /// The rejection comment or the recycling feedback.
    pub feedback: Option<String>,
    pub nurture_until: Option<DateTime<Utc>>,
}

/// The user a key is bound to for handoffs: a SALES key made for a user (`key create --user`)
/// sees, follows and answers only the handoffs that user owns now. Other keys: `None`, the
/// whole workspace.
pub fn bound_user(p: &Principal) -> Option<i64> {
    if p.role == Role::Sales { p.user_id } else { None }
}

/// The owner a handoff list, log or subscription is narrowed to: `asked` (the `ownerId`
/// argument), forced to the key's user for a bound key. Asking a bound key for another user is
/// FORBIDDEN (the argument names a user, not a handoff, so refusing leaks nothing).
pub fn owner_scope(p: &Principal, asked: Option<i64>) -> Result<Option<i64>, AppError> {
    match (bound_user(p), asked) {
        (Some(me), Some(other)) if other != me => Err(AppError::Forbidden(
            "this key acts for one sales user and sees only that user's handoffs".into(),
        )),
        (Some(me), _) => Ok(Some(me)),
        (None, asked) => Ok(asked),
    }
}

/// Whether the caller sees this handoff at all: for a bound key, another user's handoff does not
/// exist (null, NOT_FOUND), as another workspace's does not.
pub fn visible(p: &Principal, h: &handoff::Model) -> bool {
    bound_user(p).is_none_or(|me| h.owner_id == Some(me))
}

/// A pending handoff the caller may act on. A SALES key made for a user acts on that user's
/// handoffs only; another user's handoff is NOT_FOUND to it, as in every read.
async fn pending_for(db: &impl ConnectionTrait, p: &Principal, id: i64) -> ServiceResult<handoff::Model> {
    let h = store::by_id::<handoff::Entity>(db, p.workspace_id, id)
        .await?
        .filter(|h| visible(p, h))
        .ok_or_else(|| AppError::not_found("handoff"))?;
    let status = HandoffStatus::parse(&h.status).ok_or_else(|| AppError::internal("stored handoff has an unknown status"))?;
    if let Err(machine::StepError::NotPending(done)) = machine::check_pending(status) {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "NOT_PENDING",
            format!("the handoff was {} already", done.as_str().to_lowercase()),
        ));
    }
    Ok(h)
}

/// Marks a pending handoff as changed, or fails if another request changed it first.
async fn claim(db: &impl ConnectionTrait, am: handoff::ActiveModel, id: i64) -> ServiceResult<()> {
    let res = handoff::Entity::update_many()
        .set(am)
        .filter(handoff::Column::Id.eq(id))
        .filter(handoff::Column::Status.eq(HandoffStatus::Pending.as_str()))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "CONFLICT",
            "the handoff was answered concurrently",
        ));
    }
    Ok(())
}

/// `acceptHandoff` (lead -> SQL, and the owner becomes the lead's owner), `rejectHandoff` (lead
/// -> Disqualified, with a reason code) or `recycleHandoff` (lead -> Nurture, with feedback).
pub async fn answer(db: &Db, bus: &Bus, p: Principal, id: i64, input: AnswerInput) -> ServiceResult<Step> {
    let ws = p.workspace_id;
    let now = Utc::now();
    let mut v = Validator::default();
    let feedback = clean(input.feedback);
    let reason = match (input.answer, input.reason_code.as_deref()) {
        (Answer::Reject, None) => {
            v.push(&["input", "reasonCode"], "REQUIRED", "a rejection needs a reason code");
            None
        }
        (Answer::Reject, Some(raw)) => machine::reason_code(raw).or_else(|| {
            v.push(&["input", "reasonCode"], "INVALID", "not a reason code");
            None
        }),
        _ => None,
    };
    if input.answer == Answer::Recycle && feedback.is_none() {
        v.push(&["input", "feedback"], "REQUIRED", "recycling needs feedback for marketing");
    }
    if let Some(until) = input.nurture_until
        && until <= now
    {
        v.push(&["input", "nurtureUntil"], "INVALID", "must lie in the future");
    }
    let txn = db.begin_write(ws).await?;
    // Before the handoff and its lead are read, as every write of leads: a merge moving this
    // handoff to another lead commits first or waits.
    store::lead::lock_lead_writes(&*txn, ws).await?;
    if let Some(code) = &reason {
        let known = store::workspace::vocabulary(&*txn, ws, VOCAB_REJECT_REASON).await?;
        if !known.iter().any(|t| &t.code == code) {
            let list: Vec<&str> = known.iter().map(|t| t.code.as_str()).collect();
            v.push(
                &["input", "reasonCode"],
                "INVALID",
                format!("{code} is not a reason code of the workspace ({})", list.join(", ")),
            );
        }
    }
    v.finish()?;
    let h = pending_for(&*txn, &p, id).await?;
    let by = author(&p);
    let who = by.actor.clone();
    let status = input.answer.status();
    let change = handoff::ActiveModel {
        status: Set(status.as_str().to_owned()),
        open_lead_id: Set(None),
        responded_at: Set(Some(now)),
        responded_by: Set(Some(who.clone())),
        reason_code: Set(reason.clone()),
        feedback: Set(feedback.clone()),
        nurture_until: Set(input.nurture_until.filter(|_| input.answer == Answer::Recycle)),
        updated_at: Set(now),
        ..Default::default()
    };
    claim(&*txn, change, h.id).await?;
    let lead = store::by_id::<lead::Entity>(&*txn, ws, h.lead_id)
        .await?
        .ok_or_else(|| AppError::internal("a handoff's lead is missing"))?;
    let stages = store::workspace::stages(&*txn, ws).await?;
    let to = stage(&stages, input.answer.stage_key())?;
    let from = stages.iter().find(|s| s.id == lead.stage_id).map(|s| (s.id, s.key.clone()));
    let why = match (input.answer, &reason) {
        (Answer::Accept, _) => "handoff accepted".to_owned(),
        (Answer::Reject, Some(code)) => format!("handoff rejected: {code}"),
        (Answer::Reject, None) => "handoff rejected".to_owned(),
        (Answer::Recycle, _) => "handoff recycled".to_owned(),
    };
    let mut lead = if lead.stage_id == to.id {
        lead
    } else {
        move_lead(&*txn, lead, to, now, &by, Some(&why)).await?
    };
    if input.answer == Answer::Accept
        && let Some(owner) = h.owner_id
        && lead.owner_id != Some(owner)
    {
        let mut next = lead.clone();
        next.owner_id = Some(owner);
        lead = super::lead::save(&*txn, &by, ChangeKind::Updated, lead, next).await?;
    }
    let data = HandoffEventData {
        handoff_id: h.id,
        lead_id: lead.id,
        owner_id: h.owner_id,
        from_stage_id: from.as_ref().map(|f| f.0),
        from_stage: from.map(|f| f.1),
        to_stage_id: Some(to.id),
        to_stage: Some(to.key.clone()),
        status: status.as_str().to_owned(),
        note: h.note.clone(),
        reason_code: reason,
        feedback,
        nurture_until: input.nurture_until.filter(|_| input.answer == Answer::Recycle),
        scoring_cell: scoring_cell(&*txn, ws, lead.id, now).await?,
        actor: who,
        ..Default::default()
    };
    let event = events::append(&*txn, ws, input.answer.event(), &data, now).await?;
    let h = store::by_id::<handoff::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::internal("the handoff vanished"))?;
    finish(txn, bus, h, event).await
}

/// `reassignHandoff`: a pending handoff goes to another (active) user of the workspace.
pub async fn reassign(db: &Db, bus: &Bus, p: Principal, id: i64, owner_id: i64) -> ServiceResult<Step> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let h = pending_for(&*txn, &p, id).await?;
    let owner = store::by_id::<user::Entity>(&*txn, ws, owner_id).await?.filter(|u| u.active);
    if owner.is_none() {
        return Err(ServiceError::invalid(&["input", "ownerId"], "NOT_FOUND", "no such active user"));
    }
    if h.owner_id == Some(owner_id) {
        return Err(ServiceError::invalid(
            &["input", "ownerId"],
            "NO_CHANGE",
            "the handoff has this owner already",
        ));
    }
    let now = Utc::now();
    let change = handoff::ActiveModel {
        owner_id: Set(Some(owner_id)),
        updated_at: Set(now),
        ..Default::default()
    };
    claim(&*txn, change, h.id).await?;
    let lead = store::by_id::<lead::Entity>(&*txn, ws, h.lead_id).await?;
    let stage = match &lead {
        Some(l) => store::by_id::<funnel_stage::Entity>(&*txn, ws, l.stage_id).await?,
        None => None,
    };
    let data = HandoffEventData {
        handoff_id: h.id,
        lead_id: h.lead_id,
        owner_id: Some(owner_id),
        previous_owner_id: h.owner_id,
        from_stage_id: stage.as_ref().map(|s| s.id),
        from_stage: stage.as_ref().map(|s| s.key.clone()),
        to_stage_id: stage.as_ref().map(|s| s.id),
        to_stage: stage.map(|s| s.key),
        status: h.status.clone(),
        note: h.note.clone(),
        scoring_cell: scoring_cell(&*txn, ws, h.lead_id, now).await?,
        actor: actor(&p),
        ..Default::default()
    };
    let event = events::append(&*txn, ws, EventKind::Reassigned, &data, now).await?;
    let h = store::by_id::<handoff::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::internal("the handoff vanished"))?;
    finish(txn, bus, h, event).await
}

/// One routing rule as given: it matches leads from `countries` (any when empty) that match
/// `persona_id` (any when absent), and hands them to `user_ids` in turn.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub name: String,
    pub countries: Vec<String>,
    pub persona_id: Option<i64>,
    pub user_ids: Vec<i64>,
}

/// `setRoutingRules`: replaces the rules (first match wins, in the given order) and sets the
/// default owner for leads no rule matches.
pub async fn set_routing(
    db: &Db,
    p: Principal,
    rules: Vec<RuleInput>,
    default_owner: Patch<i64>,
) -> ServiceResult<(Vec<routing_rule::Model>, Option<i64>)> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let txn = db.begin_write(ws).await?;
    let users: Vec<i64> = user::Entity::in_workspace(ws)
        .filter(user::Column::Active.eq(true))
        .all(&*txn)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let personas: Vec<i64> = entity::persona::Entity::in_workspace(ws)
        .all(&*txn)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let mut clean_rules = Vec::with_capacity(rules.len());
    for (i, r) in rules.into_iter().enumerate() {
        let at = i.to_string();
        let field = |f: &str| vec!["input".to_owned(), "rules".to_owned(), at.clone(), f.to_owned()];
        let name = clean(Some(r.name)).unwrap_or_else(|| format!("Rule {}", i + 1));
        let mut countries = Vec::new();
        for c in &r.countries {
            match country_code(c) {
                Some(c) => countries.push(c),
                None => v.push_owned(field("countries"), "INVALID", format!("{c:?} {COUNTRY_HINT}")),
            }
        }
        if let Some(pid) = r.persona_id
            && !personas.contains(&pid)
        {
            v.push_owned(field("personaId"), "NOT_FOUND", "no such persona");
        }
        if r.user_ids.is_empty() {
            v.push_owned(field("userIds"), "REQUIRED", "a rule needs at least one user to assign");
        }
        if r.user_ids.iter().any(|u| !users.contains(u)) {
            v.push_owned(field("userIds"), "NOT_FOUND", "every user must be an active user of the workspace");
        }
        clean_rules.push((name, countries, r.persona_id, r.user_ids));
    }
    if let Patch::Set(owner) = default_owner
        && !users.contains(&owner)
    {
        v.push(&["input", "defaultOwnerId"], "NOT_FOUND", "no such active user");
    }
    v.finish()?;
    routing_rule::Entity::delete_many()
        .filter(routing_rule::Column::WorkspaceId.eq(ws))
        .exec(&*txn)
        .await?;
    let now = Utc::now();
    let mut saved = Vec::with_capacity(clean_rules.len());
    for (i, (name, countries, persona_id, user_ids)) in clean_rules.into_iter().enumerate() {
        let row = routing_rule::ActiveModel {
            workspace_id: Set(ws),
            position: Set(i as i32),
            name: Set(name),
            countries: Set((!countries.is_empty()).then(|| serde_json::json!(countries))),
            persona_id: Set(persona_id),
            user_ids: Set(serde_json::json!(user_ids)),
            next_index: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        saved.push(row);
    }
    let mut ws_row: workspace::ActiveModel = store::workspace::by_id(&*txn, ws)
        .await?
        .ok_or_else(|| AppError::not_found("workspace"))?
        .into();
    let mut owner = ws_row.handoff_owner_id.clone().unwrap();
    if default_owner.apply(&mut owner) {
        ws_row.handoff_owner_id = Set(owner);
        ws_row.updated_at = Set(now);
        ws_row.update(&*txn).await?;
    }
    txn.commit().await?;
    Ok((saved, owner))
}
