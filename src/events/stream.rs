//! One subscriber's stream of handoff events: the stored events after its cursor, then live
//! ones, with no gap and no duplicate between the two.
//!
//! The stream listens to the bus *before* it reads the table, and remembers the last sequence
//! number it has passed. A live event right after that number is delivered as it comes; any
//! other hint (a gap, a head, a resync) makes it read the table from that number on. Events
//! of a workspace become visible in sequence order (see the module above), so reading "after
//! the last one seen" can neither skip nor repeat.
use std::sync::Arc;

use entity::event;
use futures_util::Stream;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, DbErr};
use tokio::sync::broadcast::error::RecvError;

use super::{Bus, Notice};
use crate::domain::handoff::EventKind;

/// Events read from the table per query while catching up.
const PAGE: u64 = 500;

/// Which events a subscriber (or a page of the event log) wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Events this user was the handoff's owner at: its owner after the change (`ownerId`) or,
    /// for REASSIGNED, before it (`previousOwnerId`). A user who reassigns a handoff away sees
    /// that event and none after it.
    pub owner_id: Option<i64>,
    pub kinds: Option<Vec<EventKind>>,
}

impl Filter {
    /// The test of [`Filter::matches`] as a condition on the `events` table, so that a page of
    /// the log is filled with matching events and not thinned out after it was read.
    pub fn condition(&self, backend: DbBackend) -> Condition {
        let mut all = Condition::all();
        if let Some(kinds) = &self.kinds {
            all = all.add(event::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())));
        }
        if let Some(owner) = self.owner_id {
            // `owner` is an i64, so writing it into the SQL text cannot inject anything.
            let field = |name: &str| match backend {
                DbBackend::Postgres => Expr::cust(format!("(payload ->> '{name}') = '{owner}'")),
                _ => Expr::cust(format!("json_extract(payload, '$.{name}') = {owner}")),
            };
            all = all.add(Condition::any().add(field("ownerId")).add(field("previousOwnerId")));
        }
        all
    }

    pub fn matches(&self, e: &event::Model) -> bool {
        let kind_ok = self.kinds.as_ref().is_none_or(|ks| ks.iter().any(|k| k.as_str() == e.kind));
        let owner_ok = self.owner_id.is_none_or(|o| {
            ["ownerId", "previousOwnerId"]
                .iter()
                .any(|f| e.payload.get(f).and_then(serde_json::Value::as_i64) == Some(o))
        });
        kind_ok && owner_ok
    }
}

#[derive(Debug)]
pub enum StreamError {
    /// The subscriber fell too far behind; it resumes with a new subscription after `seq`.
    TooSlow {
        resume_after: i64,
    },
    Db(DbErr),
}

/// The events of workspace `ws` after sequence number `after` (`None`: from now on).
pub fn events(
    conn: DatabaseConnection,
    bus: &Bus,
    ws: i64,
    after: Option<i64>,
    filter: Filter,
) -> impl Stream<Item = Result<Arc<event::Model>, StreamError>> + Send + 'static + use<> {
    // Subscribed before anything is read: nothing committed from here on can be missed.
    let mut rx = bus.subscribe();
    let open = bus.open_stream();
    async_stream::stream! {
        let _open = open;
        let mut last = match after {
            Some(seq) => seq,
            None => match super::head(&conn, ws).await {
                Ok(seq) => seq,
                Err(e) => {
                    yield Err(StreamError::Db(e));
                    return;
                }
            },
        };
        let mut read_table = after.is_some();
        loop {
            if read_table {
                read_table = false;
                loop {
                    // Unfiltered: `last` must pass every number, or a wanted live event would
                    // look like a gap and send the stream back to the table each time.
                    let rows = match super::after(&conn, ws, last, PAGE).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            yield Err(StreamError::Db(e));
                            return;
                        }
                    };
                    let full = rows.len() as u64 == PAGE;
                    for row in rows {
                        last = row.seq;
                        if filter.matches(&row) {
                            yield Ok(Arc::new(row));
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
            match rx.recv().await {
                Ok(Notice::Event(e)) if e.workspace_id == ws && e.seq > last => {
                    if e.seq == last + 1 {
                        last = e.seq;
                        if filter.matches(&e) {
                            yield Ok(e);
                        }
                    } else {
                        read_table = true;
                    }
                }
                Ok(Notice::Head { workspace_id, seq }) if workspace_id == ws && seq > last => read_table = true,
                Ok(Notice::Resync) => read_table = true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    yield Err(StreamError::TooSlow { resume_after: last });
                    return;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}
