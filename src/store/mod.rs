//! Database queries. Every function takes the workspace it works in; none opens a transaction.
pub mod account;
pub mod attribution;
pub mod bulk;
pub mod campaign;
pub mod decode;
pub mod export;
pub mod handoff;
pub mod lead;
pub mod opportunity;
pub mod page;
pub mod raw;
pub mod scoring;
pub mod touchpoint;
pub mod tracking;
pub mod workspace;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryResult, QuerySelect,
    QueryTrait, Select,
};

/// A table whose rows belong to a workspace.
pub trait Scoped: EntityTrait {
    fn workspace_col() -> Self::Column;
    fn id_col() -> Self::Column;
    fn id_of(model: &Self::Model) -> i64;

    /// Every query of this table starts here.
    fn in_workspace(ws: i64) -> Select<Self> {
        Self::find().filter(Self::workspace_col().eq(ws))
    }

    /// The models of rows of this table (all its columns, by name, in any order). The tables
    /// that the API reads most decode by position ([`decode`]); the others through sea-orm.
    fn models(rows: &[QueryResult]) -> Result<Vec<Self::Model>, DbErr> {
        rows.iter().map(|row| Self::Model::from_query_result(row, "")).collect()
    }
}

/// The distinct values of the ID column `column` in the rows of `select`.
pub async fn id_set<E: EntityTrait>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    column: E::Column,
) -> Result<std::collections::HashSet<i64>, DbErr> {
    Ok(select
        .select_only()
        .column(column)
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The rows of `select` (which selects all of `E`'s columns), as models.
pub async fn all<E: Scoped>(db: &impl ConnectionTrait, select: Select<E>) -> Result<Vec<E::Model>, DbErr> {
    let rows = db.query_all_raw(select.build(db.get_database_backend())).await?;
    E::models(&rows)
}

/// The first row of `select`, as a model, decoded as [`all`] decodes.
pub async fn one<E: Scoped>(db: &impl ConnectionTrait, select: Select<E>) -> Result<Option<E::Model>, DbErr> {
    Ok(all(db, select.limit(1)).await?.pop())
}

macro_rules! scoped {
    ($($m:ident),+ ; decoded: $($d:ident),+) => {
        $(scoped!(@impl $m {});)+
        $(scoped!(@impl $d {
            fn models(rows: &[QueryResult]) -> Result<Vec<Self::Model>, DbErr> {
                decode::all(rows)
            }
        });)+
    };
    (@impl $m:ident { $($extra:item)* }) => {
        impl Scoped for entity::$m::Entity {
            fn workspace_col() -> Self::Column { entity::$m::Column::WorkspaceId }
            fn id_col() -> Self::Column { entity::$m::Column::Id }
            fn id_of(model: &Self::Model) -> i64 { model.id }
            $($extra)*
        }
    };
}
scoped!(
    attribution_model,
    attribution_credit,
    attribution_campaign_month,
    campaign_cost,
    opportunity,
    opportunity_contact,
    persona,
    persona_criterion,
    user,
    lead_stage_history,
    handoff,
    vocabulary_term,
    routing_rule,
    webhook,
    webhook_delivery,
    lead_persona_match,
    scoring_model,
    lead_score,
    tracking_link,
    visitor,
    tracked_hit;
    decoded: account, lead, campaign, touchpoint, funnel_stage
);

/// Rows of `E` with the given ids in workspace `ws`; ids of other workspaces are simply absent.
pub async fn by_ids<E: Scoped>(db: &impl ConnectionTrait, ws: i64, ids: &[i64]) -> Result<Vec<E::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    all(db, E::in_workspace(ws).filter(id_in(db, E::id_col(), ids))).await
}

/// `col IN (ids)` in a statement whose text does not depend on how many IDs there are, so that
/// one prepared statement (on PostgreSQL, one plan) serves every batch a DataLoader sends. SQLite
/// reads the IDs from one JSON array parameter (`json_each`), PostgreSQL from one bigint array
/// (`= ANY`). With `IN (?, ?, ...)` every batch size was a statement of its own: prepared anew,
/// and pushing the others out of the connection's statement cache (under Q2 of BENCHMARKS.md,
/// 3 to 4 % of the server's CPU went to preparing statements).
pub fn id_in(db: &impl ConnectionTrait, col: impl ColumnTrait, ids: &[i64]) -> Expr {
    in_one_parameter(db.get_database_backend(), col, ids)
}

/// `col IN (values)` for text keys (external IDs, e-mail addresses, idempotency keys), as
/// [`id_in`] does for IDs: one parameter, a JSON array of strings on SQLite and a text array on
/// PostgreSQL, however many values there are.
pub fn text_in(db: &impl ConnectionTrait, col: impl ColumnTrait, values: &[String]) -> Expr {
    in_one_parameter(db.get_database_backend(), col, values)
}

/// `col IN (values)` with the values as one parameter: a JSON array read by `json_each` on
/// SQLite, an array for `= ANY` on PostgreSQL.
fn in_one_parameter<T>(backend: DbBackend, col: impl ColumnTrait, values: &[T]) -> Expr
where
    T: serde::Serialize + Clone,
    Vec<T>: Into<sea_orm::Value>,
{
    match backend {
        DbBackend::Postgres => Expr::cust_with_exprs("$1 = ANY($2)", [col.into_expr(), Expr::val(values.to_vec())]),
        _ => {
            let json = serde_json::to_string(values).expect("a list of numbers or strings is JSON");
            Expr::cust_with_exprs("? IN (SELECT value FROM json_each(?))", [col.into_expr(), Expr::val(json)])
        }
    }
}

pub async fn by_id<E: Scoped>(db: &impl ConnectionTrait, ws: i64, id: i64) -> Result<Option<E::Model>, DbErr> {
    one(db, with_id::<E>(ws, id)).await
}

/// The row of `E` with this ID in workspace `ws`.
pub fn with_id<E: Scoped>(ws: i64, id: i64) -> Select<E> {
    E::in_workspace(ws).filter(E::id_col().eq(id))
}

/// Writes `am` over row `id` if the row is still at `version` (optimistic concurrency: the
/// caller read it at that version): the written row, or `None` when a concurrent write changed
/// it first.
pub async fn update_versioned<E>(db: &impl ConnectionTrait, am: E::ActiveModel, id: i64, version: i64) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::sea_query::{Alias, ExprTrait};
    let mut rows = E::update_many()
        .set(am)
        .filter(Expr::col(Alias::new("id")).eq(id))
        .filter(Expr::col(Alias::new("version")).eq(version))
        .exec_with_returning(db)
        .await?;
    Ok(rows.pop())
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    fn sql(backend: DbBackend, ids: &[i64]) -> (String, Vec<sea_orm::Value>) {
        let statement = entity::account::Entity::find()
            .filter(super::in_one_parameter(backend, entity::account::Column::Id, ids))
            .build(backend);
        (statement.sql, statement.values.map(|v| v.0).unwrap_or_default())
    }

    #[test]
    fn id_lists_of_any_length_share_one_statement() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let (one, _) = sql(backend, &[7]);
            let (three, values) = sql(backend, &[7, 8, 9]);
            assert_eq!(one, three, "{backend:?}");
            assert_eq!(values.len(), 1, "{backend:?}: one parameter");
        }
        let (text, values) = sql(DbBackend::Sqlite, &[7, 8, 9]);
        assert!(
            text.ends_with(r#"WHERE "accounts"."id" IN (SELECT value FROM json_each(?))"#),
            "{text}"
        );
        assert_eq!(values, vec![sea_orm::Value::from("[7,8,9]")]);
        let (text, values) = sql(DbBackend::Postgres, &[7, 8, 9]);
        assert!(text.ends_with(r#"WHERE "accounts"."id" = ANY($1)"#), "{text}");
        assert_eq!(values, vec![sea_orm::Value::from(vec![7i64, 8, 9])]);
    }

    #[test]
    fn text_lists_are_one_escaped_parameter() {
        let keys = vec!["a\"b".to_owned(), "ß\n".to_owned()];
        let statement = entity::account::Entity::find()
            .filter(super::in_one_parameter(
                DbBackend::Sqlite,
                entity::account::Column::ExternalId,
                &keys,
            ))
            .build(DbBackend::Sqlite);
        assert!(statement.sql.ends_with("IN (SELECT value FROM json_each(?))"), "{}", statement.sql);
        let values = statement.values.map(|v| v.0).unwrap_or_default();
        assert_eq!(values, vec![sea_orm::Value::from(r#"["a\"b","ß\n"]"#)]);
    }
}
