//! Durable ingest of tracking hits. A hit is acknowledged once it is appended to the inbox and
//! the append is committed; a processor turns the inbox into touchpoints, scores, handoffs and
//! credits in batches ([`crate::service::tracking::process_next`]), oldest first and in order
//! per workspace, deleting what it processed in the same transaction, so that every
//! acknowledged hit is processed once, after a crash too.
//!
//! The inbox is the `ingest_inbox` table of the database ([`table`], the default), or a NATS
//! JetStream stream ([`jetstream`], `--ingest nats://…`) when a deployment outgrows that; the
//! same processor applies both.
pub mod jetstream;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::tracking::Agent;
use crate::events::Bus;
pub use crate::service::tracking::Waiting;

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

/// Hits waiting to be stored at most; one more is refused with 503 (`Overloaded`).
pub const MAX_WAITING: usize = 100_000;

/// Where hits are appended until they are processed; cheap to clone.
#[derive(Clone)]
pub enum Inbox {
    /// The database's `ingest_inbox` table.
    Table(table::TableInbox),
    /// A NATS JetStream stream.
    JetStream(jetstream::JetStreamInbox),
}

impl Inbox {
    /// The inbox `target` names (the database's table when none), with its writer started.
    pub async fn open(db: &Db, target: Option<&jetstream::Target>) -> Result<Inbox, crate::BoxError> {
        Ok(match target {
            None => Inbox::Table(table::TableInbox::spawn(db.clone())),
            Some(t) => Inbox::JetStream(jetstream::JetStreamInbox::connect(t).await?),
        })
    }

    /// Appends one hit of workspace `ws` and returns once it is durably stored.
    pub async fn append(&self, ws: i64, hit: &Hit) -> Result<(), AppendError> {
        match self {
            Inbox::Table(t) => t.append(ws, hit).await,
            Inbox::JetStream(j) => j.append_all(ws, std::slice::from_ref(hit)).await,
        }
    }

    /// Appends one request's batch of hits and returns once all are durably stored. The table
    /// stores all or none; JetStream stores each hit on its own, so a failed batch may be
    /// stored in part: a client resends it, and the events' IDs make it count once.
    pub async fn append_all(&self, ws: i64, hits: &[Hit]) -> Result<(), AppendError> {
        match self {
            Inbox::Table(t) => t.append_all(ws, hits).await,
            Inbox::JetStream(j) => j.append_all(ws, hits).await,
        }
    }

    /// Hits of `ws` acknowledged and not processed yet.
    pub async fn waiting(&self, db: &Db, ws: i64) -> Result<Waiting, crate::error::AppError> {
        let in_table = crate::service::tracking::waiting_in_table(db, ws).await?;
        Ok(match self {
            Inbox::Table(_) => in_table,
            // Hits left in the table from before the switch count too, until drained.
            Inbox::JetStream(j) => {
                let in_stream = j.waiting(db, ws).await?;
                Waiting {
                    hits: in_stream.hits + in_table.hits,
                    oldest: [in_stream.oldest, in_table.oldest].into_iter().flatten().min(),
                }
            }
        })
    }

    /// Runs the processor for the life of the server.
    pub fn spawn_processor(&self, db: Db, bus: Bus, poll: Duration, metrics: Arc<crate::metrics::Metrics>) {
        match self {
            Inbox::Table(t) => table::spawn_processor(db, bus, t, poll, metrics),
            Inbox::JetStream(j) => j.spawn_processor(db, bus, poll, metrics),
        }
    }
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
