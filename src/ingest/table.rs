//! The inbox in the database (the default): the `ingest_inbox` table. Appends go through one
//! writer task per server that gathers every hit waiting at that moment into one multi-row
//! INSERT and one commit (group commit), so a burst of hits costs a few commits, not one each.
//! The processor takes the oldest rows and deletes them in the transaction that processes them.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{AppendError, Hit, MAX_WAITING};
use crate::db::Db;
use crate::events::Bus;

/// Rows of one INSERT (3 parameters each, well under SQLite's 32,766).
const MAX_ROWS_PER_INSERT: usize = 2_000;

struct Pending {
    workspace: i64,
    received_at: DateTime<Utc>,
    body: String,
    done: oneshot::Sender<Result<(), AppendError>>,
}

/// The handle endpoints append through; cheap to clone.
#[derive(Clone)]
pub struct TableInbox {
    tx: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
}

/// What the writer and the processor share: the processor's doorbell.
#[derive(Default)]
struct Shared {
    /// Rung after every committed append.
    appended: Notify,
}

impl TableInbox {
    /// Starts the writer task on `db`.
    pub fn spawn(db: Db) -> TableInbox {
        let (tx, rx) = mpsc::channel(MAX_WAITING);
        let shared = Arc::new(Shared::default());
        tokio::spawn(write_loop(db, rx, shared.clone()));
        TableInbox { tx, shared }
    }

    /// Appends one hit of workspace `ws` and returns once it is committed.
    pub async fn append(&self, ws: i64, hit: &Hit) -> Result<(), AppendError> {
        let body = serde_json::to_string(hit).expect("a hit serializes");
        let (done, wait) = oneshot::channel();
        let pending = Pending {
            workspace: ws,
            received_at: Utc::now(),
            body,
            done,
        };
        self.tx.try_send(pending).map_err(|_| AppendError::Overloaded)?;
        wait.await.unwrap_or(Err(AppendError::Failed))
    }

    /// Appends several hits (one request's batch), all or none, and returns once all are
    /// committed.
    pub async fn append_all(&self, ws: i64, hits: &[Hit]) -> Result<(), AppendError> {
        let mut waits = Vec::with_capacity(hits.len());
        let received_at = Utc::now();
        // Room for the whole batch first: a batch refused half-way would be half stored.
        let permits = self.tx.try_reserve_many(hits.len()).map_err(|_| AppendError::Overloaded)?;
        for (hit, permit) in hits.iter().zip(permits) {
            let (done, wait) = oneshot::channel();
            permit.send(Pending {
                workspace: ws,
                received_at,
                body: serde_json::to_string(hit).expect("a hit serializes"),
                done,
            });
            waits.push(wait);
        }
        for w in waits {
            w.await.unwrap_or(Err(AppendError::Failed))?;
        }
        Ok(())
    }
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Pending>, shared: Arc<Shared>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_ROWS_PER_INSERT);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, MAX_ROWS_PER_INSERT).await == 0 {
            return;
        }
        let result = append_rows(&db, &batch).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, hits = batch.len(), "appending hits to the ingest inbox failed");
        } else {
            shared.appended.notify_one();
        }
        let outcome = result.map(|_| ()).map_err(|_| AppendError::Failed);
        for p in batch.drain(..) {
            let _ = p.done.send(outcome);
        }
    }
}

/// One INSERT of every row, committed. On SQLite it takes the process's write lock, as every
/// writer does.
async fn append_rows(db: &Db, rows: &[Pending]) -> Result<(), sea_orm::DbErr> {
    let backend = db.backend();
    let mut sql = String::with_capacity(64 + rows.len() * 16);
    sql.push_str("INSERT INTO ingest_inbox (workspace_id, received_at, body) VALUES ");
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 3);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        match backend {
            DbBackend::Postgres => {
                let n = i * 3;
                sql.push_str(&format!("(${},${},${})", n + 1, n + 2, n + 3));
            }
            _ => sql.push_str("(?,?,?)"),
        }
        values.push(r.workspace.into());
        values.push(r.received_at.into());
        values.push(r.body.clone().into());
    }
    let txn = db.begin_write_unscoped().await?;
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    txn.commit().await
}

/// Runs the processor for the life of the server: after every append (and every `poll`, for
/// hits appended by other replicas), it processes batches until the inbox is empty.
pub fn spawn_processor(db: Db, bus: Bus, inbox: &TableInbox, poll: Duration, metrics: Arc<crate::metrics::Metrics>) {
    let shared = inbox.shared.clone();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(poll, shared.appended.notified()).await;
            drain(&db, &bus, &metrics).await;
        }
    });
}

/// Processes what the table holds until it is empty, retrying after an error: after each
/// doorbell, and once at the start of a server switched to another inbox (the hits appended
/// here before).
pub async fn drain(db: &Db, bus: &Bus, metrics: &crate::metrics::Metrics) {
    loop {
        match crate::service::tracking::process_next(db, bus, crate::service::tracking::BATCH).await {
            Ok(0) => return,
            Ok(n) => metrics.tracking_processed(n as u64),
            Err(e) => {
                tracing::error!(error = ?e, "processing tracking hits failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
