//! `GET /export/tables/{table}.parquet` and `GET /export/tables/{table}.csv`: one table of the
//! caller's workspace (docs/export.md), streamed as it is read from one snapshot. Any role may
//! download (ANALYST included); the workspace is the API key's. Under `/export/tables/`, so that
//! the full `leads` table does not collide with `/export/leads.csv`, the leads of scoring cells.
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, caller, error_response};
use crate::error::AppError;
use crate::export::{Format, SinceError, Snapshot, TableExport};
use crate::store::export::Table;

/// The query string: `since`, a change cursor, for an incremental export.
#[derive(serde::Deserialize)]
pub struct Params {
    since: Option<String>,
}

/// The response header that carries the change cursor the file ends at.
pub const CHANGE_CURSOR: &str = "x-change-cursor";

pub async fn table(State(state): State<AppState>, headers: HeaderMap, Path(file): Path<String>, Query(params): Query<Params>) -> Response {
    let p = match caller(&state, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return error_response(StatusCode::UNAUTHORIZED, AppError::Unauthenticated),
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e),
    };
    let asked = file
        .rsplit_once('.')
        .and_then(|(name, ext)| Some((Table::named(name)?, Format::from_extension(ext)?)));
    let Some((table, format)) = asked else {
        return error_response(
            StatusCode::NOT_FOUND,
            AppError::NotFound(format!("no exported table {file:?}: see docs/export.md")),
        );
    };
    let snapshot = match Snapshot::begin(&state.db.conn).await {
        Ok(s) => s,
        Err(e) => return internal(e.to_string()),
    };
    let (range, head) = match crate::export::range(&snapshot, p.workspace_id, params.since.as_deref()).await {
        Ok(r) => r,
        Err(e) => {
            snapshot.end().await;
            return match e {
                SinceError::Invalid(m) => error_response(StatusCode::BAD_REQUEST, AppError::BadInput(m)),
                SinceError::Expired { .. } => error_response(StatusCode::GONE, AppError::CursorExpired(e.to_string())),
                SinceError::Db(e) => internal(e.to_string()),
            };
        }
    };
    let mut export = match TableExport::new(table, p.workspace_id, format, range) {
        Ok(e) => e,
        Err(e) => {
            snapshot.end().await;
            return internal(e.to_string());
        }
    };
    let stream = async_stream::stream! {
        loop {
            match export.next(&snapshot).await {
                Ok(None) => break,
                Ok(Some((bytes, _))) if bytes.is_empty() => {}
                Ok(Some((bytes, _))) => yield Ok::<Bytes, std::io::Error>(Bytes::from(bytes)),
                Err(e) => {
                    // The status is sent: the client sees the body cut off, not a whole file.
                    tracing::error!(error = %e, table = table.name, "table export failed");
                    yield Err(std::io::Error::other(e.to_string()));
                    break;
                }
            }
        }
        snapshot.end().await;
    };
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.{}\"", table.name, format.extension())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&crate::domain::ids::change_cursor(head)) {
        h.insert(CHANGE_CURSOR, v);
    }
    response
}

fn internal(message: String) -> Response {
    tracing::error!(error = %message, "table export failed to start");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(message))
}
