//! Reports cached by the workspace's data revision: a dashboard polling the same question gets
//! the same answer without recomputing it, until any write in the workspace commits (see
//! `WriteTxn`). The revision lives in the database, so a write on one replica invalidates the
//! caches of all of them; the cost of a hit is one primary-key read.
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DbErr};

type Entry = (i64, Arc<dyn Any + Send + Sync>);
/// A key: the workspace and the question.
type Key = (i64, String);
type Gate = Arc<tokio::sync::Mutex<()>>;

pub struct ReportCache {
    entries: Mutex<HashMap<Key, Entry>>,
    /// One computation per key at a time: the fields of a page that ask for the same report
    /// wait for the first instead of computing it each.
    computing: Mutex<HashMap<Key, Gate>>,
    capacity: usize,
}

impl ReportCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            computing: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value cached for `key` in workspace `ws` at its current revision, or `compute`'s
    /// (stored for the revision read before computing: a write during the computation makes
    /// the next request compute again).
    pub async fn get_or_compute<T, E, F, Fut>(&self, db: &impl ConnectionTrait, ws: i64, key: String, compute: F) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        E: From<DbErr>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let revision = crate::store::workspace::revision(db, ws).await?;
        self.get_or_compute_at(ws, revision, key, compute).await
    }

    /// [`Self::get_or_compute`] at a revision the caller read (once for a whole request).
    pub async fn get_or_compute_at<T, E, F, Fut>(&self, ws: i64, revision: i64, key: String, compute: F) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.get::<T>(ws, &key, revision) {
            return Ok(v);
        }
        let id = (ws, key);
        let gate = {
            let mut computing = self.computing.lock().unwrap_or_else(|e| e.into_inner());
            computing.entry(id.clone()).or_default().clone()
        };
        let _turn = gate.lock().await;
        // Whoever held the gate before may have stored it meanwhile.
        let value = match self.get::<T>(ws, &id.1, revision) {
            Some(v) => Ok(v),
            None => compute().await.map(|v| {
                let v = Arc::new(v);
                self.store(ws, id.1.clone(), revision, v.clone());
                v
            }),
        };
        self.computing.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        value
    }

    /// The value cached for `key` at `revision`.
    fn get<T: Send + Sync + 'static>(&self, ws: i64, key: &str, revision: i64) -> Option<Arc<T>> {
        match self.lock().get(&(ws, key.to_owned())) {
            Some((rev, value)) if *rev == revision => value.clone().downcast::<T>().ok(),
            _ => None,
        }
    }

    /// Keeps a value computed from the data at `revision` (read before computing), unless a
    /// value of a later revision is kept already.
    pub fn store<T: Send + Sync + 'static>(&self, ws: i64, key: String, revision: i64, value: Arc<T>) {
        let mut entries = self.lock();
        if entries.get(&(ws, key.clone())).is_some_and(|(rev, _)| *rev > revision) {
            return;
        }
        if entries.len() >= self.capacity {
            // Stale revisions first; if that frees nothing, start over.
            entries.retain(|(w, _), (rev, _)| *w != ws || *rev == revision);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert((ws, key), (revision, value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ReportCache {
    fn default() -> Self {
        Self::new(512)
    }
}
