//! Typed settings, read from flags and environment by the CLI.
use std::net::SocketAddr;
use std::time::Duration;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://closedloop.db?mode=rwc";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Everything `serve` needs; `Default` is what the CLI uses without flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://FILE?mode=rwc`, `sqlite::memory:` or `postgres://...`.
    pub database_url: String,
    /// `BIND`: where to listen; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Serve GraphiQL on `GET /graphql` (`--no-graphiql` turns it off).
    pub graphiql: bool,
    /// `--cors-origin` / `CORS_ORIGINS`: origins (`https://app.example.com`) whose pages may call
    /// the API from a browser, or `*` for any. Empty: only pages of the server's own origin
    /// (GraphiQL). Keys are bearer tokens, not cookies, so no credentials are allowed.
    pub cors_origins: Vec<String>,
    /// `--metrics-token` / `METRICS_TOKEN`: `GET /metrics` answers whoever sends
    /// `Authorization: Bearer <token>`, and no one else; without a token, loopback peers only.
    pub metrics_token: Option<MetricsToken>,
    pub limits: Limits,
    pub events: EventSettings,
    /// Whether the hot reads take the planned path (`--no-planned-reads` turns it off: every
    /// field through its resolver, as a check when an answer looks wrong).
    pub reads: crate::graphql::plan::Reads,
    pub tracking: TrackingSettings,
}

/// First-party capture (`/t/...`, docs/tracking.md).
#[derive(Debug, Clone)]
pub struct TrackingSettings {
    /// `--public-url` / `PUBLIC_URL`: the server's address as browsers and mail clients reach
    /// it (`https://t.example.com`), which tracking links and pixels start with. Default: the
    /// bound address.
    pub public_url: Option<String>,
    /// Hits a second one site key (a whole site), or one tracking link for anyone (an ad), may
    /// send, with a burst of ten seconds' worth.
    pub hits_per_site_key_per_second: u32,
    /// Hits a second one visitor, or one personal link, may send.
    pub hits_per_visitor_per_second: u32,
    /// How often the processor looks for hits that other replicas appended.
    pub poll: Duration,
    /// `--ingest nats://…`: the inbox is a NATS JetStream stream; `None`, the database's table.
    pub ingest: Option<crate::ingest::jetstream::Target>,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            hits_per_site_key_per_second: 50_000,
            hits_per_visitor_per_second: 5,
            poll: Duration::from_millis(250),
            ingest: None,
        }
    }
}

/// Subscriptions and webhooks.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Events the in-process bus holds for slow subscribers; one further behind is told to
    /// resume from its cursor.
    pub bus_capacity: usize,
    /// How often the event heads are polled, as a safety net for lost hints.
    pub poll: Duration,
    pub max_subscriptions_per_connection: usize,
    /// Operations (queries, mutations and subscriptions) running at once on one WebSocket of
    /// graphql-transport-ws; one more is answered with an error instead of run.
    pub max_operations_per_connection: usize,
    /// A WebSocket that has not sent `connection_init` by then is closed.
    pub connection_init_timeout: Duration,
    /// graphql-transport-ws: a Ping frame goes to the client this often; a client that has sent
    /// nothing (not even the Pong its WebSocket library answers with) for two of these, or that
    /// does not take a message within one, is dropped, and its connection slot freed.
    pub websocket_keepalive: Duration,
    /// Retries, timeouts, and the networks webhooks may reach besides public addresses
    /// (`--webhook-allow`, `WEBHOOK_ALLOW`; none by default).
    pub webhooks: crate::events::webhook::Settings,
    /// How long the change feed keeps a change (`--change-retention-days`); a cursor older than
    /// that answers CURSOR_EXPIRED.
    pub change_retention: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            bus_capacity: 4096,
            poll: Duration::from_secs(2),
            max_subscriptions_per_connection: 20,
            max_operations_per_connection: 50,
            connection_init_timeout: Duration::from_secs(10),
            websocket_keepalive: Duration::from_secs(30),
            webhooks: crate::events::webhook::Settings::default(),
            change_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Limits on what one request may ask of the server. SECURITY.md lists them with their defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body; a `recordTouchpoints` batch of 10,000 fits in 8 MiB.
    pub max_body_bytes: usize,
    /// Tokens in a query text (names, values, punctuators), counted before it is parsed; the
    /// standard introspection query of graphql-js has about 150. Large inputs go in variables,
    /// which are not tokens of the text.
    pub max_tokens: usize,
    /// Brackets (`{`, `[`, `(`) open at once in a query text, counted before it is parsed.
    pub max_nesting: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Fields of a document with every fragment spread expanded, fragment definitions included:
    /// what validation walks.
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    /// Directives in a document (fragments expanded), and on any one field or fragment.
    pub max_directives: usize,
    pub max_directives_per_field: usize,
    /// Wall-clock limit for one request: parsing, validation and execution.
    pub request_timeout: Duration,
    pub connections: ConnectionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_tokens: 20_000,
            max_nesting: 64,
            max_depth: 12,
            max_complexity: 20_000,
            max_fields: 5_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 50,
            max_directives_per_field: 3,
            request_timeout: Duration::from_secs(30),
            connections: ConnectionLimits::default(),
        }
    }
}

/// What one HTTP connection may hold of the server, so that slow or idle clients cannot tie up
/// its sockets and tasks.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once; further ones wait in the listen queue until one closes.
    pub max_connections: usize,
    /// Time to receive a request's head: from the connection's start, then from the first byte
    /// after each answer.
    pub header_read_timeout: Duration,
    /// Time to receive a whole request body.
    pub body_read_timeout: Duration,
    /// Bytes per second a body must keep arriving at, measured over each `body_rate_window`
    /// once the first window has passed.
    pub min_body_bytes_per_second: u64,
    pub body_rate_window: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            min_body_bytes_per_second: 1_024,
            body_rate_window: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            bind: DEFAULT_BIND.parse().expect("valid default address"),
            graphiql: true,
            cors_origins: Vec::new(),
            metrics_token: None,
            limits: Limits::default(),
            events: EventSettings::default(),
            reads: crate::graphql::plan::Reads::Planned,
            tracking: TrackingSettings::default(),
        }
    }
}

/// The bearer token that opens `GET /metrics` to peers beyond loopback; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// A token of at least 16 characters, so that it cannot be guessed by trying.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() < 16 {
            return Err("the metrics token must have at least 16 characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// Whether `offered` is the token, compared in time independent of where they differ.
    pub fn matches(&self, offered: &str) -> bool {
        use sha2::{Digest, Sha256};
        let (a, b) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(offered.as_bytes()));
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

/// A database URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
