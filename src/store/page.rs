//! Keyset pagination: `ORDER BY sort, id` with a cursor holding the last row's (sort, id).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, Order, QueryOrder, QuerySelect, Select, Value};
use serde::{Deserialize, Serialize};

/// The sort key of one row, as kept in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortValue {
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "s")]
    Text(String),
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
    #[serde(rename = "d")]
    Date(NaiveDate),
}

impl From<SortValue> for Value {
    fn from(v: SortValue) -> Value {
        match v {
            SortValue::Int(i) => i.into(),
            SortValue::Text(s) => s.into(),
            SortValue::Time(t) => t.into(),
            SortValue::Date(d) => d.into(),
        }
    }
}

/// Position of a row: its sort value (absent when sorting by id alone) and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorKey {
    #[serde(rename = "v", skip_serializing_if = "Option::is_none", default)]
    pub value: Option<SortValue>,
    #[serde(rename = "id")]
    pub id: i64,
}

impl CursorKey {
    pub fn id(id: i64) -> Self {
        Self { value: None, id }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One page to fetch: `first`/`after` (forward) or `last`/`before` (backward).
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u64,
    pub backward: bool,
    pub cursor: Option<CursorKey>,
}

/// The rows of a page, in display order, and whether more lie beyond it in the fetch direction.
pub struct PageRows<M> {
    pub rows: Vec<M>,
    pub has_more: bool,
}

impl<M> PageRows<M> {
    /// From rows fetched with one more than `limit`, which tells whether more exist.
    pub fn from_overfetch(mut rows: Vec<M>, limit: u64) -> Self {
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Self { rows, has_more }
    }
}

/// How a list is sorted: a column (or the id alone), and the direction.
pub struct Sort<C> {
    pub column: Option<C>,
    pub id: C,
    pub desc: bool,
}

impl<C> Sort<C> {
    /// By the ID alone (lists without `orderBy`).
    pub fn by_id(id: C, desc: bool) -> Self {
        Sort { column: None, id, desc }
    }
}

/// A page of rows that are in memory already, sorted ascending by `key` (a time and the id),
/// for short lists loaded whole through a DataLoader (a lead's stage history).
pub fn page_in_memory<M>(rows: Vec<M>, req: &PageRequest, key: impl Fn(&M) -> (DateTime<Utc>, i64)) -> PageRows<M> {
    let cursor = req.cursor.as_ref().and_then(|c| match &c.value {
        Some(SortValue::Time(t)) => Some((*t, c.id)),
        _ => None,
    });
    let limit = req.limit as usize;
    let mut rows: Vec<M> = match cursor {
        Some(c) if req.backward => rows.into_iter().filter(|m| key(m) < c).collect(),
        Some(c) => rows.into_iter().filter(|m| key(m) > c).collect(),
        None => rows,
    };
    let has_more = rows.len() > limit;
    if req.backward {
        let skip = rows.len().saturating_sub(limit);
        rows.drain(..skip);
    } else {
        rows.truncate(limit);
    }
    PageRows { rows, has_more }
}

pub async fn fetch_page<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    sort: &Sort<C>,
    req: &PageRequest,
) -> Result<PageRows<E::Model>, DbErr>
where
    E: super::Scoped<Column = C>,
    C: ColumnTrait,
{
    let mut rows = super::all(db, page_select(select, sort, req)).await?;
    let has_more = rows.len() as u64 > req.limit;
    rows.truncate(req.limit as usize);
    if req.backward {
        rows.reverse();
    }
    Ok(PageRows { rows, has_more })
}

/// `select` narrowed to a page: the rows beyond the cursor in the scan order (backward pages
/// scan the reverse order), one more than the page to tell whether more exist.
pub fn page_select<E, C>(select: Select<E>, sort: &Sort<C>, req: &PageRequest) -> Select<E>
where
    E: super::Scoped<Column = C>,
    C: ColumnTrait,
{
    let desc = sort.desc ^ req.backward;
    let mut select = select;
    if let Some(cursor) = &req.cursor {
        select = select.filter(keyset_after(sort, cursor, desc));
    }
    let order = if desc { Order::Desc } else { Order::Asc };
    if let Some(col) = sort.column {
        select = select.order_by(col, order.clone());
    }
    select.order_by(sort.id, order).limit(req.limit + 1)
}

/// Rows strictly after `cursor` in the scan order.
fn keyset_after<C: ColumnTrait>(sort: &Sort<C>, cursor: &CursorKey, desc: bool) -> SimpleExpr {
    let beyond = |col: C, v: Value| -> SimpleExpr { if desc { Expr::col(col).lt(v) } else { Expr::col(col).gt(v) } };
    match (sort.column, &cursor.value) {
        (Some(col), Some(v)) => {
            let v: Value = v.clone().into();
            beyond(col, v.clone()).or(Expr::col(col).eq(v).and(beyond(sort.id, cursor.id.into())))
        }
        _ => beyond(sort.id, cursor.id.into()),
    }
}

use sea_orm::QueryFilter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let k = CursorKey {
            value: Some(SortValue::Text("Nordwind".into())),
            id: 7,
        };
        assert_eq!(CursorKey::decode(&k.encode()), Some(k));
        let k = CursorKey::id(99);
        assert_eq!(CursorKey::decode(&k.encode()), Some(k));
        assert_eq!(CursorKey::decode("!!"), None);
        assert_eq!(CursorKey::decode(&URL_SAFE_NO_PAD.encode("{}")), None);
    }
}
