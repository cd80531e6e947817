//! The bulk export of a workspace's tables (docs/export.md): each table of
//! [`crate::store::export::TABLES`] as one Parquet or CSV file, read in keyset pages from one
//! read transaction (one snapshot for every file of an export) and encoded page by page, so
//! that neither the server nor the CLI holds a whole file.
//! `GET /export/tables/{table}.{parquet,csv}` sends the bytes as they come; `closedloop export
//! DIR` writes them to files.
mod csv;
mod parquet;

use sea_orm::{AccessMode, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, TransactionTrait};

use crate::store::export::{self as tables, Page, Table};

/// Rows read per statement.
const PAGE_ROWS: u64 = 16_384;

/// Rows per Parquet row group (four pages): what a reader skips or reads in parallel.
const ROW_GROUP_ROWS: usize = 65_536;

/// The file formats of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    /// The format of a file name's extension (`parquet`, `csv`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }

    /// The media type of a file of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Csv => "text/csv; charset=utf-8; header=present",
        }
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A bug of ours: an encoder used after its end, or one that panicked.
    #[error("{0}")]
    Broken(&'static str),
    #[error("{table}.{column}: {value} does not fit DECIMAL(18,{scale})")]
    TooLarge {
        table: &'static str,
        column: &'static str,
        value: i64,
        scale: u32,
    },
}

/// One read transaction that every file of an export is read in: REPEATABLE READ and READ ONLY
/// on PostgreSQL; on SQLite a deferred transaction, whose snapshot is taken at its first read.
pub struct Snapshot {
    txn: DatabaseTransaction,
}

impl Snapshot {
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let txn = match db.get_database_backend() {
            DbBackend::Postgres => {
                db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                    .await?
            }
            _ => db.begin().await?,
        };
        Ok(Self { txn })
    }

    /// Where the change feed of `ws` stands in this snapshot: the export holds every change up to
    /// it, and an incremental export continues after it (docs/export.md).
    pub async fn change_head(&self, ws: i64) -> Result<crate::events::changes::Head, DbErr> {
        crate::events::changes::head(&self.txn, ws).await
    }

    /// Ends the transaction (it wrote nothing).
    pub async fn end(self) {
        let _ = self.txn.rollback().await;
    }
}

/// One table's file being written: where the reading has got, and the encoder.
pub struct TableExport {
    table: &'static Table,
    ws: i64,
    after: i64,
    /// Incremental: only the rows that changes in this range of the feed touched.
    since: Option<tables::Range>,
    /// `None` only while a page is being encoded on a blocking thread.
    encoder: Option<Encoder>,
    finished: bool,
}

enum Encoder {
    /// Boxed: the Arrow writer is some 400 bytes, one per export.
    Parquet(Box<parquet::Encoder>),
    Csv(csv::Encoder),
}

impl Encoder {
    /// The bytes of a page, or (`None`) the file's end.
    fn encode(&mut self, page: Option<&Page>) -> Result<Vec<u8>, ExportError> {
        match (self, page) {
            (Encoder::Parquet(e), Some(page)) => e.page(page),
            (Encoder::Parquet(e), None) => e.finish(),
            (Encoder::Csv(e), Some(page)) => e.page(page),
            (Encoder::Csv(e), None) => Ok(e.finish()),
        }
    }
}

impl TableExport {
    /// The file of `table` in workspace `ws`, in `format`; with `since`, only the rows changes in
    /// that range of the feed touched (a table the feed does not follow comes whole).
    pub fn new(table: &'static Table, ws: i64, format: Format, since: Option<tables::Range>) -> Result<Self, ExportError> {
        let encoder = match format {
            Format::Parquet => Encoder::Parquet(Box::new(parquet::Encoder::new(table)?)),
            Format::Csv => Encoder::Csv(csv::Encoder::new(table)),
        };
        Ok(Self {
            table,
            ws,
            after: 0,
            since,
            encoder: Some(encoder),
            finished: false,
        })
    }

    /// The file's next bytes (possibly none yet: Parquet sends a row group at a time) and the
    /// rows read for them; `None` once the whole file has been given.
    pub async fn next(&mut self, snapshot: &Snapshot) -> Result<Option<(Vec<u8>, usize)>, ExportError> {
        if self.finished {
            return Ok(None);
        }
        let page = tables::page(&snapshot.txn, self.table, self.ws, self.after, PAGE_ROWS, self.since).await?;
        let rows = page.as_ref().map_or(0, |p| p.rows);
        match &page {
            Some(p) => self.after = p.last_id,
            None => self.finished = true,
        }
        // Encoding a row group takes tens of milliseconds: not on a thread that serves requests.
        let mut encoder = self.encoder.take().ok_or_else(lost)?;
        let (encoder, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = encoder.encode(page.as_ref());
            (encoder, bytes)
        })
        .await
        .map_err(|_| lost())?;
        self.encoder = Some(encoder);
        Ok(Some((bytes?, rows)))
    }
}

/// Why an incremental export cannot start from the cursor it was given.
#[derive(Debug, thiserror::Error)]
pub enum SinceError {
    #[error("{0}")]
    Invalid(String),
    /// Changes after the cursor are past the retention: export in full, then continue from the
    /// new export's cursor.
    #[error("the changes after this cursor are past the retention and deleted: export in full (without since)")]
    Expired { oldest: i64 },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The range of the change feed an export covers in `snapshot`: with `since` (a change cursor:
/// a change's, a page's `endCursor`, or an earlier export's), the changes after it up to the
/// feed's head in the snapshot; without, none (a full export). Also the head, the cursor the
/// export ends at.
pub async fn range(snapshot: &Snapshot, ws: i64, since: Option<&str>) -> Result<(Option<tables::Range>, i64), SinceError> {
    let head = snapshot.change_head(ws).await?;
    let Some(raw) = since else {
        return Ok((None, head.seq));
    };
    let from =
        crate::domain::ids::parse_change_cursor(raw).ok_or_else(|| SinceError::Invalid(format!("{raw:?} is not a change cursor")))?;
    if from > head.seq {
        return Err(SinceError::Invalid(
            "the cursor is ahead of this workspace's changes; it belongs elsewhere".into(),
        ));
    }
    if from < head.pruned {
        return Err(SinceError::Expired { oldest: head.pruned });
    }
    Ok((Some((from, head.seq)), head.seq))
}

/// An encoder that did not come back from its thread (it panicked).
fn lost() -> ExportError {
    ExportError::Broken("the encoder failed")
}

/// The exported tables named in `list` (comma-separated; all when empty), in export order, or
/// the first name that is not one.
pub fn tables_named(list: &[String]) -> Result<Vec<&'static Table>, String> {
    if list.is_empty() {
        return Ok(tables::TABLES.iter().collect());
    }
    let mut chosen = Vec::new();
    for name in list {
        let t = Table::named(name.trim()).ok_or_else(|| {
            let all: Vec<&str> = tables::TABLES.iter().map(|t| t.name).collect();
            format!("{name:?} is not an exported table ({})", all.join(", "))
        })?;
        if !chosen.iter().any(|c: &&Table| c.name == t.name) {
            chosen.push(t);
        }
    }
    chosen.sort_by_key(|t| tables::TABLES.iter().position(|x| x.name == t.name));
    Ok(chosen)
}

/// Cents (or millionths, `scale` 6) as decimal text: `123450` is "1234.50", `-5` is "-0.05".
fn decimal_text(value: i64, scale: u32) -> String {
    rust_decimal::Decimal::new(value, scale).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(decimal_text(123_450, 2), "1234.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(0, 2), "0.00");
        assert_eq!(decimal_text(333_333, 6), "0.333333");
        assert_eq!(decimal_text(i64::MAX, 2), "92233720368547758.07");
    }

    /// docs/export.md lists every table with each of its columns, as the descriptions say.
    #[test]
    fn the_docs_list_every_column() {
        use crate::store::export::Kind;
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/export.md")).unwrap();
        let mut expected = String::new();
        for t in tables::TABLES {
            expected.push_str(&format!(
                "### `{}`\n\n| column | type | null | meaning |\n|---|---|---|---|\n",
                t.name
            ));
            for c in t.columns {
                let ty = match c.kind {
                    Kind::Id(_) | Kind::Text => "VARCHAR",
                    Kind::Json => "VARCHAR (JSON)",
                    Kind::Int => "BIGINT",
                    Kind::Float => "DOUBLE",
                    Kind::Bool => "BOOLEAN",
                    Kind::Cents => "DECIMAL(18,2)",
                    Kind::Micros => "DECIMAL(18,6)",
                    Kind::Time => "TIMESTAMP WITH TIME ZONE",
                    Kind::Date => "DATE",
                };
                let null = if c.personal {
                    "erased"
                } else if c.nullable {
                    "yes"
                } else {
                    ""
                };
                expected.push_str(&format!("| `{}` | {ty} | {null} | {} |\n", c.name, c.doc));
            }
            expected.push('\n');
        }
        let missing: Vec<&str> = expected.split("\n\n").filter(|part| !docs.contains(part)).collect();
        assert!(missing.is_empty(), "docs/export.md should have, as written here:\n\n{expected}");
    }

    #[test]
    fn tables_are_chosen_by_name_in_export_order() {
        let names = |l: &[&str]| -> Result<Vec<&str>, String> {
            tables_named(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|t| t.iter().map(|t| t.name).collect())
        };
        assert_eq!(
            names(&["touchpoints", "accounts", "accounts"]).unwrap(),
            ["accounts", "touchpoints"]
        );
        assert_eq!(names(&[]).unwrap().len(), tables::TABLES.len());
        assert!(names(&["users"]).unwrap_err().contains("\"users\" is not an exported table"));
    }
}
