//! Recording touchpoints: batches of up to 10,000, all or nothing, idempotent per item.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{campaign, lead, touchpoint};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QuerySelect};

use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::vocab::{VOCAB_TOUCHPOINT_TYPE, normalize_code};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::Bus;
use crate::events::changes::{self, Author, NewChange};
use crate::store::{self, Scoped};

pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone)]
pub struct NewTouchpoint {
    /// A decoded lead ID, or the raw text of an ID that did not decode.
    pub lead_id: Option<Result<i64, String>>,
    pub lead_external_id: Option<String>,
    pub lead_email: Option<String>,
    pub campaign_id: Option<Result<i64, String>>,
    pub campaign_external_id: Option<String>,
    pub touch_type: String,
    pub occurred_at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
}

pub struct Recorded {
    pub recorded: usize,
    pub duplicates: usize,
    /// In input order; duplicates are the rows recorded before.
    pub touchpoints: Vec<touchpoint::Model>,
}

/// Records a batch. Items whose idempotency key or external ID is already recorded (before or
/// earlier in the same batch) are not written again, so a retried batch counts once.
pub async fn record(db: &Db, bus: &Bus, p: Principal, items: Vec<NewTouchpoint>) -> ServiceResult<Recorded> {
    if items.len() > MAX_BATCH {
        return Err(AppError::BadInput(format!("a batch holds at most {MAX_BATCH} touchpoints, not {}", items.len())).into());
    }
    let txn = db.begin_write(p.workspace_id).await?;
    let (recorded, events) = record_in(&*txn, p.workspace_id, &super::author(&p), &items).await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok(recorded)
}

/// [`record`] inside the caller's transaction, with the same checks and the same effects (the
/// campaigns' counts, the leads' contact state and first touch, scores, attribution credits,
/// auto-MQL handoffs); returns the handoff events to publish once the caller has committed.
pub(crate) async fn record_in(
    conn: &impl ConnectionTrait,
    ws: i64,
    by: &Author,
    items: &[NewTouchpoint],
) -> ServiceResult<(Recorded, Vec<entity::event::Model>)> {
    // Before the leads are read: a merge or erasure of one of them either committed already (its
    // ID is NOT_FOUND) or waits until these touchpoints are in (and are moved along).
    store::lead::lock_lead_writes(conn, ws).await?;
    let types: HashSet<String> = store::workspace::vocabulary(conn, ws, VOCAB_TOUCHPOINT_TYPE)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();
    let refs = Refs::load(conn, ws, items).await?;

    let mut v = Validator::default();
    let mut resolved = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let idx = i.to_string();
        let field = |name: &str| vec!["input".to_owned(), "items".to_owned(), idx.clone(), name.to_owned()];
        let lead_id = match (&it.lead_id, &it.lead_external_id, &it.lead_email) {
            (Some(Ok(id)), None, None) => refs.lead_ids.contains(id).then_some(*id),
            (Some(Err(_)), None, None) => None,
            (None, Some(x), None) => refs.leads_by_ext.get(x.trim()).copied(),
            (None, None, Some(e)) => refs.leads_by_email.get(&e.trim().to_lowercase()).copied(),
            _ => {
                v.push_owned(field("leadId"), "INVALID", "give exactly one of leadId, leadExternalId, leadEmail");
                resolved.push(None);
                continue;
            }
        };
        let Some(lead_id) = lead_id else {
            v.push_owned(field(lead_field(it)), "NOT_FOUND", "no such lead");
            resolved.push(None);
            continue;
        };
        let campaign_id = match (&it.campaign_id, &it.campaign_external_id) {
            (None, None) => Some(None),
            (Some(Ok(id)), None) => refs.campaign_ids.contains(id).then_some(Some(*id)),
            (Some(Err(_)), None) => None,
            (None, Some(x)) => refs.campaigns_by_ext.get(x.trim()).map(|id| Some(*id)),
            (Some(_), Some(_)) => {
                v.push_owned(field("campaignId"), "INVALID", "give campaignId or campaignExternalId, not both");
                resolved.push(None);
                continue;
            }
        };
        let Some(campaign_id) = campaign_id else {
            let name = if it.campaign_id.is_some() {
                "campaignId"
            } else {
                "campaignExternalId"
            };
            v.push_owned(field(name), "NOT_FOUND", "no such campaign");
            resolved.push(None);
            continue;
        };
        let Some(code) = normalize_code(&it.touch_type).filter(|c| types.contains(c)) else {
            v.push_owned(
                field("type"),
                "INVALID",
                format!("{:?} is not a touchpoint type of this workspace", it.touch_type),
            );
            resolved.push(None);
            continue;
        };
        resolved.push(Some((lead_id, campaign_id, code)));
    }
    v.finish()?;

    // Classify: already recorded (by key or external ID), repeated within the batch, or new.
    let mut seen_keys: HashMap<String, usize> = HashMap::new();
    let mut seen_ext: HashMap<String, usize> = HashMap::new();
    enum Slot {
        Existing(i64),
        SameAs(usize),
        New(usize),
    }
    let mut slots = Vec::with_capacity(items.len());
    let mut inserted: Vec<touchpoint::Model> = Vec::new();
    let now = Utc::now();
    for (i, (it, r)) in items.iter().zip(resolved).enumerate() {
        let (lead_id, campaign_id, code) = r.expect("validated");
        let key = it.idempotency_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let ext = it.external_id.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if let Some(id) = key
            .and_then(|k| refs.existing_keys.get(k))
            .or_else(|| ext.and_then(|x| refs.existing_ext.get(x)))
        {
            slots.push(Slot::Existing(*id));
            continue;
        }
        if let Some(j) = key.and_then(|k| seen_keys.get(k)).or_else(|| ext.and_then(|x| seen_ext.get(x))) {
            slots.push(Slot::SameAs(*j));
            continue;
        }
        if let Some(k) = key {
            seen_keys.insert(k.to_owned(), i);
        }
        if let Some(x) = ext {
            seen_ext.insert(x.to_owned(), i);
        }
        slots.push(Slot::New(inserted.len()));
        inserted.push(touchpoint::Model {
            id: 0,
            workspace_id: ws,
            external_id: ext.map(str::to_owned),
            idempotency_key: key.map(str::to_owned),
            lead_id,
            campaign_id,
            touch_type: code,
            occurred_at: it.occurred_at,
            created_at: now,
            version: 1,
        });
    }

    store::touchpoint::insert_batch(conn, &mut inserted).await.map_err(|e| {
        if crate::error::is_unique_violation(&e) {
            ServiceError::App(AppError::Conflict(
                "a concurrent request recorded some of these touchpoints; retry the batch and they count once".into(),
            ))
        } else {
            e.into()
        }
    })?;

    changes::record(conn, ws, by, now, inserted.iter().map(NewChange::created).collect()).await?;
    bump_campaign_counts(conn, ws, &inserted).await?;
    mark_contact_state(conn, ws, by, &inserted).await?;
    mark_first_touch(conn, ws, &inserted, &refs.first_touch).await?;
    let entered = super::scoring::add_touchpoints(conn, ws, &inserted).await?;
    super::attribution::touchpoints_recorded(conn, ws, &inserted).await?;
    let events = super::scoring::auto_mql(conn, ws, entered).await?;

    let existing_ids: Vec<i64> = slots
        .iter()
        .filter_map(|s| if let Slot::Existing(id) = s { Some(*id) } else { None })
        .collect();
    let existing: HashMap<i64, touchpoint::Model> = store::by_ids::<touchpoint::Entity>(conn, ws, &existing_ids)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut out: Vec<touchpoint::Model> = Vec::with_capacity(slots.len());
    for slot in &slots {
        let row = match slot {
            Slot::Existing(id) => existing
                .get(id)
                .cloned()
                .ok_or_else(|| AppError::internal("recorded touchpoint vanished"))?,
            Slot::New(n) => inserted[*n].clone(),
            Slot::SameAs(j) => out[*j].clone(),
        };
        out.push(row);
    }
    let recorded = inserted.len();
    let result = Recorded {
        recorded,
        duplicates: out.len() - recorded,
        touchpoints: out,
    };
    Ok((result, events))
}

fn lead_field(it: &NewTouchpoint) -> &'static str {
    if it.lead_external_id.is_some() {
        "leadExternalId"
    } else if it.lead_email.is_some() {
        "leadEmail"
    } else {
        "leadId"
    }
}

/// Keeps `campaigns.touchpoint_count` equal to the number of the campaign's touchpoints.
async fn bump_campaign_counts(db: &impl ConnectionTrait, ws: i64, rows: &[touchpoint::Model]) -> Result<(), DbErr> {
    let mut per_campaign: HashMap<i64, i64> = HashMap::new();
    for t in rows {
        if let Some(c) = t.campaign_id {
            *per_campaign.entry(c).or_default() += 1;
        }
    }
    let counts: Vec<(i64, i64)> = per_campaign.into_iter().collect();
    store::campaign::add_touchpoint_counts(db, ws, &counts).await
}

/// EMAIL_BOUNCED and UNSUBSCRIBED touchpoints change whether a lead can be reached by e-mail:
/// the lead's `emailBouncedAt` / `unsubscribedAt` become the latest such touch (a change of the
/// lead in the feed, by the batch's author).
async fn mark_contact_state(db: &impl ConnectionTrait, ws: i64, by: &Author, rows: &[touchpoint::Model]) -> Result<(), AppError> {
    /// The latest bounce and unsubscription of a lead in the batch.
    #[derive(Default, Clone, Copy)]
    struct Latest {
        bounced: Option<DateTime<Utc>>,
        unsubscribed: Option<DateTime<Utc>>,
    }
    let mut latest: HashMap<i64, Latest> = HashMap::new();
    for t in rows {
        let e = latest.entry(t.lead_id).or_default();
        let at = match t.touch_type.as_str() {
            "EMAIL_BOUNCED" => &mut e.bounced,
            "UNSUBSCRIBED" => &mut e.unsubscribed,
            _ => continue,
        };
        *at = Some(at.map_or(t.occurred_at, |a| Ord::max(a, t.occurred_at)));
    }
    latest.retain(|_, l| l.bounced.is_some() || l.unsubscribed.is_some());
    if latest.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = latest.keys().copied().collect();
    let mut leads = store::by_ids::<lead::Entity>(db, ws, &ids).await?;
    leads.sort_unstable_by_key(|l| l.id);
    let mut told = Vec::new();
    for l in leads {
        let Latest { bounced, unsubscribed } = latest[&l.id];
        let mut next = l.clone();
        let later = |stored: Option<DateTime<Utc>>, new: Option<DateTime<Utc>>| match (stored, new) {
            (Some(s), Some(n)) => Some(Ord::max(s, n)),
            (s, n) => s.or(n),
        };
        next.email_bounced_at = later(l.email_bounced_at, bounced);
        next.unsubscribed_at = later(l.unsubscribed_at, unsubscribed);
        let (_, change) = super::lead::write(db, ChangeKind::Updated, l, next, Vec::new()).await?;
        told.extend(change);
    }
    changes::record(db, ws, by, Utc::now(), told).await?;
    Ok(())
}

/// Keeps each lead's first touch (time and campaign) current after a batch, through
/// [`store::lead::refresh_first_touch`], for the leads whose first touch the new rows can be:
/// those that had none, or had one no earlier than their earliest new touch (at the same instant
/// the tie-break may pick a new one). A stored first touch only ever moves earlier, so a lead
/// whose new touches are all later keeps it and costs no statement; a batch of recent activity
/// skips most of its leads.
async fn mark_first_touch(
    db: &impl ConnectionTrait,
    ws: i64,
    rows: &[touchpoint::Model],
    first_touch: &HashMap<i64, Option<DateTime<Utc>>>,
) -> Result<(), DbErr> {
    let mut earliest: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for t in rows {
        earliest
            .entry(t.lead_id)
            .and_modify(|at| *at = Ord::min(*at, t.occurred_at))
            .or_insert(t.occurred_at);
    }
    let mut leads: Vec<i64> = earliest
        .into_iter()
        .filter(|(lead, new)| match first_touch.get(lead) {
            Some(Some(stored)) => new <= stored,
            _ => true,
        })
        .map(|(lead, _)| lead)
        .collect();
    leads.sort_unstable();
    store::lead::refresh_first_touch(db, ws, &leads, Utc::now()).await?;
    Ok(())
}

/// Everything the batch refers to, looked up in a few queries.
#[derive(Default)]
struct Refs {
    lead_ids: HashSet<i64>,
    leads_by_ext: HashMap<String, i64>,
    leads_by_email: HashMap<String, i64>,
    campaign_ids: HashSet<i64>,
    campaigns_by_ext: HashMap<String, i64>,
    existing_keys: HashMap<String, i64>,
    existing_ext: HashMap<String, i64>,
    /// The stored first touch of every lead found.
    first_touch: HashMap<i64, Option<DateTime<Utc>>>,
}

impl Refs {
    async fn load(db: &impl ConnectionTrait, ws: i64, items: &[NewTouchpoint]) -> Result<Self, DbErr> {
        fn uniq<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
            let set: HashSet<String> = it.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            set.into_iter().collect()
        }
        let lead_ids: Vec<i64> = items
            .iter()
            .filter_map(|i| i.lead_id.clone()?.ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let lead_ext = uniq(items.iter().filter_map(|i| i.lead_external_id.as_deref()));
        let lead_emails: Vec<String> = uniq(items.iter().filter_map(|i| i.lead_email.as_deref()))
            .into_iter()
            .map(|e| e.to_lowercase())
            .collect();
        let camp_ids: Vec<i64> = items
            .iter()
            .filter_map(|i| i.campaign_id.clone()?.ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let camp_ext = uniq(items.iter().filter_map(|i| i.campaign_external_id.as_deref()));
        let keys = uniq(items.iter().filter_map(|i| i.idempotency_key.as_deref()));
        let exts = uniq(items.iter().filter_map(|i| i.external_id.as_deref()));

        let mut r = Refs::default();
        use lead::Column as L;
        let live = L::ErasedAt.is_null();
        // Only what the batch needs of a lead: its ID, the key it was named by, its first touch.
        type LeadRef = (i64, Option<String>, Option<DateTime<Utc>>);
        let lead_refs = |key: L, filter: Expr| {
            lead::Entity::in_workspace(ws)
                .filter(filter)
                .select_only()
                .columns([L::Id, key, L::FirstTouchAt])
                .into_tuple::<LeadRef>()
        };
        if !lead_ids.is_empty() {
            let by_id = store::id_in(db, L::Id, &lead_ids).and(live.clone());
            for (id, _, first) in lead_refs(L::ExternalId, by_id).all(db).await? {
                r.lead_ids.insert(id);
                r.first_touch.insert(id, first);
            }
        }
        if !lead_ext.is_empty() {
            let by_ext = store::text_in(db, L::ExternalId, &lead_ext).and(live.clone());
            for (id, ext, first) in lead_refs(L::ExternalId, by_ext).all(db).await? {
                r.leads_by_ext.insert(ext.unwrap_or_default(), id);
                r.first_touch.insert(id, first);
            }
        }
        if !lead_emails.is_empty() {
            let by_email = store::text_in(db, L::Email, &lead_emails).and(live);
            for (id, email, first) in lead_refs(L::Email, by_email).all(db).await? {
                r.leads_by_email.insert(email.unwrap_or_default(), id);
                r.first_touch.insert(id, first);
            }
        }
        use campaign::Column as C;
        // Campaigns and touchpoints already recorded: only their IDs and the keys they were named by.
        if !camp_ids.is_empty() {
            r.campaign_ids.extend(
                campaign::Entity::in_workspace(ws)
                    .filter(store::id_in(db, C::Id, &camp_ids))
                    .select_only()
                    .column(C::Id)
                    .into_tuple::<i64>()
                    .all(db)
                    .await?,
            );
        }
        if !camp_ext.is_empty() {
            let rows = campaign::Entity::in_workspace(ws)
                .filter(store::text_in(db, C::ExternalId, &camp_ext))
                .select_only()
                .columns([C::Id, C::ExternalId])
                .into_tuple::<(i64, Option<String>)>()
                .all(db)
                .await?;
            r.campaigns_by_ext
                .extend(rows.into_iter().map(|(id, ext)| (ext.unwrap_or_default(), id)));
        }
        use touchpoint::Column as T;
        for (key, values, found) in [
            (T::IdempotencyKey, &keys, &mut r.existing_keys),
            (T::ExternalId, &exts, &mut r.existing_ext),
        ] {
            if values.is_empty() {
                continue;
            }
            let rows = touchpoint::Entity::in_workspace(ws)
                .filter(store::text_in(db, key, values))
                .select_only()
                .columns([T::Id, key])
                .into_tuple::<(i64, Option<String>)>()
                .all(db)
                .await?;
            found.extend(rows.into_iter().map(|(id, k)| (k.unwrap_or_default(), id)));
        }
        Ok(r)
    }
}
