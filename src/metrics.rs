//! What an operator scrapes from `GET /metrics` (Prometheus text format): requests by operation
//! and outcome, their latency and SQL statements, WebSocket connections, webhook deliveries and
//! ingested rows. Gauges that describe a state (pool use, open subscriptions, events behind) are
//! read when scraped.
//!
//! Each server has its own [`Metrics`] with its own registry, held in its state, not a process
//! global: two servers in one process (the tests) count apart.
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Distinct operation names that get a label of their own; later ones count as [`OTHER`].
pub const MAX_OPERATION_NAMES: usize = 200;
/// Longer operation names count as [`OTHER`].
pub const MAX_OPERATION_NAME_LEN: usize = 64;
/// The label of the operations beyond the cap, and of names that are not GraphQL names.
pub const OTHER: &str = "other";
/// The label of operations sent without a name, and of requests refused before one was read.
pub const ANONYMOUS: &str = "anonymous";
/// The outcome of a request that answered without errors.
pub const OK: &str = "ok";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    /// `ok`, or the `extensions.code` of the first error (`BAD_USER_INPUT`, `TIMEOUT`, ...).
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

/// How a hit of a tracking endpoint ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingOutcome {
    Acknowledged,
    Dropped,
    Refused,
}

impl TrackingOutcome {
    fn label(self) -> &'static str {
        match self {
            TrackingOutcome::Acknowledged => "acknowledged",
            TrackingOutcome::Dropped => "dropped",
            TrackingOutcome::Refused => "refused",
        }
    }
}

/// How a webhook delivery attempt ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered,
    /// Not taken; it is tried again later.
    Failed,
    /// Not taken at the last attempt: the delivery is given up.
    GaveUp,
}

impl Delivery {
    fn label(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::GaveUp => "gave_up",
        }
    }
}

/// A server's numbers and the registry that prints them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    statements: Family<OperationLabels, Histogram, fn() -> Histogram>,
    names: Mutex<HashSet<String>>,
    pool: Family<StateLabels, Gauge>,
    websockets: Gauge,
    subscriptions: Gauge,
    events_behind: Gauge,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    ingested: Family<TableLabels, Counter>,
    tracking_hits: Family<OutcomeLabels, Counter>,
    tracking_processed: Counter,
}

/// Request latency buckets, 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

/// Statements per request: 0, 1, 2, 4 ... 256. A count that grows with the page size is an N+1.
fn statements_histogram() -> Histogram {
    Histogram::new([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("closedloop");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests over HTTP by operation name and outcome (ok, or the extensions.code of the first error)",
            requests.clone(),
        );
        let latency: Family<OperationLabels, Histogram, fn() -> Histogram> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "graphql_request_duration",
            "Time from the request's arrival to its answer, by operation name",
            Unit::Seconds,
            latency.clone(),
        );
        let statements: Family<OperationLabels, Histogram, fn() -> Histogram> = Family::new_with_constructor(statements_histogram);
        registry.register(
            "graphql_request_sql_statements",
            "SQL statements a GraphQL request ran, DataLoader batches included, by operation name",
            statements.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections: in_use, idle and max (the pool's size limit)",
            pool.clone(),
        );
        let websockets = Gauge::default();
        registry.register("websocket_connections", "Open WebSocket connections", websockets.clone());
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions_active",
            "Open subscription streams (handoff events) in this process",
            subscriptions.clone(),
        );
        let events_behind = Gauge::default();
        registry.register(
            "events_behind",
            "Events the slowest subscriber of this process has not yet taken from the in-process bus",
            events_behind.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, failed (retried later), gave_up (last attempt failed)",
            webhook_deliveries.clone(),
        );
        let ingested = Family::<TableLabels, Counter>::default();
        registry.register(
            "ingested_rows",
            "Rows written by ingest through the API, by table (touchpoints: recordTouchpoints)",
            ingested.clone(),
        );
        let tracking_hits = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tracking_hits",
            "Hits of the tracking endpoints (/t/...) by outcome: acknowledged (durably in the inbox), dropped (over a rate limit, or the inbox full; a click is redirected all the same), refused (a bad token, site key or body)",
            tracking_hits.clone(),
        );
        let tracking_processed = Counter::default();
        registry.register(
            "tracking_hits_processed",
            "Inbox hits this server processed into visitors, hits and touchpoints",
            tracking_processed.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            statements,
            names: Mutex::default(),
            pool,
            websockets,
            subscriptions,
            events_behind,
            webhook_deliveries,
            ingested,
            tracking_hits,
            tracking_processed,
        }
    }

    /// One GraphQL request over HTTP: its operation name as the client sent it, its outcome, its
    /// duration in seconds and the SQL statements it ran.
    pub fn request(&self, operation: Option<&str>, outcome: &str, seconds: f64, statements: u32) {
        let operation = self.operation_label(operation, outcome == OK);
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.clone(),
                outcome: outcome_label(outcome),
            })
            .inc();
        let labels = OperationLabels { operation };
        self.latency.get_or_create(&labels).observe(seconds);
        self.statements.get_or_create(&labels).observe(f64::from(statements));
    }

    /// The label of a client-chosen operation name, bounded so that a client cannot grow the
    /// label set (and the server's memory) without end. Only an operation that ran without
    /// errors (`ran`) takes a new label, so that callers without a key, or with an operation name
    /// that names nothing, cannot use the labels up.
    fn operation_label(&self, name: Option<&str>, ran: bool) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return ANONYMOUS.to_owned();
        };
        if !is_graphql_name(name) || name == OTHER || name == ANONYMOUS {
            return OTHER.to_owned();
        }
        let mut names = self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if names.contains(name) {
            return name.to_owned();
        }
        if !ran || names.len() >= MAX_OPERATION_NAMES {
            return OTHER.to_owned();
        }
        names.insert(name.to_owned());
        name.to_owned()
    }

    /// A WebSocket connection, counted while the guard lives.
    pub fn websocket(&self) -> WebSocketGuard {
        self.websockets.inc();
        WebSocketGuard(self.websockets.clone())
    }

    pub fn webhook_delivery(&self, outcome: Delivery) {
        self.webhook_deliveries
            .get_or_create(&OutcomeLabels { outcome: outcome.label() })
            .inc();
    }

    /// `rows` rows written to `table` by an ingest through the API.
    pub fn ingested(&self, table: &'static str, rows: u64) {
        self.ingested.get_or_create(&TableLabels { table }).inc_by(rows);
    }

    /// `n` hits of the tracking endpoints ended as `outcome`.
    pub fn tracking_hits(&self, outcome: TrackingOutcome, n: u64) {
        self.tracking_hits
            .get_or_create(&OutcomeLabels { outcome: outcome.label() })
            .inc_by(n);
    }

    /// `n` inbox hits processed by this server.
    pub fn tracking_processed(&self, n: u64) {
        self.tracking_processed.inc_by(n);
    }

    /// The text exposition, after setting the gauges that are read at scrape time.
    pub fn render(&self, now: &Snapshot) -> String {
        for (state, n) in [("in_use", now.pool_in_use), ("idle", now.pool_idle), ("max", now.pool_max)] {
            self.pool.get_or_create(&StateLabels { state }).set(n);
        }
        self.subscriptions.set(now.subscriptions);
        self.events_behind.set(now.events_behind);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String does not fail");
        out
    }
}

/// The gauges read at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    pub pool_in_use: i64,
    pub pool_idle: i64,
    pub pool_max: i64,
    pub subscriptions: i64,
    pub events_behind: i64,
}

/// Counts an open WebSocket connection until dropped.
pub struct WebSocketGuard(Gauge);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The operation a request runs, by name: the `operationName` it sent, or else the name of the
/// document's first operation (`query Leads { ... }`), read without parsing the document.
pub fn operation_name<'a>(operation_name: Option<&'a str>, query: &'a str) -> Option<&'a str> {
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let mut rest = query;
    // Whitespace, commas and comments are ignored tokens in GraphQL.
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, after)| after),
            None => break,
        }
    }
    let keyword = ["query", "mutation", "subscription"]
        .into_iter()
        .find(|k| rest.starts_with(k) && !rest[k.len()..].starts_with(|c: char| c == '_' || c.is_ascii_alphanumeric()))?;
    let after = rest[keyword.len()..].trim_start();
    let end = after.find(|c: char| c != '_' && !c.is_ascii_alphanumeric()).unwrap_or(after.len());
    let name = &after[..end];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// A GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) of at most [`MAX_OPERATION_NAME_LEN`] characters.
fn is_graphql_name(s: &str) -> bool {
    s.len() <= MAX_OPERATION_NAME_LEN
        && s.bytes().next().is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && s.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// An error code as a label: codes are the server's own, but one from elsewhere that does not
/// look like a code is not passed on.
fn outcome_label(code: &str) -> String {
    let fine = !code.is_empty() && code.len() <= 40 && code.bytes().all(|b| b == b'_' || b.is_ascii_uppercase() || b.is_ascii_lowercase());
    if fine { code.to_owned() } else { OTHER.to_owned() }
}

tokio::task_local! {
    /// The SQL statements of the request whose task (or DataLoader batch) runs now.
    static STATEMENTS: std::sync::Arc<AtomicU32>;
}

/// Counts one SQL statement for the request being served, if any; the database pool calls it
/// for every statement it runs (see `Db::connect_with`).
pub fn count_statement() {
    let _ = STATEMENTS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
}

/// A counter of the statements run by whatever is scoped with it.
#[derive(Clone, Default)]
pub struct StatementCount(std::sync::Arc<AtomicU32>);

impl StatementCount {
    /// The counter of the request being served, for work it hands to another task.
    pub fn current() -> Option<Self> {
        STATEMENTS.try_with(|n| Self(n.clone())).ok()
    }

    /// Runs `work`, counting its statements here.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        STATEMENTS.scope(self.0.clone(), work).await
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        let m = Metrics::new();
        assert_eq!(m.operation_label(None, true), ANONYMOUS);
        // A failed request (no key, an operation name that names nothing) takes no label.
        assert_eq!(m.operation_label(Some("Leads"), false), OTHER);
        assert_eq!(m.operation_label(Some("Leads"), true), "Leads");
        assert_eq!(m.operation_label(Some("Leads"), false), "Leads");
        assert_eq!(m.operation_label(Some("with space"), true), OTHER);
        assert_eq!(m.operation_label(Some(OTHER), true), OTHER);
        assert_eq!(m.operation_label(Some(ANONYMOUS), true), OTHER);
        assert_eq!(m.operation_label(Some(&"a".repeat(65)), true), OTHER);
        assert_eq!(m.operation_label(Some(&"a".repeat(64)), true), "a".repeat(64));
        for i in 0..MAX_OPERATION_NAMES {
            m.operation_label(Some(&format!("Op{i}")), true);
        }
        assert_eq!(m.operation_label(Some("OneTooMany"), true), OTHER);
        // Names seen before the cap keep their label.
        assert_eq!(m.operation_label(Some("Leads"), false), "Leads");
    }

    #[test]
    fn the_operation_name_is_the_one_sent_or_the_first_in_the_document() {
        assert_eq!(operation_name(Some("Sent"), "query Other { a }"), Some("Sent"));
        assert_eq!(operation_name(None, "query Leads { a }"), Some("Leads"));
        assert_eq!(operation_name(None, "  # a comment\n\n mutation Do($x: Int) { a }"), Some("Do"));
        assert_eq!(operation_name(None, "subscription\tEvents{ a }"), Some("Events"));
        assert_eq!(operation_name(None, "{ leads { id } }"), None);
        assert_eq!(operation_name(None, "query { a }"), None);
        assert_eq!(operation_name(None, "queryLeads { a }"), None);
        assert_eq!(operation_name(Some(""), "fragment F on Lead { id } query Q { a }"), None);
    }

    #[test]
    fn the_text_format_has_counters_and_histograms() {
        let m = Metrics::new();
        m.request(Some("Leads"), "ok", 0.003, 2);
        m.request(Some("Leads"), "BAD_USER_INPUT", 0.001, 0);
        m.webhook_delivery(Delivery::Delivered);
        let text = m.render(&Snapshot {
            pool_max: 8,
            ..Snapshot::default()
        });
        assert!(
            text.contains(r#"closedloop_graphql_requests_total{operation="Leads",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"closedloop_graphql_requests_total{operation="Leads",outcome="BAD_USER_INPUT"} 1"#));
        assert!(text.contains(r#"closedloop_graphql_request_duration_seconds_count{operation="Leads"} 2"#));
        assert!(
            text.contains(r#"closedloop_graphql_request_sql_statements_sum{operation="Leads"} 2.0"#),
            "{text}"
        );
        assert!(text.contains(r#"closedloop_db_pool_connections{state="max"} 8"#));
        assert!(text.contains(r#"closedloop_webhook_deliveries_total{outcome="delivered"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
