//! Plans of one level (its columns, joins and nested pages), their statements, and the
//! response values written from their rows.
use std::collections::HashMap;

use async_graphql::{Name, ScalarType, Value};
use async_graphql_value::indexmap::IndexMap;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};

use super::collect::{Env, Sel};
use super::describe::{Codec, Entity, Many, ManyOrder, Read};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::pagination::PageArgs;
use crate::graphql::scalars;
use crate::store::decode::{cell, check_column};
use crate::store::page::{CursorKey, PageRequest, SortValue};
use crate::store::raw::statement;

/// A column that a level's statement selects: of the level's own row (`join: None`) or of a
/// joined to-one row.
struct Col {
    join: Option<usize>,
    column: &'static str,
    codec: Codec,
}

/// A to-one row joined into the level's statement through a foreign key of its parent (the
/// level's row or another join).
struct Join {
    parent: Option<usize>,
    field: &'static str,
    entity: &'static Entity,
    fk: &'static str,
    /// The column holding the joined row's ID (NULL: no such row).
    id: usize,
}

/// A nested page of a to-many relation, fetched for all rows of the level in one statement.
struct Nested {
    /// Where the parent's ID is in the level's columns.
    parent_id: usize,
    rel: &'static Many,
    order: ManyOrder,
    req: PageRequest,
    level: Level,
    /// The connection's fields.
    out: Vec<(Name, ConnOut)>,
}

/// One statement's worth of a plan: an entity's rows with the columns and joins that the
/// selection needs, and the nested pages below them.
pub struct Level {
    entity: &'static Entity,
    cols: Vec<Col>,
    joins: Vec<Join>,
    nested: Vec<Nested>,
    /// The sort column of a paged level (its position in `cols`); `None`: ID order.
    sort: Option<usize>,
}

/// What to write for one field of an object.
enum Out {
    Typename(&'static str),
    Id(usize, NodeType),
    Col(usize),
    FullName(usize, usize),
    /// A joined row: null when its ID column is NULL.
    One(usize, Vec<(Name, Out)>),
    Nested(usize),
}

/// What to write for one field of a connection.
enum ConnOut {
    Typename(&'static str),
    TotalCount,
    PageInfo(Vec<(Name, PageOut)>),
    Edges(Vec<(Name, EdgeOut)>),
    Nodes(Vec<(Name, Out)>),
}

enum PageOut {
    Typename,
    HasPrevious,
    HasNext,
    Start,
    End,
}

enum EdgeOut {
    Typename(&'static str),
    Cursor,
    Node(Vec<(Name, Out)>),
}

/// A decoded value.
#[derive(Clone)]
enum Cell {
    Null,
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
    Date(NaiveDate),
}

const ID: usize = 0;

impl Level {
    fn new(entity: &'static Entity) -> Self {
        let mut level = Level {
            entity,
            cols: Vec::new(),
            joins: Vec::new(),
            nested: Vec::new(),
            sort: None,
        };
        level.col(None, "id", Codec::I64);
        level
    }

    fn col(&mut self, join: Option<usize>, column: &'static str, codec: Codec) -> usize {
        if let Some(i) = self.cols.iter().position(|c| c.join == join && c.column == column) {
            return i;
        }
        self.cols.push(Col { join, column, codec });
        self.cols.len() - 1
    }

    fn join(&mut self, parent: Option<usize>, field: &'static str, entity: &'static Entity, fk: &'static str) -> usize {
        if let Some(i) = self.joins.iter().position(|j| j.parent == parent && j.field == field) {
            return i;
        }
        self.col(parent, fk, Codec::I64);
        let j = self.joins.len();
        let id = self.col(Some(j), "id", Codec::I64);
        self.joins.push(Join {
            parent,
            field,
            entity,
            fk,
            id,
        });
        j
    }

    /// The fields of an object of `entity` at `at` (the level's row, or a join).
    fn object(&mut self, env: &Env<'_>, at: Option<usize>, entity: &'static Entity, sels: &[Sel<'_>]) -> Option<Vec<(Name, Out)>> {
        let mut out = Vec::with_capacity(sels.len());
        for sel in sels {
            let name = sel.field.name.node.as_str();
            let write = if name == "__typename" {
                Out::Typename(entity.type_name)
            } else {
                match entity.field(name)? {
                    Read::Id => Out::Id(self.col(at, "id", Codec::I64), entity.node),
                    Read::Column(column, codec) => Out::Col(self.col(at, column, *codec)),
                    Read::FullName => Out::FullName(self.col(at, "first_name", Codec::Text), self.col(at, "last_name", Codec::Text)),
                    Read::One { entity: child, fk } => {
                        let j = self.join(at, entity_field(entity, name), child, fk);
                        let sels = env.collect(&sel.sets, child.type_name)?;
                        let fields = self.object(env, Some(j), child, &sels)?;
                        Out::One(self.joins[j].id, fields)
                    }
                    Read::Many(rel) => {
                        let parent_id = self.col(at, "id", Codec::I64);
                        let nested = Nested::new(env, parent_id, rel, sel)?;
                        self.nested.push(nested);
                        Out::Nested(self.nested.len() - 1)
                    }
                }
            };
            out.push((sel.key.clone(), write));
        }
        Some(out)
    }

    /// The fields of a connection over this level's rows.
    fn connection(
        &mut self,
        env: &Env<'_>,
        connection: &'static str,
        edge: &'static str,
        sels: &[Sel<'_>],
        total: bool,
    ) -> Option<Vec<(Name, ConnOut)>> {
        let mut out = Vec::with_capacity(sels.len());
        for sel in sels {
            let write = match sel.field.name.node.as_str() {
                "__typename" => ConnOut::Typename(connection),
                "totalCount" if total => ConnOut::TotalCount,
                "pageInfo" => {
                    let mut fields = Vec::new();
                    for s in env.collect(&sel.sets, "PageInfo")? {
                        let f = match s.field.name.node.as_str() {
                            "__typename" => PageOut::Typename,
                            "hasPreviousPage" => PageOut::HasPrevious,
                            "hasNextPage" => PageOut::HasNext,
                            "startCursor" => PageOut::Start,
                            "endCursor" => PageOut::End,
                            _ => return None,
                        };
                        fields.push((s.key.clone(), f));
                    }
                    ConnOut::PageInfo(fields)
                }
                "edges" => {
                    let mut fields = Vec::new();
                    for s in env.collect(&sel.sets, edge)? {
                        let f = match s.field.name.node.as_str() {
                            "__typename" => EdgeOut::Typename(edge),
                            "cursor" => EdgeOut::Cursor,
                            "node" => {
                                let sels = env.collect(&s.sets, self.entity.type_name)?;
                                EdgeOut::Node(self.object(env, None, self.entity, &sels)?)
                            }
                            _ => return None,
                        };
                        fields.push((s.key.clone(), f));
                    }
                    ConnOut::Edges(fields)
                }
                "nodes" => {
                    let sels = env.collect(&sel.sets, self.entity.type_name)?;
                    ConnOut::Nodes(self.object(env, None, self.entity, &sels)?)
                }
                _ => return None,
            };
            out.push((sel.key.clone(), write));
        }
        Some(out)
    }

    /// `SELECT <columns> FROM (<rows>) b LEFT JOIN ...`: the level's columns over `rows`, a
    /// subquery (or LATERAL join) that yields the level's table's columns as `b`.
    fn select_sql(&self, from: &str, order: &str) -> String {
        let mut sql = String::from("SELECT ");
        for (i, c) in self.cols.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&alias(c.join));
            sql.push_str(".\"");
            sql.push_str(c.column);
            sql.push('"');
        }
        sql.push_str(" FROM ");
        sql.push_str(from);
        for (j, join) in self.joins.iter().enumerate() {
            let (me, parent) = (alias(Some(j)), alias(join.parent));
            sql.push_str(&format!(
                " LEFT JOIN {table} {me} ON {me}.\"id\" = {parent}.\"{fk}\" AND {me}.\"workspace_id\" = {parent}.\"workspace_id\"",
                table = join.entity.table,
                fk = join.fk,
            ));
        }
        if !order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(order);
        }
        sql
    }

    /// The level's own columns (for the inner select of a nested page), with the workspace
    /// that joins compare.
    fn own_columns(&self, also: &[&str]) -> String {
        let mut names: Vec<&str> = vec!["workspace_id"];
        for name in self
            .cols
            .iter()
            .filter(|c| c.join.is_none())
            .map(|c| c.column)
            .chain(also.iter().copied())
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    }

    fn decode(&self, rows: &[QueryResult]) -> Result<Vec<Vec<Cell>>, DbErr> {
        if let Some(first) = rows.first() {
            for (i, c) in self.cols.iter().enumerate() {
                match c.codec {
                    Codec::Text | Codec::Enum(_) => check_column::<Option<String>>(first, i, c.column)?,
                    Codec::I64 => check_column::<Option<i64>>(first, i, c.column)?,
                    Codec::I32 => check_column::<Option<i32>>(first, i, c.column)?,
                    Codec::Time => check_column::<Option<DateTime<Utc>>>(first, i, c.column)?,
                    Codec::Date => check_column::<Option<NaiveDate>>(first, i, c.column)?,
                }
            }
        }
        rows.iter()
            .map(|row| {
                self.cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Ok(match c.codec {
                            Codec::Text | Codec::Enum(_) => cell::<Option<String>>(row, i, c.column)?.map_or(Cell::Null, Cell::Text),
                            Codec::I64 => cell::<Option<i64>>(row, i, c.column)?.map_or(Cell::Null, Cell::Int),
                            Codec::I32 => cell::<Option<i32>>(row, i, c.column)?.map_or(Cell::Null, |v| Cell::Int(v.into())),
                            Codec::Time => cell::<Option<DateTime<Utc>>>(row, i, c.column)?.map_or(Cell::Null, Cell::Time),
                            Codec::Date => cell::<Option<NaiveDate>>(row, i, c.column)?.map_or(Cell::Null, Cell::Date),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Fetches the nested pages of `rows` (this level's rows), depth first.
    async fn fetch_nested(&self, db: &impl ConnectionTrait, ws: i64, rows: &[Vec<Cell>]) -> Result<Vec<Fetched>, DbErr> {
        let mut out = Vec::with_capacity(self.nested.len());
        for n in &self.nested {
            let mut parents: Vec<i64> = rows.iter().filter_map(|r| r[n.parent_id].int()).collect();
            parents.sort_unstable();
            parents.dedup();
            out.push(Box::pin(n.fetch(db, ws, &parents)).await?);
        }
        Ok(out)
    }
}

/// The alias of the level's row (`b`) or of join `j` (`j0`, `j1`, ...).
fn alias(join: Option<usize>) -> String {
    match join {
        None => "b".to_owned(),
        Some(j) => format!("j{j}"),
    }
}

/// `name` as the entity's static field name (joins are told apart by it).
fn entity_field(entity: &'static Entity, name: &str) -> &'static str {
    entity.fields.iter().find(|f| f.name == name).map_or("", |f| f.name)
}

impl Nested {
    fn new(env: &Env<'_>, parent_id: usize, rel: &'static Many, sel: &Sel<'_>) -> Option<Self> {
        let f = sel.field;
        let order = (rel.order)(env.argument(f, "orderBy")?)?;
        let int = |name| -> Option<Option<i32>> {
            match env.argument(f, name)? {
                None | Some(Value::Null) => Some(None),
                Some(v) => <i32 as async_graphql::InputType>::parse(Some(v)).ok().map(Some),
            }
        };
        let text = |name| -> Option<Option<String>> {
            match env.argument(f, name)? {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s)),
                Some(_) => None,
            }
        };
        let req = PageArgs {
            first: int("first")?,
            after: text("after")?,
            last: int("last")?,
            before: text("before")?,
        }
        .request(order.expects)
        .ok()?;
        let mut level = Level::new(rel.entity);
        level.col(None, rel.fk, Codec::I64);
        if let Some(column) = order.column {
            level.sort = Some(level.col(None, column, Codec::Time));
        }
        let sels = env.collect(&sel.sets, rel.connection)?;
        let out = level.connection(env, rel.connection, rel.edge, &sels, false)?;
        Some(Nested {
            parent_id,
            rel,
            order,
            req,
            level,
            out,
        })
    }

    /// The page of every parent in `parents`, in one statement per 400 parents.
    async fn fetch(&self, db: &impl ConnectionTrait, ws: i64, parents: &[i64]) -> Result<Fetched, DbErr> {
        let backend = db.get_database_backend();
        let level = &self.level;
        let fk_at = level
            .cols
            .iter()
            .position(|c| c.join.is_none() && c.column == self.rel.fk)
            .expect("the parent column is selected");
        let desc = self.order.desc ^ self.req.backward;
        let dir = if desc { "DESC" } else { "ASC" };
        let order = |prefix: &str| match self.order.column {
            Some(c) => format!("{prefix}\"{c}\" {dir}, {prefix}\"id\" {dir}"),
            None => format!("{prefix}\"id\" {dir}"),
        };
        // Rows strictly beyond the cursor in the scan order.
        let (keyset, keyset_values): (String, Vec<sea_orm::Value>) = match &self.req.cursor {
            None => (String::new(), Vec::new()),
            Some(cursor) => {
                let cmp = if desc { "<" } else { ">" };
                match (self.order.column, &cursor.value) {
                    (Some(c), Some(v)) => (
                        format!(" AND (\"{c}\" {cmp} ? OR (\"{c}\" = ? AND \"id\" {cmp} ?))"),
                        vec![v.clone().into(), v.clone().into(), cursor.id.into()],
                    ),
                    _ => (format!(" AND \"id\" {cmp} ?"), vec![cursor.id.into()]),
                }
            }
        };
        let limit = (self.req.limit + 1) as i64;
        let table = self.rel.entity.table;
        let fk = self.rel.fk;
        let columns = level.own_columns(&[]);
        let outer_order = format!("b.\"{fk}\", {}", order("b."));
        let mut raw = Vec::new();
        if parents.is_empty() {
        } else if backend == DbBackend::Postgres {
            let from = format!(
                "unnest(?::bigint[]) AS p(parent_id) CROSS JOIN LATERAL (SELECT {columns} FROM {table} WHERE \"workspace_id\" = ? AND \"{fk}\" = p.parent_id{keyset} ORDER BY {} LIMIT ?) AS b",
                order("")
            );
            let mut values: Vec<sea_orm::Value> = vec![parents.to_vec().into(), ws.into()];
            values.extend(keyset_values.iter().cloned());
            values.push(limit.into());
            raw = db
                .query_all_raw(statement(backend, &level.select_sql(&from, &outer_order), values))
                .await?;
        } else {
            let arm = format!(
                "SELECT * FROM (SELECT {columns} FROM {table} WHERE \"workspace_id\" = ? AND \"{fk}\" = ?{keyset} ORDER BY {} LIMIT ?)",
                order("")
            );
            // SQLite allows at most 500 terms in a compound SELECT.
            for chunk in parents.chunks(400) {
                let from = format!("({}) AS b", vec![arm.as_str(); chunk.len()].join(" UNION ALL "));
                let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * (3 + keyset_values.len()));
                for &id in chunk {
                    values.push(ws.into());
                    values.push(id.into());
                    values.extend(keyset_values.iter().cloned());
                    values.push(limit.into());
                }
                raw.extend(
                    db.query_all_raw(statement(backend, &level.select_sql(&from, &outer_order), values))
                        .await?,
                );
            }
        }
        let cells = level.decode(&raw)?;
        // Group by parent: each parent's rows are together, in scan order, one more than the page.
        let mut rows = Vec::with_capacity(cells.len());
        let mut pages = HashMap::new();
        let mut it = cells.into_iter().peekable();
        while let Some(first) = it.next() {
            let parent = first[fk_at].int().unwrap_or_default();
            let mut group = vec![first];
            while it.peek().is_some_and(|r| r[fk_at].int() == Some(parent)) {
                group.extend(it.next());
            }
            let has_more = group.len() as u64 > self.req.limit;
            group.truncate(self.req.limit as usize);
            if self.req.backward {
                group.reverse();
            }
            let start = rows.len();
            rows.extend(group);
            pages.insert(parent, (start..rows.len(), has_more));
        }
        let nested = level.fetch_nested(db, ws, &rows).await?;
        Ok(Fetched { rows, nested, pages })
    }
}

/// The rows of one level and of the levels below it.
struct Fetched {
    rows: Vec<Vec<Cell>>,
    nested: Vec<Fetched>,
    /// For a nested level: each parent's rows in `rows` and whether its page has more.
    pages: HashMap<i64, (std::ops::Range<usize>, bool)>,
}

impl Cell {
    fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn value(&self, codec: Codec) -> Value {
        match (self, codec) {
            (Cell::Null, _) => Value::Null,
            (Cell::Text(s), Codec::Enum(f)) => f(s),
            (Cell::Text(s), _) => Value::String(s.clone()),
            (Cell::Int(i), _) => Value::Number((*i).into()),
            (Cell::Time(t), _) => scalars::DateTime(*t).to_value(),
            (Cell::Date(d), _) => scalars::Date(*d).to_value(),
        }
    }

    fn sort_value(&self) -> Option<SortValue> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(SortValue::Int(*i)),
            Cell::Text(s) => Some(SortValue::Text(s.clone())),
            Cell::Time(t) => Some(SortValue::Time(*t)),
            Cell::Date(d) => Some(SortValue::Date(*d)),
        }
    }
}

/// Writes the response values of a level's rows.
struct Writer<'a> {
    level: &'a Level,
    fetched: &'a Fetched,
}

impl Writer<'_> {
    fn object(&self, row: &[Cell], fields: &[(Name, Out)]) -> Value {
        let mut map = IndexMap::with_capacity(fields.len());
        for (key, out) in fields {
            let value = match out {
                Out::Typename(t) => Value::String((*t).to_owned()),
                Out::Id(i, node) => match row[*i].int() {
                    Some(id) => Value::String(ids::encode(*node, id).0),
                    None => Value::Null,
                },
                Out::Col(i) => row[*i].value(self.level.cols[*i].codec),
                Out::FullName(first, last) => {
                    let parts: Vec<&str> = [&row[*first], &row[*last]]
                        .into_iter()
                        .filter_map(|c| match c {
                            Cell::Text(s) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect();
                    if parts.is_empty() {
                        Value::Null
                    } else {
                        Value::String(parts.join(" "))
                    }
                }
                Out::One(id, fields) => match row[*id] {
                    Cell::Null => Value::Null,
                    _ => self.object(row, fields),
                },
                Out::Nested(n) => {
                    let nested = &self.level.nested[*n];
                    let fetched = &self.fetched.nested[*n];
                    let parent = row[nested.parent_id].int().unwrap_or_default();
                    let (range, has_more) = fetched.pages.get(&parent).cloned().unwrap_or((0..0, false));
                    let writer = Writer {
                        level: &nested.level,
                        fetched,
                    };
                    writer.connection(&fetched.rows[range], &nested.req, has_more, None, &nested.out)
                }
            };
            map.insert(key.clone(), value);
        }
        object(map)
    }

    fn cursor(&self, row: &[Cell]) -> Value {
        let key = CursorKey {
            value: self.level.sort.and_then(|i| row[i].sort_value()),
            id: row[ID].int().unwrap_or_default(),
        };
        Value::String(key.encode())
    }

    fn connection(&self, rows: &[Vec<Cell>], req: &PageRequest, has_more: bool, total: Option<u64>, fields: &[(Name, ConnOut)]) -> Value {
        let (has_previous, has_next) = if req.backward {
            (has_more, req.cursor.is_some())
        } else {
            (req.cursor.is_some(), has_more)
        };
        let mut map = IndexMap::with_capacity(fields.len());
        for (key, out) in fields {
            let value = match out {
                ConnOut::Typename(t) => Value::String((*t).to_owned()),
                ConnOut::TotalCount => total.map_or(Value::Null, |n| Value::Number(n.into())),
                ConnOut::PageInfo(fields) => {
                    let mut info = IndexMap::with_capacity(fields.len());
                    for (key, out) in fields {
                        let value = match out {
                            PageOut::Typename => Value::String("PageInfo".to_owned()),
                            PageOut::HasPrevious => Value::Boolean(has_previous),
                            PageOut::HasNext => Value::Boolean(has_next),
                            PageOut::Start => rows.first().map_or(Value::Null, |r| self.cursor(r)),
                            PageOut::End => rows.last().map_or(Value::Null, |r| self.cursor(r)),
                        };
                        info.insert(key.clone(), value);
                    }
                    object(info)
                }
                ConnOut::Edges(fields) => Value::List(
                    rows.iter()
                        .map(|row| {
                            let mut edge = IndexMap::with_capacity(fields.len());
                            for (key, out) in fields {
                                let value = match out {
                                    EdgeOut::Typename(t) => Value::String((*t).to_owned()),
                                    EdgeOut::Cursor => self.cursor(row),
                                    EdgeOut::Node(fields) => self.object(row, fields),
                                };
                                edge.insert(key.clone(), value);
                            }
                            object(edge)
                        })
                        .collect(),
                ),
                ConnOut::Nodes(fields) => Value::List(rows.iter().map(|row| self.object(row, fields)).collect()),
            };
            map.insert(key.clone(), value);
        }
        object(map)
    }
}

/// An object as the generic path writes it: async-graphql 7.2 writes an object whose fields
/// are all left out (`@skip`) as null, not `{}`.
fn object(map: IndexMap<Name, Value>) -> Value {
    if map.is_empty() { Value::Null } else { Value::Object(map) }
}

/// The plan of a page of a list: the level of its rows and the connection's fields.
pub struct PagePlan {
    level: Level,
    out: Vec<(Name, ConnOut)>,
}

impl PagePlan {
    pub(super) fn new(
        env: &Env<'_>,
        entity: &'static Entity,
        connection: &'static str,
        edge: &'static str,
        sort_column: Option<&'static str>,
        sels: &[Sel<'_>],
        total: bool,
    ) -> Option<Self> {
        let mut level = Level::new(entity);
        if let Some(column) = sort_column {
            level.sort = Some(level.col(None, column, Codec::Time));
        }
        let out = level.connection(env, connection, edge, sels, total)?;
        Some(PagePlan { level, out })
    }

    /// Whether the connection's `totalCount` is selected (the caller counts).
    pub fn wants_total(&self) -> bool {
        self.out.iter().any(|(_, o)| matches!(o, ConnOut::TotalCount))
    }

    /// Runs the plan over `page`, a statement that yields the page's rows of the level's table
    /// (all columns, the workspace's rows only, one more than the page in the scan order), and
    /// writes the connection.
    pub async fn run(
        &self,
        db: &impl ConnectionTrait,
        ws: i64,
        page: sea_orm::Statement,
        sort_desc: bool,
        req: &PageRequest,
        total: Option<u64>,
    ) -> Result<Value, DbErr> {
        let level = &self.level;
        let dir = if sort_desc ^ req.backward { "DESC" } else { "ASC" };
        let order = match level.sort {
            Some(i) => format!("b.\"{}\" {dir}, b.\"id\" {dir}", level.cols[i].column),
            None => format!("b.\"id\" {dir}"),
        };
        let (rows, has_more) = {
            let from = format!("({}) AS b", page.sql);
            let stmt = sea_orm::Statement {
                sql: level.select_sql(&from, &order),
                values: page.values,
                db_backend: page.db_backend,
            };
            let mut rows = level.decode(&db.query_all_raw(stmt).await?)?;
            let has_more = rows.len() as u64 > req.limit;
            rows.truncate(req.limit as usize);
            if req.backward {
                rows.reverse();
            }
            (rows, has_more)
        };
        let nested = level.fetch_nested(db, ws, &rows).await?;
        let fetched = Fetched {
            rows,
            nested,
            pages: HashMap::new(),
        };
        let writer = Writer { level, fetched: &fetched };
        Ok(writer.connection(&fetched.rows, req, has_more, total, &self.out))
    }
}

/// The plan of one object (a lookup by ID or key).
pub struct ObjectPlan {
    level: Level,
    out: Vec<(Name, Out)>,
}

impl ObjectPlan {
    pub(super) fn new(env: &Env<'_>, entity: &'static Entity, sels: &[Sel<'_>]) -> Option<Self> {
        let mut level = Level::new(entity);
        let out = level.object(env, None, entity, sels)?;
        Some(ObjectPlan { level, out })
    }

    /// Runs the plan over `row`, a statement that yields at most one row of the level's table
    /// (all columns, of the workspace), and writes the object; null when there is none.
    pub async fn run(&self, db: &impl ConnectionTrait, ws: i64, row: sea_orm::Statement) -> Result<Value, DbErr> {
        let level = &self.level;
        let from = format!("({}) AS b", row.sql);
        let stmt = sea_orm::Statement {
            sql: level.select_sql(&from, ""),
            values: row.values,
            db_backend: row.db_backend,
        };
        let rows = level.decode(&db.query_all_raw(stmt).await?)?;
        let Some(first) = rows.first() else { return Ok(Value::Null) };
        let nested = level.fetch_nested(db, ws, &rows).await?;
        let fetched = Fetched {
            rows: Vec::new(),
            nested,
            pages: HashMap::new(),
        };
        Ok(Writer { level, fetched: &fetched }.object(first, &self.out))
    }
}
