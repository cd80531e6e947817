//! Leads (contacts): upserted by CRM connectors, edited by frontends, erased on request.
use chrono::{DateTime, Utc};
use entity::{lead, lead_stage_history};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel};

use super::{Patch, author, clean, stage_by_key};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::{ChangeData, ChangeEntity, ChangeKind, FieldChange, scrub};
use crate::domain::email::Email;
use crate::domain::search::lead_search_text as search_text;
use crate::domain::vocab::LifecycleStatus;
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::Bus;
use crate::events::changes::{self, Author, NewChange};
use crate::service::account::{COUNTRY_HINT, country_code};
use crate::store;

/// The editable fields of a lead. `Keep` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LeadFields {
    pub email: Patch<String>,
    pub account_id: Patch<i64>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub job_title: Patch<String>,
    pub decision_role: Patch<String>,
    pub industry: Patch<String>,
    pub company_size: Patch<String>,
    pub country: Patch<String>,
    pub phone: Patch<String>,
    /// Contact data of the social and postal channels (reach).
    pub linkedin_url: Patch<String>,
    pub twitter_handle: Patch<String>,
    pub facebook_url: Patch<String>,
    pub street: Patch<String>,
    pub postal_code: Patch<String>,
    pub city: Patch<String>,
    pub status: Option<LifecycleStatus>,
    pub owner_id: Patch<i64>,
    /// Consent per channel, e.g. {"EMAIL": true, "PHONE": false}.
    pub consents: Option<serde_json::Map<String, serde_json::Value>>,
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    /// Refuse the write (CONFLICT) unless the lead is at this version now; 0: only create.
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct UpsertLead {
    pub external_id: Option<String>,
    pub fields: LeadFields,
    /// Funnel stage key for a new lead (default LEAD); ignored for existing leads, whose stage
    /// changes only through the funnel's own operations.
    pub stage: Option<String>,
    /// When a new lead was created in the source system (default now).
    pub created_at: Option<DateTime<Utc>>,
}

/// Validated fields, ready to be written.
struct Clean {
    f: LeadFields,
}

async fn validate(txn: &impl ConnectionTrait, ws: i64, mut f: LeadFields, v: &mut Validator) -> Result<Clean, AppError> {
    f.email = match f.email {
        Patch::Set(e) => match Email::parse(&e) {
            Ok(e) => Patch::Set(e.into_inner()),
            Err(msg) => {
                v.push(&["input", "email"], "INVALID", format!("e-mail {msg}"));
                Patch::Keep
            }
        },
        other => other,
    };
    f.country = match f.country {
        Patch::Set(c) => match country_code(&c) {
            Some(c) => Patch::Set(c),
            None => {
                v.push(&["input", "country"], "INVALID", format!("{c:?} {COUNTRY_HINT}"));
                Patch::Keep
            }
        },
        other => other,
    };
    if let Patch::Set(id) = f.account_id
        && store::by_id::<entity::account::Entity>(txn, ws, id).await?.is_none()
    {
        v.push(&["input", "accountId"], "NOT_FOUND", "no such account");
    }
    if let Patch::Set(id) = f.owner_id
        && store::by_id::<entity::user::Entity>(txn, ws, id).await?.is_none()
    {
        v.push(&["input", "ownerId"], "NOT_FOUND", "no such user");
    }
    let trim = |p: Patch<String>| match p {
        Patch::Set(s) if s.trim().is_empty() => Patch::Clear,
        Patch::Set(s) => Patch::Set(s.trim().to_owned()),
        other => other,
    };
    for p in [
        &mut f.first_name,
        &mut f.last_name,
        &mut f.job_title,
        &mut f.decision_role,
        &mut f.industry,
        &mut f.company_size,
        &mut f.phone,
        &mut f.linkedin_url,
        &mut f.twitter_handle,
        &mut f.facebook_url,
        &mut f.street,
        &mut f.postal_code,
        &mut f.city,
    ] {
        *p = trim(std::mem::replace(p, Patch::Keep));
    }
    Ok(Clean { f })
}

/// Applies fields to a lead; returns whether anything changed.
fn apply(m: &mut lead::Model, c: Clean) -> bool {
    let f = c.f;
    let mut changed = false;
    if f.email.apply(&mut m.email) {
        changed = true;
        // A bounce belongs to the address that bounced: a new address is reachable again.
        m.email_bounced_at = None;
    }
    changed |= f.account_id.apply(&mut m.account_id);
    changed |= f.first_name.apply(&mut m.first_name);
    changed |= f.last_name.apply(&mut m.last_name);
    changed |= f.job_title.apply(&mut m.job_title);
    changed |= f.decision_role.apply(&mut m.decision_role);
    changed |= f.industry.apply(&mut m.industry);
    changed |= f.company_size.apply(&mut m.company_size);
    changed |= f.country.apply(&mut m.country);
    changed |= f.phone.apply(&mut m.phone);
    changed |= f.linkedin_url.apply(&mut m.linkedin_url);
    changed |= f.twitter_handle.apply(&mut m.twitter_handle);
    changed |= f.facebook_url.apply(&mut m.facebook_url);
    changed |= f.street.apply(&mut m.street);
    changed |= f.postal_code.apply(&mut m.postal_code);
    changed |= f.city.apply(&mut m.city);
    changed |= f.owner_id.apply(&mut m.owner_id);
    if let Some(s) = f.status {
        changed |= m.lifecycle_status != s.as_str();
        m.lifecycle_status = s.as_str().to_owned();
    }
    let search = search_text(m.email.as_deref(), m.first_name.as_deref(), m.last_name.as_deref());
    if m.search_text != search {
        m.search_text = search;
    }
    for (target, patch) in [(&mut m.consents, f.consents), (&mut m.custom_fields, f.custom_fields)] {
        if let Some(patch) = patch {
            let obj = target.as_object_mut().expect("stored as an object");
            for (k, val) in patch {
                let old = if val.is_null() {
                    obj.remove(&k)
                } else {
                    obj.insert(k, val.clone())
                };
                changed |= old.as_ref() != Some(&val) && !(val.is_null() && old.is_none());
            }
        }
    }
    changed
}

/// Writes a changed lead (read and locked by the caller) with the next version, and records
/// the change in the feed as `kind` with the fields that differ, plus `extra` (a stage move's
/// stage keys and reason). An erasure or merge records no personal value and removes them from
/// the lead's earlier changes too.
pub(crate) async fn save(
    txn: &impl ConnectionTrait,
    by: &Author,
    kind: ChangeKind,
    before: lead::Model,
    after: lead::Model,
) -> Result<lead::Model, AppError> {
    // Boxed, as every caller's future would otherwise hold this one inline: a merge's future
    // outgrew a 2 MiB thread stack in a debug build.
    Box::pin(save_with(txn, by, kind, before, after, Vec::new())).await
}

/// [`save`] with fields the lead's row does not hold.
pub(crate) async fn save_with(
    txn: &impl ConnectionTrait,
    by: &Author,
    kind: ChangeKind,
    before: lead::Model,
    after: lead::Model,
    extra: Vec<FieldChange>,
) -> Result<lead::Model, AppError> {
    let ws = before.workspace_id;
    let (saved, change) = write(txn, kind, before, after, extra).await?;
    if let Some(change) = change {
        Box::pin(changes::record(txn, ws, by, saved.updated_at, vec![change])).await?;
    }
    Ok(saved)
}

/// [`save_with`] without recording the change: the caller records it (with others in one go).
/// `None` when nothing changed (nothing was written).
pub(crate) async fn write(
    txn: &impl ConnectionTrait,
    kind: ChangeKind,
    before: lead::Model,
    mut after: lead::Model,
    extra: Vec<FieldChange>,
) -> Result<(lead::Model, Option<NewChange>), AppError> {
    let now = Utc::now();
    after.updated_at = before.updated_at;
    if after == before && extra.is_empty() {
        // Nothing to write, nothing to tell.
        return Ok((before, None));
    }
    after.updated_at = now;
    after.version = before.version + 1;
    let mut am = after.into_active_model().reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(before.id);
    // Kept by the writes of touchpoints alone: a lead read before a concurrent batch of
    // touchpoints committed must not write back the first touch it read.
    am.first_touch_at = sea_orm::ActiveValue::NotSet;
    am.first_touch_campaign_id = sea_orm::ActiveValue::NotSet;
    let saved = am.update(txn).await?;
    let mut change = NewChange::updated(kind, &before, &saved).unwrap_or(NewChange {
        entity: ChangeEntity::Lead,
        entity_id: saved.id,
        kind,
        version: Some(saved.version),
        fields: Vec::new(),
    });
    change.fields.extend(extra);
    let forgets = matches!(kind, ChangeKind::Erased | ChangeKind::Merged);
    if forgets {
        let mut data = ChangeData { fields: change.fields };
        scrub(&mut data);
        change.fields = data.fields;
        Box::pin(changes::scrub_lead(txn, saved.workspace_id, saved.id)).await?;
    }
    Ok((saved, Some(change)))
}

/// Creates a lead or updates the one with the same external ID or e-mail. Idempotent: the same
/// input twice gives the same lead and changes nothing the second time.
pub async fn upsert(db: &Db, bus: &Bus, p: Principal, input: UpsertLead) -> ServiceResult<(lead::Model, bool)> {
    let txn = db.begin_write(p.workspace_id).await?;
    let (upserted, events) = upsert_in(&*txn, p.workspace_id, &author(&p), input).await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok(upserted)
}

/// [`upsert`] inside the caller's transaction, by `by` (as the stage history and the change
/// feed name it); returns the handoff events to publish once the caller has committed.
pub(crate) async fn upsert_in(
    txn: &impl ConnectionTrait,
    ws: i64,
    by: &Author,
    input: UpsertLead,
) -> ServiceResult<((lead::Model, bool), Vec<entity::event::Model>)> {
    // Before the look-up: an erasure or merge of the lead found commits first (and is seen) or
    // waits, so values read here are never written over one.
    store::lead::lock_lead_writes(txn, ws).await?;
    let mut v = Validator::default();
    let external_id = clean(input.external_id);
    let expected_version = input.fields.expected_version;
    let clean_fields = validate(txn, ws, input.fields, &mut v).await?;
    let email = clean_fields.f.email.as_set().cloned();
    if external_id.is_none() && email.is_none() && v.is_empty() {
        v.push(&["input"], "REQUIRED", "an upsert needs an externalId or an email to match on");
    }
    v.finish()?;
    let by_ext = match &external_id {
        Some(x) => store::lead::by_external_id(txn, ws, x).await?,
        None => None,
    };
    let by_email = match &email {
        Some(e) => store::lead::by_email(txn, ws, e).await?,
        None => None,
    };
    let existing = match (by_ext, by_email) {
        (Some(a), Some(b)) if a.id != b.id => {
            return Err(ServiceError::invalid(
                &["input", "email"],
                "TAKEN",
                "the e-mail belongs to another lead than the externalId",
            ));
        }
        (Some(a), _) => Some(a),
        (None, Some(b)) => {
            if b.external_id.is_some() && external_id.is_some() {
                return Err(ServiceError::invalid(
                    &["input", "email"],
                    "TAKEN",
                    "the e-mail belongs to a lead with another externalId",
                ));
            }
            Some(b)
        }
        (None, None) => None,
    };
    ServiceError::check_version("lead", expected_version, existing.as_ref().map_or(0, |l| l.version))?;
    let result = match existing {
        Some(current) => {
            let mut next = current.clone();
            let mut changed = apply(&mut next, clean_fields);
            if next.external_id.is_none() && external_id.is_some() {
                next.external_id = external_id;
                changed = true;
            }
            if changed {
                (save(txn, by, ChangeKind::Updated, current, next).await, false)
            } else {
                (Ok(current), false)
            }
        }
        None => {
            let stage_key = input.stage.as_deref().unwrap_or("LEAD").trim().to_ascii_uppercase();
            let Some(stage) = stage_by_key(txn, ws, &stage_key).await? else {
                return Err(ServiceError::invalid(
                    &["input", "stage"],
                    "NOT_FOUND",
                    format!("no funnel stage {stage_key}"),
                ));
            };
            let now = Utc::now();
            let created_at = input.created_at.unwrap_or(now);
            let mut m = blank(ws, external_id, stage.id, created_at, now);
            apply(&mut m, clean_fields);
            let mut am = m.into_active_model().reset_all();
            am.id = sea_orm::ActiveValue::NotSet;
            let inserted = am.insert(txn).await;
            match inserted {
                Ok(lead) => {
                    record_stage(txn, &lead, None, stage.id, created_at, &by.actor, Some("created")).await?;
                    changes::record(txn, ws, by, now, vec![NewChange::created(&lead)]).await?;
                    (Ok(lead), true)
                }
                Err(e) => (Err(AppError::from(e)), true),
            }
        }
    };
    let (lead, created) = match result {
        (Ok(l), c) => (l, c),
        (Err(AppError::Conflict(_)), _) => {
            return Err(ServiceError::invalid(&["input", "email"], "TAKEN", "another lead has this e-mail"));
        }
        (Err(e), _) => return Err(e.into()),
    };
    super::persona::refresh_leads(txn, ws, &[lead.id]).await?;
    let entered = super::scoring::refresh_leads(txn, ws, &[lead.id]).await?;
    let events = super::scoring::auto_mql(txn, ws, entered).await?;
    Ok(((lead, created), events))
}

/// Changes the given fields of one lead.
pub async fn update(db: &Db, bus: &Bus, p: Principal, id: i64, fields: LeadFields) -> ServiceResult<lead::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let txn = db.begin_write(ws).await?;
    let current = live_lead(&*txn, ws, id).await?;
    ServiceError::check_version("lead", fields.expected_version, current.version)?;
    let cleaned = validate(&*txn, ws, fields, &mut v).await?;
    if matches!(cleaned.f.email, Patch::Clear) && current.external_id.is_none() {
        v.push(&["input", "email"], "REQUIRED", "a lead without externalId needs an e-mail");
    }
    v.finish()?;
    let mut next = current.clone();
    if !apply(&mut next, cleaned) {
        return Ok(current);
    }
    let saved = save(&*txn, &author(&p), ChangeKind::Updated, current, next)
        .await
        .map_err(|e| match e {
            AppError::Conflict(_) => ServiceError::invalid(&["input", "email"], "TAKEN", "another lead has this e-mail"),
            e => e.into(),
        })?;
    super::persona::refresh_leads(&*txn, ws, &[saved.id]).await?;
    let entered = super::scoring::refresh_leads(&*txn, ws, &[saved.id]).await?;
    let events = super::scoring::auto_mql(&*txn, ws, entered).await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok(saved)
}

/// GDPR erasure: personal data is removed; the lead stays as an anonymous stub so that its
/// touchpoints, stage history and deal credits still count and totals do not change.
pub async fn erase(db: &Db, p: Principal, id: i64) -> ServiceResult<lead::Model> {
    let txn = db.begin_write(p.workspace_id).await?;
    let current = live_lead(&*txn, p.workspace_id, id).await?;
    let mut m = current.clone();
    erase_personal(&mut m, Utc::now());
    let saved = save(&*txn, &author(&p), ChangeKind::Erased, current, m).await?;
    super::tracking::erase_lead(&*txn, p.workspace_id, saved.id).await?;
    super::persona::refresh_leads(&*txn, p.workspace_id, &[saved.id]).await?;
    // An erased lead has no scores: it counts in no cell and no export.
    super::scoring::refresh_leads(&*txn, p.workspace_id, &[saved.id]).await?;
    txn.commit().await?;
    // The erased values must not survive in SQLite's write-ahead log either.
    match db.truncate_wal().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            lead = saved.id,
            "erased, but readers kept the write-ahead log from being emptied: older page versions stay in it until the next erasure"
        ),
        Err(e) => tracing::warn!(lead = saved.id, error = %e, "erased, but emptying the write-ahead log failed"),
    }
    Ok(saved)
}

/// A new lead with nothing but its key, stage and times (not yet stored: `id` 0).
pub(crate) fn blank(ws: i64, external_id: Option<String>, stage_id: i64, created_at: DateTime<Utc>, now: DateTime<Utc>) -> lead::Model {
    lead::Model {
        id: 0,
        workspace_id: ws,
        external_id,
        account_id: None,
        email: None,
        first_name: None,
        last_name: None,
        job_title: None,
        decision_role: None,
        industry: None,
        company_size: None,
        country: None,
        phone: None,
        linkedin_url: None,
        twitter_handle: None,
        facebook_url: None,
        street: None,
        postal_code: None,
        city: None,
        lifecycle_status: LifecycleStatus::Lead.as_str().to_owned(),
        stage_id,
        owner_id: None,
        consents: serde_json::json!({}),
        custom_fields: serde_json::json!({}),
        email_bounced_at: None,
        unsubscribed_at: None,
        converted_at: None,
        erased_at: None,
        merged_into_id: None,
        first_touch_at: None,
        first_touch_campaign_id: None,
        search_text: None,
        created_at,
        updated_at: now,
        version: 1,
    }
}

/// Removes a lead's personal data (erasure, or the duplicate of a merge).
pub(crate) fn erase_personal(m: &mut lead::Model, now: DateTime<Utc>) {
    // The source system's ID goes too: the stub must not be found (or revived) by a later sync.
    m.external_id = None;
    m.search_text = None;
    m.email = None;
    m.first_name = None;
    m.last_name = None;
    m.phone = None;
    m.linkedin_url = None;
    m.twitter_handle = None;
    m.facebook_url = None;
    m.street = None;
    m.postal_code = None;
    m.city = None;
    m.job_title = None;
    m.decision_role = None;
    m.consents = serde_json::json!({});
    m.custom_fields = serde_json::json!({});
    m.erased_at = Some(now);
}

/// A lead of the workspace that has not been erased, locked for the caller's write transaction
/// (PostgreSQL), so that a concurrent erasure, merge or edit of it waits or is seen.
pub async fn live_lead(db: &impl ConnectionTrait, ws: i64, id: i64) -> Result<lead::Model, AppError> {
    store::lead::lock_lead_writes(db, ws).await?;
    store::lead::lock(db, ws, &[id]).await?;
    store::by_id::<lead::Entity>(db, ws, id)
        .await?
        .filter(|l| l.erased_at.is_none())
        .ok_or_else(|| AppError::not_found("lead"))
}

/// Writes one stage-history row.
pub async fn record_stage(
    db: &impl ConnectionTrait,
    lead: &lead::Model,
    from: Option<i64>,
    to: i64,
    at: DateTime<Utc>,
    actor: &str,
    reason: Option<&str>,
) -> Result<(), AppError> {
    lead_stage_history::Entity::insert(lead_stage_history::ActiveModel {
        workspace_id: Set(lead.workspace_id),
        lead_id: Set(lead.id),
        from_stage_id: Set(from),
        to_stage_id: Set(to),
        changed_at: Set(at),
        actor: Set(actor.to_owned()),
        reason: Set(reason.map(str::to_owned)),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}
