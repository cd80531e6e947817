//! The inbox in NATS JetStream (`--ingest nats://host:4222/STREAM`), for deployments whose hit
//! rate outgrows the database's table. A hit is one message on the subject
//! `{STREAM}.hits.{workspace}`, acknowledged to the browser once JetStream has stored it.
//!
//! The stream keeps its messages (limits retention); what was processed is decided by the
//! database alone: the processor reads the stream in order from its cursor
//! (`ingest_cursors`), applies a batch in one transaction that also moves the cursor past it,
//! and purges the stream up to the cursor after the commit. A hit is therefore processed once,
//! whether the stream hands it out again after a crash or to a second replica: replicas each
//! read the stream and take turns at the database (the advisory lock of the table inbox),
//! skipping what the cursor has passed.
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::{AppendError, Hit, MAX_WAITING, Waiting};
use crate::db::Db;
use crate::events::Bus;
use crate::service::tracking::{self as service, SequencedHit};

/// Where the inbox is: a NATS server and the stream's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub address: String,
    pub user: Option<(String, String)>,
    pub stream: String,
}

/// The stream's name when the URL names none.
pub const DEFAULT_STREAM: &str = "closedloop";

impl Target {
    /// `nats://[user:password@]host[:port][/STREAM]` (port 4222 by default).
    pub fn parse(text: &str) -> Result<Target, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        if url.scheme() != "nats" {
            return Err("the inbox is a nats:// URL (the database's table is the default)".into());
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL names no host")?;
        let stream = match url.path().trim_matches('/') {
            "" => DEFAULT_STREAM.to_owned(),
            s => s.to_owned(),
        };
        if !stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') || stream.len() > 64 {
            return Err(format!("{stream:?} is not a stream name (letters, digits, _ and -, at most 64)"));
        }
        let user = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Target {
            address: format!("{host}:{}", url.port().unwrap_or(4222)),
            user,
            stream,
        })
    }

    /// The processor's cursor's name in `ingest_cursors`.
    pub fn source(&self) -> String {
        format!("jetstream:{}", self.stream)
    }

    fn subject(&self, ws: i64) -> String {
        format!("{}.hits.{ws}", self.stream)
    }

    fn all_subjects(&self) -> String {
        format!("{}.hits.*", self.stream)
    }
}

/// The handle endpoints append through; cheap to clone.
#[derive(Clone)]
pub struct JetStreamInbox {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    js: jetstream::Context,
    stream: stream::Stream,
    /// Hits being stored at most; one more is refused as `Overloaded`.
    storing: Semaphore,
}

impl JetStreamInbox {
    /// Connects and makes the stream if it does not exist.
    pub async fn connect(target: &Target) -> Result<JetStreamInbox, crate::BoxError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("closedloop")
            .connection_timeout(Duration::from_secs(5));
        if let Some((user, password)) = &target.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        let client = options
            .connect(target.address.as_str())
            .await
            .map_err(|e| format!("connecting to NATS at {}: {e}", target.address))?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: target.stream.clone(),
                subjects: vec![target.all_subjects()],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the JetStream stream {}: {e}", target.stream))?;
        tracing::info!(address = %target.address, stream = %target.stream, "hits go to a JetStream inbox");
        Ok(JetStreamInbox {
            inner: Arc::new(Inner {
                target: target.clone(),
                js,
                stream,
                storing: Semaphore::new(MAX_WAITING),
            }),
        })
    }

    /// Publishes every hit and returns once JetStream has stored them all.
    pub async fn append_all(&self, ws: i64, hits: &[Hit]) -> Result<(), AppendError> {
        let n = u32::try_from(hits.len()).map_err(|_| AppendError::Overloaded)?;
        let _permits = self.inner.storing.try_acquire_many(n).map_err(|_| AppendError::Overloaded)?;
        let subject = self.inner.target.subject(ws);
        let mut acks = Vec::with_capacity(hits.len());
        for hit in hits {
            let body = serde_json::to_vec(hit).expect("a hit serializes");
            let ack = self.inner.js.publish(subject.clone(), body.into()).await.map_err(|e| {
                tracing::error!(error = %e, "publishing a hit to JetStream failed");
                AppendError::Failed
            })?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| {
                tracing::error!(error = %e, "JetStream did not store a hit");
                AppendError::Failed
            })?;
        }
        Ok(())
    }

    /// Hits of `ws` in the stream after the cursor, and the oldest one's time. The count is a
    /// throw-away consumer's: NATS 2.9's counts per subject in the stream's info came back
    /// empty for a stream that had been purged, while a filtered consumer's pending count is
    /// computed from the messages themselves. Hits processed a moment ago may count until the
    /// purge that follows their commit, never the other way round.
    pub async fn waiting(&self, db: &Db, ws: i64) -> Result<Waiting, crate::error::AppError> {
        let failed = |e: &dyn std::fmt::Display| crate::error::AppError::internal(format!("reading the JetStream inbox: {e}"));
        let after = service::cursor(&db.conn, &self.inner.target.source()).await? as u64;
        let state = self.inner.stream.get_info().await.map_err(|e| failed(&e))?.state;
        if state.messages == 0 || state.last_sequence <= after {
            return Ok(Waiting::default());
        }
        let subject = self.inner.target.subject(ws);
        let counter = self
            .inner
            .stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(10),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let info = counter.cached_info();
        let hits = info.num_pending as i64;
        if let Err(e) = self.inner.stream.delete_consumer(&info.name).await {
            // It goes by itself after ten idle seconds.
            tracing::debug!(error = %e, "deleting a counting consumer failed");
        }
        if hits == 0 {
            return Ok(Waiting::default());
        }
        let oldest = match self.inner.stream.get_first_raw_message_by_subject(&subject, after + 1).await {
            Ok(m) => Some(to_chrono(m.time.unix_timestamp_nanos())),
            // Processed (and purged) since the count.
            Err(_) => None,
        };
        Ok(Waiting { hits, oldest })
    }

    /// Runs the processor for the life of the server: first what the database's table still
    /// holds from before the switch, then the stream.
    pub fn spawn_processor(&self, db: Db, bus: Bus, poll: Duration, metrics: Arc<crate::metrics::Metrics>) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            super::table::drain(&db, &bus, &metrics).await;
            loop {
                if let Err(e) = inner.process(&db, &bus, poll, &metrics).await {
                    tracing::error!(error = %e, "reading the JetStream inbox failed; reading again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
    }
}

/// Messages one processing transaction takes at most.
const BATCH: usize = service::BATCH as usize;

impl Inner {
    /// Reads the stream from the cursor on, processing as it goes, until the stream's reader
    /// fails.
    async fn process(&self, db: &Db, bus: &Bus, poll: Duration, metrics: &crate::metrics::Metrics) -> Result<(), crate::BoxError> {
        let source = self.target.source();
        let start = service::cursor(&db.conn, &source).await? + 1;
        let reader = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.target.all_subjects(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start as u64,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = reader.messages().await?;
        let mut batch: Vec<SequencedHit> = Vec::with_capacity(BATCH);
        loop {
            // Wait for a first hit, then take what is ready behind it.
            if batch.is_empty() {
                match tokio::time::timeout(poll, messages.next()).await {
                    Err(_) => continue,
                    Ok(None) => return Err("the stream's reader ended".into()),
                    Ok(Some(m)) => {
                        let (hit, more) = read(m?);
                        batch.extend(hit);
                        if more {
                            take_ready(&mut messages, &mut batch).await?;
                        }
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            match service::process_sequenced(db, bus, &source, &batch).await {
                Ok(s) => {
                    metrics.tracking_processed(s.processed as u64);
                    batch.drain(..s.done);
                    if let Err(e) = self.stream.purge().sequence(s.cursor as u64 + 1).await {
                        tracing::warn!(error = %e, "purging processed hits from the stream failed; the next batch purges them");
                    }
                }
                Err(e) => {
                    tracing::error!(error = ?e, "processing tracking hits failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// Takes messages that are ready (the server said more were pending) until the batch is full.
async fn take_ready<S>(messages: &mut S, batch: &mut Vec<SequencedHit>) -> Result<(), crate::BoxError>
where
    S: futures_util::Stream<Item = Result<jetstream::Message, consumer::pull::OrderedError>> + Unpin,
{
    while batch.len() < BATCH {
        match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            Ok(Some(m)) => {
                let (hit, more) = read(m?);
                batch.extend(hit);
                if !more {
                    break;
                }
            }
            // The rest comes with the next batch.
            Ok(None) | Err(_) => break,
        }
    }
    Ok(())
}

/// A message as a hit to process (none when its subject names no workspace), and whether the
/// server has more messages pending behind it.
fn read(m: jetstream::Message) -> (Option<SequencedHit>, bool) {
    let info = match m.info() {
        Ok(i) => (i.stream_sequence, to_chrono(i.published.unix_timestamp_nanos()), i.pending > 0),
        Err(e) => {
            tracing::warn!(error = %e, "a JetStream message without its metadata; skipped");
            return (None, true);
        }
    };
    let (sequence, received_at, more) = info;
    let Some(ws) = m.subject.rsplit('.').next().and_then(|w| w.parse::<i64>().ok()) else {
        tracing::warn!(subject = %m.subject, "a message on the hits stream names no workspace; skipped");
        return (None, more);
    };
    let body = String::from_utf8_lossy(&m.payload).into_owned();
    (Some((sequence as i64, ws, received_at, body)), more)
}

/// JetStream's times (nanoseconds since the epoch) as chrono's.
fn to_chrono(unix_nanos: i128) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(unix_nanos as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_defaults() {
        let t = Target::parse("nats://127.0.0.1").unwrap();
        assert_eq!(t.address, "127.0.0.1:4222");
        assert_eq!(t.stream, DEFAULT_STREAM);
        assert_eq!(t.user, None);
        let t = Target::parse("nats://ingest:s%40cret@nats.internal:4223/hits_eu").unwrap();
        assert_eq!(t.address, "nats.internal:4223");
        assert_eq!(t.stream, "hits_eu");
        assert_eq!(t.user, Some(("ingest".into(), "s@cret".into())));
        assert_eq!(t.source(), "jetstream:hits_eu");
        assert_eq!(t.subject(7), "hits_eu.hits.7");
    }

    #[test]
    fn other_urls_are_refused() {
        assert!(Target::parse("postgres://localhost/x").is_err());
        assert!(Target::parse("nats://localhost/a.b").is_err(), "a dot would change the subjects");
        assert!(Target::parse("nats://localhost/a*").is_err());
        assert!(Target::parse("nats:///x").is_err());
    }
}
