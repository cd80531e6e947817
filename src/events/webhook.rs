//! Webhooks: every event a webhook wants is POSTed to it as JSON, signed, in sequence order,
//! retried with exponential backoff. Delivery state lives in `webhook_deliveries`, so a restart
//! neither loses nor repeats a delivery that was recorded; several replicas share the work by
//! leasing a delivery before sending it.
//!
//! The request: `POST url` with the event's JSON body and the headers
//! `X-Closedloop-Event` (kind), `X-Closedloop-Event-Id` (the event's cursor, for deduplication),
//! `X-Closedloop-Delivery` (attempt number) and `X-Closedloop-Signature: t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256 with the webhook's secret over `"<t>.<body>"`.
//!
//! Where it goes: each attempt checks the URL again against the allow-list of this server, and
//! the client's resolver keeps only the addresses a webhook may reach, so the connection goes to
//! an address that was checked (no window for DNS rebinding). Redirects are not followed and no
//! proxy is used. A refused attempt is a failed attempt, logged, and nothing is sent.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use entity::{event, webhook, webhook_delivery};
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult, Statement};
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;

use super::{Bus, Notice};
use crate::domain::destination::{AllowList, Refusal};
use crate::domain::handoff::{EventKind, HandoffEventData};
use crate::metrics::{Delivery, Metrics};

pub const PENDING: &str = "PENDING";
pub const DELIVERED: &str = "DELIVERED";
/// Gave up after the last attempt.
pub const FAILED: &str = "FAILED";

/// How deliveries are attempted.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Wait before the second attempt; each further attempt waits twice as long.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub max_attempts: i32,
    pub timeout: Duration,
    /// How often the dispatcher looks for due retries when no event wakes it.
    pub poll: Duration,
    /// `--webhook-allow` / `WEBHOOK_ALLOW`: networks webhooks may reach besides public addresses
    /// (e.g. 10.0.0.0/8 for an on-premise receiver); empty by default.
    pub allow: AllowList,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(3600),
            max_attempts: 10,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            allow: AllowList::default(),
        }
    }
}

/// Whether a webhook subscribed to `kind` (`kinds` is a JSON array; empty means all).
pub fn wants(kinds: &serde_json::Value, kind: EventKind) -> bool {
    match kinds.as_array() {
        Some(list) if !list.is_empty() => list.iter().any(|k| k.as_str() == Some(kind.as_str())),
        _ => true,
    }
}

/// The signature header's value for `body` sent at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex = hex::encode(mac.finalize().into_bytes());
    format!("t={t},v1={hex}")
}

/// The wait after `attempts` failed attempts: base x 2^(attempts - 1), at most `max`.
pub fn backoff(s: &Settings, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
    s.retry_base.saturating_mul(1 << exp).min(s.retry_max)
}

/// The client deliveries go through: it connects only to addresses `allow` permits, follows no
/// redirect (the signed POST would go wherever the receiver says) and uses no proxy (which would
/// resolve the name itself, past our resolver).
pub fn client(settings: &Settings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver {
            allow: settings.allow.clone(),
        }))
        .build()
}

/// Resolves host names with the system resolver and keeps only the addresses a webhook may
/// reach. reqwest does not ask it about IP literals: `check_url` covers those.
struct CheckedResolver {
    allow: AllowList,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&allow, &host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` that `allow` permits (port 0: the client puts in the URL's), or the
/// refusal naming every address it resolved to.
pub async fn resolve_checked(allow: &AllowList, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let mut refused = Vec::new();
    let mut allowed = Vec::new();
    for addr in found {
        match allow.check(addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(Refusal::Address { ip, range }) => refused.push((ip, range)),
            Err(other) => return Err(Box::new(other)),
        }
    }
    if allowed.is_empty() {
        return Err(Box::new(Refusal::Resolved {
            host: host.to_owned(),
            refused,
        }));
    }
    Ok(allowed)
}

/// What is logged for a failed request: our refusal if the resolver made it, else reqwest's
/// message and its causes, without the URL.
fn request_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut source = std::error::Error::source(&e);
    let mut causes = Vec::new();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return format!("not sent: {refusal}");
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    std::iter::once(format!("request failed: {e}"))
        .chain(causes)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Runs the dispatcher until the process ends: woken by events on the bus, and every `poll`.
pub fn spawn(conn: DatabaseConnection, bus: &Bus, settings: Settings, metrics: Arc<Metrics>) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        let client = match client(&settings) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client; webhooks are not delivered");
                return;
            }
        };
        let d = Arc::new(Dispatcher {
            conn,
            client,
            settings,
            metrics,
        });
        loop {
            if let Err(e) = d.run_once().await {
                tracing::warn!(error = %e, "webhook dispatch failed");
            }
            let wake = async {
                match rx.recv().await {
                    Ok(Notice::Event(_)) | Err(RecvError::Lagged(_)) => {}
                    Ok(_) => {}
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            };
            let _ = tokio::time::timeout(d.settings.poll, wake).await;
        }
    });
}

struct Dispatcher {
    conn: DatabaseConnection,
    client: reqwest::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
}

#[derive(FromQueryResult)]
struct Due {
    id: i64,
}

impl Dispatcher {
    /// Sends every delivery that is due and first in line for its webhook; the webhooks are
    /// served side by side, each in its own order.
    async fn run_once(self: &Arc<Self>) -> Result<(), DbErr> {
        loop {
            let due = self.due().await?;
            if due.is_empty() {
                return Ok(());
            }
            let tasks: Vec<_> = due
                .into_iter()
                .map(|id| {
                    let d = Arc::clone(self);
                    tokio::spawn(async move { d.deliver(id).await })
                })
                .collect();
            let mut sent = 0;
            for t in tasks {
                match t.await {
                    Ok(Ok(true)) => sent += 1,
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "webhook delivery failed"),
                    Err(e) => tracing::warn!(error = %e, "webhook task failed"),
                }
            }
            // Only successes can make the next delivery of a webhook due right away.
            if sent == 0 {
                return Ok(());
            }
        }
    }

    /// The oldest pending delivery of each active webhook, if it is due and not leased.
    async fn due(&self) -> Result<Vec<i64>, DbErr> {
        let backend = self.conn.get_database_backend();
        let now = Utc::now();
        let sql = "SELECT d.id FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id AND w.active \
             WHERE d.status = 'PENDING' AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                 WHERE e.webhook_id = d.webhook_id AND e.status = 'PENDING' AND e.seq < d.seq) \
             ORDER BY d.id LIMIT 64";
        let sql = if backend == DbBackend::Postgres {
            sql.to_owned()
        } else {
            sql.replace("$1", "?1")
        };
        let rows = Due::find_by_statement(Statement::from_sql_and_values(backend, sql, [now.into()]))
            .all(&self.conn)
            .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Claims a delivery for the time one attempt can take; false if another dispatcher has it.
    async fn claim(&self, id: i64, now: DateTime<Utc>) -> Result<bool, DbErr> {
        let backend = self.conn.get_database_backend();
        let until = now + TimeDelta::from_std(self.settings.timeout * 2).unwrap_or(TimeDelta::seconds(60));
        let sql = "UPDATE webhook_deliveries SET lease_until = $1 \
             WHERE id = $2 AND status = 'PENDING' AND (lease_until IS NULL OR lease_until < $3)";
        let sql = if backend == DbBackend::Postgres {
            sql.to_owned()
        } else {
            sql.replace("$1", "?1").replace("$2", "?2").replace("$3", "?3")
        };
        let res = self
            .conn
            .execute_raw(Statement::from_sql_and_values(backend, sql, [until.into(), id.into(), now.into()]))
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// One attempt; returns whether the receiver took it.
    async fn deliver(&self, id: i64) -> Result<bool, DbErr> {
        let now = Utc::now();
        if !self.claim(id, now).await? {
            return Ok(false);
        }
        let Some(delivery) = webhook_delivery::Entity::find_by_id(id).one(&self.conn).await? else {
            return Ok(false);
        };
        let (Some(hook), Some(ev)) = (
            webhook::Entity::find_by_id(delivery.webhook_id).one(&self.conn).await?,
            event::Entity::find_by_id(delivery.event_id).one(&self.conn).await?,
        ) else {
            return Ok(false);
        };
        let attempt = delivery.attempts + 1;
        let outcome = self.post(&hook, &ev, attempt).await;
        let done = Utc::now();
        let mut am: webhook_delivery::ActiveModel = delivery.into();
        am.attempts = Set(attempt);
        am.lease_until = Set(None);
        am.updated_at = Set(done);
        let ok = match outcome {
            Ok(code) if (200..300).contains(&code) => {
                am.status = Set(DELIVERED.to_owned());
                am.delivered_at = Set(Some(done));
                am.last_status_code = Set(Some(i32::from(code)));
                am.last_error = Set(None);
                self.metrics.webhook_delivery(Delivery::Delivered);
                true
            }
            failure => {
                let (code, message) = match failure {
                    Ok(code) if (300..400).contains(&code) => (
                        Some(i32::from(code)),
                        format!("the receiver answered {code}; redirects are not followed"),
                    ),
                    Ok(code) => (Some(i32::from(code)), format!("the receiver answered {code}")),
                    Err(message) => (None, message),
                };
                am.last_status_code = Set(code);
                am.last_error = Set(Some(message));
                if attempt >= self.settings.max_attempts {
                    am.status = Set(FAILED.to_owned());
                    self.metrics.webhook_delivery(Delivery::GaveUp);
                } else {
                    self.metrics.webhook_delivery(Delivery::Failed);
                    let wait = TimeDelta::from_std(backoff(&self.settings, attempt)).unwrap_or(TimeDelta::hours(1));
                    am.next_attempt_at = Set(done + wait);
                }
                false
            }
        };
        webhook_delivery::Entity::update(am).exec(&self.conn).await?;
        Ok(ok)
    }

    async fn post(&self, hook: &webhook::Model, ev: &event::Model, attempt: i32) -> Result<u16, String> {
        // Checked again: the allow-list may have shrunk since the webhook was registered.
        let url = self.settings.allow.check_url(&hook.url).map_err(|r| format!("not sent: {r}"))?;
        let data: HandoffEventData = serde_json::from_value(ev.payload.clone()).map_err(|e| format!("stored event unreadable: {e}"))?;
        let body = serde_json::to_vec(&data.public_json(&ev.kind, ev.seq, ev.created_at)).map_err(|e| e.to_string())?;
        let t = Utc::now().timestamp();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "closedloop-webhooks/1")
            .header("x-closedloop-event", ev.kind.as_str())
            .header("x-closedloop-event-id", crate::domain::ids::event_cursor(ev.seq))
            .header("x-closedloop-delivery", attempt.to_string())
            .header("x-closedloop-signature", signature(&hook.secret, t, &body))
            .body(body)
            .send()
            .await
            .map_err(request_error)?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_by_hand() {
        // The message is "<t>.<body>"; the expected value comes from OpenSSL:
        // printf '1.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
        let s = signature("Jefe", 1, b"what do ya want for nothing?");
        assert_eq!(s, "t=1,v1=a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Settings {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            ..Settings::default()
        };
        assert_eq!(backoff(&s, 1), Duration::from_secs(2));
        assert_eq!(backoff(&s, 3), Duration::from_secs(8));
        assert_eq!(backoff(&s, 9), Duration::from_secs(60));
    }

    fn settings(allow: &[&str]) -> Settings {
        let nets = allow.iter().map(|n| crate::domain::destination::parse_net(n).unwrap());
        Settings {
            timeout: Duration::from_secs(5),
            allow: AllowList::new(nets),
            ..Settings::default()
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_only_allowed_addresses() {
        let refused = resolve_checked(&settings(&[]).allow, "localhost").await.unwrap_err();
        let refusal = refused.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!(refusal.code(), "DESTINATION_NOT_ALLOWED");
        assert!(
            refusal
                .to_string()
                .starts_with("localhost resolves only to addresses a webhook may not reach: "),
            "{refusal}"
        );
        let allowed = resolve_checked(&settings(&["127.0.0.0/8"]).allow, "localhost").await.unwrap();
        assert!(!allowed.is_empty());
        assert!(allowed.iter().all(|a| a.ip().is_loopback() && a.ip().is_ipv4()), "{allowed:?}");
    }

    #[tokio::test]
    async fn the_client_does_not_connect_to_a_name_that_resolves_to_a_refused_address() {
        // A receiver on loopback that counts connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                // The request has no body: it ends with its headers.
                let mut request = Vec::new();
                let mut buf = [0_u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let url = format!("http://localhost:{port}/hook");
        let err = client(&settings(&[])).unwrap().post(&url).send().await.unwrap_err();
        let message = request_error(err);
        assert!(
            message.starts_with("not sent: localhost resolves only to addresses a webhook may not reach: 127.0.0.1 (a loopback address)"),
            "{message}"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was sent");
        // The same client with loopback allowed connects: the refusal above was the resolver's.
        let ok = client(&settings(&["127.0.0.0/8"])).unwrap().post(&url).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 204);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn kinds() {
        assert!(wants(&serde_json::json!([]), EventKind::Created));
        assert!(wants(&serde_json::json!(["CREATED"]), EventKind::Created));
        assert!(!wants(&serde_json::json!(["ACCEPTED"]), EventKind::Created));
    }
}
