//! Durable ingest of tracking hits. A hit is acknowledged once it is appended to the inbox and
//! the append is committed; a processor turns the inbox into touchpoints, scores, handoffs and
//! credits in batches ([`crate::service::tracking::process_next`]), oldest first and in order
//! per workspace, deleting what it processed in the same transaction, so that every
//! acknowledged hit is processed once, after a crash too.
//!
//! The inbox is the `ingest_inbox` table of the database. Appends go through one writer task
//! per server that gathers every hit waiting at that moment into one multi-row INSERT and one
//! commit (group commit), so a burst of hits costs a few commits, not one each.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::db::Db;
use crate::domain::tracking::Agent;
use crate::events::Bus;

/// One hit of a tracking endpoint, as kept in the inbox until it is processed. Everything here
/// has been checked by the endpoint (token signature, site key, sizes); what needs the
/// database (the link, the campaign, the lead) is checked by the processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Hit {
    /// A tracking link was followed.
    Click {
        link: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead: Option<i64>,
        agent: Agent,
        at: DateTime<Utc>,
    },
    /// An open pixel was loaded.
    Open {
        link: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead: Option<i64>,
        agent: Agent,
        at: DateTime<Utc>,
    },
    /// A page view, download, video or custom event from the site script. No visitor when the
    /// browser asked not to be tracked: the hit then counts for its campaign and no one.
    Event {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visitor: Option<String>,
        /// The event's name: `page_view`, `download`, `video` or the site's own.
        name: String,
        /// The script's ID for the event, so that a resent batch counts once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The session's landing URL, whose UTM parameters name the campaign.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        landing: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referrer: Option<String>,
        /// A campaign named by its global ID (a form's hidden field), instead of by UTM.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<i64>,
        agent: Agent,
        at: DateTime<Utc>,
    },
    /// A visitor made itself known: a form with an e-mail address, a personal link's token
    /// carried to the landing page, or a backend's `identifyVisitor`.
    Identify {
        visitor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        /// The lead a personal link's (verified) token named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead: Option<i64>,
        /// Mapped form fields (`firstName`, `lastName`, `jobTitle`, `company`, `phone`, `country`).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        fields: std::collections::BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The session's landing URL: its UTM parameters name the campaign of a form submit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        landing: Option<String>,
        /// Whether the identification was a form submit (a FORM_SUBMIT touchpoint), not a link
        /// or a backend call.
        #[serde(default)]
        form: bool,
        agent: Agent,
        at: DateTime<Utc>,
    },
}

/// Why a hit was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// More hits are waiting for the writer than it holds; the client should retry later.
    #[error("the ingest inbox is full; retry later")]
    Overloaded,
    /// The append failed (the database is unreachable); nothing was acknowledged.
    #[error("the hit could not be stored")]
    Failed,
}

/// Hits waiting for the writer at most; one more is refused with 503 (`Overloaded`).
pub const MAX_WAITING: usize = 100_000;
/// Rows of one INSERT (4 parameters each, well under SQLite's 32,766).
const MAX_ROWS_PER_INSERT: usize = 2_000;

struct Pending {
    workspace: i64,
    received_at: DateTime<Utc>,
    body: String,
    done: oneshot::Sender<Result<(), AppendError>>,
}

/// The handle endpoints append through; cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
}

/// What the writer and the processor share: the processor's doorbell.
#[derive(Default)]
pub struct Shared {
    /// Rung after every committed append.
    pub appended: Notify,
}

impl Inbox {
    /// Starts the writer task on `db`.
    pub fn spawn(db: Db) -> Inbox {
        let (tx, rx) = mpsc::channel(MAX_WAITING);
        let shared = Arc::new(Shared::default());
        tokio::spawn(write_loop(db, rx, shared.clone()));
        Inbox { tx, shared }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
pub fn spawn_processor(db: Db, bus: Bus, inbox: &Inbox, poll: Duration, metrics: Arc<crate::metrics::Metrics>) {
    let shared = inbox.shared.clone();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(poll, shared.appended.notified()).await;
            loop {
                match crate::service::tracking::process_next(&db, &bus, crate::service::tracking::BATCH).await {
                    Ok(0) => break,
                    Ok(n) => metrics.tracking_processed(n as u64),
                    Err(e) => {
                        tracing::error!(error = ?e, "processing tracking hits failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
            }
        }
    });
}

/// Everything the public tracking endpoints and the tracking mutations share.
pub struct Capture {
    pub inbox: Inbox,
    pub resolver: crate::service::tracking::Resolver,
    /// The server's address as the world reaches it, for the links it hands out.
    pub public_url: String,
    /// Hits a second per site key (a whole site) or link for anyone, and per visitor or personal
    /// link.
    pub per_site: RateLimiter,
    pub per_visitor: RateLimiter,
}

impl Capture {
    pub fn new(inbox: Inbox, settings: &crate::config::TrackingSettings, public_url: String) -> Capture {
        Capture {
            inbox,
            resolver: crate::service::tracking::Resolver::default(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            per_site: RateLimiter::new(settings.hits_per_site_key_per_second),
            per_visitor: RateLimiter::new(settings.hits_per_visitor_per_second),
        }
    }

    /// The limit a link's token is under: a personal link is one person's (as a visitor is);
    /// a link for anyone (an ad) is clicked by a whole audience, as a site is visited.
    pub fn per_token(&self, token: &crate::domain::tracking::Token) -> &RateLimiter {
        if token.lead.is_some() { &self.per_visitor } else { &self.per_site }
    }
}

/// A token bucket per key: `rate` a second, with a burst of ten seconds' worth (at least 20).
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

/// Keys a limiter tracks before it forgets the idle ones.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            burst: (rate * 10.0).max(20.0),
            buckets: Default::default(),
        }
    }

    /// Whether `n` more hits of `key` are within the limit (and takes them if so).
    pub fn allow(&self, key: &str, n: u32) -> bool {
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let burst = self.burst;
            let rate = self.rate;
            // A bucket that has refilled is the same as no bucket.
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        let n = f64::from(n);
        if *tokens >= n {
            *tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let l = RateLimiter::new(2);
        let allowed = (0..30).filter(|_| l.allow("v", 1)).count();
        assert_eq!(allowed, 20, "a burst of ten seconds' worth, at least 20");
        assert!(l.allow("other", 1), "keys are apart");
        assert!(!l.allow("v", 1));
    }

    #[test]
    fn hits_read_back_as_written() {
        let hit = Hit::Event {
            visitor: Some("v_0123456789abcdef".into()),
            name: "page_view".into(),
            id: Some("e1".into()),
            url: Some("https://example.com/?utm_campaign=x".into()),
            landing: None,
            referrer: None,
            campaign: None,
            agent: Agent::Human,
            at: Utc::now(),
        };
        let text = serde_json::to_string(&hit).unwrap();
        assert!(text.starts_with(r#"{"k":"event""#), "{text}");
        assert_eq!(serde_json::from_str::<Hit>(&text).unwrap(), hit);
    }
}
