//! Hand-written SQL for what the query builder cannot express (window functions), written once
//! with `?` placeholders and numbered for PostgreSQL.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value};

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

/// The first `limit` rows of `table` per parent (by `order`), for a DataLoader: one statement for
/// any number of parents, where a plain `LIMIT` per parent would cost one query each.
#[allow(clippy::too_many_arguments)]
pub async fn top_n_per_parent<E: EntityTrait>(
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
    let sql = format!(
        "SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.{parent_col} ORDER BY {order}) AS rn_ \
         FROM {table} t WHERE t.workspace_id = ? AND t.{parent_col} IN ({}) AND {extra_where}) sub \
         WHERE rn_ <= ? ORDER BY {parent_col}, rn_",
        placeholders(parent_ids.len())
    );
    let mut values: Vec<Value> = Vec::with_capacity(parent_ids.len() + 2);
    values.push(ws.into());
    values.extend(parent_ids.iter().map(|&id| Value::from(id)));
    values.push((limit as i64).into());
    E::find()
        .from_raw_sql(statement(db.get_database_backend(), &sql, values))
        .all(db)
        .await
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
