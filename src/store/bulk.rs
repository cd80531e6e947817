//! Bulk writes for imports and synthetic data: multi-row INSERTs sent in as few statements as the
//! bound-value limit allows, and look-ups of many rows by external ID in a few statements.
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::task::Poll;

use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, QueryFilter, Statement, Value};

use super::Scoped;
use super::raw::{placeholders, statement};

/// SQLite binds at most 32,766 values per statement (PostgreSQL 65,535).
const MAX_VALUES: usize = 32_766;
/// Larger statements stop paying off: parsing them costs more than the round trips they save.
const MAX_ROWS: usize = 2_000;
/// Keys per `IN (...)` look-up.
const LOOKUP_CHUNK: usize = 5_000;

/// The shape of multi-row INSERTs into one table: the columns each row gives, and (column, value)
/// pairs that are the same for every row (the workspace, a timestamp).
///
/// On PostgreSQL the shared values are bound once per statement and every row refers to them
/// (`($1, $3, $4), ($1, $5, $6)`). On SQLite every value is an anonymous `?` and the shared ones
/// are bound again for each row: SQLite looks numbered parameters (`?NNN`) up by walking a list,
/// which made a statement of 30,000 of them quadratic (an import took 7 times longer).
struct Shape {
    table: &'static str,
    shared: Vec<(&'static str, Value)>,
    columns: &'static [&'static str],
    /// `RETURNING id, <column>`.
    returning: Option<&'static str>,
}

impl Shape {
    fn rows_per_statement(&self, backend: DbBackend) -> usize {
        let (fixed, per_row) = match backend {
            DbBackend::Postgres => (self.shared.len(), self.columns.len()),
            _ => (0, self.shared.len() + self.columns.len()),
        };
        ((MAX_VALUES - fixed) / per_row).clamp(1, MAX_ROWS)
    }

    fn sql(&self, backend: DbBackend, rows: usize) -> String {
        let cols: Vec<String> = self
            .shared
            .iter()
            .map(|(c, _)| *c)
            .chain(self.columns.iter().copied())
            .map(quote)
            .collect();
        let mut sql = String::with_capacity(64 + rows * cols.len() * 8);
        let _ = write!(sql, "INSERT INTO {} ({}) VALUES ", quote(self.table), cols.join(", "));
        let shared = self.shared.len();
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            if backend == DbBackend::Postgres {
                let own = (0..self.columns.len()).map(|c| shared + r * self.columns.len() + c);
                for (k, n) in (0..shared).chain(own).enumerate() {
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(sql, "${}", n + 1);
                }
            } else {
                sql.push_str(&placeholders(cols.len()));
            }
            sql.push(')');
        }
        if let Some(key) = self.returning {
            let _ = write!(sql, " RETURNING \"id\", {}", quote(key));
        }
        sql
    }

    /// A statement for `values` (whole rows), reusing `full` when the rows fill a statement.
    fn statement(&self, backend: DbBackend, full: &mut Option<String>, values: Vec<Value>) -> Statement {
        let width = self.columns.len();
        let rows = values.len() / width;
        let sql = if rows == self.rows_per_statement(backend) {
            full.get_or_insert_with(|| self.sql(backend, rows)).clone()
        } else {
            self.sql(backend, rows)
        };
        let shared = self.shared.iter().map(|(_, v)| v.clone());
        if backend == DbBackend::Postgres {
            return Statement::from_sql_and_values(backend, sql, shared.chain(values));
        }
        let mut all = Vec::with_capacity(rows * (self.shared.len() + width));
        let mut values = values.into_iter();
        for _ in 0..rows {
            all.extend(shared.clone());
            all.extend(values.by_ref().take(width));
        }
        Statement::from_sql_and_values(backend, sql, all)
    }
}

/// Rows for one table, buffered and written as multi-row INSERTs. Rows keep their order, so ids
/// ascend in the order rows were pushed.
pub struct Inserter {
    shape: Shape,
    values: Vec<Value>,
    full_sql: Option<String>,
    written: u64,
    returned: Vec<(i64, String)>,
}

impl Inserter {
    pub fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            shape: Shape {
                table,
                shared: Vec::new(),
                columns,
                returning: None,
            },
            values: Vec::new(),
            full_sql: None,
            written: 0,
            returned: Vec::new(),
        }
    }

    /// A column with the same value in every row (not part of the pushed rows).
    pub fn shared(mut self, column: &'static str, value: impl Into<Value>) -> Self {
        self.shape.shared.push((column, value.into()));
        self
    }

    /// Also returns (id, `column`) of each inserted row; `column` must be a non-null text key.
    pub fn returning(mut self, column: &'static str) -> Self {
        self.shape.returning = Some(column);
        self
    }

    /// Adds one row (values in the order of the columns); writes a statement when one is full.
    pub async fn push<const N: usize>(&mut self, db: &impl ConnectionTrait, row: [Value; N]) -> Result<(), DbErr> {
        debug_assert_eq!(N, self.shape.columns.len(), "a row of {} has the wrong width", self.shape.table);
        self.values.extend(row);
        if self.values.len() >= self.shape.rows_per_statement(db.get_database_backend()) * N {
            self.flush(db).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        if self.values.is_empty() {
            return Ok(());
        }
        let rows = self.values.len() / self.shape.columns.len();
        let stmt = self
            .shape
            .statement(db.get_database_backend(), &mut self.full_sql, std::mem::take(&mut self.values));
        if self.shape.returning.is_some() {
            for row in db.query_all_raw(stmt).await? {
                self.returned
                    .push((row.try_get_by_index::<i64>(0)?, row.try_get_by_index::<String>(1)?));
            }
        } else {
            db.execute_raw(stmt).await?;
        }
        self.written += rows as u64;
        Ok(())
    }

    /// Writes what is left; returns the number of rows written and what RETURNING gave.
    pub async fn finish(mut self, db: &impl ConnectionTrait) -> Result<(u64, Vec<(i64, String)>), DbErr> {
        self.flush(db).await?;
        Ok((self.written, self.returned))
    }
}

/// Writes `rows` into `table` as multi-row INSERTs and returns how many were written; `shared`
/// (column, value) pairs are the same for every row. The rows of the next statement are built
/// while the database runs the previous one, so `rows` must not touch the database.
pub async fn insert_all<const N: usize>(
    db: &impl ConnectionTrait,
    table: &'static str,
    shared: Vec<(&'static str, Value)>,
    columns: &'static [&'static str],
    mut rows: impl Iterator<Item = [Value; N]>,
) -> Result<u64, DbErr> {
    debug_assert_eq!(N, columns.len(), "a row of {table} has the wrong width");
    let shape = Shape {
        table,
        shared,
        columns,
        returning: None,
    };
    let backend = db.get_database_backend();
    let per_statement = shape.rows_per_statement(backend);
    let mut full_sql = None;
    let mut take = move || -> Vec<Value> {
        let mut values = Vec::with_capacity(per_statement * N);
        for row in rows.by_ref().take(per_statement) {
            values.extend(row);
        }
        values
    };
    let mut written = 0;
    let mut next = take();
    while !next.is_empty() {
        let n = next.len() / N;
        let mut exec = std::pin::pin!(db.execute_raw(shape.statement(backend, &mut full_sql, next)));
        // One poll hands the statement to the database; then build the next one meanwhile.
        let early = std::future::poll_fn(|cx| Poll::Ready(exec.as_mut().poll(cx))).await;
        next = take();
        match early {
            Poll::Ready(done) => done?,
            Poll::Pending => exec.await?,
        };
        written += n as u64;
    }
    Ok(written)
}

fn quote(ident: &str) -> String {
    format!("\"{ident}\"")
}

/// The number of rows of `table` in workspace `ws`.
async fn count_in(db: &impl ConnectionTrait, table: &str, ws: i64) -> Result<u64, DbErr> {
    let sql = format!("SELECT COUNT(*) FROM {} WHERE workspace_id = ?", quote(table));
    let row = db
        .query_one_raw(statement(db.get_database_backend(), &sql, vec![ws.into()]))
        .await?;
    Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0) as u64)
}

/// Rows of `E` in workspace `ws` whose `column` is one of `keys`, in a few statements. When the
/// workspace holds not many more rows than there are keys, all its rows with a non-null `column`
/// are read instead, so the result may hold rows for other keys too. `keys` is called only when
/// the workspace has rows of `E` at all.
pub async fn by_keys<E: Scoped>(
    db: &impl ConnectionTrait,
    ws: i64,
    column: E::Column,
    keys: impl FnOnce() -> Vec<String>,
) -> Result<Vec<E::Model>, DbErr> {
    let stored = count_in(db, E::default().table_name(), ws).await?;
    if stored == 0 {
        return Ok(Vec::new());
    }
    let keys = keys();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if stored <= 3 * keys.len() as u64 {
        return E::in_workspace(ws).filter(column.is_not_null()).all(db).await;
    }
    let mut out = Vec::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        out.extend(E::in_workspace(ws).filter(column.is_in(chunk.iter().cloned())).all(db).await?);
    }
    Ok(out)
}

/// The ids of the rows of `table` in workspace `ws` whose `column` (a unique text key such as
/// `external_id`) is one of `keys`, by key.
pub async fn ids_by_key(
    db: &impl ConnectionTrait,
    table: &str,
    column: &str,
    ws: i64,
    keys: &[&str],
) -> Result<HashMap<String, i64>, DbErr> {
    let mut out = HashMap::new();
    let backend = db.get_database_backend();
    let (table, column) = (quote(table), quote(column));
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT id, {column} FROM {table} WHERE workspace_id = ? AND {column} IN ({})",
            placeholders(chunk.len())
        );
        let values = std::iter::once(Value::from(ws)).chain(chunk.iter().map(|k| Value::from(*k)));
        for row in db.query_all_raw(statement(backend, &sql, values.collect())).await? {
            out.insert(row.try_get_by_index::<String>(1)?, row.try_get_by_index::<i64>(0)?);
        }
    }
    Ok(out)
}

/// Which of `keys` are stored in `column` (a unique text key such as `external_id`) of `table` in
/// workspace `ws`. Each chunk of keys is counted first, so that chunks stored completely (a re-run)
/// or not at all are not read row by row; `keys` is called only when the workspace has rows in
/// `table`.
pub async fn stored_keys<'k>(
    db: &impl ConnectionTrait,
    table: &str,
    column: &str,
    ws: i64,
    keys: impl FnOnce() -> Vec<&'k str>,
) -> Result<HashSet<String>, DbErr> {
    let mut out = HashSet::new();
    if count_in(db, table, ws).await? == 0 {
        return Ok(out);
    }
    let keys = keys();
    let backend = db.get_database_backend();
    let (table, column) = (quote(table), quote(column));
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let values = || {
            std::iter::once(Value::from(ws))
                .chain(chunk.iter().map(|k| Value::from(*k)))
                .collect::<Vec<_>>()
        };
        let filter = format!(
            "FROM {table} WHERE workspace_id = ? AND {column} IN ({})",
            placeholders(chunk.len())
        );
        let count = db
            .query_one_raw(statement(backend, &format!("SELECT COUNT(*) {filter}"), values()))
            .await?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        match count {
            0 => {}
            // Each key is stored at most once, so all of the chunk's (distinct) keys are.
            n if n as usize == chunk.len() => out.extend(chunk.iter().map(|k| (*k).to_owned())),
            _ => {
                let rows = db
                    .query_all_raw(statement(backend, &format!("SELECT {column} {filter}"), values()))
                    .await?;
                for row in rows {
                    out.insert(row.try_get_by_index::<String>(0)?);
                }
            }
        }
    }
    Ok(out)
}

/// Sets `campaigns.touchpoint_count` of the given campaigns to the number of their touchpoints,
/// in one statement per chunk; rows whose count is right already are left alone.
pub async fn recount_campaign_touchpoints(db: &impl ConnectionTrait, ws: i64, campaign_ids: &[i64]) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut changed = 0;
    for chunk in campaign_ids.chunks(LOOKUP_CHUNK) {
        let count = "(SELECT COUNT(*) FROM touchpoints t WHERE t.workspace_id = campaigns.workspace_id AND t.campaign_id = campaigns.id)";
        let sql = format!(
            "UPDATE campaigns SET touchpoint_count = {count} WHERE workspace_id = ? AND id IN ({}) AND touchpoint_count <> {count}",
            placeholders(chunk.len())
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() + 1);
        values.push(ws.into());
        values.extend(chunk.iter().map(|id| Value::from(*id)));
        changed += db.execute_raw(statement(backend, &sql, values)).await?.rows_affected();
    }
    Ok(changed)
}

/// Ids of the leads of workspace `ws` that have a stage-history row into `stage_id`.
pub async fn leads_ever_in_stage(db: &impl ConnectionTrait, ws: i64, stage_id: i64) -> Result<HashSet<i64>, DbErr> {
    let sql = "SELECT DISTINCT lead_id FROM lead_stage_history WHERE workspace_id = ? AND to_stage_id = ?";
    let rows = db
        .query_all_raw(statement(db.get_database_backend(), sql, vec![ws.into(), stage_id.into()]))
        .await?;
    rows.into_iter().map(|r| r.try_get_by_index::<i64>(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_multi_row_inserts() {
        let shape = Shape {
            table: "t",
            shared: vec![("ws", 1_i64.into())],
            columns: &["a", "values"],
            returning: None,
        };
        assert_eq!(
            shape.sql(DbBackend::Sqlite, 2),
            "INSERT INTO \"t\" (\"ws\", \"a\", \"values\") VALUES (?, ?, ?), (?, ?, ?)"
        );
        assert_eq!(
            shape.sql(DbBackend::Postgres, 2),
            "INSERT INTO \"t\" (\"ws\", \"a\", \"values\") VALUES ($1, $2, $3), ($1, $4, $5)"
        );
        // SQLite binds the shared value again for each row; PostgreSQL once.
        let mut full = None;
        let values = vec![2_i64.into(), "x".into(), 3_i64.into(), "y".into()];
        assert_eq!(
            shape
                .statement(DbBackend::Sqlite, &mut full, values.clone())
                .values
                .unwrap()
                .0
                .len(),
            6
        );
        assert_eq!(shape.statement(DbBackend::Postgres, &mut None, values).values.unwrap().0.len(), 5);
        let shape = Shape {
            shared: Vec::new(),
            returning: Some("k"),
            ..shape
        };
        assert_eq!(
            shape.sql(DbBackend::Postgres, 2),
            "INSERT INTO \"t\" (\"a\", \"values\") VALUES ($1, $2), ($3, $4) RETURNING \"id\", \"k\""
        );
    }
}
