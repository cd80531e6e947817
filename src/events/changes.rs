//! The change feed: every change of a workspace's records is a row of `changes`, written in the
//! transaction of the change and numbered per workspace without gaps.
//!
//! Numbers are handed out like the handoff events' (`super`): under the row lock of the
//! workspace's counter, held until commit, so they become visible in order and a reader that
//! has seen `n` never finds `n - 1` appear later. Unlike handoff events, changes have their own
//! numbering and table: a bulk import writes hundreds of thousands of them, and neither the
//! handoff subscribers (sales tools, which must never fall behind) nor the handoff sequence
//! (1, 2, 3 ... for the handoffs alone) should feel it.
//!
//! What travels between writers and subscribers is only a hint that a workspace wrote something
//! ([`crate::db::Db::commits`] in this process, a NOTIFY on [`CHANNEL`] between replicas); a
//! subscriber reads the table after the last number it passed, so a lost hint delays a change
//! and never loses it.
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::change;
use futures_util::Stream;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::db::Db;
use crate::domain::change::{ChangeData, ChangeEntity, ChangeKind, FieldChange};

pub use views::Tracked;

/// The PostgreSQL channel that carries "workspace N wrote changes" between replicas.
pub const CHANNEL: &str = "closedloop_changes";

/// Changes read per query.
const PAGE: u64 = 500;

/// Who made a change: the actor as the stage history names it (`api-key:<id>`, `import`,
/// `tracking`, ...) and the caller's source tag (`X-Change-Source`), if any.
#[derive(Debug, Clone)]
pub struct Author {
    pub actor: String,
    pub source: Option<String>,
}

impl Author {
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            source: None,
        }
    }
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub entity: ChangeEntity,
    pub entity_id: i64,
    pub kind: ChangeKind,
    /// The record's version after the change.
    pub version: Option<i64>,
    pub fields: Vec<FieldChange>,
}

impl NewChange {
    /// A new record: every field.
    pub fn created<T: Tracked>(row: &T) -> Self {
        Self {
            entity: T::ENTITY,
            entity_id: row.id(),
            kind: ChangeKind::Created,
            version: Some(row.version()),
            fields: crate::domain::change::created(row.view()),
        }
    }

    /// A changed record: the fields that differ (None when nothing the feed shows changed).
    pub fn updated<T: Tracked>(kind: ChangeKind, before: &T, after: &T) -> Option<Self> {
        let fields = crate::domain::change::diff(before.view(), after.view());
        (!fields.is_empty()).then(|| Self {
            entity: T::ENTITY,
            entity_id: after.id(),
            kind,
            version: Some(after.version()),
            fields,
        })
    }

    /// A deleted record: its last values.
    pub fn deleted<T: Tracked>(row: &T) -> Self {
        Self {
            entity: T::ENTITY,
            entity_id: row.id(),
            kind: ChangeKind::Deleted,
            version: Some(row.version() + 1),
            fields: crate::domain::change::deleted(row.view()),
        }
    }
}

/// Records changes of workspace `ws` inside the caller's transaction: numbers them after the
/// workspace's last change and, on PostgreSQL, queues a NOTIFY sent when the transaction commits.
pub async fn record(db: &impl ConnectionTrait, ws: i64, by: &Author, at: DateTime<Utc>, items: Vec<NewChange>) -> Result<(), DbErr> {
    if items.is_empty() {
        return Ok(());
    }
    let last = reserve(db, ws, items.len() as i64).await?;
    let first = last - items.len() as i64 + 1;
    // One statement for the whole batch: the rows as one JSON array the database takes apart (a
    // batch of 10,000 touchpoints is 10,000 changes), as touchpoints go in. Measured against 20
    // statements of bound parameters: no difference beyond the noise (BENCHMARKS.md).
    let rows: Vec<serde_json::Value> = items
        .into_iter()
        .map(|c| {
            serde_json::json!([
                c.entity.as_str(),
                c.entity_id,
                c.kind.as_str(),
                c.version,
                ChangeData { fields: c.fields },
            ])
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| DbErr::Custom(format!("changes: {e}")))?;
    let columns = "workspace_id, seq, entity, entity_id, kind, version, actor, source, data, created_at";
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO changes ({columns}) \
             SELECT ?, ? + j.n - 1, j.v ->> 0, (j.v ->> 1)::bigint, j.v ->> 2, (j.v ->> 3)::bigint, ?, ?, j.v -> 4, ? \
             FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS j(v, n)"
        ),
        _ => format!(
            "INSERT INTO changes ({columns}) \
             SELECT ?, ? + key, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?, ?, value -> 4, ? \
             FROM json_each(?)"
        ),
    };
    let values: Vec<sea_orm::Value> = vec![
        ws.into(),
        first.into(),
        by.actor.clone().into(),
        by.source.clone().into(),
        at.into(),
        json.into(),
    ];
    db.execute_raw(crate::store::raw::statement(backend, &sql, values)).await?;
    if backend == DbBackend::Postgres {
        // Identical notifications of one transaction are sent once.
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), ws.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Takes `n` numbers of workspace `ws`: the last one. The upsert locks the counter row until
/// the transaction ends.
async fn reserve(db: &impl ConnectionTrait, ws: i64, n: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO change_counters (workspace_id, seq, pruned) VALUES ($1, $2, 0) \
             ON CONFLICT (workspace_id) DO UPDATE SET seq = change_counters.seq + $2 RETURNING seq"
        }
        _ => {
            "INSERT INTO change_counters (workspace_id, seq, pruned) VALUES (?1, ?2, 0) \
             ON CONFLICT (workspace_id) DO UPDATE SET seq = change_counters.seq + ?2 RETURNING seq"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [ws.into(), n.into()]))
        .await?
        .ok_or_else(|| DbErr::Custom("the change counter returned nothing".into()))?;
    row.try_get_by_index::<i64>(0)
}

/// Where a workspace's feed stands: its last number, and the highest number the retention
/// deleted (a cursor before it has lost changes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub pruned: i64,
}

pub async fn head(db: &impl ConnectionTrait, ws: i64) -> Result<Head, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT seq, pruned FROM change_counters WHERE workspace_id = $1",
        _ => "SELECT seq, pruned FROM change_counters WHERE workspace_id = ?",
    };
    match db.query_one_raw(Statement::from_sql_and_values(backend, sql, [ws.into()])).await? {
        Some(row) => Ok(Head {
            seq: row.try_get_by_index(0)?,
            pruned: row.try_get_by_index(1)?,
        }),
        None => Ok(Head::default()),
    }
}

/// Which changes a reader wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub entities: Option<Vec<ChangeEntity>>,
    pub kinds: Option<Vec<ChangeKind>>,
    /// Leaves out the changes written with this source tag (a connector's own writes).
    pub exclude_source: Option<String>,
    /// Only changes that touched one of these fields (API names).
    pub fields: Option<Vec<String>>,
}

impl Filter {
    fn condition(&self) -> Condition {
        let mut all = Condition::all();
        if let Some(es) = &self.entities {
            all = all.add(change::Column::Entity.is_in(es.iter().map(|e| e.as_str())));
        }
        if let Some(ks) = &self.kinds {
            all = all.add(change::Column::Kind.is_in(ks.iter().map(|k| k.as_str())));
        }
        if let Some(s) = &self.exclude_source {
            all = all.add(
                Condition::any()
                    .add(change::Column::Source.is_null())
                    .add(change::Column::Source.ne(s.as_str())),
            );
        }
        all
    }

    /// The part of the filter SQL does not apply (the fields a change touched, in its JSON).
    pub fn keeps(&self, row: &change::Model) -> bool {
        let Some(wanted) = &self.fields else { return true };
        row.data.get("fields").and_then(|f| f.as_array()).is_some_and(|fs| {
            fs.iter().any(|f| {
                f.get("field")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| wanted.iter().any(|w| w == n))
            })
        })
    }
}

/// A page of the feed: the changes after `after` that `filter` keeps, oldest first, at most
/// `limit`, and the number the next page starts after (past the changes the filter left out).
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<change::Model>,
    pub end: i64,
    /// More changes may follow `end` now.
    pub more: bool,
}

/// Why a page could not be read.
#[derive(Debug)]
pub enum PageError {
    /// Changes after the cursor were deleted by the retention; the oldest number kept is after
    /// `oldest`.
    Expired {
        oldest: i64,
    },
    Db(DbErr),
}

impl From<DbErr> for PageError {
    fn from(e: DbErr) -> Self {
        PageError::Db(e)
    }
}

/// Rows a page reads at most while the field filter (applied after the read) leaves rows out:
/// a page that found fewer ends there, with `more`, so that no request scans without bound.
const SCAN_MAX: u64 = 20_000;

/// Reads a page of the feed of `ws` after number `after`.
pub async fn page(db: &impl ConnectionTrait, ws: i64, after: i64, limit: u64, filter: &Filter) -> Result<Page, PageError> {
    // The head first: every number up to it has committed, so a short page has seen them all.
    let Head { seq: head, pruned } = head(db, ws).await?;
    // Checked on every page, not only when a reader starts: the retention may have run since.
    if after < pruned {
        return Err(PageError::Expired { oldest: pruned });
    }
    if limit == 0 || after >= head {
        return Ok(Page {
            rows: Vec::new(),
            end: after,
            more: after < head,
        });
    }
    let mut rows = Vec::new();
    let mut end = after;
    let mut scanned = 0;
    // The field filter is applied after the read: read on until the page is full, the head, or
    // the scan's bound.
    loop {
        let batch = change::Entity::find()
            .filter(change::Column::WorkspaceId.eq(ws))
            .filter(change::Column::Seq.gt(end))
            .filter(change::Column::Seq.lte(head))
            .filter(filter.condition())
            .order_by_asc(change::Column::Seq)
            .limit(limit.max(PAGE))
            .all(db)
            .await?;
        let short = (batch.len() as u64) < limit.max(PAGE);
        scanned += batch.len() as u64;
        for row in batch {
            end = row.seq;
            if filter.keeps(&row) {
                rows.push(row);
                if rows.len() as u64 == limit {
                    return Ok(Page {
                        more: end < head,
                        rows,
                        end,
                    });
                }
            }
        }
        if short {
            return Ok(Page {
                rows,
                end: head,
                more: false,
            });
        }
        if scanned >= SCAN_MAX {
            return Ok(Page { rows, end, more: true });
        }
    }
}

/// Changes deleted per transaction by the retention: a month of bulk imports is deleted in
/// steps that never hold the write lock for long.
const PRUNE_ROWS: u64 = 10_000;

/// Deletes the changes older than `keep` in every workspace; how many. Each workspace's
/// `pruned` becomes the highest number deleted first, so a cursor before it answers
/// CURSOR_EXPIRED from then on.
pub async fn prune(db: &Db, keep: Duration, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let cutoff = now - chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::MAX);
    let backend = db.backend();
    let (mark, delete) = match backend {
        DbBackend::Postgres => (
            "UPDATE change_counters c SET pruned = d.seq FROM \
             (SELECT workspace_id, MAX(seq) AS seq FROM changes WHERE created_at < $1 GROUP BY workspace_id) d \
             WHERE c.workspace_id = d.workspace_id AND d.seq > c.pruned",
            "DELETE FROM changes WHERE id IN (SELECT id FROM changes WHERE created_at < $1 ORDER BY id LIMIT $2)",
        ),
        _ => (
            "UPDATE change_counters SET pruned = d.seq FROM \
             (SELECT workspace_id, MAX(seq) AS seq FROM changes WHERE created_at < ? GROUP BY workspace_id) d \
             WHERE change_counters.workspace_id = d.workspace_id AND d.seq > change_counters.pruned",
            "DELETE FROM changes WHERE id IN (SELECT id FROM changes WHERE created_at < ? ORDER BY id LIMIT ?)",
        ),
    };
    let txn = db.begin_write_unscoped().await?;
    txn.execute_raw(Statement::from_sql_and_values(backend, mark, [cutoff.into()]))
        .await?;
    txn.commit().await?;
    let mut deleted = 0;
    loop {
        let txn = db.begin_write_unscoped().await?;
        let done = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                delete,
                [cutoff.into(), (PRUNE_ROWS as i64).into()],
            ))
            .await?
            .rows_affected();
        txn.commit().await?;
        deleted += done;
        if done < PRUNE_ROWS {
            return Ok(deleted);
        }
    }
}

/// Runs the retention now and then: every quarter of `keep`, at least every hour.
pub fn spawn_retention(db: Db, keep: Duration) {
    let every = (keep / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match prune(&db, keep, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(changes = n, "deleted changes past the retention"),
                Err(e) => tracing::warn!(error = %e, "deleting old changes failed"),
            }
        }
    });
}

/// Removes the personal values of a lead from its earlier changes (its erasure or merge).
pub async fn scrub_lead(db: &impl ConnectionTrait, ws: i64, lead_id: i64) -> Result<(), DbErr> {
    let rows = change::Entity::find()
        .filter(change::Column::WorkspaceId.eq(ws))
        .filter(change::Column::Entity.eq(ChangeEntity::Lead.as_str()))
        .filter(change::Column::EntityId.eq(lead_id))
        .all(db)
        .await?;
    for row in rows {
        let Ok(mut data) = serde_json::from_value::<ChangeData>(row.data.clone()) else {
            continue;
        };
        if crate::domain::change::scrub(&mut data) {
            change::Entity::update_many()
                .col_expr(
                    change::Column::Data,
                    Expr::value(serde_json::to_value(data).map_err(|e| DbErr::Custom(e.to_string()))?),
                )
                .filter(change::Column::Id.eq(row.id))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// Open change streams in this process and the hint channel they wait on.
#[derive(Clone)]
pub struct Feed {
    commits: broadcast::Sender<i64>,
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// "Every workspace may have changes" (a hint after a lost NOTIFY connection).
pub const ALL: i64 = 0;

impl Feed {
    /// A feed woken by `commits` (the database's "workspace N committed a write").
    pub fn new(commits: broadcast::Sender<i64>) -> Self {
        Self {
            commits,
            streams: Arc::default(),
        }
    }

    /// How many change streams are open in this process.
    pub fn open_streams(&self) -> usize {
        self.streams.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The changes of `ws` after number `after` that `filter` keeps: the stored ones, then new
    /// ones as they commit, without a gap or a duplicate.
    pub fn stream(
        &self,
        conn: DatabaseConnection,
        ws: i64,
        after: i64,
        filter: Filter,
    ) -> impl Stream<Item = Result<change::Model, PageError>> + Send + 'static + use<> {
        // Subscribed before anything is read: no commit from here on goes unnoticed.
        let mut rx = self.commits.subscribe();
        let streams = Arc::clone(&self.streams);
        streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let open = OpenStream(streams);
        async_stream::stream! {
            let _open = open;
            let mut last = after;
            loop {
                loop {
                    let page = match page(&conn, ws, last, PAGE, &filter).await {
                        Ok(p) => p,
                        Err(e) => {
                            yield Err(e);
                            return;
                        }
                    };
                    last = page.end;
                    for row in page.rows {
                        yield Ok(row);
                    }
                    if !page.more {
                        break;
                    }
                }
                // Wait for a hint about this workspace; a missed hint (lagged) means "read".
                loop {
                    match rx.recv().await {
                        Ok(w) if w == ws || w == ALL => break,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return,
                    }
                }
            }
        }
    }
}

struct OpenStream(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// On PostgreSQL, passes other replicas' "workspace N wrote changes" to this process's
/// streams (LISTEN), and every `every` tells them all to look while any is open, in case a
/// hint was lost.
pub fn spawn_feeders(conn: DatabaseConnection, feed: Feed, every: Duration) {
    if conn.get_database_backend() == DbBackend::Postgres {
        tokio::spawn(listen(conn.clone(), feed.clone()));
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if feed.open_streams() > 0 {
                let _ = feed.commits.send(ALL);
            }
        }
    });
}

async fn listen(conn: DatabaseConnection, feed: Feed) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        let pool = conn.get_postgres_connection_pool().clone();
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection for changes failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN for changes failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let _ = feed.commits.send(ALL);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(ws) = n.payload().parse::<i64>() {
                        let _ = feed.commits.send(ws);
                    }
                }
                Ok(None) => {
                    let _ = feed.commits.send(ALL);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection for changes lost");
                    let _ = feed.commits.send(ALL);
                    break;
                }
            }
        }
    }
}
