//! Handoff events: the outbox (an event row written in the use case's own transaction), the
//! in-process bus that wakes subscribers, PostgreSQL LISTEN/NOTIFY between replicas, and the
//! webhook dispatcher.
//!
//! The event row is the truth. Everything that travels (a bus message, a NOTIFY) is only a hint
//! that rows exist; a subscriber always knows the last sequence number it delivered and reads
//! what it has not seen from the table. Sequence numbers of a workspace are handed out under a
//! row lock held until commit, so they become visible in order: a reader that has seen `n`
//! never finds `n - 1` appear later.
pub mod changes;
pub mod stream;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{event, webhook as webhook_entity, webhook_delivery};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use tokio::sync::broadcast;

use crate::domain::handoff::{EventKind, HandoffEventData};

/// The PostgreSQL channel that carries event IDs between replicas.
pub const CHANNEL: &str = "closedloop_events";

/// What the bus tells subscribers.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An event committed (loaded once per process, shared by every subscriber).
    Event(Arc<event::Model>),
    /// Events up to `seq` exist in `workspace_id`: read the table if you have not seen them.
    Head { workspace_id: i64, seq: i64 },
    /// Hints may have been lost (the LISTEN connection dropped): every subscriber re-reads.
    Resync,
}

/// The in-process broadcast of events to subscribers. Bounded: a subscriber that falls more than
/// its capacity behind learns so (`Lagged`) instead of holding memory.
///
/// With a hub (`Bus::with_hub`, what the server runs), every notice goes through one task that
/// hands events to subscribers **in sequence order per workspace**: events that arrive out of
/// order (two commits published in the other order, a NOTIFY that overtakes a local publish) wait
/// for the missing ones, and when a number stays missing (a lost NOTIFY, a head the poll saw
/// first) the hub reads the table once for everybody. Subscribers then take the cheap path (the
/// next number) almost always; without the hub, a gap made each of 1,000 subscribers read the
/// table, and the pool's queue made deliveries seconds late.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Notice>,
    hub: Option<tokio::sync::mpsc::UnboundedSender<Notice>>,
    /// Open subscription streams (the head poll runs only while there are some).
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts an open subscription stream until dropped.
pub struct StreamGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Bus {
    /// A bus that passes notices straight on (no ordering, no reads): for tests and the SDL.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            tx,
            hub: None,
            streams: Arc::default(),
        }
    }

    /// A bus whose hub orders events and fills gaps from `conn` (spawns the hub task).
    pub fn with_hub(capacity: usize, conn: DatabaseConnection) -> Self {
        let mut bus = Self::new(capacity);
        let (hub_tx, hub_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(hub(hub_rx, bus.tx.clone(), conn));
        bus.hub = Some(hub_tx);
        bus
    }

    pub fn publish(&self, notice: Notice) {
        match &self.hub {
            Some(hub) => {
                let _ = hub.send(notice);
            }
            // No receiver is not an error: nobody listens right now.
            None => {
                let _ = self.tx.send(notice);
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    /// Marks one more open subscription stream.
    pub fn open_stream(&self) -> StreamGuard {
        self.streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StreamGuard(Arc::clone(&self.streams))
    }

    /// How many subscription streams are open in this process.
    pub fn open_streams(&self) -> usize {
        self.streams.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events the slowest subscriber has not taken yet (at most the bus's capacity; one that
    /// falls further behind re-reads the table).
    pub fn behind(&self) -> usize {
        self.tx.len()
    }
}

/// How long an out-of-order event waits for the missing ones before the hub reads the table.
const GAP_WAIT: Duration = Duration::from_millis(100);

/// The hub's view of one workspace.
struct Ordering {
    /// The next sequence number to hand out.
    next: i64,
    /// Events that came early, waiting for `next`.
    early: std::collections::BTreeMap<i64, Arc<event::Model>>,
    /// The highest number a head poll has seen.
    head: i64,
    /// Since when the hub has known that it is behind.
    behind_since: Option<tokio::time::Instant>,
}

impl Ordering {
    /// Hands out what is contiguous from `next`.
    fn flush(&mut self, tx: &broadcast::Sender<Notice>) {
        while let Some(e) = self.early.remove(&self.next) {
            self.next += 1;
            let _ = tx.send(Notice::Event(e));
        }
        self.early.retain(|seq, _| *seq >= self.next);
        let behind = !self.early.is_empty() || self.head >= self.next;
        self.behind_since = match (behind, self.behind_since) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(tokio::time::Instant::now()),
        };
    }
}

async fn hub(mut rx: tokio::sync::mpsc::UnboundedReceiver<Notice>, tx: broadcast::Sender<Notice>, conn: DatabaseConnection) {
    let mut state: std::collections::HashMap<i64, Ordering> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(GAP_WAIT / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            notice = rx.recv() => match notice {
                None => return,
                Some(Notice::Event(e)) => {
                    let st = state.entry(e.workspace_id).or_insert_with(|| Ordering {
                        next: e.seq,
                        early: Default::default(),
                        head: 0,
                        behind_since: None,
                    });
                    if e.seq >= st.next {
                        st.early.insert(e.seq, e);
                    }
                    st.flush(&tx);
                }
                Some(Notice::Head { workspace_id, seq }) => match state.get_mut(&workspace_id) {
                    Some(st) => {
                        st.head = st.head.max(seq);
                        st.flush(&tx);
                    }
                    // No event of this workspace went through here yet: its subscribers read.
                    None => {
                        let _ = tx.send(Notice::Head { workspace_id, seq });
                    }
                },
                Some(Notice::Resync) => {
                    let _ = tx.send(Notice::Resync);
                }
            },
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                for (ws, st) in state.iter_mut() {
                    if st.behind_since.is_none_or(|t| now.duration_since(t) < GAP_WAIT) {
                        continue;
                    }
                    match after(&conn, *ws, st.next - 1, 500).await {
                        Ok(rows) => {
                            for row in rows {
                                st.early.insert(row.seq, Arc::new(row));
                            }
                            // Caught up with the table as it is now.
                            st.head = 0;
                            st.flush(&tx);
                        }
                        Err(e) => tracing::warn!(error = %e, "reading missed events failed"),
                    }
                }
            }
        }
    }
}

/// Appends an event to the outbox inside the caller's transaction: the next sequence number of
/// the workspace, the row, a pending delivery for every webhook that wants the kind, and
/// (PostgreSQL) a NOTIFY that is sent when the transaction commits.
pub async fn append(
    db: &impl ConnectionTrait,
    ws: i64,
    kind: EventKind,
    data: &HandoffEventData,
    at: DateTime<Utc>,
) -> Result<event::Model, DbErr> {
    let backend = db.get_database_backend();
    let seq = next_seq(db, ws).await?;
    let row = event::Entity::insert(event::ActiveModel {
        workspace_id: Set(ws),
        seq: Set(seq),
        kind: Set(kind.as_str().to_owned()),
        handoff_id: Set(Some(data.handoff_id)),
        lead_id: Set(Some(data.lead_id)),
        payload: Set(serde_json::to_value(data).map_err(|e| DbErr::Custom(e.to_string()))?),
        created_at: Set(at),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?;
    // Paused webhooks collect their deliveries too; the dispatcher sends them once resumed.
    let hooks = webhook_entity::Entity::find()
        .filter(webhook_entity::Column::WorkspaceId.eq(ws))
        .all(db)
        .await?;
    let wanted = hooks
        .into_iter()
        .filter(|h| webhook::wants(&h.kinds, kind))
        .map(|h| webhook_delivery::ActiveModel {
            workspace_id: Set(ws),
            webhook_id: Set(h.id),
            event_id: Set(row.id),
            seq: Set(seq),
            status: Set(webhook::PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(at),
            lease_until: Set(None),
            last_status_code: Set(None),
            last_error: Set(None),
            delivered_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        });
    let wanted: Vec<_> = wanted.collect();
    if !wanted.is_empty() {
        webhook_delivery::Entity::insert_many(wanted).exec(db).await?;
    }
    if backend == DbBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), row.id.to_string().into()],
        ))
        .await?;
    }
    Ok(row)
}

/// The next sequence number of a workspace. The upsert locks the counter row until the
/// transaction ends, so numbers are handed out (and committed) one after the other.
async fn next_seq(db: &impl ConnectionTrait, ws: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO event_counters (workspace_id, seq) VALUES ($1, 1) \
             ON CONFLICT (workspace_id) DO UPDATE SET seq = event_counters.seq + 1 RETURNING seq"
        }
        _ => {
            "INSERT INTO event_counters (workspace_id, seq) VALUES (?, 1) \
             ON CONFLICT (workspace_id) DO UPDATE SET seq = event_counters.seq + 1 RETURNING seq"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [ws.into()]))
        .await?
        .ok_or_else(|| DbErr::Custom("the event counter returned nothing".into()))?;
    row.try_get_by_index::<i64>(0)
}

/// Events of a workspace after `after_seq`, oldest first, at most `limit`.
pub async fn after(db: &impl ConnectionTrait, ws: i64, after_seq: i64, limit: u64) -> Result<Vec<event::Model>, DbErr> {
    after_matching(db, ws, after_seq, limit, &stream::Filter::default()).await
}

/// Events of a workspace after `after_seq` that `filter` keeps (filtered in the query), oldest
/// first, at most `limit`.
pub async fn after_matching(
    db: &impl ConnectionTrait,
    ws: i64,
    after_seq: i64,
    limit: u64,
    filter: &stream::Filter,
) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::WorkspaceId.eq(ws))
        .filter(event::Column::Seq.gt(after_seq))
        .filter(filter.condition(db.get_database_backend()))
        .order_by_asc(event::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// The last sequence number of a workspace (0 before its first event).
pub async fn head(db: &impl ConnectionTrait, ws: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT seq FROM event_counters WHERE workspace_id = $1",
        _ => "SELECT seq FROM event_counters WHERE workspace_id = ?",
    };
    match db.query_one_raw(Statement::from_sql_and_values(backend, sql, [ws.into()])).await? {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}

/// Starts what feeds the bus from outside this process: on PostgreSQL, LISTEN for event IDs
/// committed by any replica; on both, a slow poll of the workspaces' heads as a safety net for
/// hints that never arrived.
pub fn spawn_feeders(conn: DatabaseConnection, bus: Bus, poll_every: Duration) {
    if conn.get_database_backend() == DbBackend::Postgres {
        tokio::spawn(listen(conn.clone(), bus.clone()));
    }
    tokio::spawn(poll_heads(conn, bus, poll_every));
}

async fn listen(conn: DatabaseConnection, bus: Bus) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        let pool = conn.get_postgres_connection_pool().clone();
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever was committed while we were not listening: subscribers re-read.
        bus.publish(Notice::Resync);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Ok(id) = n.payload().parse::<i64>() else { continue };
                    match event::Entity::find_by_id(id).one(&conn).await {
                        Ok(Some(row)) => bus.publish(Notice::Event(Arc::new(row))),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "loading a notified event failed");
                            bus.publish(Notice::Resync);
                        }
                    }
                }
                // The connection dropped; the next call reconnects. Hints may be lost meanwhile.
                Ok(None) => bus.publish(Notice::Resync),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    bus.publish(Notice::Resync);
                    break;
                }
            }
        }
    }
}

async fn poll_heads(conn: DatabaseConnection, bus: Bus, every: Duration) {
    let mut known: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if bus.open_streams() == 0 {
            continue;
        }
        let stmt = Statement::from_string(conn.get_database_backend(), "SELECT workspace_id, seq FROM event_counters");
        let rows = match conn.query_all_raw(stmt).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "polling event heads failed");
                continue;
            }
        };
        for row in rows {
            let (Ok(ws), Ok(seq)) = (row.try_get_by_index::<i64>(0), row.try_get_by_index::<i64>(1)) else {
                continue;
            };
            if known.insert(ws, seq) != Some(seq) {
                bus.publish(Notice::Head { workspace_id: ws, seq });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> Arc<event::Model> {
        Arc::new(event::Model {
            id: seq,
            workspace_id: 1,
            seq,
            kind: "CREATED".into(),
            handoff_id: None,
            lead_id: None,
            payload: serde_json::json!({}),
            created_at: Utc::now(),
        })
    }

    fn seqs(rx: &mut broadcast::Receiver<Notice>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(Notice::Event(e)) = rx.try_recv() {
            out.push(e.seq);
        }
        out
    }

    #[tokio::test]
    async fn events_leave_the_hub_in_sequence_order() {
        let (tx, mut rx) = broadcast::channel(64);
        let mut st = Ordering {
            next: 5,
            early: Default::default(),
            head: 0,
            behind_since: None,
        };
        // 7 and 6 come before 5: they wait.
        for seq in [7, 6] {
            st.early.insert(seq, event(seq));
            st.flush(&tx);
        }
        assert_eq!(seqs(&mut rx), Vec::<i64>::new());
        assert!(st.behind_since.is_some());
        st.early.insert(5, event(5));
        st.flush(&tx);
        assert_eq!(seqs(&mut rx), [5, 6, 7]);
        assert!(st.behind_since.is_none());
        // A repeat (the NOTIFY of an event published locally) is dropped.
        st.early.insert(6, event(6));
        st.flush(&tx);
        assert_eq!(seqs(&mut rx), Vec::<i64>::new());
        // A head beyond what was handed out means "behind" until the table is read.
        st.head = 9;
        st.flush(&tx);
        assert!(st.behind_since.is_some());
    }
}
