//! `GET /export/leads.csv`: the leads of scoring cells (and/or a persona) as RFC 4180 CSV in
//! UTF-8, streamed in pages from one read transaction, so that a list can go to a CRM. The same
//! score conditions as `leads(filter:)` and `scoringMatrix`, so the export of a cell lists
//! exactly the leads the matrix counts there. A cell that begins like a spreadsheet formula is
//! prefixed with `'` (see `domain::spreadsheet`).
use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::{account, funnel_stage, lead};
use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use serde::Deserialize;

use super::{AppState, caller, error_response};
use crate::domain::ids::global_id;
use crate::domain::scoring::{Cell, Grade};
use crate::domain::spreadsheet;
use crate::error::AppError;
use crate::service::scoring::{self, ScoreQuery, Scorer};
use crate::store::lead::{LeadFilter, PersonaMatchFilter};
use crate::store::{self, Scoped};

/// Leads per page (one statement each for leads, accounts and scores).
const PAGE: u64 = 1_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// Cells, comma-separated: `A1` or `A1,A2,B1`.
    cell: Option<String>,
    /// Grades, comma-separated.
    grade: Option<String>,
    /// The scoring model's global ID (default: the default model).
    model: Option<String>,
    /// A persona's global ID: its members only.
    persona: Option<String>,
    #[serde(rename = "minActivityScore")]
    min_activity_score: Option<f64>,
    /// RFC 3339; default now.
    as_of: Option<String>,
}

const HEADER: [&str; 14] = [
    "id",
    "externalId",
    "email",
    "firstName",
    "lastName",
    "jobTitle",
    "account",
    "country",
    "stage",
    "grade",
    "band",
    "cell",
    "profileScore",
    "activityScore",
];

fn bad(message: impl Into<String>) -> Response {
    error_response(StatusCode::BAD_REQUEST, AppError::BadInput(message.into()))
}

fn list<T>(raw: Option<&str>, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<Option<Vec<T>>, String> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    raw.split(',')
        .map(|s| parse(s).ok_or_else(|| format!("{s:?} is not a {what}")))
        .collect::<Result<Vec<T>, String>>()
        .map(Some)
}

fn decode(kind: &str, raw: Option<&str>) -> Result<Option<i64>, String> {
    match raw {
        None => Ok(None),
        Some(id) => crate::domain::ids::parse_global_id(id)
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| Some(n))
            .ok_or_else(|| format!("{id:?} is not a {kind} ID")),
    }
}

/// What the query string asks for: the score condition, the time, the model and the persona.
type Asked = (ScoreQuery, DateTime<Utc>, Option<i64>, Option<i64>);

fn parse(params: &Params) -> Result<Asked, String> {
    let query = ScoreQuery {
        cells: list(params.cell.as_deref(), Cell::parse, "cell (A1 to D4)")?,
        grades: list(params.grade.as_deref(), Grade::parse, "grade (A to D)")?,
        min_activity: params.min_activity_score,
    };
    let as_of = match params.as_of.as_deref().map(crate::domain::input::parse_datetime) {
        None => Utc::now(),
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(format!("asOf {e}")),
    };
    let model = decode("ScoringModel", params.model.as_deref())?;
    let persona = decode("Persona", params.persona.as_deref())?;
    Ok((query, as_of, model, persona))
}

pub async fn leads_csv(State(state): State<AppState>, headers: HeaderMap, Query(params): Query<Params>) -> Response {
    let p = match caller(&state, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return error_response(StatusCode::UNAUTHORIZED, AppError::Unauthenticated),
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e),
    };
    let mut export = match LeadExport::open(&state.db.conn, p.workspace_id, &params).await {
        Ok(export) => export,
        Err(Refused::Bad(message)) => return bad(message),
        Err(Refused::App(e)) => {
            let status = match e {
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return error_response(status, e);
        }
    };
    let stream = async_stream::stream! {
        loop {
            match export.next().await {
                Ok(None) => break,
                Ok(Some((bytes, _))) => yield Ok::<Bytes, std::io::Error>(Bytes::from(bytes)),
                Err(e) => {
                    tracing::error!(error = %e, "lead export failed");
                    yield Err(std::io::Error::other(e.to_string()));
                    break;
                }
            }
        }
        export.close().await;
    };
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"leads.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why an export does not start: the caller's to fix, or ours.
pub enum Refused {
    Bad(String),
    App(AppError),
}

/// One export of leads, over HTTP or by `closedloop export leads`: a read transaction (one
/// snapshot for the whole export) and how far it has got.
pub struct LeadExport {
    txn: DatabaseTransaction,
    ws: i64,
    scorer: Scorer,
    filter: LeadFilter,
    as_of: DateTime<Utc>,
    after: i64,
    first: bool,
    done: bool,
}

impl LeadExport {
    /// The export `params` ask for, in workspace `ws`.
    pub async fn open(db: &DatabaseConnection, ws: i64, params: &Params) -> Result<Self, Refused> {
        let (query, as_of, model, persona) = parse(params).map_err(Refused::Bad)?;
        let internal = |e: DbErr| Refused::App(e.into());
        let txn = db.begin().await.map_err(internal)?;
        let scorer = match scoring::scorer(&txn, ws, model).await.map_err(internal)? {
            Some(s) => s,
            None if model.is_some() => return Err(Refused::App(AppError::not_found("scoring model"))),
            None => return Err(Refused::Bad("the workspace has no scoring model yet".into())),
        };
        let score = scoring::score_filter(&txn, ws, &scorer, as_of, query).await.map_err(internal)?;
        let filter = LeadFilter {
            persona: persona.map(|persona_id| PersonaMatchFilter {
                persona_id,
                min_match: None,
            }),
            scoring: Some(score),
            ..Default::default()
        };
        Ok(Self {
            txn,
            ws,
            scorer,
            filter,
            as_of,
            after: 0,
            first: true,
            done: false,
        })
    }

    /// The CSV of the next page (the header row first) and how many leads it holds; the header
    /// alone when no lead matches; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(Vec<u8>, usize)>, DbErr> {
        if self.done {
            return Ok(None);
        }
        let page = page(&self.txn, self.ws, &self.scorer, &self.filter, self.as_of, self.after, self.first).await?;
        let first = std::mem::replace(&mut self.first, false);
        match page {
            Some((bytes, last, rows)) => {
                self.after = last;
                Ok(Some((bytes, rows)))
            }
            None => {
                self.done = true;
                Ok(first.then(|| (csv_rows(&[], true), 0)))
            }
        }
    }

    /// Ends the read transaction.
    pub async fn close(self) {
        let _ = self.txn.rollback().await;
    }
}

/// The CSV of the next page of leads after `after` (with the header row on the first page), the
/// last lead ID and the number of leads; `None` when no lead is left.
async fn page(
    txn: &DatabaseTransaction,
    ws: i64,
    s: &Scorer,
    filter: &LeadFilter,
    as_of: DateTime<Utc>,
    after: i64,
    first: bool,
) -> Result<Option<(Vec<u8>, i64, usize)>, DbErr> {
    let leads = store::lead::select(ws, filter)
        .filter(lead::Column::Id.gt(after))
        .order_by_asc(lead::Column::Id)
        .limit(PAGE)
        .all(txn)
        .await?;
    let Some(last) = leads.last().map(|l| l.id) else { return Ok(None) };
    let ids: Vec<i64> = leads.iter().map(|l| l.id).collect();
    let scores = scoring::scores_at(txn, ws, s, &ids, as_of).await?;
    let mut account_ids: Vec<i64> = leads.iter().filter_map(|l| l.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let accounts: HashMap<i64, account::Model> = store::by_ids::<account::Entity>(txn, ws, &account_ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let stages: HashMap<i64, String> = funnel_stage::Entity::in_workspace(ws)
        .all(txn)
        .await?
        .into_iter()
        .map(|st| (st.id, st.key))
        .collect();
    let rows: Vec<[String; 14]> = leads
        .iter()
        .map(|l| {
            let score = scores.get(&l.id);
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            [
                global_id("Lead", l.id),
                text(&l.external_id),
                text(&l.email),
                text(&l.first_name),
                text(&l.last_name),
                text(&l.job_title),
                l.account_id
                    .and_then(|a| accounts.get(&a))
                    .map(|a| a.name.clone())
                    .unwrap_or_default(),
                text(&l.country),
                stages.get(&l.stage_id).cloned().unwrap_or_default(),
                score.map(|s| s.grade.as_str().to_owned()).unwrap_or_default(),
                score.map(|s| s.band.to_string()).unwrap_or_default(),
                score.map(|s| s.cell().to_string()).unwrap_or_default(),
                score.map(|s| s.profile.to_string()).unwrap_or_default(),
                score.map(|s| format!("{:.4}", s.activity)).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(Some((csv_rows(&rows, first), last, rows.len())))
}

/// RFC 4180 rows (CRLF line ends, fields quoted when needed), with the header row first when
/// asked. Every cell goes through [`spreadsheet::cell`], so no lead's data runs as a formula.
fn csv_rows(rows: &[[String; 14]], header: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    // Writing into a Vec<u8> cannot fail.
    if header {
        let _ = spreadsheet::write_row(&mut w, HEADER);
    }
    for r in rows {
        let _ = spreadsheet::write_row(&mut w, r);
    }
    w.into_inner().unwrap_or_default()
}
