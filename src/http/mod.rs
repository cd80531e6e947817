//! HTTP: our own GraphQL handler (single requests, limits, no mutations over GET), the
//! WebSocket endpoint (graphql-transport-ws in `websocket`), GraphiQL, health checks and metrics.
mod body;
pub mod export;
mod export_tables;
mod graphiql;
mod metrics;
mod serve;
mod tracking;
mod websocket;

pub use serve::serve;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, ErrorExtensionValues, Request, Response as GqlResponse};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use self::body::BodyLimits;
use crate::auth::{KeyResolver, Principal, bearer};
use crate::config::Config;
use crate::db::Db;
use crate::domain::change::SourceTag;
use crate::error::AppError;
use crate::events::Bus;
use crate::graphql::errors::coded;
use crate::graphql::handoff::SubscriptionSlots;
use crate::graphql::limits::{Guarded, Via};
use crate::graphql::loaders::{PollGate, new_loaders};
use crate::graphql::plan::RawParts;
use crate::metrics::{Metrics, StatementCount};

#[derive(Clone)]
pub struct AppState {
    pub schema: Guarded,
    pub db: Db,
    pub bus: Bus,
    pub keys: KeyResolver,
    pub metrics: Arc<Metrics>,
    pub capture: Arc<crate::ingest::Capture>,
    pub config: Arc<Config>,
}

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    let mut api = Router::new();
    if state.config.graphiql {
        api = api.route(&format!("/{}/{{name}}", graphiql::ASSETS), get(graphiql::asset));
    }
    let tracking = tracking::routes(state.clone());
    let api = api
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_requests)),
        )
        .route("/graphql/ws", get(graphql_ws))
        .route("/export/leads.csv", get(export::leads_csv))
        .route("/export/tables/{file}", get(export_tables::table))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape));
    let api = match cors {
        Some(layer) => api.layer(layer),
        None => api,
    };
    // The tracking endpoints answer every origin (they take a publishable key, or a signed
    // token, and can only write hits), with their own CORS rules.
    api.merge(tracking).with_state(state)
}

/// The CORS answer for `origins` (see `Config::cors_origins`): preflights answered, GET and POST
/// with `Authorization` and `Content-Type` allowed, no credentials; `None` for none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response()
        }
    }
}

fn error_response(status: StatusCode, err: AppError) -> Response {
    coded_response(status, err.code(), err.to_string())
}

/// A GraphQL-shaped error (`{"errors": [{"message", "extensions": {"code"}}]}`) with a status.
fn coded_response(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut response = (status, Json(GqlResponse::from_errors(vec![coded(code, message)]))).into_response();
    response.extensions_mut().insert(metrics::Outcome::refused(code));
    response
}

/// The caller from the `Authorization` header: `Ok(None)` without one; an error for a bad key.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let key = value.to_str().ok().and_then(bearer).ok_or(AppError::Unauthenticated)?;
    let mut principal = state.keys.resolve(&state.db.conn, key).await?;
    if let Some(source) = headers.get(CHANGE_SOURCE) {
        let raw = source
            .to_str()
            .map_err(|_| AppError::BadInput(format!("{CHANGE_SOURCE} must be ASCII")))?;
        principal.source = Some(SourceTag::parse(raw).map_err(|e| AppError::BadInput(format!("{CHANGE_SOURCE}: {e}")))?);
    }
    Ok(Some(principal))
}

/// The request header that tags a caller's writes in the change feed (`changes(excludeSource:)`).
pub const CHANGE_SOURCE: &str = "x-change-source";

async fn execute(state: &AppState, principal: Option<Principal>, mut request: Request, over_get: bool) -> Response {
    let gate = Arc::new(PollGate::default());
    let raw = Arc::new(RawParts::default());
    request = request.data(state.metrics.clone()).data(raw.clone());
    if let Some(p) = principal {
        request = request
            .data(p)
            .data(new_loaders(state.db.conn.clone(), p.workspace_id, gate.clone()));
    }
    let operation = crate::metrics::operation_name(request.operation_name.as_deref(), &request.query)
        .unwrap_or(crate::metrics::ANONYMOUS)
        .to_owned();
    let span = tracing::info_span!("graphql", operation = %operation);
    let timeout = state.config.limits.request_timeout;
    let via = Via {
        get: over_get,
        authenticated: principal.is_some(),
    };
    let run = gate.drive(state.schema.execute_checked(request, via));
    let statements = StatementCount::default();
    let response = match statements.scope(tokio::time::timeout(timeout, run.instrument(span))).await {
        Ok(r) => r,
        Err(_) => GqlResponse::from_errors(vec![coded(
            "TIMEOUT",
            format!("the request took longer than {} s", timeout.as_secs()),
        )]),
    };
    let response = with_error_codes(response);
    let outcome = metrics::Outcome::of(operation, &response, statements.get());
    let body = raw.splice(serde_json::to_vec(&response).expect("a response serializes"));
    let mut http = ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    http.extensions_mut().insert(outcome);
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http
}

/// Every error carries `extensions.code`: ours set it; async-graphql's own (parse, validation,
/// limits) are classified here.
fn with_error_codes(mut response: GqlResponse) -> GqlResponse {
    for e in &mut response.errors {
        let ext = e.extensions.get_or_insert_with(ErrorExtensionValues::default);
        if ext.get("code").is_none() {
            let code = if e.message.contains("too complex") || e.message.contains("nested too deep") || e.message.contains("recursion") {
                "QUERY_TOO_COMPLEX"
            } else {
                "BAD_USER_INPUT"
            };
            ext.set("code", code);
        }
    }
    response
}

async fn graphql_post(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let principal = match caller(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e),
    };
    if !is_json(&headers) {
        // A form or text/plain POST is what a browser sends cross-site without asking (CSRF).
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::BadInput("send the request as JSON, with Content-Type: application/json".into()),
        );
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = match body::read(body, length, BodyLimits::of(&state.config.limits)).await {
        Ok(b) => b,
        Err(e) => return coded_response(e.status(), e.code(), e.message()),
    };
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| body[i]);
    if trimmed == Some(b'[') {
        return error_response(
            StatusCode::BAD_REQUEST,
            AppError::BadInput("batched requests are not accepted; send one operation per request".into()),
        );
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                AppError::BadInput(format!("the body is not a GraphQL request: {e}")),
            );
        }
    };
    execute(&state, principal, request, false).await
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    /// JSON, as Apollo Client sends a persisted query's hash over GET.
    extensions: Option<String>,
}

async fn graphql_get(State(state): State<AppState>, headers: HeaderMap, Query(params): Query<GetParams>) -> Response {
    if params.query.is_none() && params.extensions.is_none() {
        if !state.config.graphiql {
            return StatusCode::NOT_FOUND.into_response();
        }
        return graphiql::page();
    }
    let principal = match caller(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e),
    };
    let mut request = Request::new(params.query.unwrap_or_default());
    request.operation_name = params.operation_name;
    if let Some(v) = params.variables {
        match serde_json::from_str(&v) {
            Ok(v) => request.variables = async_graphql::Variables::from_json(v),
            Err(e) => return error_response(StatusCode::BAD_REQUEST, AppError::BadInput(format!("variables are not JSON: {e}"))),
        }
    }
    if let Some(e) = params.extensions {
        match serde_json::from_str(&e) {
            Ok(e) => request.extensions = e,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    AppError::BadInput(format!("extensions are not a JSON object: {e}")),
                );
            }
        }
    }
    execute(&state, principal, request, true).await
}

/// graphql-transport-ws (`websocket`), and the legacy graphql-ws with async-graphql's loop; the API
/// key comes in the `connection_init` payload as `{"Authorization": "Bearer <key>"}` (or
/// `{"apiKey": "<key>"}`). A connection that has not sent it within the configured time is closed.
async fn graphql_ws(State(state): State<AppState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    // Clients send small messages (init, subscribe, complete): a 4 KiB read buffer instead of
    // the default 128 KiB keeps 1,000 subscribers at about 15 KiB each instead of 150 KiB.
    // A message may be as large as a request body, not tungstenite's default of 64 MiB.
    let max = state.config.limits.max_body_bytes;
    upgrade
        .read_buffer_size(4096)
        .max_message_size(max)
        .max_frame_size(max)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            // The connection is one task: its operations' loads are batched per round of it.
            let gate = Arc::new(PollGate::default());
            let _open = state.metrics.websocket();
            let deadline = state.config.events.connection_init_timeout;
            let schema = state.schema.clone();
            // The protocol the upgrade answered with: graphql-transport-ws when the client offers
            // both, in whatever order (`protocol` would be the first of the client's list).
            if socket.protocol().is_some_and(|p| p == "graphql-transport-ws") {
                let init_gate = gate.clone();
                let settings = websocket::Settings {
                    init_timeout: deadline,
                    max_operations: state.config.events.max_operations_per_connection,
                    keepalive: state.config.events.websocket_keepalive,
                };
                let connection = websocket::serve(socket, schema, settings, move |payload| async move {
                    connection_data(&state, init_gate, &payload).await.map_err(|e| match e {
                        AppError::Internal(_) => websocket::Close::try_again_later(),
                        AppError::Unauthenticated => websocket::Close::forbidden("the API key is not valid"),
                        e => websocket::Close::forbidden(e),
                    })
                });
                return gate.drive(connection).await;
            }
            let init_state = state.clone();
            let initialized = Arc::new(AtomicBool::new(false));
            let init_flag = Arc::clone(&initialized);
            let (sink, stream) = socket.split();
            // The client's messages, cut off if `connection_init` does not come in time.
            let stream = stream.take_until(Box::pin(async move {
                tokio::time::sleep(deadline).await;
                if initialized.load(AtomicOrdering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            }));
            let init_gate = gate.clone();
            let connection = GraphQLWebSocket::new_with_pair(sink, stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let data = connection_data(&init_state, init_gate, &payload)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    init_flag.store(true, AtomicOrdering::SeqCst);
                    Ok(data)
                })
                .serve();
            gate.drive(connection).await
        })
}

/// What every operation of a WebSocket connection sees: the caller of the key in the
/// `connection_init` payload, its loaders and the connection's subscription slots.
async fn connection_data(state: &AppState, gate: Arc<PollGate>, payload: &serde_json::Value) -> Result<Data, AppError> {
    let key = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str())
        .and_then(bearer)
        .or_else(|| payload.get("apiKey").and_then(|v| v.as_str()))
        .ok_or_else(|| AppError::Forbidden("connection_init must carry the API key".into()))?;
    let p = state.keys.resolve(&state.db.conn, key).await?;
    let mut data = Data::default();
    data.insert(p);
    data.insert(state.metrics.clone());
    // One loader serves every operation of the connection: it batches, but must not
    // cache, or a later operation would see the data of an earlier one.
    let loaders = new_loaders(state.db.conn.clone(), p.workspace_id, gate);
    loaders.enable_all_cache(false);
    data.insert(loaders);
    data.insert(SubscriptionSlots::new(state.config.events.max_subscriptions_per_connection));
    Ok(data)
}
