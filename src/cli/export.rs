//! `closedloop export leads`: the CSV of `GET /export/leads.csv`, written to a file or standard
//! output, with its progress on stderr (a bar on a terminal, plain lines otherwise).
use std::io::Write;
use std::path::Path;

use axum::extract::Query;
use axum::http::Uri;

use crate::BoxError;
use crate::cli::progress::Progress;
use crate::db::Db;
use crate::http::export::{LeadExport, Params, Refused};
use crate::store;

/// Exports the leads `query` (the HTTP export's query string, e.g. `cell=A1,A2`) asks for, from
/// workspace `workspace`, to `out` or standard output: how many.
pub async fn leads(db: &Db, workspace: &str, query: &str, out: Option<&Path>, progress: &Progress) -> Result<u64, BoxError> {
    let ws = store::workspace::by_name(&db.conn, workspace)
        .await?
        .ok_or_else(|| format!("no workspace named {workspace:?}"))?;
    let uri: Uri = format!("/?{}", query.trim_start_matches('?')).parse()?;
    let Query(params) = Query::<Params>::try_from_uri(&uri).map_err(|e| format!("--query: {}", e.body_text()))?;
    let mut export = LeadExport::open(&db.conn, ws.id, &params).await.map_err(|r| match r {
        Refused::Bad(message) => BoxError::from(message),
        Refused::App(e) => e.into(),
    })?;
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    progress.start("leads", None);
    let mut rows = 0_u64;
    let written = loop {
        match export.next().await {
            Ok(Some((bytes, n))) => {
                if let Err(e) = sink.write_all(&bytes) {
                    break Err(e.into());
                }
                rows += n as u64;
                progress.inc(n as u64);
            }
            Ok(None) => break sink.flush().map_err(BoxError::from),
            Err(e) => break Err(e.into()),
        }
    };
    export.close().await;
    progress.done(rows);
    progress.finish();
    written.map(|()| rows)
}
