//! `mergeLeads`: two leads that are one person become one. The survivor keeps its values and
//! takes the duplicate's where it has none; it takes over everything the duplicate did
//! (touchpoints, visitors and their hits, handoffs, deal contacts), and is scored, matched and
//! credited again in the same transaction. The duplicate stays as an erased stub that names the
//! survivor, so that an ID a client holds, or a personal mailing link, still leads to it.
use chrono::{DateTime, Utc};
use entity::{funnel_stage, handoff, lead, lead_stage_history, opportunity_contact, touchpoint, tracked_hit, visitor};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::author;
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::vocab::STAGE_SUCCESS;
use crate::error::{ServiceError, ServiceResult};
use crate::events::Bus;
use crate::events::changes::{self, NewChange};
use crate::store::{self, Scoped};

/// Merges `duplicate_id` into `lead_id`; returns the survivor. Refused (and nothing written):
/// the same lead twice, a lead that is not a live lead of the workspace, and two leads that
/// both wait for sales (an open handoff each: answer one first).
pub async fn merge(db: &Db, bus: &Bus, p: Principal, lead_id: i64, duplicate_id: i64) -> ServiceResult<lead::Model> {
    let ws = p.workspace_id;
    if lead_id == duplicate_id {
        return Err(ServiceError::invalid(
            &["input", "duplicateId"],
            "INVALID",
            "a lead cannot be merged into itself",
        ));
    }
    let txn = db.begin_write(ws).await?;
    // Two merges of the same leads at once (A into B, B into A): the second waits, then finds a
    // stub; a touchpoint write waits, or is moved along.
    store::lead::lock_lead_writes(&*txn, ws).await?;
    store::lead::lock(&*txn, ws, &[lead_id, duplicate_id]).await?;
    let live = |l: Option<lead::Model>| l.filter(|l| l.erased_at.is_none());
    let Some(survivor) = live(store::by_id::<lead::Entity>(&*txn, ws, lead_id).await?) else {
        return Err(ServiceError::invalid(&["input", "leadId"], "NOT_FOUND", "no such lead"));
    };
    let Some(duplicate) = live(store::by_id::<lead::Entity>(&*txn, ws, duplicate_id).await?) else {
        return Err(ServiceError::invalid(&["input", "duplicateId"], "NOT_FOUND", "no such lead"));
    };
    let survivor_open = store::handoff::open_of_lead(&*txn, ws, lead_id).await?;
    let duplicate_open = store::handoff::open_of_lead(&*txn, ws, duplicate_id).await?;
    if survivor_open.is_some() && duplicate_open.is_some() {
        return Err(ServiceError::invalid(
            &["input", "duplicateId"],
            "CONFLICT",
            "both leads have a pending handoff; accept, reject or recycle one of them first",
        ));
    }
    let stages = store::workspace::stages(&*txn, ws).await?;
    let now = Utc::now();

    // The duplicate first gives up its unique keys (e-mail, external ID), which the survivor
    // may take.
    let mut stub = duplicate.clone();
    super::lead::erase_personal(&mut stub, now);
    stub.merged_into_id = Some(lead_id);
    let by = author(&p);
    super::lead::save(&*txn, &by, ChangeKind::Merged, duplicate.clone(), stub).await?;
    // Leads merged into the duplicate earlier now lead to the survivor directly.
    let stubs = lead::Entity::in_workspace(ws)
        .filter(lead::Column::MergedIntoId.eq(duplicate_id))
        .all(&*txn)
        .await?;
    let mut moved = Vec::new();
    for stub in stubs {
        let mut next = stub.clone();
        next.merged_into_id = Some(lead_id);
        next.version += 1;
        lead::Entity::update_many()
            .col_expr(lead::Column::MergedIntoId, Expr::value(lead_id))
            .col_expr(lead::Column::Version, Expr::value(next.version))
            .filter(lead::Column::WorkspaceId.eq(ws))
            .filter(lead::Column::Id.eq(stub.id))
            .exec(&*txn)
            .await?;
        moved.extend(NewChange::updated(ChangeKind::Updated, &stub, &next));
    }
    moved.extend(move_activity(&*txn, ws, lead_id, duplicate_id).await?);
    changes::record(&*txn, ws, &by, now, moved).await?;

    let mut next = survivor.clone();
    let took_email = fill_blanks(&mut next, &duplicate);
    if took_email {
        // A bounce belongs to the address that bounced.
        next.email_bounced_at = duplicate.email_bounced_at;
    }
    next.unsubscribed_at = earliest(survivor.unsubscribed_at, duplicate.unsubscribed_at);
    next.converted_at = earliest(survivor.converted_at, duplicate.converted_at);
    next.created_at = Ord::min(survivor.created_at, duplicate.created_at);
    let mut saved = super::lead::save(&*txn, &by, ChangeKind::Updated, survivor.clone(), next).await?;

    // The person is as far in the funnel as the further of the two; an open handoff the
    // duplicate had brings its stage along.
    if let Some(to) = stage_to_take(&stages, &survivor, &duplicate, survivor_open.is_some(), duplicate_open.is_some()) {
        let reason = format!("merged lead {}", crate::domain::ids::global_id("Lead", duplicate_id));
        saved = super::funnel::move_lead(&*txn, saved, to, now, &by, Some(&reason)).await?;
    }
    // The duplicate's stage moves would count the person twice in every funnel report.
    lead_stage_history::Entity::delete_many()
        .filter(lead_stage_history::Column::WorkspaceId.eq(ws))
        .filter(lead_stage_history::Column::LeadId.eq(duplicate_id))
        .exec(&*txn)
        .await?;

    let both = [lead_id, duplicate_id];
    store::lead::refresh_first_touch(&*txn, ws, &both, now).await?;
    super::persona::refresh_leads(&*txn, ws, &both).await?;
    let entered = super::scoring::refresh_leads(&*txn, ws, &both).await?;
    let deals = store::attribution::won_deals_of_leads(&*txn, ws, &[lead_id], None).await?;
    super::attribution::refresh_deals(&*txn, ws, &deals).await?;
    let events = super::scoring::auto_mql(&*txn, ws, entered).await?;
    let saved = store::by_id::<lead::Entity>(&*txn, ws, saved.id).await?.unwrap_or(saved);
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok(saved)
}

/// Moves the duplicate's touchpoints, visitors, hits, handoffs and deal contacts to the
/// survivor. A deal both were contacts of keeps the survivor's contact (primary if either was).
/// Returns the changes of the followed rows it moved (touchpoints, buying-center seats), each
/// at its next version.
async fn move_activity(db: &impl ConnectionTrait, ws: i64, to: i64, from: i64) -> Result<Vec<NewChange>, DbErr> {
    let mut out = Vec::new();
    let touches = touchpoint::Entity::in_workspace(ws)
        .filter(touchpoint::Column::LeadId.eq(from))
        .all(db)
        .await?;
    touchpoint::Entity::update_many()
        .col_expr(touchpoint::Column::LeadId, Expr::value(to))
        .col_expr(touchpoint::Column::Version, Expr::col(touchpoint::Column::Version).add(1))
        .filter(touchpoint::Column::WorkspaceId.eq(ws))
        .filter(touchpoint::Column::LeadId.eq(from))
        .exec(db)
        .await?;
    for t in touches {
        let mut next = t.clone();
        next.lead_id = to;
        next.version += 1;
        out.extend(NewChange::updated(ChangeKind::Updated, &t, &next));
    }
    visitor::Entity::update_many()
        .col_expr(visitor::Column::LeadId, Expr::value(to))
        .filter(visitor::Column::WorkspaceId.eq(ws))
        .filter(visitor::Column::LeadId.eq(from))
        .exec(db)
        .await?;
    tracked_hit::Entity::update_many()
        .col_expr(tracked_hit::Column::LeadId, Expr::value(to))
        .filter(tracked_hit::Column::WorkspaceId.eq(ws))
        .filter(tracked_hit::Column::LeadId.eq(from))
        .exec(db)
        .await?;
    // At most one of the two has an open handoff (checked by the caller).
    handoff::Entity::update_many()
        .col_expr(handoff::Column::OpenLeadId, Expr::value(to))
        .filter(handoff::Column::WorkspaceId.eq(ws))
        .filter(handoff::Column::OpenLeadId.eq(from))
        .exec(db)
        .await?;
    handoff::Entity::update_many()
        .col_expr(handoff::Column::LeadId, Expr::value(to))
        .filter(handoff::Column::WorkspaceId.eq(ws))
        .filter(handoff::Column::LeadId.eq(from))
        .exec(db)
        .await?;

    let contacts = opportunity_contact::Entity::in_workspace(ws)
        .filter(opportunity_contact::Column::LeadId.is_in([to, from]))
        .all(db)
        .await?;
    let mine: std::collections::HashMap<i64, &opportunity_contact::Model> =
        contacts.iter().filter(|c| c.lead_id == to).map(|c| (c.opportunity_id, c)).collect();
    for c in contacts.iter().filter(|c| c.lead_id == from) {
        match mine.get(&c.opportunity_id) {
            Some(kept) => {
                if c.is_primary && !kept.is_primary {
                    let mut next = (*kept).clone();
                    next.is_primary = true;
                    next.version += 1;
                    opportunity_contact::Entity::update_many()
                        .col_expr(opportunity_contact::Column::IsPrimary, Expr::value(true))
                        .col_expr(opportunity_contact::Column::Version, Expr::value(next.version))
                        .filter(opportunity_contact::Column::Id.eq(kept.id))
                        .exec(db)
                        .await?;
                    out.extend(NewChange::updated(ChangeKind::Updated, *kept, &next));
                }
                opportunity_contact::Entity::delete_many()
                    .filter(opportunity_contact::Column::Id.eq(c.id))
                    .exec(db)
                    .await?;
                out.push(NewChange::deleted(c));
            }
            None => {
                let mut next = c.clone();
                next.lead_id = to;
                next.version += 1;
                opportunity_contact::Entity::update_many()
                    .col_expr(opportunity_contact::Column::LeadId, Expr::value(to))
                    .col_expr(opportunity_contact::Column::Version, Expr::value(next.version))
                    .filter(opportunity_contact::Column::Id.eq(c.id))
                    .exec(db)
                    .await?;
                out.extend(NewChange::updated(ChangeKind::Updated, c, &next));
            }
        }
    }
    Ok(out)
}

/// Fills the survivor's empty fields from the duplicate (a merge never overwrites a value);
/// returns whether the survivor took the duplicate's e-mail.
fn fill_blanks(s: &mut lead::Model, d: &lead::Model) -> bool {
    let took_email = s.email.is_none() && d.email.is_some();
    for (mine, theirs) in [
        (&mut s.email, &d.email),
        (&mut s.external_id, &d.external_id),
        (&mut s.first_name, &d.first_name),
        (&mut s.last_name, &d.last_name),
        (&mut s.job_title, &d.job_title),
        (&mut s.decision_role, &d.decision_role),
        (&mut s.industry, &d.industry),
        (&mut s.company_size, &d.company_size),
        (&mut s.country, &d.country),
        (&mut s.phone, &d.phone),
        (&mut s.linkedin_url, &d.linkedin_url),
        (&mut s.twitter_handle, &d.twitter_handle),
        (&mut s.facebook_url, &d.facebook_url),
        (&mut s.street, &d.street),
        (&mut s.postal_code, &d.postal_code),
        (&mut s.city, &d.city),
    ] {
        if mine.is_none() {
            mine.clone_from(theirs);
        }
    }
    for (mine, theirs) in [(&mut s.account_id, d.account_id), (&mut s.owner_id, d.owner_id)] {
        if mine.is_none() {
            *mine = theirs;
        }
    }
    for (mine, theirs) in [(&mut s.consents, &d.consents), (&mut s.custom_fields, &d.custom_fields)] {
        if let (Some(mine), Some(theirs)) = (mine.as_object_mut(), theirs.as_object()) {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    s.search_text = crate::domain::search::lead_search_text(s.email.as_deref(), s.first_name.as_deref(), s.last_name.as_deref());
    took_email
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Ord::min(a, b)),
        (a, b) => a.or(b),
    }
}

/// The duplicate's stage when the survivor should move there: the duplicate's open handoff
/// comes along (its lead is in the handoff's stage), or the duplicate is further on the
/// success path than the survivor (or on it while the survivor is off it, say in NURTURE).
/// A survivor with an open handoff stays where the handoff put it.
fn stage_to_take<'a>(
    stages: &'a [funnel_stage::Model],
    s: &lead::Model,
    d: &lead::Model,
    survivor_open: bool,
    duplicate_open: bool,
) -> Option<&'a funnel_stage::Model> {
    if survivor_open || s.stage_id == d.stage_id {
        return None;
    }
    let to = stages.iter().find(|st| st.id == d.stage_id)?;
    if duplicate_open {
        return Some(to);
    }
    let from = stages.iter().find(|st| st.id == s.stage_id)?;
    let success = |st: &funnel_stage::Model| st.kind == STAGE_SUCCESS;
    (success(to) && (!success(from) || to.position > from.position)).then_some(to)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::vocab::STAGE_SIDE;

    fn stage(id: i64, position: i32, kind: &str) -> funnel_stage::Model {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        funnel_stage::Model {
            id,
            workspace_id: 1,
            key: format!("S{id}"),
            name: format!("S{id}"),
            kind: kind.to_owned(),
            position,
            sla_hours: None,
            created_at: t,
            updated_at: t,
        }
    }

    fn lead_in(id: i64, stage_id: i64) -> lead::Model {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        lead::Model {
            id,
            ..super::super::lead::blank(1, None, stage_id, t, t)
        }
    }

    #[test]
    fn the_further_stage_wins() {
        // LEAD 1, MQL 2, SQL 3 on the success path; NURTURE off it.
        let stages = [
            stage(1, 1, STAGE_SUCCESS),
            stage(2, 2, STAGE_SUCCESS),
            stage(3, 3, STAGE_SUCCESS),
            stage(9, 9, STAGE_SIDE),
        ];
        let id = |s: Option<&funnel_stage::Model>| s.map(|s| s.id);
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 1), &lead_in(2, 3), false, false)), Some(3));
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 3), &lead_in(2, 1), false, false)), None);
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 9), &lead_in(2, 1), false, false)), Some(1));
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 1), &lead_in(2, 9), false, false)), None);
        // An open handoff of the duplicate brings its stage; one of the survivor keeps it.
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 3), &lead_in(2, 2), false, true)), Some(2));
        assert_eq!(id(stage_to_take(&stages, &lead_in(1, 2), &lead_in(2, 3), true, false)), None);
    }

    #[test]
    fn blanks_are_filled_and_values_kept() {
        let mut s = lead_in(1, 1);
        s.first_name = Some("Ada".into());
        s.custom_fields = serde_json::json!({"tier": "gold"});
        let mut d = lead_in(2, 1);
        d.first_name = Some("Adelaide".into());
        d.last_name = Some("Lovelace".into());
        d.email = Some("ada@example.com".into());
        d.custom_fields = serde_json::json!({"tier": "silver", "source": "fair"});
        assert!(fill_blanks(&mut s, &d));
        assert_eq!(s.first_name.as_deref(), Some("Ada"));
        assert_eq!(s.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(s.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.custom_fields, serde_json::json!({"tier": "gold", "source": "fair"}));
        assert_eq!(s.search_text.as_deref(), Some("ada@example.com\nada\nlovelace"));
        let mut again = s.clone();
        assert!(!fill_blanks(&mut again, &d), "the survivor has an e-mail now");
    }
}
