//! Opportunities (deals) and their buying centers.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{account, lead, opportunity, opportunity_contact};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel};

use super::{Patch, author, clean};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::money;
use crate::domain::vocab::OpportunityStatus;
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::changes::{self, Author, NewChange};
use crate::store;

/// Where an opportunity's account comes from.
#[derive(Debug, Clone)]
pub enum AccountRef {
    Id(i64),
    ExternalId(String),
}

#[derive(Debug, Clone, Default)]
pub struct UpsertOpportunity {
    /// Updates this opportunity ...
    pub id: Option<i64>,
    /// ... or the one with this source-system ID; otherwise creates one.
    pub external_id: Option<String>,
    pub account: Option<AccountRef>,
    pub name: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub owner_id: Patch<i64>,
    pub expected_close_date: Patch<NaiveDate>,
    /// When the deal was opened in the source system (default now); used by attribution.
    pub created_at: Option<DateTime<Utc>>,
    /// Refuse the write (CONFLICT) unless the deal is at this version now; 0: only create.
    pub expected_version: Option<i64>,
}

pub struct Contact {
    pub lead_id: i64,
    pub role: String,
    pub is_primary: bool,
}

pub async fn upsert(db: &Db, p: Principal, input: UpsertOpportunity) -> ServiceResult<(opportunity::Model, bool)> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let external_id = clean(input.external_id);
    let txn = db.begin_write(ws).await?;
    let existing = match (input.id, &external_id) {
        (Some(id), _) => Some(
            store::by_id::<opportunity::Entity>(&*txn, ws, id)
                .await?
                .ok_or_else(|| AppError::not_found("opportunity"))?,
        ),
        (None, Some(x)) => store::opportunity::by_external_id(&*txn, ws, x).await?,
        (None, None) => None,
    };
    let account_id = match &input.account {
        None => None,
        Some(r) => {
            let found = match r {
                AccountRef::Id(id) => store::by_id::<account::Entity>(&*txn, ws, *id).await?,
                AccountRef::ExternalId(x) => store::account::by_external_id(&*txn, ws, x.trim()).await?,
            };
            if found.is_none() {
                v.push(&["input", "accountId"], "NOT_FOUND", "no such account");
            }
            found.map(|a| a.id)
        }
    };
    let amount = match input.amount.map(money::to_minor_non_negative) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            v.push(&["input", "amount"], "INVALID", format!("amount {e}"));
            None
        }
        None => None,
    };
    let currency = match input.currency.as_deref().map(money::parse_currency) {
        Some(Some(c)) => Some(c),
        Some(None) => {
            v.push(&["input", "currency"], "INVALID", "must be a three-letter ISO 4217 code");
            None
        }
        None => None,
    };
    if let Patch::Set(id) = input.owner_id
        && store::by_id::<entity::user::Entity>(&*txn, ws, id).await?.is_none()
    {
        v.push(&["input", "ownerId"], "NOT_FOUND", "no such user");
    }
    let name = clean(input.name);
    if existing.is_none() {
        if input.account.is_none() {
            v.push(&["input", "accountId"], "REQUIRED", "a new opportunity needs an account");
        }
        if name.is_none() {
            v.push(&["input", "name"], "REQUIRED", "a new opportunity needs a name");
        }
        if input.amount.is_none() {
            v.push(&["input", "amount"], "REQUIRED", "a new opportunity needs an amount");
        }
    }
    v.finish()?;
    ServiceError::check_version("opportunity", input.expected_version, existing.as_ref().map_or(0, |o| o.version))?;
    let by = author(&p);
    let now = Utc::now();
    let (saved, created) = match existing {
        Some(current) => {
            let mut m = current.clone();
            if let Some(a) = account_id {
                m.account_id = a;
            }
            if let Some(n) = name {
                m.name = n;
            }
            if let Some(a) = amount {
                m.amount_minor = a;
            }
            if let Some(c) = currency {
                m.currency = c;
            }
            if m.external_id.is_none() {
                m.external_id = external_id;
            }
            input.owner_id.apply(&mut m.owner_id);
            input.expected_close_date.apply(&mut m.expected_close_date);
            if let Some(t) = input.created_at {
                m.created_at = t;
            }
            if m == current {
                (current, false)
            } else {
                m.updated_at = now;
                let credited = (m.amount_minor, &m.currency, m.created_at) != (current.amount_minor, &current.currency, current.created_at);
                let saved = write(&*txn, &by, &current, m).await?;
                if credited && saved.status == OpportunityStatus::Won.as_str() {
                    super::attribution::refresh_deals(&*txn, ws, &[saved.id]).await?;
                }
                (saved, false)
            }
        }
        None => {
            let ws_currency = store::workspace::by_id(&*txn, ws)
                .await?
                .map(|w| w.currency)
                .unwrap_or_else(|| "EUR".into());
            let mut owner = None;
            input.owner_id.apply(&mut owner);
            let mut close = None;
            input.expected_close_date.apply(&mut close);
            let am = opportunity::ActiveModel {
                workspace_id: Set(ws),
                external_id: Set(external_id),
                account_id: Set(account_id.expect("validated")),
                name: Set(name.expect("validated")),
                amount_minor: Set(amount.expect("validated")),
                currency: Set(currency.unwrap_or(ws_currency)),
                status: Set(OpportunityStatus::Open.as_str().to_owned()),
                owner_id: Set(owner),
                expected_close_date: Set(close),
                closed_at: Set(None),
                created_at: Set(input.created_at.unwrap_or(now)),
                updated_at: Set(now),
                ..Default::default()
            };
            let inserted = am.insert(&*txn).await?;
            changes::record(&*txn, ws, &by, now, vec![NewChange::created(&inserted)]).await?;
            (inserted, true)
        }
    };
    txn.commit().await?;
    Ok((saved, created))
}

/// Replaces the buying center of an opportunity. At most one contact is primary; each must be
/// a lead of the workspace.
pub async fn set_buying_center(db: &Db, p: Principal, opportunity_id: i64, contacts: Vec<Contact>) -> ServiceResult<opportunity::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let txn = db.begin_write(ws).await?;
    let opp = store::by_id::<opportunity::Entity>(&*txn, ws, opportunity_id)
        .await?
        .ok_or_else(|| AppError::not_found("opportunity"))?;
    let ids: Vec<i64> = contacts.iter().map(|c| c.lead_id).collect();
    let known: HashSet<i64> = store::by_ids::<lead::Entity>(&*txn, ws, &ids)
        .await?
        .into_iter()
        .map(|l| l.id)
        .collect();
    let mut seen = HashSet::new();
    for (i, c) in contacts.iter().enumerate() {
        let idx = i.to_string();
        if !known.contains(&c.lead_id) {
            v.push(&["input", "contacts", &idx, "leadId"], "NOT_FOUND", "no such lead");
        } else if !seen.insert(c.lead_id) {
            v.push(&["input", "contacts", &idx, "leadId"], "DUPLICATE", "the lead is listed twice");
        }
        if c.role.trim().is_empty() {
            v.push(
                &["input", "contacts", &idx, "role"],
                "REQUIRED",
                "a buying-center member needs a role",
            );
        }
    }
    if contacts.iter().filter(|c| c.is_primary).count() > 1 {
        v.push(&["input", "contacts"], "INVALID", "at most one contact can be primary");
    }
    v.finish()?;
    // Seats of leads that stay keep their row (and ID); the feed hears of each seat that comes,
    // goes or changes its role.
    let now = Utc::now();
    let by = author(&p);
    let before = store::opportunity::contacts_of(&*txn, ws, &[opportunity_id]).await?;
    let mut wanted: HashMap<i64, Contact> = contacts.into_iter().map(|c| (c.lead_id, c)).collect();
    let mut feed = Vec::new();
    for seat in before {
        match wanted.remove(&seat.lead_id) {
            None => {
                opportunity_contact::Entity::delete_by_id(seat.id).exec(&*txn).await?;
                feed.push(NewChange::deleted(&seat));
            }
            Some(c) => {
                let mut next = seat.clone();
                next.role = c.role.trim().to_owned();
                next.is_primary = c.is_primary;
                if next != seat {
                    next.version += 1;
                    let saved = next.into_active_model().reset_all().update(&*txn).await?;
                    feed.extend(NewChange::updated(ChangeKind::Updated, &seat, &saved));
                }
            }
        }
    }
    let mut added: Vec<Contact> = wanted.into_values().collect();
    added.sort_by_key(|c| c.lead_id);
    for c in added {
        let seat = opportunity_contact::ActiveModel {
            workspace_id: Set(ws),
            opportunity_id: Set(opportunity_id),
            lead_id: Set(c.lead_id),
            role: Set(c.role.trim().to_owned()),
            is_primary: Set(c.is_primary),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        feed.push(NewChange::created(&seat));
    }
    changes::record(&*txn, ws, &by, now, feed).await?;
    let mut am = opp.clone().into_active_model();
    am.updated_at = Set(now);
    let opp = am.update(&*txn).await?;
    if opp.status == OpportunityStatus::Won.as_str() {
        super::attribution::refresh_deals(&*txn, ws, &[opp.id]).await?;
    }
    txn.commit().await?;
    Ok(opp)
}

/// Closes an open opportunity as won or lost, optionally with its final amount.
pub async fn close(
    db: &Db,
    p: Principal,
    id: i64,
    outcome: OpportunityStatus,
    amount: Option<Decimal>,
    closed_at: Option<DateTime<Utc>>,
) -> ServiceResult<opportunity::Model> {
    let ws = p.workspace_id;
    let amount = match amount.map(money::to_minor_non_negative) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => return Err(ServiceError::invalid(&["input", "amount"], "INVALID", format!("amount {e}"))),
        None => None,
    };
    let txn = db.begin_write(ws).await?;
    let opp = store::by_id::<opportunity::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("opportunity"))?;
    if opp.status != OpportunityStatus::Open.as_str() {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "ALREADY_CLOSED",
            format!("the opportunity is {} already", opp.status),
        ));
    }
    let closed_at = closed_at.unwrap_or_else(Utc::now);
    if closed_at < opp.created_at {
        return Err(ServiceError::invalid(
            &["input", "closedAt"],
            "INVALID",
            "must not be before the opportunity was created",
        ));
    }
    let mut next = opp.clone();
    next.status = outcome.as_str().to_owned();
    next.closed_at = Some(closed_at);
    if let Some(a) = amount {
        next.amount_minor = a;
    }
    let saved = write(&*txn, &author(&p), &opp, next).await?;
    if outcome == OpportunityStatus::Won {
        super::attribution::refresh_deals(&*txn, ws, &[saved.id]).await?;
    }
    txn.commit().await?;
    Ok(saved)
}

/// Writes a changed deal over `current` with the next version (CONFLICT when a concurrent write
/// changed it after it was read) and records the change.
async fn write(
    txn: &impl ConnectionTrait,
    by: &Author,
    current: &opportunity::Model,
    mut next: opportunity::Model,
) -> ServiceResult<opportunity::Model> {
    let now = Utc::now();
    next.updated_at = now;
    next.version = current.version + 1;
    let am = next.into_active_model().reset_all();
    let saved =
        super::write_at_version::<opportunity::Entity>(txn, current.workspace_id, "opportunity", am, current.id, current.version).await?;
    let change = NewChange::updated(ChangeKind::Updated, current, &saved);
    changes::record(txn, current.workspace_id, by, now, change.into_iter().collect()).await?;
    Ok(saved)
}
