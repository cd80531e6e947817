//! `closedloop export leads`: the CSV of `GET /export/leads.csv`, written to a file or standard
//! output; `closedloop export DIR`: every table of a workspace as Parquet or CSV files (the
//! files of `GET /export/tables/{table}.parquet`). Progress goes to stderr (a bar on a terminal,
//! plain lines otherwise).
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::Query;
use axum::http::Uri;

use crate::BoxError;
use crate::cli::progress::Progress;
use crate::db::Db;
use crate::export::{Format, Snapshot, TableExport};
use crate::http::export::{LeadExport, Params, Refused};
use crate::store;
use crate::store::export::Table;

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

/// One file `closedloop export DIR` wrote.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes the tables named in `names` (all when empty) of workspace `workspace` into `dir`, one
/// `TABLE.parquet` (or `.csv`) each, all read from one snapshot. A file appears under its name
/// only once it is whole (it is written as `TABLE.parquet.part` first).
pub async fn tables(
    db: &Db,
    workspace: &str,
    dir: &Path,
    format: Format,
    names: &[String],
    since: Option<&str>,
    progress: &Progress,
) -> Result<(Vec<Written>, String), BoxError> {
    let chosen = crate::export::tables_named(names)?;
    let ws = store::workspace::by_name(&db.conn, workspace)
        .await?
        .ok_or_else(|| format!("no workspace named {workspace:?}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let snapshot = Snapshot::begin(&db.conn).await?;
    let (range, head) = match crate::export::range(&snapshot, ws.id, since).await {
        Ok(r) => r,
        Err(e) => {
            snapshot.end().await;
            return Err(e.into());
        }
    };
    let cursor = crate::domain::ids::change_cursor(head);
    let mut written = Vec::with_capacity(chosen.len());
    let mut outcome = Ok(());
    for table in chosen {
        match write_table(&snapshot, ws.id, table, format, range, dir, progress).await {
            Ok(w) => written.push(w),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    snapshot.end().await;
    progress.finish();
    outcome?;
    // What the next incremental export continues from, beside the files.
    let manifest = serde_json::json!({
        "workspace": ws.name,
        "format": format.extension(),
        "since": since,
        "cursor": cursor,
        "tables": written.iter().map(|w| serde_json::json!({
            "file": w.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "rows": w.rows,
            "bytes": w.bytes,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("export.json"), serde_json::to_vec_pretty(&manifest)?)?;
    Ok((written, cursor))
}

async fn write_table(
    snapshot: &Snapshot,
    ws: i64,
    table: &'static Table,
    format: Format,
    range: Option<crate::store::export::Range>,
    dir: &Path,
    progress: &Progress,
) -> Result<Written, BoxError> {
    let path = dir.join(format!("{}.{}", table.name, format.extension()));
    let part = dir.join(format!("{}.{}.part", table.name, format.extension()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&part).map_err(|e| format!("cannot create {}: {e}", part.display()))?);
    let mut export = TableExport::new(table, ws, format, range)?;
    progress.start(table.name, None);
    let (mut rows, mut bytes) = (0_u64, 0_u64);
    let copied: Result<(), BoxError> = async {
        while let Some((chunk, n)) = export.next(snapshot).await? {
            file.write_all(&chunk)?;
            rows += n as u64;
            bytes += chunk.len() as u64;
            progress.inc(n as u64);
        }
        file.flush()?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&part);
        return Err(format!("{}: {e}", table.name).into());
    }
    std::fs::rename(&part, &path)?;
    progress.done(rows);
    Ok(Written { path, rows, bytes })
}
