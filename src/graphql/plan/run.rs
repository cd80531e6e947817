//! Plans of one level (its columns, joins and nested rows), their statements, and the response
//! values written from their rows.
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use async_graphql::{Name, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};

use super::collect::{Env, Sel};
use super::describe::{Codec, Entity, List, Many, ManyOrder, Read, Src, Total};
use crate::graphql::ids::NodeType;
use crate::graphql::pagination::PageArgs;
use crate::graphql::scalars;
use crate::store::decode::{cell, check_column};
use crate::store::page::{CursorKey, PageRequest, SortValue};
use crate::store::raw::statement;

/// A value that a level's statement selects: of the level's own row (`join: None`) or of a
/// joined to-one row.
struct Col {
    join: Option<usize>,
    src: Src,
    codec: Codec,
}

impl Col {
    /// For error messages.
    fn name(&self) -> &'static str {
        match self.src {
            Src::Column(c) | Src::Expr(c) => c,
        }
    }
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

/// Rows of a to-many relation below the level's rows, fetched for all of them at once.
struct Nested {
    /// Where the parent's ID is in the level's columns.
    parent_id: usize,
    level: Level,
    kind: Kind,
}

enum Kind {
    /// A page per parent, written as a connection.
    Page {
        rel: &'static Many,
        order: ManyOrder,
        req: PageRequest,
        total: TotalFrom,
        out: Vec<(Name, ConnOut)>,
    },
    /// All rows per parent, written as a list.
    List { rel: &'static List, out: Vec<(Name, Out)> },
}

/// Where a nested page's `totalCount` comes from.
enum TotalFrom {
    /// Counted in one grouped statement (only when selected).
    Count { selected: bool },
    /// A column of the parent level.
    Parent(usize),
}

/// One statement's worth of a plan: an entity's rows with the columns and joins that the
/// selection needs, and the nested rows below them.
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
    /// An amount in minor units and its currency: null when the amount is NULL.
    Money(usize, usize, Vec<(Name, MoneyOut)>),
    /// A joined row: null when its ID column is NULL.
    One(usize, Vec<(Name, Out)>),
    Nested(usize),
}

enum MoneyOut {
    Typename,
    Amount,
    Currency,
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
enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Time(DateTime<Utc>),
    Date(NaiveDate),
}

/// Every level selects its row's ID first.
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
        self.value(join, Src::Column(column), codec)
    }

    fn value(&mut self, join: Option<usize>, src: Src, codec: Codec) -> usize {
        if let Some(i) = self.cols.iter().position(|c| c.join == join && c.src == src) {
            return i;
        }
        self.cols.push(Col { join, src, codec });
        self.cols.len() - 1
    }

    /// Sorts the level by its own column `column` (`None`: by ID); the cursors carry its value.
    fn sort_by(&mut self, column: Option<&'static str>) {
        self.sort = column.map(|c| self.col(None, c, self.entity.codec(c)));
    }

    fn join(&mut self, parent: Option<usize>, field: &'static str, entity: &'static Entity, fk: &'static str) -> usize {
        if let Some(i) = self.joins.iter().position(|j| j.parent == parent && j.field == field) {
            return i;
        }
        // The foreign key is not selected: the ON clause reads it, and the joined ID tells
        // whether there is a row.
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
                let field = entity.field(name)?;
                match &field.read {
                    Read::Id => Out::Id(self.col(at, "id", Codec::I64), entity.node?),
                    Read::Value(src, codec) => Out::Col(self.value(at, *src, *codec)),
                    Read::FullName => Out::FullName(self.col(at, "first_name", Codec::Text), self.col(at, "last_name", Codec::Text)),
                    Read::Money { minor, currency } => {
                        let mut fields = Vec::new();
                        for s in env.below(sel, "Money")? {
                            let f = match s.field.name.node.as_str() {
                                "__typename" => MoneyOut::Typename,
                                "amount" => MoneyOut::Amount,
                                "currency" => MoneyOut::Currency,
                                _ => return None,
                            };
                            fields.push((s.key.clone(), f));
                        }
                        Out::Money(self.value(at, *minor, Codec::I64), self.col(at, currency, Codec::Text), fields)
                    }
                    Read::One { entity: child, fk } => {
                        let j = self.join(at, field.name, child, fk);
                        let sels = env.below(sel, child.type_name)?;
                        let fields = self.object(env, Some(j), child, &sels)?;
                        Out::One(self.joins[j].id, fields)
                    }
                    Read::Many(rel) => {
                        let parent_id = self.col(at, "id", Codec::I64);
                        let total = match rel.total {
                            Total::Count => TotalFrom::Count { selected: false },
                            Total::ParentColumn(c) => TotalFrom::Parent(self.col(at, c, Codec::I64)),
                        };
                        let nested = Nested::page(env, parent_id, rel, total, sel)?;
                        self.nested.push(nested);
                        Out::Nested(self.nested.len() - 1)
                    }
                    Read::List(rel) => {
                        let parent_id = self.col(at, "id", Codec::I64);
                        let mut level = Level::new(rel.entity);
                        level.col(None, rel.fk, Codec::I64);
                        let sels = env.below(sel, rel.entity.type_name)?;
                        let out = level.object(env, None, rel.entity, &sels)?;
                        self.nested.push(Nested {
                            parent_id,
                            level,
                            kind: Kind::List { rel, out },
                        });
                        Out::Nested(self.nested.len() - 1)
                    }
                }
            };
            out.push((sel.key.clone(), write));
        }
        Some(out)
    }

    /// The fields of a connection over this level's rows.
    fn connection(&mut self, env: &Env<'_>, sels: &[Sel<'_>]) -> Option<Vec<(Name, ConnOut)>> {
        let (connection, edge) = (self.entity.connection, self.entity.edge);
        let mut out = Vec::with_capacity(sels.len());
        for sel in sels {
            let write = match sel.field.name.node.as_str() {
                "__typename" => ConnOut::Typename(connection),
                "totalCount" => ConnOut::TotalCount,
                "pageInfo" => {
                    let mut fields = Vec::new();
                    for s in env.below(sel, "PageInfo")? {
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
                    for s in env.below(sel, edge)? {
                        let f = match s.field.name.node.as_str() {
                            "__typename" => EdgeOut::Typename(edge),
                            "cursor" => EdgeOut::Cursor,
                            "node" => {
                                let sels = env.below(&s, self.entity.type_name)?;
                                EdgeOut::Node(self.object(env, None, self.entity, &sels)?)
                            }
                            _ => return None,
                        };
                        fields.push((s.key.clone(), f));
                    }
                    ConnOut::Edges(fields)
                }
                "nodes" => {
                    let sels = env.below(sel, self.entity.type_name)?;
                    ConnOut::Nodes(self.object(env, None, self.entity, &sels)?)
                }
                _ => return None,
            };
            out.push((sel.key.clone(), write));
        }
        Some(out)
    }

    /// `SELECT <values> FROM <from> LEFT JOIN ... [ORDER BY <order>]`, where `from` yields
    /// the level's table's columns as `b`.
    fn select_sql(&self, from: &str, order: &str) -> String {
        // Built in one buffer: this runs for every planned request, and a `format!` per column
        // and join cost Q1 a tenth of its instructions.
        let mut sql = String::with_capacity(32 + 24 * self.cols.len() + from.len() + 110 * self.joins.len() + order.len());
        sql.push_str("SELECT ");
        for (i, c) in self.cols.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match c.src {
                Src::Column(column) => {
                    push_alias(&mut sql, c.join);
                    sql.push_str(".\"");
                    sql.push_str(column);
                    sql.push('"');
                }
                Src::Expr(expr) => {
                    for (k, part) in expr.split("{t}").enumerate() {
                        if k > 0 {
                            push_alias(&mut sql, c.join);
                        }
                        sql.push_str(part);
                    }
                }
            }
        }
        sql.push_str(" FROM ");
        sql.push_str(from);
        for (j, join) in self.joins.iter().enumerate() {
            // LEFT JOIN <table> jN ON jN."id" = <parent>."<fk>" AND jN."workspace_id" = <parent>."workspace_id"
            let me = Some(j);
            sql.push_str(" LEFT JOIN ");
            sql.push_str(join.entity.table);
            sql.push(' ');
            push_alias(&mut sql, me);
            sql.push_str(" ON ");
            push_alias(&mut sql, me);
            sql.push_str(".\"id\" = ");
            push_alias(&mut sql, join.parent);
            sql.push_str(".\"");
            sql.push_str(join.fk);
            sql.push_str("\" AND ");
            push_alias(&mut sql, me);
            sql.push_str(".\"workspace_id\" = ");
            push_alias(&mut sql, join.parent);
            sql.push_str(".\"workspace_id\"");
        }
        if !order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(order);
        }
        sql
    }

    /// The level's own columns, for the inner select of a nested page, with the workspace
    /// that joins and expressions compare.
    fn own_columns(&self) -> String {
        self.own_names().iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    }

    /// The names of the level's own columns, with the workspace and the foreign keys that
    /// the joins' ON clauses read.
    fn own_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = vec!["workspace_id"];
        let fks = self.joins.iter().filter(|j| j.parent.is_none()).map(|j| j.fk);
        let columns = self.cols.iter().filter_map(|c| match (c.join, c.src) {
            (None, Src::Column(column)) => Some(column),
            _ => None,
        });
        for column in columns.chain(fks) {
            if !names.contains(&column) {
                names.push(column);
            }
        }
        names
    }

    fn decode(&self, rows: &[QueryResult]) -> Result<Vec<Vec<Cell>>, DbErr> {
        if let Some(first) = rows.first() {
            for (i, c) in self.cols.iter().enumerate() {
                match c.codec {
                    Codec::Text | Codec::Enum(_) => check_column::<Option<String>>(first, i, c.name())?,
                    Codec::I64 => check_column::<Option<i64>>(first, i, c.name())?,
                    Codec::I32 => check_column::<Option<i32>>(first, i, c.name())?,
                    Codec::Bool => check_column::<Option<bool>>(first, i, c.name())?,
                    Codec::Time => check_column::<Option<DateTime<Utc>>>(first, i, c.name())?,
                    Codec::Date => check_column::<Option<NaiveDate>>(first, i, c.name())?,
                }
            }
        }
        // Plain loops: collecting a row's cells through `Result` cannot size the row's vector,
        // which then grew three times per row.
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(self.cols.len());
            for (i, c) in self.cols.iter().enumerate() {
                let name = c.name();
                cells.push(match c.codec {
                    Codec::Text | Codec::Enum(_) => cell::<Option<String>>(row, i, name)?.map_or(Cell::Null, Cell::Text),
                    Codec::I64 => cell::<Option<i64>>(row, i, name)?.map_or(Cell::Null, Cell::Int),
                    Codec::I32 => cell::<Option<i32>>(row, i, name)?.map_or(Cell::Null, |v| Cell::Int(v.into())),
                    Codec::Bool => cell::<Option<bool>>(row, i, name)?.map_or(Cell::Null, Cell::Bool),
                    Codec::Time => cell::<Option<DateTime<Utc>>>(row, i, name)?.map_or(Cell::Null, Cell::Time),
                    Codec::Date => cell::<Option<NaiveDate>>(row, i, name)?.map_or(Cell::Null, Cell::Date),
                });
            }
            out.push(cells);
        }
        Ok(out)
    }

    /// The level's decoded rows over `rows`, a statement that yields the level's own columns
    /// (`own_names`) of its table, in the caller's workspace: its joins added, in `order`.
    async fn rows_of(&self, db: &impl ConnectionTrait, rows: sea_orm::Statement, order: &str) -> Result<Vec<Vec<Cell>>, DbErr> {
        let from = format!("({}) AS b", rows.sql);
        let stmt = sea_orm::Statement {
            sql: self.select_sql(&from, order),
            values: rows.values,
            db_backend: rows.db_backend,
        };
        self.decode(&db.query_all_raw(stmt).await?)
    }

    /// Fetches the nested rows below `rows` (this level's rows), depth first.
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

    /// The position of the level's own column `column`, which the plan selects.
    fn own(&self, column: &str) -> usize {
        self.cols
            .iter()
            .position(|c| c.join.is_none() && matches!(c.src, Src::Column(name) if name == column))
            .expect("the plan selects the column")
    }
}

/// Writes the alias of the level's row (`b`) or of join `j` (`j0`, `j1`, ...).
fn push_alias(sql: &mut String, join: Option<usize>) {
    match join {
        None => sql.push('b'),
        Some(j) => {
            let _ = write!(sql, "j{j}");
        }
    }
}

/// `parent_col IN (parents)` with the IDs as one parameter (as `store::id_in`): one statement
/// text for any number of parents.
fn in_parents(backend: DbBackend, column: &str, parents: &[i64]) -> (String, sea_orm::Value) {
    match backend {
        DbBackend::Postgres => (format!("{column} = ANY(?)"), parents.to_vec().into()),
        _ => (
            format!("{column} IN (SELECT value FROM json_each(?))"),
            serde_json::to_string(parents).expect("numbers are JSON").into(),
        ),
    }
}

impl Nested {
    fn page(env: &Env<'_>, parent_id: usize, rel: &'static Many, mut total: TotalFrom, sel: &Sel<'_>) -> Option<Self> {
        let f = sel.field;
        let order = (rel.order)(env.argument(f, "orderBy")?)?;
        // The page's rows are put in order here (`group`), by bytes for texts, which is not
        // every database's collation: a page ordered by a text takes the generic path.
        if order
            .column
            .is_some_and(|c| matches!(rel.entity.codec(c), Codec::Text | Codec::Enum(_)))
        {
            return None;
        }
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
        level.sort_by(order.column);
        let sels = env.below(sel, rel.entity.connection)?;
        let out = level.connection(env, &sels)?;
        if let TotalFrom::Count { selected } = &mut total {
            *selected = out.iter().any(|(_, o)| matches!(o, ConnOut::TotalCount));
        }
        Some(Nested {
            parent_id,
            level,
            kind: Kind::Page {
                rel,
                order,
                req,
                total,
                out,
            },
        })
    }

    async fn fetch(&self, db: &impl ConnectionTrait, ws: i64, parents: &[i64]) -> Result<Fetched, DbErr> {
        if parents.is_empty() {
            return Ok(Fetched::default());
        }
        match &self.kind {
            Kind::Page {
                rel, order, req, total, ..
            } => {
                let mut fetched = self.fetch_pages(db, ws, parents, rel, *order, req).await?;
                if let TotalFrom::Count { selected: true } = total {
                    fetched.counts = count_per_parent(db, ws, rel, parents).await?;
                }
                Ok(fetched)
            }
            Kind::List { rel, .. } => self.fetch_lists(db, ws, parents, rel).await,
        }
    }

    /// The page of every parent: each parent's rows an index range scan with its own LIMIT, by
    /// a LATERAL join over an array of parent IDs on PostgreSQL (one plan for any number of
    /// parents) and by UNION ALL arms on SQLite (a window function over all parents' rows was
    /// 3 times slower there), 400 parents a statement.
    async fn fetch_pages(
        &self,
        db: &impl ConnectionTrait,
        ws: i64,
        parents: &[i64],
        rel: &Many,
        order: ManyOrder,
        req: &PageRequest,
    ) -> Result<Fetched, DbErr> {
        let backend = db.get_database_backend();
        let level = &self.level;
        let desc = order.desc ^ req.backward;
        let dir = if desc { "DESC" } else { "ASC" };
        let sort = match order.column {
            Some(c) => format!("\"{c}\" {dir}, \"id\" {dir}"),
            None => format!("\"id\" {dir}"),
        };
        // Rows strictly beyond the cursor in the scan order.
        let (keyset, keyset_values): (String, Vec<sea_orm::Value>) = match &req.cursor {
            None => (String::new(), Vec::new()),
            Some(cursor) => {
                let cmp = if desc { "<" } else { ">" };
                match (order.column, &cursor.value) {
                    (Some(c), Some(v)) => (
                        format!(" AND (\"{c}\" {cmp} ? OR (\"{c}\" = ? AND \"id\" {cmp} ?))"),
                        vec![v.clone().into(), v.clone().into(), cursor.id.into()],
                    ),
                    _ => (format!(" AND \"id\" {cmp} ?"), vec![cursor.id.into()]),
                }
            }
        };
        let limit = (req.limit + 1) as i64;
        let (table, fk, filter) = (rel.entity.table, rel.fk, rel.filter);
        let columns = level.own_columns();
        let inner = format!("SELECT {columns} FROM {table} WHERE \"workspace_id\" = ? AND {filter} AND \"{fk}\" = ");
        let mut raw = Vec::new();
        if backend == DbBackend::Postgres {
            let from =
                format!("unnest(?::bigint[]) AS p(parent_id) CROSS JOIN LATERAL ({inner}p.parent_id{keyset} ORDER BY {sort} LIMIT ?) AS b");
            let mut values: Vec<sea_orm::Value> = vec![parents.to_vec().into(), ws.into()];
            values.extend(keyset_values.iter().cloned());
            values.push(limit.into());
            raw = db.query_all_raw(statement(backend, &level.select_sql(&from, ""), values)).await?;
        } else {
            let arm = format!("SELECT * FROM ({inner}?{keyset} ORDER BY {sort} LIMIT ?)");
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
                raw.extend(db.query_all_raw(statement(backend, &level.select_sql(&from, ""), values)).await?);
            }
        }
        // Each parent's rows, in the scan order, one more than the page.
        let limit = req.limit as usize;
        let backward = req.backward;
        self.group(db, ws, &raw, fk, Some(desc), |rows, start| {
            let has_more = rows.len() - start > limit;
            rows.truncate(start + limit);
            if backward {
                rows[start..].reverse();
            }
            has_more
        })
        .await
    }

    /// Every row of every parent, in one statement.
    async fn fetch_lists(&self, db: &impl ConnectionTrait, ws: i64, parents: &[i64], rel: &List) -> Result<Fetched, DbErr> {
        let backend = db.get_database_backend();
        let (condition, ids) = in_parents(backend, &format!("b.\"{}\"", rel.fk), parents);
        let from = format!("{} AS b", rel.entity.table);
        let mut sql = self.level.select_sql(&from, "");
        sql.push_str(&format!(
            " WHERE b.\"workspace_id\" = ? AND {condition} ORDER BY b.\"{}\", {}",
            rel.fk, rel.order
        ));
        // The joins come before WHERE: `select_sql` ends with them when there is no order.
        let raw = db.query_all_raw(statement(backend, &sql, vec![ws.into(), ids])).await?;
        self.group(db, ws, &raw, rel.fk, None, |_, _| false).await
    }

    /// Decodes `raw`, groups the rows by the parent column `fk` (`page` trims a group, the
    /// rows from `start` on, and tells whether its page has more), and fetches the levels
    /// below. `raw` is sorted by parent, or, for pages (`scan_desc` given), sorted here: by
    /// parent, then by the level's sort column and ID in the scan's direction. Sorting the few
    /// hundred decoded rows here costs a fraction of SQLite's sorter over the UNION ALL arms
    /// (records built and compared column by column), and needs no guarantee of the arms' or
    /// the LATERAL join's order.
    async fn group(
        &self,
        db: &impl ConnectionTrait,
        ws: i64,
        raw: &[QueryResult],
        fk: &str,
        scan_desc: Option<bool>,
        mut page: impl FnMut(&mut Vec<Vec<Cell>>, usize) -> bool,
    ) -> Result<Fetched, DbErr> {
        let level = &self.level;
        let fk_at = level.own(fk);
        let mut rows = Vec::with_capacity(raw.len());
        let mut pages = HashMap::new();
        let mut decoded = level.decode(raw)?;
        if let Some(desc) = scan_desc {
            let sort = level.sort;
            decoded.sort_by(|a, b| {
                let within = sort
                    .map_or(Ordering::Equal, |s| a[s].order(&b[s]))
                    .then_with(|| a[ID].order(&b[ID]));
                a[fk_at].order(&b[fk_at]).then(if desc { within.reverse() } else { within })
            });
        }
        let mut it = decoded.into_iter().peekable();
        while let Some(first) = it.next() {
            let parent = first[fk_at].int().unwrap_or_default();
            let start = rows.len();
            rows.push(first);
            while it.peek().is_some_and(|r| r[fk_at].int() == Some(parent)) {
                rows.extend(it.next());
            }
            let has_more = page(&mut rows, start);
            pages.insert(parent, (start..rows.len(), has_more));
        }
        let nested = level.fetch_nested(db, ws, &rows).await?;
        Ok(Fetched {
            rows,
            nested,
            pages,
            counts: HashMap::new(),
        })
    }
}

/// The number of rows of `rel` per parent (those its filter keeps), for `totalCount`.
async fn count_per_parent(db: &impl ConnectionTrait, ws: i64, rel: &Many, parents: &[i64]) -> Result<HashMap<i64, u64>, DbErr> {
    let backend = db.get_database_backend();
    let fk = format!("\"{}\"", rel.fk);
    let (condition, ids) = in_parents(backend, &fk, parents);
    let sql = format!(
        "SELECT {fk}, COUNT(*) FROM {} WHERE \"workspace_id\" = ? AND {} AND {condition} GROUP BY {fk}",
        rel.entity.table, rel.filter
    );
    let mut out = HashMap::new();
    for row in db.query_all_raw(statement(backend, &sql, vec![ws.into(), ids])).await? {
        let parent: i64 = row.try_get_by_index(0)?;
        let n: i64 = row.try_get_by_index(1)?;
        out.insert(parent, n.max(0) as u64);
    }
    Ok(out)
}

/// The rows of one level and of the levels below it.
#[derive(Default)]
struct Fetched {
    rows: Vec<Vec<Cell>>,
    nested: Vec<Fetched>,
    /// For a nested level: each parent's rows in `rows` and whether its page has more.
    pages: HashMap<i64, (Range<usize>, bool)>,
    /// For a nested page whose `totalCount` is counted: the count per parent.
    counts: HashMap<i64, u64>,
}

impl Fetched {
    /// About the size of the JSON text of these rows (a Q2 page is some 60 KB): the buffer is
    /// made once rather than grown and copied a dozen times.
    fn size_hint(&self, level: &Level) -> usize {
        let own = 64 + self.rows.len() * level.cols.len() * 40;
        own + self
            .nested
            .iter()
            .zip(&level.nested)
            .map(|(f, n)| f.size_hint(&n.level))
            .sum::<usize>()
    }
}

impl Cell {
    /// The order of two values of one sort column: as SQL orders them (NULL first), with text
    /// compared by bytes (SQLite's BINARY; the nested pages sort by times and IDs).
    fn order(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Time(a), Cell::Time(b)) => a.cmp(b),
            (Cell::Date(a), Cell::Date(b)) => a.cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Bool(_) => 1,
            Cell::Int(_) => 2,
            Cell::Time(_) => 3,
            Cell::Date(_) => 4,
            Cell::Text(_) => 5,
        }
    }

    fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn sort_value(&self) -> Option<SortValue> {
        match self {
            Cell::Null | Cell::Bool(_) => None,
            Cell::Int(i) => Some(SortValue::Int(*i)),
            Cell::Text(s) => Some(SortValue::Text(s.clone())),
            Cell::Time(t) => Some(SortValue::Time(*t)),
            Cell::Date(d) => Some(SortValue::Date(*d)),
        }
    }
}

/// Writes a level's rows as JSON text, as serde_json writes the generic path's values.
struct Writer<'a> {
    level: &'a Level,
    fetched: &'a Fetched,
}

/// A JSON string (escaped as serde_json escapes it).
fn string(out: &mut Vec<u8>, s: &str) {
    // Most texts (names, e-mails, codes) need no escape: copied as they are, they cost a
    // fraction of serde_json's escaping writer.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *out, s).expect("writing to memory does not fail");
}

/// Any value, through serde_json.
fn value(out: &mut Vec<u8>, v: &impl serde::Serialize) {
    serde_json::to_writer(&mut *out, v).expect("writing to memory does not fail");
}

/// `{"key":` or `,"key":`.
fn key(out: &mut Vec<u8>, first: bool, key: &Name) {
    out.push(if first { b'{' } else { b',' });
    string(out, key);
    out.push(b':');
}

/// Writes an object's fields with `field`, which writes one value; an object without fields
/// is written as null, as async-graphql 7.2 writes it.
fn object<T>(out: &mut Vec<u8>, fields: &[(Name, T)], mut field: impl FnMut(&mut Vec<u8>, &T)) {
    if fields.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    for (i, (name, f)) in fields.iter().enumerate() {
        key(out, i == 0, name);
        field(out, f);
    }
    out.push(b'}');
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, it);
    }
    out.push(b']');
}

impl Cell {
    fn write(&self, out: &mut Vec<u8>, codec: Codec) {
        match (self, codec) {
            (Cell::Null, _) => out.extend_from_slice(b"null"),
            (Cell::Text(s), Codec::Enum(f)) => value(out, &f(s)),
            (Cell::Text(s), _) => string(out, s),
            (Cell::Int(i), _) => value(out, i),
            (Cell::Bool(b), _) => value(out, b),
            (Cell::Time(t), _) => scalars::write_datetime(out, t),
            (Cell::Date(d), _) => value(out, &scalars::Date(*d).to_value()),
        }
    }
}

impl Writer<'_> {
    fn object(&self, out: &mut Vec<u8>, row: &[Cell], fields: &[(Name, Out)]) {
        object(out, fields, |out, f| match f {
            Out::Typename(t) => string(out, t),
            Out::Id(i, node) => match row[*i].int() {
                Some(id) => {
                    out.push(b'"');
                    crate::domain::ids::write_global_id(out, node.name(), id);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            },
            Out::Col(i) => row[*i].write(out, self.level.cols[*i].codec),
            Out::FullName(first, last) => {
                let parts: Vec<&str> = [&row[*first], &row[*last]]
                    .into_iter()
                    .filter_map(|c| match c {
                        Cell::Text(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                if parts.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    string(out, &parts.join(" "));
                }
            }
            Out::Money(minor, currency, fields) => match (&row[*minor], &row[*currency]) {
                (Cell::Int(minor), Cell::Text(currency)) => {
                    let money = scalars::Money::from_minor(*minor, currency);
                    object(out, fields, |out, f| match f {
                        MoneyOut::Typename => string(out, "Money"),
                        MoneyOut::Amount => value(out, &money.amount.to_value()),
                        MoneyOut::Currency => string(out, &money.currency),
                    });
                }
                _ => out.extend_from_slice(b"null"),
            },
            Out::One(id, fields) => match row[*id] {
                Cell::Null => out.extend_from_slice(b"null"),
                _ => self.object(out, row, fields),
            },
            Out::Nested(n) => self.nested(out, row, *n),
        });
    }

    /// The nested page or list `n` of `row`.
    fn nested(&self, out: &mut Vec<u8>, row: &[Cell], n: usize) {
        let nested = &self.level.nested[n];
        let fetched = &self.fetched.nested[n];
        let parent = row[nested.parent_id].int().unwrap_or_default();
        let (range, has_more) = fetched.pages.get(&parent).cloned().unwrap_or((0..0, false));
        let writer = Writer {
            level: &nested.level,
            fetched,
        };
        let rows = &fetched.rows[range];
        match &nested.kind {
            Kind::Page {
                req, total, out: fields, ..
            } => {
                let total = match total {
                    TotalFrom::Count { .. } => fetched.counts.get(&parent).copied().unwrap_or(0),
                    TotalFrom::Parent(i) => row[*i].int().unwrap_or(0).max(0) as u64,
                };
                writer.connection(out, rows, req, has_more, Some(total), fields)
            }
            Kind::List { out: fields, .. } => list(out, rows, |out, r| writer.object(out, r, fields)),
        }
    }

    fn cursor(&self, out: &mut Vec<u8>, row: &[Cell]) {
        let key = CursorKey {
            value: self.level.sort.and_then(|i| row[i].sort_value()),
            id: row[ID].int().unwrap_or_default(),
        };
        string(out, &key.encode());
    }

    fn connection(
        &self,
        out: &mut Vec<u8>,
        rows: &[Vec<Cell>],
        req: &PageRequest,
        has_more: bool,
        total: Option<u64>,
        fields: &[(Name, ConnOut)],
    ) {
        let (has_previous, has_next) = if req.backward {
            (has_more, req.cursor.is_some())
        } else {
            (req.cursor.is_some(), has_more)
        };
        object(out, fields, |out, f| match f {
            ConnOut::Typename(t) => string(out, t),
            ConnOut::TotalCount => match total {
                Some(n) => value(out, &n),
                None => out.extend_from_slice(b"null"),
            },
            ConnOut::PageInfo(fields) => object(out, fields, |out, f| match f {
                PageOut::Typename => string(out, "PageInfo"),
                PageOut::HasPrevious => value(out, &has_previous),
                PageOut::HasNext => value(out, &has_next),
                PageOut::Start => match rows.first() {
                    Some(r) => self.cursor(out, r),
                    None => out.extend_from_slice(b"null"),
                },
                PageOut::End => match rows.last() {
                    Some(r) => self.cursor(out, r),
                    None => out.extend_from_slice(b"null"),
                },
            }),
            ConnOut::Edges(fields) => list(out, rows, |out, row| {
                object(out, fields, |out, f| match f {
                    EdgeOut::Typename(t) => string(out, t),
                    EdgeOut::Cursor => self.cursor(out, row),
                    EdgeOut::Node(fields) => self.object(out, row, fields),
                })
            }),
            ConnOut::Nodes(fields) => list(out, rows, |out, row| self.object(out, row, fields)),
        });
    }
}

/// The plan of a page of a list: the level of its rows and the connection's fields.
pub struct PagePlan {
    level: Level,
    out: Vec<(Name, ConnOut)>,
}

impl PagePlan {
    pub(super) fn new(env: &Env<'_>, entity: &'static Entity, sort_column: Option<&'static str>, sels: &[Sel<'_>]) -> Option<Self> {
        let mut level = Level::new(entity);
        level.sort_by(sort_column);
        let out = level.connection(env, sels)?;
        Some(PagePlan { level, out })
    }

    /// The columns of the level's table that the plan reads: the statement of the page's rows
    /// need select no others.
    pub fn columns(&self) -> Vec<&'static str> {
        self.level.own_names()
    }

    /// Whether the connection's `totalCount` is selected (the caller counts).
    pub fn wants_total(&self) -> bool {
        self.out.iter().any(|(_, o)| matches!(o, ConnOut::TotalCount))
    }

    /// Runs the plan over `page`, a statement that yields the page's rows of the level's table
    /// (at least its `columns`, the workspace's rows only, one more than the page in the scan
    /// order), and writes the connection.
    pub async fn run(
        &self,
        db: &impl ConnectionTrait,
        ws: i64,
        page: sea_orm::Statement,
        sort_desc: bool,
        req: &PageRequest,
        total: Option<u64>,
    ) -> Result<Vec<u8>, DbErr> {
        let level = &self.level;
        let dir = if sort_desc ^ req.backward { "DESC" } else { "ASC" };
        let order = match level.sort {
            Some(i) => format!("b.\"{}\" {dir}, b.\"id\" {dir}", level.cols[i].name()),
            None => format!("b.\"id\" {dir}"),
        };
        let mut rows = level.rows_of(db, page, &order).await?;
        let has_more = rows.len() as u64 > req.limit;
        rows.truncate(req.limit as usize);
        if req.backward {
            rows.reverse();
        }
        let nested = level.fetch_nested(db, ws, &rows).await?;
        let fetched = Fetched {
            rows,
            nested,
            ..Default::default()
        };
        let writer = Writer { level, fetched: &fetched };
        let mut out = Vec::with_capacity(fetched.size_hint(level));
        writer.connection(&mut out, &fetched.rows, req, has_more, total, &self.out);
        Ok(out)
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

    /// The columns of the level's table that the plan reads.
    pub fn columns(&self) -> Vec<&'static str> {
        self.level.own_names()
    }

    /// Runs the plan over `rows`, a statement that yields rows of the level's table (at least
    /// its `columns`, of the workspace), and writes each row's object (JSON text) by the row's ID.
    pub async fn run(&self, db: &impl ConnectionTrait, ws: i64, rows: sea_orm::Statement) -> Result<HashMap<i64, Vec<u8>>, DbErr> {
        let level = &self.level;
        let rows = level.rows_of(db, rows, "").await?;
        let nested = level.fetch_nested(db, ws, &rows).await?;
        let fetched = Fetched {
            nested,
            ..Default::default()
        };
        let writer = Writer { level, fetched: &fetched };
        Ok(rows
            .iter()
            .map(|row| {
                let mut out = Vec::with_capacity(256);
                writer.object(&mut out, row, &self.out);
                (row[ID].int().unwrap_or_default(), out)
            })
            .collect())
    }
}
