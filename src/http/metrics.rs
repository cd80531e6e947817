//! `GET /metrics` and the layer that counts GraphQL requests for it (`crate::metrics`).
//!
//! The numbers tell how the API is used (operation names, error rates), so `/metrics` answers
//! loopback peers only (a scraper on the same host); with `--metrics-token`, any scraper that
//! sends it as a bearer token, and no other.
use std::net::SocketAddr;
use std::time::Instant;

use async_graphql::Response as GqlResponse;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sea_orm::DatabaseConnection;

use super::AppState;
use crate::auth::bearer;
use crate::config::MetricsToken;
use crate::metrics::Snapshot;

/// What a GraphQL answer tells the metrics layer, set by the handler on its response.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    /// The operation name the client sent; `None` when the request was refused before one
    /// was read.
    operation: Option<String>,
    /// `ok`, or the `extensions.code` of the first error.
    code: String,
    statements: u32,
}

impl Outcome {
    /// A request refused before execution (bad key, not JSON, too large ...).
    pub(super) fn refused(code: &str) -> Self {
        Self {
            operation: None,
            code: code.to_owned(),
            statements: 0,
        }
    }

    pub(super) fn of(operation: String, response: &GqlResponse, statements: u32) -> Self {
        let code = response.errors.first().map_or_else(
            || crate::metrics::OK.to_owned(),
            |e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .and_then(|v| match v {
                        async_graphql::Value::String(s) => Some(s.clone()),
                        async_graphql::Value::Enum(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "INTERNAL_SERVER_ERROR".to_owned())
            },
        );
        Self {
            operation: Some(operation),
            code,
            statements,
        }
    }
}

/// Times a GraphQL request from its arrival (body included) to its answer and counts it by the
/// [`Outcome`] its handler set. Answers without one (the GraphiQL page) are not requests.
pub(super) async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(o) = response.extensions().get::<Outcome>() {
        state
            .metrics
            .request(o.operation.as_deref(), &o.code, started.elapsed().as_secs_f64(), o.statements);
    }
    response
}

/// The Prometheus text exposition, for whoever [`may_scrape`].
pub(super) async fn scrape(State(state): State<AppState>, request: Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let token = state.config.metrics_token.as_ref();
    if !may_scrape(token, peer, offered) {
        return if token.is_some() {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "send the metrics token as a bearer token\n",
            )
                .into_response()
        } else {
            (
                StatusCode::FORBIDDEN,
                "metrics are served to loopback peers only; see --metrics-token\n",
            )
                .into_response()
        };
    }
    let (pool_in_use, pool_idle, pool_max) = pool_use(&state.db.conn);
    let now = Snapshot {
        pool_in_use,
        pool_idle,
        pool_max,
        subscriptions: i64::try_from(state.bus.open_streams()).unwrap_or(i64::MAX),
        events_behind: i64::try_from(state.bus.behind()).unwrap_or(i64::MAX),
    };
    let mut response = state.metrics.render(&now).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// With a metrics token, its bearer, from anywhere (a proxy on the same host would make every
/// client a loopback peer); without one, loopback peers only.
fn may_scrape(token: Option<&MetricsToken>, peer: Option<SocketAddr>, offered: Option<&str>) -> bool {
    match token {
        Some(token) => offered.is_some_and(|o| token.matches(o)),
        None => peer.is_some_and(|p| p.ip().to_canonical().is_loopback()),
    }
}

/// Connections of the pool: in use, idle, and the most it opens.
fn pool_use(conn: &DatabaseConnection) -> (i64, i64, i64) {
    fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (i64, i64, i64) {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(0);
        (size - idle, idle, i64::from(pool.options().get_max_connections()))
    }
    match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => of(conn.get_postgres_connection_pool()),
        sea_orm::DbBackend::Sqlite => of(conn.get_sqlite_connection_pool()),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_without_a_token_and_the_bearer_with_one() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        assert!(may_scrape(None, Some(local), None));
        assert!(may_scrape(None, Some(mapped), None));
        assert!(may_scrape(None, Some("[::1]:5000".parse().unwrap()), None));
        assert!(!may_scrape(None, Some(remote), None));
        assert!(!may_scrape(None, None, None));
        let token = MetricsToken::parse("0123456789abcdef").unwrap();
        assert!(may_scrape(Some(&token), Some(remote), Some("0123456789abcdef")));
        assert!(!may_scrape(Some(&token), Some(remote), Some("0123456789abcdeX")));
        // A proxy on the same host makes every client local: the token is asked of all.
        assert!(!may_scrape(Some(&token), Some(local), None));
        assert!(MetricsToken::parse("short").is_err());
        assert_eq!(format!("{token:?}"), "MetricsToken(***)");
    }
}
