//! The planned read path: a nested page in one statement per level, written out without a
//! resolver per field.
//!
//! The generic path resolves every selected field as a future of its own (Q2 of BENCHMARKS.md,
//! a page of 50 leads with account, stage and 5 touchpoints with their campaign, is some 2,000
//! of them), loads related rows through DataLoaders, decodes whole rows and builds the response
//! field by field. For the reads that clients make most, the resolver of the list or lookup
//! hands its rows' statement to [`page`], [`one`] or [`list_by_ids`], which plan the field's
//! selection:
//!
//! 1. [`collect`] reads the selection set as GraphQL's CollectFields does: aliases, `@skip` and
//!    `@include` (with variables), fragment spreads and inline fragments with their type
//!    conditions, and fields selected twice under one response key (merged).
//! 2. [`run::Level`] turns it into one statement per level from the entity descriptions of
//!    [`describe`]: the selected columns only, to-one objects (`Lead.account`, `Lead.stage`,
//!    `Touchpoint.campaign`) LEFT JOINed into the level's statement, to-many pages
//!    (`Lead.touchpoints(first:)`) as the first or last N rows of every parent in one statement
//!    (PostgreSQL: a LATERAL join over an array of parent IDs; SQLite: UNION ALL arms, one
//!    index range scan each, which measured 3 times faster there than a window function), the
//!    decoded rows then put in order here rather than by a sort in SQL.
//! 3. The rows, decoded by position, are written out as JSON text in the order of the
//!    selection, with the generic path's encodings (IDs, cursors, `DateTime`, `Date`, `Money`,
//!    enums) and its quirks (an object whose fields are all left out is null). The field's value
//!    is a placeholder that the HTTP layer replaces with that text when it serializes the
//!    response ([`RawParts`]); over the WebSocket the text is parsed back into a value.
//!
//! A field that [`describe`] does not know, an argument that does not parse or a directive
//! other than `@skip`/`@include` makes the plan `None`, and the generic resolvers run as before:
//! they give the same answer, and the same errors where the input is wrong. Workspace scoping
//! stays with the callers, which pass the statement of the rows the caller may see; every joined
//! or nested row is taken from the same workspace. The planned fields are plain columns, which
//! every role may read, as on the generic path.
//!
//! `tests/api/planned.rs` runs random selections through both paths and demands the same bytes.
mod collect;
pub mod describe;
mod run;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_graphql::InputType;
use async_graphql::parser::types::Field;
use async_graphql::{Context, ContextSelectionSet, OutputType, Positioned, ServerError, ServerResult, Value, registry};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{IdenStatic, ModelTrait, PaginatorTrait, QuerySelect, QueryTrait, Select};
use std::str::FromStr;

use crate::graphql::context::ContextExt;
use crate::graphql::errors::IntoGql;
use crate::graphql::pagination::{Conn, CursorCheck, OrderDirection, TotalCount, connection};
use crate::store::page::{CursorKey, PageRequest, Sort, SortValue, fetch_page, page_select};
use crate::store::{self, Scoped};
use collect::Env;
pub use describe::Entity;
use run::{ObjectPlan, PagePlan};

/// The result of a field that has a planned path: the generic value, resolved field by field,
/// or the JSON text the plan wrote. The GraphQL type is `T`'s: the schema does not change.
pub enum Planned<T> {
    Generic(T),
    Done(Mutex<Vec<u8>>),
}

impl<T> Planned<T> {
    pub fn done(json: Vec<u8>) -> Self {
        Planned::Done(Mutex::new(json))
    }
}

impl<T: OutputType> OutputType for Planned<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        match self {
            Planned::Generic(value) => value.resolve(ctx, field).await,
            Planned::Done(json) => {
                // A field's value is resolved once; the lock is never contended.
                let json = std::mem::take(&mut *json.lock().unwrap_or_else(|e| e.into_inner()));
                match ctx.data_opt::<Arc<RawParts>>() {
                    Some(parts) => Ok(parts.add(json)),
                    // Transports that do not splice (WebSocket) get the value itself.
                    None => serde_json::from_slice(&json)
                        .map_err(|e| ServerError::new(format!("planned output is not JSON: {e}"), Some(field.pos))),
                }
            }
        }
    }
}

/// JSON text that planned fields wrote for one HTTP response, spliced into the serialized
/// response in place of the placeholder strings that stand for it in the response value. A
/// placeholder holds a random nonce of the request, so no string of the data can pass for one.
#[derive(Default)]
pub struct RawParts {
    /// Made when the first part is added: most requests have none.
    nonce: std::sync::OnceLock<String>,
    parts: Mutex<Vec<Vec<u8>>>,
}

impl RawParts {
    fn nonce(&self) -> &str {
        self.nonce.get_or_init(|| crate::auth::random_hex(16))
    }

    /// The placeholder of `json`.
    fn add(&self, json: Vec<u8>) -> Value {
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        parts.push(json);
        Value::String(format!("\u{0}planned:{}:{}", self.nonce(), parts.len() - 1))
    }

    /// `response` (serialized) with each placeholder replaced by its JSON text.
    pub fn splice(&self, response: Vec<u8>) -> Vec<u8> {
        let parts = std::mem::take(&mut *self.parts.lock().unwrap_or_else(|e| e.into_inner()));
        if parts.is_empty() {
            return response;
        }
        // serde_json writes the NUL as `\u0000`.
        let marker = format!("\"\\u0000planned:{}:", self.nonce()).into_bytes();
        let mut out = Vec::with_capacity(response.len() + parts.iter().map(Vec::len).sum::<usize>());
        let mut rest = &response[..];
        while let Some(at) = find(rest, &marker) {
            out.extend_from_slice(&rest[..at]);
            let tail = &rest[at + marker.len()..];
            let end = tail.iter().position(|&b| b == b'"').unwrap_or(tail.len());
            let index: Option<usize> = std::str::from_utf8(&tail[..end]).ok().and_then(|s| s.parse().ok());
            match index.and_then(|i| parts.get(i)) {
                Some(part) => out.extend_from_slice(part),
                None => out.extend_from_slice(b"null"),
            }
            rest = &tail[(end + 1).min(tail.len())..];
        }
        out.extend_from_slice(rest);
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the planned path is taken (server setting `--no-planned-reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    Planned,
    Generic,
}

fn planning(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Reads>() != Some(&Reads::Generic)
}

/// The order of `entity`'s list by `field` (a value of its order-field enum) in `direction`,
/// and the cursors that fit it, as `entity`'s description gives them.
pub fn sort<E: Scoped>(entity: &Entity, field: impl InputType, direction: OrderDirection) -> (Sort<E::Column>, CursorCheck) {
    let (column, expects) = entity.order(field);
    let column = column.map(|c| E::Column::from_str(c).unwrap_or_else(|_| panic!("{}.{c} is a column", entity.table)));
    let sort = Sort {
        column,
        id: E::id_col(),
        desc: direction == OrderDirection::Desc,
    };
    (sort, expects)
}

/// The cursor of a row of `E` in an order by `column` (`None`: the ID alone): the column's
/// value and the row's ID, for the lists that fetch their rows generically
/// (`pagination::connection`).
pub fn cursor<E: Scoped>(column: Option<E::Column>) -> impl Fn(&E::Model) -> CursorKey {
    move |model| CursorKey {
        value: column.and_then(|c| match model.get(c) {
            sea_orm::Value::BigInt(Some(v)) => Some(SortValue::Int(v)),
            sea_orm::Value::Int(Some(v)) => Some(SortValue::Int(v.into())),
            sea_orm::Value::String(Some(v)) => Some(SortValue::Text(v)),
            sea_orm::Value::ChronoDateTimeUtc(Some(v)) => Some(SortValue::Time(v)),
            sea_orm::Value::ChronoDate(Some(v)) => Some(SortValue::Date(v)),
            _ => None,
        }),
        id: E::id_of(model),
    }
}

/// A page of `select` (the caller's workspace, filtered) in the order `sort`, for the connection
/// field being resolved: planned when its selection allows, else through the resolvers of `N`
/// (`node` makes a row's object; its cursor carries the sort column's value and its ID).
pub async fn page<E, N>(
    ctx: &Context<'_>,
    entity: &'static Entity,
    select: Select<E>,
    sort: Sort<E::Column>,
    req: PageRequest,
    node: impl Fn(E::Model) -> N,
) -> async_graphql::Result<Planned<Conn<N>>>
where
    E: Scoped,
    N: OutputType,
    Select<E>: Clone + Send + Sync + 'static,
    E::Model: Sync,
{
    let db = &ctx.db().conn;
    let sort_column = sort.column.map(|c| IdenStatic::as_str(&c));
    if let Some(plan) = plan_page(ctx, entity, sort_column) {
        let ws = ctx.principal()?.workspace_id;
        let total = match plan.wants_total() {
            true => Some(select.clone().count(db).await.gql()?),
            false => None,
        };
        let rows = page_select(only(select, entity, plan.columns()), &sort, &req).build(db.get_database_backend());
        return Ok(Planned::done(plan.run(db, ws, rows, sort.desc, &req, total).await.gql()?));
    }
    let rows = fetch_page(db, select.clone(), &sort, &req).await.gql()?;
    Ok(Planned::Generic(connection(
        rows,
        &req,
        TotalCount::of(select),
        cursor::<E>(sort.column),
        node,
    )))
}

/// The first row of `select` (the caller's workspace), for the lookup field being resolved:
/// planned when its selection allows, else through the resolvers of `N`.
pub async fn one<E, N>(
    ctx: &Context<'_>,
    entity: &'static Entity,
    select: Select<E>,
    node: impl FnOnce(E::Model) -> N,
) -> async_graphql::Result<Planned<Option<N>>>
where
    E: Scoped,
    N: OutputType,
{
    let db = &ctx.db().conn;
    let select = select.limit(1);
    if let Some(plan) = plan_object(ctx, entity) {
        let rows = objects(ctx, &plan, entity, select).await?;
        return Ok(Planned::done(rows.into_values().next().unwrap_or_else(|| b"null".to_vec())));
    }
    Ok(Planned::Generic(store::all(db, select).await.gql()?.pop().map(node)))
}

/// The objects of `plan` for the rows of `select` (the caller's workspace), by ID.
async fn objects<E: Scoped>(
    ctx: &Context<'_>,
    plan: &ObjectPlan,
    entity: &Entity,
    select: Select<E>,
) -> async_graphql::Result<std::collections::HashMap<i64, Vec<u8>>> {
    let db = &ctx.db().conn;
    let ws = ctx.principal()?.workspace_id;
    let rows = only(select, entity, plan.columns()).build(db.get_database_backend());
    plan.run(db, ws, rows).await.gql()
}

/// `select` reading only `columns` (of `entity`'s table): a row of leads is 33 columns, with
/// JSON texts, and a page's plan reads a handful.
fn only<E: Scoped>(select: Select<E>, entity: &Entity, columns: Vec<&'static str>) -> Select<E> {
    let mut select = select.select_only();
    for c in columns {
        select = select.expr(Expr::col((Alias::new(entity.table), Alias::new(c))));
    }
    select
}

/// For a list field whose items are objects of `entity`: the rows of `select` (the caller's
/// workspace) written in the order of `ids`, null where an ID has no row. `None` when the
/// field's selection is not plannable.
pub async fn list_by_ids<E: Scoped>(
    ctx: &Context<'_>,
    entity: &'static Entity,
    select: Select<E>,
    ids: &[Option<i64>],
) -> async_graphql::Result<Option<Vec<u8>>> {
    let Some(plan) = plan_object(ctx, entity) else { return Ok(None) };
    let rows = objects(ctx, &plan, entity, select).await?;
    let mut out = Vec::with_capacity(2 + rows.values().map(Vec::len).sum::<usize>() + ids.len() * 5);
    out.push(b'[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match id.and_then(|id| rows.get(&id)) {
            Some(json) => out.extend_from_slice(json),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b']');
    Ok(Some(out))
}

fn plan_page(ctx: &Context<'_>, entity: &'static Entity, sort_column: Option<&'static str>) -> Option<PagePlan> {
    if !planning(ctx) {
        return None;
    }
    let env = Env::of(ctx);
    let sels = env.collect(&[&ctx.item.node.selection_set.node], entity.connection)?;
    PagePlan::new(&env, entity, sort_column, &sels)
}

fn plan_object(ctx: &Context<'_>, entity: &'static Entity) -> Option<ObjectPlan> {
    if !planning(ctx) {
        return None;
    }
    let env = Env::of(ctx);
    let sels = env.collect(&[&ctx.item.node.selection_set.node], entity.type_name)?;
    ObjectPlan::new(&env, entity, &sels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_spliced_and_others_left_alone() {
        let raw = RawParts::default();
        let a = raw.add(br#"{"x":1}"#.to_vec());
        let b = raw.add(b"[]".to_vec());
        // A data string that looks like a placeholder, with another nonce.
        let fake = Value::String("\u{0}planned:00000000000000000000000000000000:0".into());
        let response = serde_json::to_vec(&serde_json::json!({ "a": a, "fake": fake, "b": b })).unwrap();
        let spliced = String::from_utf8(raw.splice(response)).unwrap();
        assert_eq!(
            spliced,
            r#"{"a":{"x":1},"b":[],"fake":"\u0000planned:00000000000000000000000000000000:0"}"#
        );
    }
}
