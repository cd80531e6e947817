//! Hand-written SQL for what the query builder cannot express (window functions), written once
//! with `?` placeholders and numbered for PostgreSQL.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// A time as the text SQLite keeps it (sqlx's encoding), which PostgreSQL reads as well: for
/// times that travel inside a JSON parameter.
pub fn time_text(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

pub fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The first `limit` rows of `table` per parent (by `order`), for a DataLoader: one statement
/// for any number of parents. Each parent is its own index range scan with its own LIMIT, joined
/// by UNION ALL on SQLite (a window function over all parents' rows was 3 times slower there),
/// by a LATERAL join over an array of parent ids on PostgreSQL.
#[allow(clippy::too_many_arguments)]
pub async fn top_n_per_parent<E: super::Scoped>(
    db: &impl ConnectionTrait,
    table: &str,
    parent_col: &str,
    order: &str,
    ws: i64,
    parent_ids: &[i64],
    limit: u64,
    extra_where: &str,
) -> Result<Vec<E::Model>, DbErr> {
    if parent_ids.is_empty() {
        return Ok(Vec::new());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // One plan for any number of parents; 50 UNION ALL arms cost PostgreSQL 20 ms to plan.
        let sql = format!(
            "SELECT t.* FROM unnest(?::bigint[]) AS p(parent_id) CROSS JOIN LATERAL \
             (SELECT * FROM {table} WHERE workspace_id = ? AND {parent_col} = p.parent_id AND {extra_where} ORDER BY {order} LIMIT ?) AS t"
        );
        let values: Vec<Value> = vec![parent_ids.to_vec().into(), ws.into(), (limit as i64).into()];
        return E::models(&db.query_all_raw(statement(DbBackend::Postgres, &sql, values)).await?);
    }
    let arm = format!(
        "SELECT * FROM (SELECT * FROM {table} WHERE workspace_id = ? AND {parent_col} = ? AND {extra_where} ORDER BY {order} LIMIT ?) AS p"
    );
    let mut rows = Vec::new();
    // SQLite allows at most 500 terms in a compound SELECT.
    for chunk in parent_ids.chunks(400) {
        let sql = vec![arm.as_str(); chunk.len()].join(" UNION ALL ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for &id in chunk {
            values.push(ws.into());
            values.push(id.into());
            values.push((limit as i64).into());
        }
        rows.extend(E::models(
            &db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await?,
        )?);
    }
    Ok(rows)
}

/// Lock purposes: one key space each, in the high bits of the advisory lock key.
/// Every write of a workspace that may record changes: taken first, at the start of each write
/// transaction of the workspace ([`crate::db::Db::begin_write`]) and by every lead writer, so
/// that the change counter's row, locked when a transaction records its changes, is only ever
/// waited for by holders of this lock (no cycle with row locks taken in between).
pub const LOCK_CHANGES: i64 = 0x43_48_4e_47;
pub const LOCK_SCORING: i64 = 0x53_43_4f_52;
pub const LOCK_LEDGER: i64 = 0x41_54_54_52;

/// Serializes one kind of write in one workspace until the transaction ends: a PostgreSQL
/// transaction-scoped advisory lock keyed by purpose and workspace. SQLite has one writer anyway.
/// Where a transaction takes several, it takes them in the order changes, scoring, lead rows
/// ([`super::lead::lock`]), ledger; every write of leads takes the changes and scoring ones
/// before it reads a lead ([`super::lead::lock_lead_writes`]).
pub async fn lock_workspace(db: &impl ConnectionTrait, purpose: i64, ws: i64) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let key = (purpose << 32) | (ws & 0xffff_ffff);
        db.execute_raw(statement(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(?)", vec![key.into()]))
            .await?;
    }
    Ok(())
}

/// The IDs an `INSERT … RETURNING id` of `expected` rows gave, in insertion order: RETURNING
/// promises no order, but the IDs grow in insertion order. `what` names the rows for the error
/// when the count differs.
pub async fn inserted_ids(db: &impl ConnectionTrait, stmt: Statement, expected: usize, what: &str) -> Result<Vec<i64>, DbErr> {
    let mut ids: Vec<i64> = Vec::with_capacity(expected);
    for row in db.query_all_raw(stmt).await? {
        ids.push(row.try_get_by_index(0)?);
    }
    if ids.len() != expected {
        return Err(DbErr::Custom(format!("inserted {} {what} of {expected}", ids.len())));
    }
    ids.sort_unstable();
    Ok(ids)
}

/// `?, ?, ?` for `n` values.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        let s = statement(DbBackend::Postgres, "a = ? AND b IN (?, ?)", vec![1.into(), 2.into(), 3.into()]);
        assert_eq!(s.sql, "a = $1 AND b IN ($2, $3)");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
