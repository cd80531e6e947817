//! The public tracking endpoints (docs/tracking.md): `GET /t/c/{token}` (a link click,
//! redirected), `GET /t/o/{token}.gif` (an open pixel), `POST /t/e` (site events, a batch),
//! `POST /t/identify` (a visitor makes itself known) and `GET /t/closedloop.js` (the script).
//! Each answers once its hit is durably appended to the inbox; processing comes after.
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeZone, Utc};
use entity::tracking_link;
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::AppState;
use super::body::{self, BodyLimits};
use crate::domain::tracking::{self, Agent, Token, TokenKind, opted_out, valid_visitor_id};
use crate::ingest::{AppendError, Hit};
use crate::metrics::TrackingOutcome;

/// Largest body of `POST /t/e` and `POST /t/identify`.
pub const MAX_BODY: usize = 64 * 1024;
/// Events one `POST /t/e` may carry.
pub const MAX_EVENTS: usize = 50;

/// The script sites embed; served as is.
const SCRIPT: &str = include_str!("closedloop.js");

/// A transparent 1x1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn routes(state: AppState) -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(86_400));
    Router::new()
        .route("/t/c/{token}", get(click))
        .route("/t/o/{file}", get(open))
        .route("/t/e", post(events))
        .route("/t/identify", post(identify))
        .route("/t/closedloop.js", get(script))
        .layer(axum::middleware::from_fn_with_state(state, count_refusals))
        .layer(cors)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn request_of<'a>(h: &'a HeaderMap, method: &Method) -> tracking::Request<'a> {
    tracking::Request {
        user_agent: header(h, "user-agent"),
        head: method == Method::HEAD,
        accept_language: h.contains_key(header::ACCEPT_LANGUAGE),
    }
}

fn opted_out_of(h: &HeaderMap) -> bool {
    opted_out(header(h, "sec-gpc"), header(h, "dnt"))
}

/// Counts `n` hits as acknowledged (`kept`) or dropped.
fn count(state: &AppState, kept: bool, n: u64) {
    let outcome = if kept {
        TrackingOutcome::Acknowledged
    } else {
        TrackingOutcome::Dropped
    };
    state.metrics.tracking_hits(outcome, n);
}

/// Counts the refusals of the tracking endpoints (a bad token, site key or body) for /metrics.
async fn count_refusals(State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    if response.status().is_client_error() && response.status() != StatusCode::TOO_MANY_REQUESTS {
        state.metrics.tracking_hits(TrackingOutcome::Refused, 1);
    }
    response
}

fn not_found() -> Response {
    let mut r = (StatusCode::NOT_FOUND, "no such link").into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn issued(t: &Token) -> DateTime<Utc> {
    Utc.timestamp_opt(t.issued_minute.saturating_mul(60), 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The verified token and its link; 404 for a forged token or a link that is gone.
async fn link_of(state: &AppState, kind: TokenKind, text: &str) -> Result<(Token, Arc<tracking_link::Model>), Response> {
    let resolver = &state.capture.resolver;
    let token = match resolver.token(&state.db, kind, text).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(unavailable(e)),
    };
    match resolver.link(&state.db, &token).await {
        Ok(Some(l)) => Ok((token, l)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(unavailable(e)),
    }
}

/// A click: recorded, then redirected to the link's destination, and only there. A personal
/// link carries its token on to the landing page (`cl_t`), where the script identifies the
/// visitor by it.
async fn click(State(state): State<AppState>, method: Method, headers: HeaderMap, Path(text): Path<String>) -> Response {
    let c = &state.capture;
    let (token, link) = match link_of(&state, TokenKind::Click, &text).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let now = Utc::now();
    let req = request_of(&headers, &method);
    let agent = match token.lead {
        Some(_) => tracking::classify_mail(req, issued(&token), now),
        None => tracking::classify_web(req),
    };
    let private = opted_out_of(&headers);
    let lead = token.lead.filter(|_| !private);
    let mut destination = link.destination.clone();
    if c.per_token(&token).allow(&text, 1) {
        let hit = Hit::Click {
            link: link.id,
            lead,
            agent,
            at: now,
        };
        // The person gets where they were going even if the hit cannot be kept.
        let kept = c.inbox.append(token.workspace, &hit).await.is_ok();
        count(&state, kept, 1);
    } else {
        count(&state, false, 1);
    }
    if lead.is_some()
        && agent == Agent::Human
        && let Ok(mut u) = url::Url::parse(&destination)
    {
        u.query_pairs_mut().append_pair("cl_t", &text);
        destination = u.to_string();
    }
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&destination) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// An open: recorded, answered with a transparent pixel.
async fn open(State(state): State<AppState>, method: Method, headers: HeaderMap, Path(file): Path<String>) -> Response {
    let Some(text) = file.strip_suffix(".gif") else {
        return not_found();
    };
    let c = &state.capture;
    let (token, link) = match link_of(&state, TokenKind::Open, text).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let now = Utc::now();
    let agent = tracking::classify_mail(request_of(&headers, &method), issued(&token), now);
    let lead = token.lead.filter(|_| !opted_out_of(&headers));
    if c.per_token(&token).allow(text, 1) {
        let hit = Hit::Open {
            link: link.id,
            lead,
            agent,
            at: now,
        };
        let kept = c.inbox.append(token.workspace, &hit).await.is_ok();
        count(&state, kept, 1);
    } else {
        count(&state, false, 1);
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store, private")),
        ],
        PIXEL,
    )
        .into_response()
}

/// A JSON error with a code, as the GraphQL endpoint's are.
fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let mut r = super::coded_response(status, code, message.into());
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn unavailable(e: sea_orm::DbErr) -> Response {
    tracing::warn!(error = %e, "a tracking endpoint could not reach the database");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "the database is not reachable; retry later",
    )
}

fn append_failed(e: AppendError) -> Response {
    match e {
        AppendError::Overloaded => refused(StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED", e.to_string()),
        AppendError::Failed => refused(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", e.to_string()),
    }
}

fn accepted(n: usize, private: bool) -> Response {
    let mut r = (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "accepted": n, "optedOut": private })),
    )
        .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes, whatever its content type: the script
/// sends `text/plain` (as `navigator.sendBeacon` does), which needs no CORS preflight.
async fn read_json<T: serde::de::DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: Body) -> Result<T, Response> {
    let length = header(headers, "content-length").and_then(|v| v.parse().ok());
    let limits = BodyLimits {
        max_bytes: MAX_BODY,
        ..BodyLimits::of(&state.config.limits)
    };
    let bytes = body::read(body, length, limits)
        .await
        .map_err(|e| refused(e.status(), e.code(), e.message()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        refused(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            format!("the body is not a valid hit: {e}"),
        )
    })
}

/// The site key of a request to `/t/e` or `/t/identify`: its workspace, or a refusal.
async fn site(state: &AppState, key: &str) -> Result<i64, Response> {
    match state.capture.resolver.site_key(&state.db, key).await {
        Ok(Some(ws)) => Ok(ws),
        Ok(None) => Err(refused(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "unknown site key")),
        Err(e) => Err(unavailable(e)),
    }
}

/// `POST /t/e`.
#[derive(Deserialize)]
struct Events {
    /// The publishable site key.
    k: String,
    /// The visitor ID.
    #[serde(default)]
    v: Option<String>,
    /// The session's landing URL (with its UTM parameters).
    #[serde(default)]
    l: Option<String>,
    /// The landing page's referrer.
    #[serde(default)]
    r: Option<String>,
    /// The browser's Do Not Track or Global Privacy Control, as the script read them.
    #[serde(default)]
    dnt: bool,
    e: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    /// Name: `page_view`, `download`, `video`, or the site's own.
    n: String,
    #[serde(default)]
    id: Option<String>,
    /// The page's URL.
    #[serde(default)]
    u: Option<String>,
    /// A campaign's global ID (a form's hidden field).
    #[serde(default)]
    c: Option<String>,
}

fn short(v: Option<String>, max: usize) -> Option<String> {
    v.filter(|s| !s.is_empty() && s.len() <= max)
}

async fn events(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Body) -> Response {
    let batch: Events = match read_json(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if batch.e.is_empty() || batch.e.len() > MAX_EVENTS {
        return refused(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            format!("a batch holds 1 to {MAX_EVENTS} events"),
        );
    }
    let ws = match site(&state, &batch.k).await {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let private = batch.dnt || opted_out_of(&headers);
    let visitor = match batch.v {
        Some(v) if !private => {
            if !valid_visitor_id(&v) {
                return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "v is not a visitor ID");
            }
            Some(v)
        }
        _ => None,
    };
    let c = &state.capture;
    let n = batch.e.len() as u32;
    if !c.per_site.allow(&batch.k, n) || visitor.as_deref().is_some_and(|v| !c.per_visitor.allow(v, n)) {
        count(&state, false, n.into());
        return refused(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many hits; retry later");
    }
    let agent = tracking::classify_web(request_of(&headers, &method));
    let now = Utc::now();
    // Without consent to tracking, a page's URL is kept without its query (which may hold
    // personal data), and no visitor, landing page or referrer.
    let page = |u: Option<String>| {
        let u = short(u, 2048)?;
        if private {
            url::Url::parse(&u).ok().map(|mut p| {
                p.set_query(None);
                p.set_fragment(None);
                p.to_string()
            })
        } else {
            Some(u)
        }
    };
    let landing = if private { None } else { short(batch.l, 2048) };
    let referrer = if private { None } else { short(batch.r, 2048) };
    let mut hits = Vec::with_capacity(batch.e.len());
    for e in batch.e {
        if e.n.is_empty() || e.n.len() > 64 {
            return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "an event name has 1 to 64 characters");
        }
        let campaign = match e.c {
            Some(id) => match crate::graphql::ids::decode(crate::graphql::ids::NodeType::Campaign, &id.into()) {
                Ok(id) => Some(id),
                Err(_) => return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "c is not a campaign ID"),
            },
            None => None,
        };
        hits.push(Hit::Event {
            visitor: visitor.clone(),
            name: e.n,
            id: short(e.id, 64).filter(|_| visitor.is_some()),
            url: page(e.u),
            landing: landing.clone(),
            referrer: referrer.clone(),
            campaign,
            agent,
            at: now,
        });
    }
    let outcome = c.inbox.append_all(ws, &hits).await;
    count(&state, outcome.is_ok(), hits.len() as u64);
    match outcome {
        Ok(()) => accepted(hits.len(), private),
        Err(e) => append_failed(e),
    }
}

/// `POST /t/identify`.
#[derive(Deserialize)]
struct Identify {
    k: String,
    v: String,
    /// The e-mail address a form was submitted with.
    #[serde(default)]
    email: Option<String>,
    /// A personal link's token (`cl_t` on the landing URL).
    #[serde(default)]
    t: Option<String>,
    /// Mapped form fields.
    #[serde(default)]
    fields: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    u: Option<String>,
    /// The session's landing URL.
    #[serde(default)]
    l: Option<String>,
    #[serde(default)]
    dnt: bool,
}

/// Form fields a form may map; others are ignored.
const FIELDS: &[&str] = &["firstName", "lastName", "jobTitle", "phone", "country"];

async fn identify(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Body) -> Response {
    let id: Identify = match read_json(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ws = match site(&state, &id.k).await {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    if id.dnt || opted_out_of(&headers) {
        // Nothing personal is recorded, and identifying is nothing else.
        return accepted(0, true);
    }
    if !valid_visitor_id(&id.v) {
        return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "v is not a visitor ID");
    }
    let c = &state.capture;
    if !c.per_site.allow(&id.k, 1) || !c.per_visitor.allow(&id.v, 1) {
        count(&state, false, 1);
        return refused(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many hits; retry later");
    }
    // A personal link's token identifies only within its own workspace.
    let lead = match &id.t {
        Some(t) => match c.resolver.token(&state.db, TokenKind::Click, t).await {
            Ok(Some(tok)) if tok.workspace == ws => tok.lead,
            Ok(_) => None,
            Err(e) => return unavailable(e),
        },
        None => None,
    };
    let email = id.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(e) = &email
        && crate::domain::email::Email::parse(e).is_err()
    {
        return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "email is not an e-mail address");
    }
    if email.is_none() && lead.is_none() {
        return refused(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "give an email, or the token of a personal link (t)",
        );
    }
    let fields = id
        .fields
        .into_iter()
        .filter(|(k, v)| FIELDS.contains(&k.as_str()) && v.len() <= 200)
        .collect();
    let hit = Hit::Identify {
        visitor: id.v,
        form: email.is_some(),
        email,
        lead,
        fields,
        url: short(id.u, 2048),
        landing: short(id.l, 2048),
        agent: tracking::classify_web(request_of(&headers, &method)),
        at: Utc::now(),
    };
    let outcome = c.inbox.append(ws, &hit).await;
    count(&state, outcome.is_ok(), 1);
    match outcome {
        Ok(()) => accepted(1, false),
        Err(e) => append_failed(e),
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        SCRIPT,
    )
        .into_response()
}
