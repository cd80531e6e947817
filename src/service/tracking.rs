//! First-party capture: tracking keys and links, the processing of ingested hits into
//! visitors, hits and touchpoints, and the stitching of a visitor's history to a lead.
//!
//! A hit becomes a touchpoint when it is a person's (not a machine's or a bot's), its lead is
//! known, and its type is a touchpoint type of the workspace. Hits of anonymous visitors are
//! kept as hits; when the visitor identifies, all of them become the lead's touchpoints in the
//! same transaction that re-scores the lead, hands it off if it became an MQL and updates the
//! attribution ledger: the effects of `recordTouchpoints`, through the same code.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use entity::{campaign, event, ingest_counter, ingest_cursor, ingest_inbox, lead, tracked_hit, tracking_key, tracking_link, visitor};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use super::Patch;
use super::touchpoint::{MAX_BATCH, NewTouchpoint};
use crate::auth::{Principal, random_hex};
use crate::db::Db;
use crate::domain::email::Email;
use crate::domain::tracking::{Agent, Source, Token, TokenKind, valid_visitor_id, with_utm};
use crate::domain::vocab::{VOCAB_TOUCHPOINT_TYPE, normalize_code};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::Bus;
use crate::events::changes::Author;
use crate::ingest::Hit;
use crate::store::{self, Scoped};

/// Inbox rows one processing transaction takes at most.
pub const BATCH: u64 = 1_000;

/// The prefix of a publishable site key.
const SITE_KEY_PREFIX: &str = "cls_";

/// The workspace's tracking keys, made on first use (in the caller's transaction).
pub async fn keys_in(conn: &impl ConnectionTrait, ws: i64) -> Result<tracking_key::Model, DbErr> {
    if let Some(k) = tracking_key::Entity::find_by_id(ws).one(conn).await? {
        return Ok(k);
    }
    let now = Utc::now();
    let k = tracking_key::Model {
        workspace_id: ws,
        site_key: format!("{SITE_KEY_PREFIX}{}", random_hex(16)),
        secret: random_hex(32),
        created_at: now,
        updated_at: now,
    };
    tracking_key::Entity::insert(k.clone().into_active_model())
        .on_conflict(OnConflict::column(tracking_key::Column::WorkspaceId).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    // A concurrent first use may have won; its keys are the ones.
    tracking_key::Entity::find_by_id(ws)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("tracking keys".into()))
}

/// `trackingSettings`: the workspace's site key (made on first use).
pub async fn keys(db: &Db, p: Principal) -> Result<tracking_key::Model, AppError> {
    if let Some(k) = tracking_key::Entity::find_by_id(p.workspace_id).one(&db.conn).await? {
        return Ok(k);
    }
    let txn = db.begin_write_unscoped().await?;
    let k = keys_in(&*txn, p.workspace_id).await?;
    txn.commit().await?;
    Ok(k)
}

/// `rotateSiteKey` (ADMIN): a new publishable site key; the old one stops working at once on
/// this replica and within [`Resolver`]'s cache time on others. Links stay valid: they are
/// signed with the secret, which does not change.
pub async fn rotate_site_key(db: &Db, resolver: &Resolver, p: Principal) -> Result<tracking_key::Model, AppError> {
    let txn = db.begin_write_unscoped().await?;
    let current = keys_in(&*txn, p.workspace_id).await?;
    let old = current.site_key.clone();
    let mut am = current.into_active_model();
    am.site_key = Set(format!("{SITE_KEY_PREFIX}{}", random_hex(16)));
    am.updated_at = Set(Utc::now());
    let k = am.update(&*txn).await?;
    txn.commit().await?;
    resolver.forget_site_key(&old);
    Ok(k)
}

/// `eraseLead`: the lead's visitors (with their IDs) and every hit of theirs or the lead's are
/// deleted; its touchpoints stay, as for any erased lead.
pub async fn erase_lead(conn: &impl ConnectionTrait, ws: i64, lead: i64) -> Result<(), DbErr> {
    tracked_hit::Entity::delete_many()
        .filter(tracked_hit::Column::WorkspaceId.eq(ws))
        .filter(tracked_hit::Column::LeadId.eq(lead))
        .exec(conn)
        .await?;
    let visitors = visitor::Entity::in_workspace(ws)
        .filter(visitor::Column::LeadId.eq(lead))
        .select_only()
        .column(visitor::Column::Id)
        .into_tuple::<i64>()
        .all(conn)
        .await?;
    if !visitors.is_empty() {
        tracked_hit::Entity::delete_many()
            .filter(tracked_hit::Column::WorkspaceId.eq(ws))
            .filter(store::id_in(conn, tracked_hit::Column::VisitorId, &visitors))
            .exec(conn)
            .await?;
        visitor::Entity::delete_many()
            .filter(visitor::Column::WorkspaceId.eq(ws))
            .filter(store::id_in(conn, visitor::Column::Id, &visitors))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// A new tracking link.
pub struct NewLink {
    pub campaign_id: i64,
    pub destination: String,
    /// `(utm_source, value)` ... set on the destination.
    pub utm: Vec<(&'static str, String)>,
    /// The touchpoint type of a click; default EMAIL_CLICK for an EMAIL campaign, else AD_CLICK.
    pub touch_type: Option<String>,
}

/// `createTrackingLink` (MARKETING, ADMIN): a link of a campaign to an http(s) destination.
pub async fn create_link(db: &Db, p: Principal, input: NewLink) -> ServiceResult<tracking_link::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let destination = match url::Url::parse(input.destination.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.username().is_empty() && u.password().is_none() => {
            Some(u)
        }
        _ => {
            v.push(
                &["input", "destination"],
                "INVALID",
                "must be an absolute http(s) URL without credentials",
            );
            None
        }
    };
    if input.destination.len() > 2048 {
        v.push(&["input", "destination"], "TOO_LONG", "must have at most 2048 characters");
    }
    for (name, value) in &input.utm {
        if value.len() > 200 {
            v.push(&["input", "utm", name], "TOO_LONG", "must have at most 200 characters");
        }
    }
    let txn = db.begin_write(ws).await?;
    let campaign = store::with_id::<campaign::Entity>(ws, input.campaign_id).one(&*txn).await?;
    if campaign.is_none() {
        v.push(&["input", "campaignId"], "NOT_FOUND", "no such campaign");
    }
    let types: HashSet<String> = store::workspace::vocabulary(&*txn, ws, VOCAB_TOUCHPOINT_TYPE)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();
    let touch_type = match (&input.touch_type, &campaign) {
        (Some(t), _) => match normalize_code(t).filter(|c| types.contains(c)) {
            Some(c) => Some(c),
            None => {
                v.push(
                    &["input", "touchType"],
                    "INVALID",
                    format!("{t:?} is not a touchpoint type of this workspace"),
                );
                None
            }
        },
        (None, Some(c)) if c.channel == "EMAIL" => Some("EMAIL_CLICK".to_owned()),
        (None, _) => Some("AD_CLICK".to_owned()),
    };
    v.finish()?;
    let (Some(destination), Some(touch_type)) = (destination, touch_type) else {
        unreachable!("validated");
    };
    keys_in(&*txn, ws).await?;
    let utm: Vec<(&str, &str)> = input.utm.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let link = tracking_link::Model {
        id: 0,
        workspace_id: ws,
        campaign_id: input.campaign_id,
        destination: with_utm(&destination, &utm).to_string(),
        touch_type,
        created_at: Utc::now(),
    };
    let mut am = link.into_active_model();
    am.id = sea_orm::ActiveValue::NotSet;
    let saved = am.insert(&*txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// The click and open tokens of `link`, for anyone or for one lead (a mailing's recipient).
pub fn tokens(secret: &str, link: &tracking_link::Model, lead: Option<i64>, now: DateTime<Utc>) -> (String, String) {
    let minute = now.timestamp().div_euclid(60);
    let t = |kind| Token {
        kind,
        workspace: link.workspace_id,
        link: link.id,
        lead,
        issued_minute: minute,
    };
    (
        t(TokenKind::Click).sign(secret.as_bytes()),
        t(TokenKind::Open).sign(secret.as_bytes()),
    )
}

/// What the public endpoints look up on every hit, cached: which workspace a site key is,
/// each workspace's signing secret, and each link's workspace, campaign and destination.
/// Secrets and links never change, so they are kept; a site key is kept for a minute, so a
/// rotated one stops working on every replica within that time.
#[derive(Default)]
pub struct Resolver {
    site_keys: RwLock<HashMap<String, (Option<i64>, std::time::Instant)>>,
    secrets: RwLock<HashMap<i64, Arc<str>>>,
    links: RwLock<HashMap<i64, Arc<tracking_link::Model>>>,
}

/// Entries a cache keeps at most; a full one is emptied and filled again.
const CACHE_MAX: usize = 100_000;
const SITE_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

fn put<K: std::hash::Hash + Eq, V>(map: &RwLock<HashMap<K, V>>, k: K, v: V) {
    let mut m = map.write().expect("cache lock");
    if m.len() >= CACHE_MAX {
        m.clear();
    }
    m.insert(k, v);
}

impl Resolver {
    /// The workspace of a publishable site key.
    pub async fn site_key(&self, db: &Db, key: &str) -> Result<Option<i64>, DbErr> {
        if !key.starts_with(SITE_KEY_PREFIX) || key.len() > 64 {
            return Ok(None);
        }
        if let Some((ws, at)) = self.site_keys.read().expect("cache lock").get(key)
            && at.elapsed() < SITE_KEY_TTL
        {
            return Ok(*ws);
        }
        let ws = tracking_key::Entity::find()
            .filter(tracking_key::Column::SiteKey.eq(key))
            .one(&db.conn)
            .await?
            .map(|k| k.workspace_id);
        put(&self.site_keys, key.to_owned(), (ws, std::time::Instant::now()));
        Ok(ws)
    }

    fn forget_site_key(&self, key: &str) {
        self.site_keys.write().expect("cache lock").remove(key);
    }

    /// A token of `kind` checked against its workspace's secret; `None` for a forged one.
    pub async fn token(&self, db: &Db, kind: TokenKind, text: &str) -> Result<Option<Token>, DbErr> {
        let Some(u) = crate::domain::tracking::Unverified::parse(kind, text) else {
            return Ok(None);
        };
        let Some(secret) = self.secret(db, u.workspace()).await? else {
            return Ok(None);
        };
        Ok(u.verify(secret.as_bytes()))
    }

    /// The secret workspace `ws` signs its links with; `None` before its first link.
    pub async fn secret(&self, db: &Db, ws: i64) -> Result<Option<Arc<str>>, DbErr> {
        if let Some(s) = self.secrets.read().expect("cache lock").get(&ws) {
            return Ok(Some(s.clone()));
        }
        let Some(k) = tracking_key::Entity::find_by_id(ws).one(&db.conn).await? else {
            return Ok(None);
        };
        let s: Arc<str> = k.secret.into();
        put(&self.secrets, ws, s.clone());
        Ok(Some(s))
    }

    /// The link a verified token names, if it still exists in the token's workspace.
    pub async fn link(&self, db: &Db, token: &Token) -> Result<Option<Arc<tracking_link::Model>>, DbErr> {
        if let Some(l) = self.links.read().expect("cache lock").get(&token.link) {
            return Ok((l.workspace_id == token.workspace).then(|| l.clone()));
        }
        let Some(l) = store::with_id::<tracking_link::Entity>(token.workspace, token.link)
            .one(&db.conn)
            .await?
        else {
            return Ok(None);
        };
        let l = Arc::new(l);
        put(&self.links, l.id, l.clone());
        Ok(Some(l))
    }
}

/// The touchpoint type of a site event's name: `page_view` is PAGE_VIEW, `download` is
/// WHITEPAPER_DOWNLOAD, `form_submit` is FORM_SUBMIT, `video` is VIDEO_VIEW; any other name
/// is its own code (`webinar_register` is WEBINAR_REGISTER).
pub fn event_type(name: &str) -> Option<String> {
    match name.trim().to_ascii_lowercase().as_str() {
        "page_view" | "pageview" => Some("PAGE_VIEW".into()),
        "download" => Some("WHITEPAPER_DOWNLOAD".into()),
        "form_submit" => Some("FORM_SUBMIT".into()),
        "video" => Some("VIDEO_VIEW".into()),
        other => normalize_code(other),
    }
}

/// What one processing transaction did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub hits: usize,
    pub rejected: usize,
    pub touchpoints: usize,
    pub stitched_visitors: usize,
    /// Handoff events to publish after commit.
    pub events: Vec<event::Model>,
}

/// Processes the oldest hits of the inbox, at most `limit`, in one transaction that deletes
/// them from it; returns how many it took (0: inbox empty). Each workspace's hits are applied
/// in order. On PostgreSQL, replicas take turns by an advisory lock, so no hit is processed
/// twice and hits are processed in the order they were appended.
pub async fn process_next(db: &Db, bus: &Bus, limit: u64) -> ServiceResult<usize> {
    // A hit the checks let through but the write refuses must not hold up every later one: the
    // batch is halved down to that one hit, which is then dropped (and counted as rejected).
    let mut limit = Ord::max(limit, 1);
    loop {
        match process_batch(db, bus, limit).await {
            Err(ServiceError::Invalid(errors)) => {
                if limit > 1 {
                    limit /= 2;
                    continue;
                }
                tracing::warn!(?errors, "a tracking hit was refused on processing; dropped");
                return reject_oldest(db).await;
            }
            done => return done,
        }
    }
}

/// On PostgreSQL, replicas take turns at the inbox: this transaction holds the processor's
/// advisory lock until it ends.
async fn lock_inbox(db: &Db, txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if db.backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [INBOX_LOCK.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The advisory lock key of the inbox processor ("cl" and "inbox").
const INBOX_LOCK: i64 = 0x636c_0069_6e62_6f78;

/// An inbox row: ID, workspace, time received, body.
type InboxRow = (i64, i64, DateTime<Utc>, String);

/// The oldest inbox rows.
async fn oldest_rows(txn: &DatabaseTransaction, limit: u64) -> Result<Vec<InboxRow>, DbErr> {
    ingest_inbox::Entity::find()
        .select_only()
        .columns([
            ingest_inbox::Column::Id,
            ingest_inbox::Column::WorkspaceId,
            ingest_inbox::Column::ReceivedAt,
            ingest_inbox::Column::Body,
        ])
        .order_by_asc(ingest_inbox::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(txn)
        .await
}

/// Drops the oldest hit of the inbox, counted as rejected.
async fn reject_oldest(db: &Db) -> ServiceResult<usize> {
    let txn = db.begin_write_unscoped().await?;
    lock_inbox(db, &txn).await?;
    let Some((id, ws, received, _)) = oldest_rows(&txn, 1).await?.pop() else {
        return Ok(0);
    };
    ingest_inbox::Entity::delete_by_id(id).exec(&*txn).await?;
    count(&*txn, ws, 1, 1, Some(received)).await?;
    txn.commit().await?;
    Ok(1)
}

async fn process_batch(db: &Db, bus: &Bus, limit: u64) -> ServiceResult<usize> {
    let txn = db.begin_write_unscoped().await?;
    let mut rows = oldest_rows(&txn, limit).await?;
    if rows.is_empty() {
        // An idle poll takes no lock.
        return Ok(0);
    }
    if db.backend() == DbBackend::Postgres {
        // Another replica may have processed these meanwhile: read again under the lock.
        lock_inbox(db, &txn).await?;
        rows = oldest_rows(&txn, limit).await?;
        if rows.is_empty() {
            return Ok(0);
        }
    }
    let events = apply_rows(&txn, &rows).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    ingest_inbox::Entity::delete_many()
        .filter(store::id_in(&*txn, ingest_inbox::Column::Id, &ids))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    wrote(db, &rows);
    Ok(rows.len())
}

/// Tells this process's change streams that the workspaces of these rows committed a write
/// (a processing transaction writes in several, which its own commit does not name).
fn wrote(db: &Db, rows: &[InboxRow]) {
    let workspaces: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.1).collect();
    for ws in workspaces {
        let _ = db.commits.send(ws);
    }
}

/// Applies inbox rows in `txn`, each workspace's in the order given, and counts them; the
/// events to publish after commit.
async fn apply_rows(txn: &DatabaseTransaction, rows: &[InboxRow]) -> ServiceResult<Vec<event::Model>> {
    let mut by_workspace: BTreeMap<i64, Vec<&InboxRow>> = BTreeMap::new();
    for row in rows {
        by_workspace.entry(row.1).or_default().push(row);
    }
    let mut events = Vec::new();
    for (ws, rows) in by_workspace {
        let mut hits = Vec::with_capacity(rows.len());
        let mut unreadable = 0;
        for (id, _, received_at, body) in &rows {
            match serde_json::from_str::<Hit>(body) {
                Ok(hit) => hits.push((hit, *received_at)),
                Err(e) => {
                    tracing::warn!(inbox_id = id, error = %e, "an inbox row is not a hit; dropped");
                    unreadable += 1;
                }
            }
        }
        let outcome = apply(txn, ws, hits).await?;
        let last_received = rows.iter().map(|r| r.2).max();
        count(txn, ws, rows.len() as i64, (outcome.rejected + unreadable) as i64, last_received).await?;
        // Cached reports of the workspace are stale now.
        store::workspace::bump_revision(txn, ws).await?;
        events.extend(outcome.events);
    }
    Ok(events)
}

/// A hit read from an inbox outside the database: its position in that inbox (a stream
/// sequence, increasing), workspace, time received and body.
pub type SequencedHit = InboxRow;

/// Processes hits read from the external inbox `source` in the order of their positions, in
/// one transaction that also moves the source's cursor (`ingest_cursors`) past them; hits at or
/// before the cursor were processed already (by this server before a crash, or by another
/// replica) and are skipped. As [`process_next`], a hit the write refuses is isolated by
/// halving and dropped as rejected. Replicas take turns by the same advisory lock as for the
/// table inbox.
pub async fn process_sequenced(db: &Db, bus: &Bus, source: &str, hits: &[SequencedHit]) -> ServiceResult<Sequenced> {
    let mut limit = hits.len();
    loop {
        match process_sequenced_batch(db, bus, source, &hits[..limit], false).await {
            Err(ServiceError::Invalid(errors)) if limit > 0 => {
                if limit > 1 {
                    limit /= 2;
                    continue;
                }
                tracing::warn!(?errors, "a tracking hit was refused on processing; dropped");
                return process_sequenced_batch(db, bus, source, &hits[..1], true).await;
            }
            done => return done,
        }
    }
}

/// The current cursor of an external inbox (0: nothing processed yet).
pub async fn cursor(conn: &impl ConnectionTrait, source: &str) -> Result<i64, DbErr> {
    Ok(ingest_cursor::Entity::find_by_id(source.to_owned())
        .one(conn)
        .await?
        .map_or(0, |c| c.position))
}

/// What [`process_sequenced`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    /// Hits of the slice, from the front, that are done with (processed now or before).
    pub done: usize,
    /// Of those, the hits this call processed.
    pub processed: usize,
    /// The source's cursor after them.
    pub cursor: i64,
}

async fn process_sequenced_batch(db: &Db, bus: &Bus, source: &str, hits: &[SequencedHit], reject: bool) -> ServiceResult<Sequenced> {
    let txn = db.begin_write_unscoped().await?;
    lock_inbox(db, &txn).await?;
    let before = cursor(&*txn, source).await?;
    let fresh: Vec<SequencedHit> = hits.iter().filter(|h| h.0 > before).cloned().collect();
    let Some(last) = fresh.last().map(|h| h.0) else {
        return Ok(Sequenced {
            done: hits.len(),
            processed: 0,
            cursor: before,
        });
    };
    let events = if reject {
        for (_, ws, received, _) in &fresh {
            count(&*txn, *ws, 1, 1, Some(*received)).await?;
        }
        Vec::new()
    } else {
        apply_rows(&txn, &fresh).await?
    };
    ingest_cursor::Entity::insert(ingest_cursor::ActiveModel {
        source: Set(source.to_owned()),
        position: Set(last),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(ingest_cursor::Column::Source)
            .update_columns([ingest_cursor::Column::Position, ingest_cursor::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(&*txn)
    .await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    wrote(db, &fresh);
    Ok(Sequenced {
        done: hits.len(),
        processed: fresh.len(),
        cursor: last,
    })
}

async fn count(conn: &impl ConnectionTrait, ws: i64, processed: i64, rejected: i64, last: Option<DateTime<Utc>>) -> Result<(), DbErr> {
    use ingest_counter::Column as C;
    let row = ingest_counter::ActiveModel {
        workspace_id: Set(ws),
        processed: Set(processed),
        rejected: Set(rejected),
        last_received_at: Set(last),
        updated_at: Set(Utc::now()),
    };
    ingest_counter::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::WorkspaceId)
                .value(C::Processed, Expr::col((ingest_counter::Entity, C::Processed)).add(processed))
                .value(C::Rejected, Expr::col((ingest_counter::Entity, C::Rejected)).add(rejected))
                .update_columns([C::LastReceivedAt, C::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// How far the processor has come for a workspace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestStatus {
    /// Hits acknowledged: processed ones plus those still in the inbox.
    pub acknowledged: i64,
    pub processed: i64,
    /// Processed hits that were refused (a link of another workspace, a campaign of another
    /// workspace, a bot's form, an unreadable row); they count as processed.
    pub rejected: i64,
    /// Age of the oldest hit still waiting; 0 when none waits.
    pub lag_seconds: f64,
}

pub async fn status(db: &Db, inbox: &crate::ingest::Inbox, ws: i64) -> Result<IngestStatus, AppError> {
    // What waits first, then what was processed: a hit processed in between counts twice for a
    // moment (`acknowledged` a little high), never not at all.
    let waiting = inbox.waiting(db, ws).await?;
    let counters = ingest_counter::Entity::find_by_id(ws).one(&db.conn).await?;
    let (processed, rejected) = counters.map_or((0, 0), |c| (c.processed, c.rejected));
    let lag = waiting
        .oldest
        .map_or(0.0, |t| ((Utc::now() - t).num_milliseconds().clamp(0, i64::MAX) as f64) / 1000.0);
    Ok(IngestStatus {
        acknowledged: processed + waiting.hits,
        processed,
        rejected,
        lag_seconds: lag,
    })
}

/// Hits of a workspace acknowledged and not processed yet, and when the oldest was received.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Waiting {
    pub hits: i64,
    pub oldest: Option<DateTime<Utc>>,
}

/// What waits in the database's inbox table for a workspace.
pub async fn waiting_in_table(db: &Db, ws: i64) -> Result<Waiting, DbErr> {
    let (hits, oldest): (i64, Option<DateTime<Utc>>) = ingest_inbox::Entity::find()
        .filter(ingest_inbox::Column::WorkspaceId.eq(ws))
        .select_only()
        .column_as(ingest_inbox::Column::Id.count(), "n")
        .column_as(ingest_inbox::Column::ReceivedAt.min(), "oldest")
        .into_tuple()
        .one(&db.conn)
        .await?
        .unwrap_or((0, None));
    Ok(Waiting { hits, oldest })
}

/// `identifyVisitor` from a backend: stitches a visitor to a lead (by e-mail, made if new, or
/// by ID) at once, in one transaction, as a form on the site would through the inbox.
pub async fn identify_now(
    db: &Db,
    bus: &Bus,
    p: Principal,
    visitor: &str,
    email: Option<String>,
    lead: Option<i64>,
) -> ServiceResult<(lead::Model, Outcome)> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    if !valid_visitor_id(visitor) {
        v.push(
            &["input", "visitorId"],
            "INVALID",
            "a visitor ID has 16 to 64 characters of A-Z, a-z, 0-9, - and _",
        );
    }
    match (&email, lead) {
        (Some(e), None) => {
            if let Err(msg) = Email::parse(e) {
                v.push(&["input", "email"], "INVALID", msg);
            }
        }
        (None, Some(_)) => {}
        _ => v.push(&["input"], "INVALID", "give exactly one of email and leadId"),
    }
    let txn = db.begin_write(ws).await?;
    if let Some(id) = lead
        && super::lead::live_lead(&*txn, ws, id).await.is_err()
    {
        v.push(&["input", "leadId"], "NOT_FOUND", "no such lead");
    }
    v.finish()?;
    let hit = Hit::Identify {
        visitor: visitor.to_owned(),
        email,
        lead,
        fields: BTreeMap::new(),
        url: None,
        landing: None,
        form: false,
        agent: Agent::Human,
        at: Utc::now(),
    };
    let mut outcome = apply(&txn, ws, vec![(hit, Utc::now())]).await?;
    let events = std::mem::take(&mut outcome.events);
    let lead_id = visitor::Entity::in_workspace(ws)
        .filter(visitor::Column::Uid.eq(visitor))
        .one(&*txn)
        .await?
        .and_then(|v| v.lead_id)
        .ok_or_else(|| AppError::internal("the identified visitor has no lead"))?;
    let lead = super::lead::live_lead(&*txn, ws, lead_id).await?;
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok((lead, outcome))
}

/// A touchpoint a hit should become: (the hit's row in the batch, lead, campaign, type, time,
/// idempotency key, or `None` for `hit:{id}`).
type Wanted = (usize, i64, Option<i64>, String, DateTime<Utc>, Option<String>);

/// Unknown `utm_campaign` codes of a batch: hits, first and last seen.
type UnknownCodes = HashMap<String, (i64, DateTime<Utc>, DateTime<Utc>)>;

/// A visitor as processing sees it.
#[derive(Clone, Copy)]
struct Seen {
    id: i64,
    lead: Option<i64>,
    /// The lead it had before this batch.
    lead_before: Option<i64>,
    /// When it was last seen, as stored.
    last_seen: DateTime<Utc>,
}

/// A visitor's `last_seen_at` is moved on when it is this much behind its latest hit: exact
/// enough for sessions, and most hits of a visit write no visitor row.
const LAST_SEEN_STEP: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The effects of `hits` (oldest first) in workspace `ws`, inside `txn`.
async fn apply(txn: &DatabaseTransaction, ws: i64, hits: Vec<(Hit, DateTime<Utc>)>) -> ServiceResult<Outcome> {
    let mut out = Outcome {
        hits: hits.len(),
        ..Outcome::default()
    };
    if hits.is_empty() {
        return Ok(out);
    }
    // Before any lead or visitor is read, as every write of leads does: a lead merged or erased
    // meanwhile would otherwise be given hits and touchpoints after the merge moved its own.
    store::lead::lock_lead_writes(txn, ws).await?;
    let now = Utc::now();
    let types: HashSet<String> = store::workspace::vocabulary(txn, ws, VOCAB_TOUCHPOINT_TYPE)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();

    // Links and the leads that tokens name.
    let link_ids: Vec<i64> = hits
        .iter()
        .filter_map(|(h, _)| match h {
            Hit::Click { link, .. } | Hit::Open { link, .. } => Some(*link),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let links: HashMap<i64, tracking_link::Model> = store::by_ids::<tracking_link::Entity>(txn, ws, &link_ids)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let named_leads: Vec<i64> = hits
        .iter()
        .filter_map(|(h, _)| match h {
            Hit::Click { lead, .. } | Hit::Open { lead, .. } | Hit::Identify { lead, .. } => *lead,
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let live_leads = store::lead::live_ids(txn, ws, &named_leads).await?;

    // Campaigns: by tracking code (any case) or by ID.
    let sources: Vec<Option<Source>> = hits
        .iter()
        .map(|(h, _)| match h {
            Hit::Event {
                url, landing, referrer, ..
            } => Some(Source::of(landing.as_deref().or(url.as_deref()), referrer.as_deref())),
            Hit::Identify { url, landing, .. } => Some(Source::of(landing.as_deref().or(url.as_deref()), None)),
            _ => None,
        })
        .collect();
    let wants_campaigns = sources.iter().any(Option::is_some);
    let campaigns: Vec<(i64, Option<String>)> = if wants_campaigns {
        campaign::Entity::in_workspace(ws)
            .select_only()
            .columns([campaign::Column::Id, campaign::Column::TrackingCode])
            .into_tuple()
            .all(txn)
            .await?
    } else {
        Vec::new()
    };
    let campaign_ids: HashSet<i64> = campaigns.iter().map(|c| c.0).collect();
    let by_code: HashMap<String, i64> = campaigns
        .iter()
        .filter_map(|(id, code)| Some((code.as_deref()?.trim().to_lowercase(), *id)))
        .collect();

    // Visitors: found, or made on their first hit.
    let mut uids: Vec<String> = Vec::new();
    let mut listed: HashSet<&str> = HashSet::new();
    for (h, _) in &hits {
        let uid = match h {
            Hit::Event { visitor: Some(v), .. } | Hit::Identify { visitor: v, .. } => v,
            _ => continue,
        };
        if valid_visitor_id(uid) && listed.insert(uid) {
            uids.push(uid.clone());
        }
    }
    let mut visitors: HashMap<String, Seen> = HashMap::new();
    // Visitors seen before this batch: only they can have sent an event ID already.
    let mut returning: Vec<i64> = Vec::new();
    if !uids.is_empty() {
        let found = visitor::Entity::in_workspace(ws)
            .filter(store::text_in(txn, visitor::Column::Uid, &uids))
            .all(txn)
            .await?;
        returning.extend(found.iter().map(|v| v.id));
        for v in found {
            visitors.insert(
                v.uid.clone(),
                Seen {
                    id: v.id,
                    lead: v.lead_id,
                    lead_before: v.lead_id,
                    last_seen: v.last_seen_at,
                },
            );
        }
        let first_seen: HashMap<&str, DateTime<Utc>> = hits.iter().rev().fold(HashMap::new(), |mut m, (h, _)| {
            if let Hit::Event { visitor: Some(v), at, .. } | Hit::Identify { visitor: v, at, .. } = h {
                m.insert(v.as_str(), *at);
            }
            m
        });
        let new: Vec<visitor::ActiveModel> = uids
            .iter()
            .filter(|u| !visitors.contains_key(*u))
            .map(|u| {
                let at = first_seen.get(u.as_str()).copied().unwrap_or(now);
                visitor::ActiveModel {
                    workspace_id: Set(ws),
                    uid: Set(u.clone()),
                    lead_id: Set(None),
                    bot: Set(false),
                    first_seen_at: Set(at),
                    last_seen_at: Set(at),
                    identified_at: Set(None),
                    ..Default::default()
                }
            })
            .collect();
        if !new.is_empty() {
            for v in visitor::Entity::insert_many(new).exec_with_returning(txn).await? {
                visitors.insert(
                    v.uid.clone(),
                    Seen {
                        id: v.id,
                        lead: None,
                        lead_before: None,
                        last_seen: v.last_seen_at,
                    },
                );
            }
        }
        let latest = hits.iter().map(|(h, _)| hit_at(h)).max().unwrap_or(now);
        let stale: Vec<i64> = visitors
            .values()
            .filter(|s| latest - s.last_seen >= LAST_SEEN_STEP)
            .map(|s| s.id)
            .collect();
        if !stale.is_empty() {
            visitor::Entity::update_many()
                .col_expr(visitor::Column::LastSeenAt, Expr::value(latest))
                .filter(visitor::Column::WorkspaceId.eq(ws))
                .filter(store::id_in(txn, visitor::Column::Id, &stale))
                .filter(visitor::Column::LastSeenAt.lt(latest))
                .exec(txn)
                .await?;
        }
        let bots: Vec<i64> = hits
            .iter()
            .filter_map(|(h, _)| match h {
                Hit::Event {
                    visitor: Some(v),
                    agent: Agent::Bot,
                    ..
                } => visitors.get(v).map(|s| s.id),
                _ => None,
            })
            .collect();
        if !bots.is_empty() {
            visitor::Entity::update_many()
                .col_expr(visitor::Column::Bot, Expr::value(true))
                .filter(visitor::Column::WorkspaceId.eq(ws))
                .filter(store::id_in(txn, visitor::Column::Id, &bots))
                .exec(txn)
                .await?;
        }
    }

    // Identifications, in order: each names the lead the visitor's hits belong to from then on
    // (a later one on a shared device moves it to another lead).
    let mut rejected = vec![false; hits.len()];
    let mut identified_lead: Vec<Option<i64>> = vec![None; hits.len()];
    for (i, (h, _)) in hits.iter().enumerate() {
        let Hit::Identify {
            visitor: uid,
            email,
            lead,
            fields,
            agent,
            at,
            ..
        } = h
        else {
            continue;
        };
        let Some(seen) = visitors.get(uid).copied() else {
            rejected[i] = true;
            continue;
        };
        if *agent == Agent::Bot {
            rejected[i] = true;
            continue;
        }
        let lead_id = match (lead, email) {
            (Some(l), _) if live_leads.contains_key(l) => Some(live_leads[l]),
            (_, Some(e)) => {
                let sp = txn.begin().await?;
                match identify_lead(&sp, ws, e, fields).await {
                    Ok((id, events)) => {
                        sp.commit().await?;
                        out.events.extend(events);
                        Some(id)
                    }
                    Err(ServiceError::Invalid(_)) => {
                        sp.rollback().await?;
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let Some(lead_id) = lead_id else {
            rejected[i] = true;
            continue;
        };
        identified_lead[i] = Some(lead_id);
        if seen.lead != Some(lead_id) {
            visitor::Entity::update_many()
                .col_expr(visitor::Column::LeadId, Expr::value(lead_id))
                .col_expr(visitor::Column::IdentifiedAt, Expr::value(*at))
                .filter(visitor::Column::WorkspaceId.eq(ws))
                .filter(visitor::Column::Id.eq(seen.id))
                .exec(txn)
                .await?;
            visitors.insert(
                uid.clone(),
                Seen {
                    lead: Some(lead_id),
                    ..seen
                },
            );
        }
    }

    // Event IDs already processed (a resent batch) count once. Only visitors seen before this
    // batch can have sent one; each (visitor, event ID) pair is one look-up in the hits' index
    // (an `IN` list of visitors and one of IDs would be every visitor times every ID).
    let returning: HashSet<i64> = returning.into_iter().collect();
    let pairs: Vec<(i64, &str)> = hits
        .iter()
        .filter_map(|(h, _)| match h {
            Hit::Event {
                visitor: Some(uid),
                id: Some(id),
                ..
            } => {
                let v = visitors.get(uid)?.id;
                returning.contains(&v).then_some((v, id.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut seen_events: HashSet<(i64, String)> = store::tracking::events_seen(txn, ws, &pairs).await?;

    // One hit row per hit; the touchpoint each should become, if any.
    let mut rows: Vec<tracked_hit::Model> = Vec::with_capacity(hits.len());
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut unknown_codes: UnknownCodes = HashMap::new();
    // The campaign a UTM code names (any case); an unknown code is kept on the hit and tallied.
    let by_utm = |source: &Source, row: &mut tracked_hit::Model, unknown: &mut UnknownCodes, at: DateTime<Utc>| {
        let code = source.utm_campaign.as_deref()?;
        row.campaign_code = Some(code.to_owned());
        let found = by_code.get(&code.trim().to_lowercase()).copied();
        if found.is_none() {
            let e = unknown.entry(code.to_owned()).or_insert((0, at, at));
            e.0 += 1;
            e.1 = Ord::min(e.1, at);
            e.2 = Ord::max(e.2, at);
        }
        found
    };
    for (i, (h, received_at)) in hits.iter().enumerate() {
        if rejected[i] {
            continue;
        }
        let mut row = tracked_hit::Model {
            id: 0,
            workspace_id: ws,
            visitor_id: None,
            lead_id: None,
            campaign_id: None,
            link_id: None,
            touch_type: String::new(),
            event_id: None,
            campaign_code: None,
            machine: false,
            bot: false,
            url: None,
            referrer: None,
            params: None,
            occurred_at: hit_at(h),
            received_at: *received_at,
            created_at: now,
        };
        let (lead, campaign, touch_type, agent, key) = match h {
            Hit::Click { link, lead, agent, .. } | Hit::Open { link, lead, agent, .. } => {
                let Some(l) = links.get(link) else {
                    rejected[i] = true;
                    continue;
                };
                let open = matches!(h, Hit::Open { .. });
                let lead = lead.and_then(|id| live_leads.get(&id).copied());
                let touch_type = if open { "EMAIL_OPEN".to_owned() } else { l.touch_type.clone() };
                row.link_id = Some(l.id);
                let key = lead.map(|lead| format!("link:{}:{lead}:{}", l.id, if open { "o" } else { "c" }));
                (lead, Some(l.campaign_id), touch_type, *agent, key)
            }
            Hit::Event {
                visitor: uid,
                name,
                id,
                url,
                referrer,
                campaign,
                agent,
                ..
            } => {
                let seen = uid.as_ref().and_then(|u| visitors.get(u)).copied();
                if let (Some(s), Some(id)) = (seen, id) {
                    if !seen_events.insert((s.id, id.clone())) {
                        // Already processed: counts once.
                        continue;
                    }
                    row.event_id = Some(id.clone());
                }
                let Some(touch_type) = event_type(name) else {
                    rejected[i] = true;
                    continue;
                };
                let source = sources[i].clone().unwrap_or_default();
                let campaign_id = match campaign {
                    Some(c) if campaign_ids.contains(c) => Some(*c),
                    // A campaign of another workspace (or none): refused.
                    Some(_) => {
                        rejected[i] = true;
                        continue;
                    }
                    None => by_utm(&source, &mut row, &mut unknown_codes, hit_at(h)),
                };
                row.visitor_id = seen.map(|s| s.id);
                row.url = url.as_deref().map(clip_url);
                row.referrer = referrer.as_deref().map(clip_url);
                if !source.is_empty() {
                    row.params = Some(serde_json::to_value(&source).expect("a source serializes"));
                }
                (seen.and_then(|s| s.lead), campaign_id, touch_type, *agent, None)
            }
            Hit::Identify {
                visitor: uid,
                form,
                url,
                agent,
                ..
            } => {
                let seen = visitors.get(uid).copied();
                row.visitor_id = seen.map(|s| s.id);
                row.url = url.as_deref().map(clip_url);
                if !form {
                    // A link or a backend identified the visitor: no touch of its own.
                    continue;
                }
                let source = sources[i].clone().unwrap_or_default();
                let campaign = by_utm(&source, &mut row, &mut unknown_codes, hit_at(h));
                (identified_lead[i], campaign, "FORM_SUBMIT".to_owned(), *agent, None)
            }
        };
        row.touch_type = touch_type.clone();
        row.machine = agent == Agent::Machine;
        row.bot = agent == Agent::Bot;
        row.lead_id = lead;
        row.campaign_id = campaign;
        if let Some(lead) = lead
            && agent == Agent::Human
            && types.contains(&touch_type)
        {
            wanted.push((rows.len(), lead, campaign, touch_type, hit_at(h), key));
        }
        rows.push(row);
    }
    out.rejected = rejected.iter().filter(|r| **r).count();

    store::tracking::insert_hits(txn, &mut rows).await?;
    let inserted = rows;

    // Stitching: the earlier hits of every visitor that got a lead in this batch become the
    // lead's (as hits, and as touchpoints where a person made them).
    let mut stitched: HashMap<i64, Vec<i64>> = HashMap::new();
    for s in visitors.values() {
        if let Some(lead) = s.lead
            && s.lead_before != Some(lead)
        {
            stitched.entry(lead).or_default().push(s.id);
        }
    }
    let mut items: Vec<NewTouchpoint> = Vec::new();
    for (lead_id, visitor_ids) in &stitched {
        out.stitched_visitors += visitor_ids.len();
        let earlier = tracked_hit::Entity::in_workspace(ws)
            .filter(store::id_in(txn, tracked_hit::Column::VisitorId, visitor_ids))
            .filter(tracked_hit::Column::LeadId.is_null())
            .all(txn)
            .await?;
        for h in earlier {
            if !h.machine && !h.bot && types.contains(&h.touch_type) {
                items.push(touch(
                    *lead_id,
                    h.campaign_id,
                    &h.touch_type,
                    h.occurred_at,
                    format!("hit:{}", h.id),
                ));
            }
        }
        tracked_hit::Entity::update_many()
            .col_expr(tracked_hit::Column::LeadId, Expr::value(*lead_id))
            .filter(tracked_hit::Column::WorkspaceId.eq(ws))
            .filter(store::id_in(txn, tracked_hit::Column::VisitorId, visitor_ids))
            .filter(tracked_hit::Column::LeadId.is_null())
            .exec(txn)
            .await?;
    }
    for (row, lead, campaign, touch_type, at, key) in wanted {
        let key = key.unwrap_or_else(|| format!("hit:{}", inserted[row].id));
        items.push(touch(lead, campaign, &touch_type, at, key));
    }
    for chunk in items.chunks(MAX_BATCH) {
        let (recorded, events) = super::touchpoint::record_in(txn, ws, &Author::new("tracking"), chunk).await?;
        out.touchpoints += recorded.recorded;
        out.events.extend(events);
    }

    if !unknown_codes.is_empty() {
        use entity::tracking_unknown_code::{ActiveModel, Column as U, Entity};
        for (code, (n, first, last)) in unknown_codes {
            let row = ActiveModel {
                workspace_id: Set(ws),
                code: Set(code.chars().take(200).collect()),
                hits: Set(n),
                first_seen_at: Set(first),
                last_seen_at: Set(last),
            };
            Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([U::WorkspaceId, U::Code])
                        .value(U::Hits, Expr::col((Entity, U::Hits)).add(n))
                        .update_column(U::LastSeenAt)
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(out)
}

fn touch(lead: i64, campaign: Option<i64>, touch_type: &str, at: DateTime<Utc>, key: String) -> NewTouchpoint {
    NewTouchpoint {
        lead_id: Some(Ok(lead)),
        lead_external_id: None,
        lead_email: None,
        campaign_id: campaign.map(Ok),
        campaign_external_id: None,
        touch_type: touch_type.to_owned(),
        occurred_at: at,
        external_id: None,
        idempotency_key: Some(key),
    }
}

fn hit_at(h: &Hit) -> DateTime<Utc> {
    match h {
        Hit::Click { at, .. } | Hit::Open { at, .. } | Hit::Event { at, .. } | Hit::Identify { at, .. } => *at,
    }
}

/// URLs are kept without their fragment and cut at 1,000 bytes.
fn clip_url(u: &str) -> String {
    let u = u.split('#').next().unwrap_or("");
    let mut end = u.len().min(1_000);
    while !u.is_char_boundary(end) {
        end -= 1;
    }
    u[..end].to_owned()
}

/// The lead a form's e-mail names, made if new, with the form's mapped fields filled in where
/// the lead has none (a form never overwrites what a CRM or a person set).
async fn identify_lead(
    txn: &DatabaseTransaction,
    ws: i64,
    email: &str,
    fields: &BTreeMap<String, String>,
) -> ServiceResult<(i64, Vec<event::Model>)> {
    let email = Email::parse(email).map_err(|m| ServiceError::invalid(&["email"], "INVALID", m))?;
    let existing = store::lead::by_email(txn, ws, email.as_str()).await?;
    let mut f = super::lead::LeadFields::default();
    let field = |name: &str| {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(200).collect::<String>())
    };
    let l = existing.as_ref();
    let mut changed = false;
    for (name, current, slot) in [
        ("firstName", l.and_then(|l| l.first_name.as_ref()), &mut f.first_name),
        ("lastName", l.and_then(|l| l.last_name.as_ref()), &mut f.last_name),
        ("jobTitle", l.and_then(|l| l.job_title.as_ref()), &mut f.job_title),
        ("phone", l.and_then(|l| l.phone.as_ref()), &mut f.phone),
        ("country", l.and_then(|l| l.country.as_ref()), &mut f.country),
    ] {
        if let Some(v) = field(name).filter(|_| current.is_none()) {
            *slot = Patch::Set(v);
            changed = true;
        }
    }
    if let Some(l) = &existing
        && !changed
    {
        return Ok((l.id, Vec::new()));
    }
    f.email = Patch::Set(email.into_inner());
    let input = super::lead::UpsertLead {
        fields: f,
        ..Default::default()
    };
    let ((lead, _), events) = super::lead::upsert_in(txn, ws, &Author::new("tracking"), input).await?;
    Ok((lead.id, events))
}
