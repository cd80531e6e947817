//! Relay connections over keyset pages.
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::connection::{CursorType, Edge, EmptyFields, PageInfo};
use async_graphql::{Context, Enum, Object, OutputType, TypeName};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, Select};

use crate::error::AppError;
use crate::graphql::errors::IntoGql;
use crate::graphql::loaders::{CountKey, Loaders};
use crate::store::page::{CursorKey, PageRequest, PageRows, SortValue};

/// Largest page; larger `first`/`last` are clamped to it.
pub const MAX_PAGE: i32 = 100;

/// The direction of a list's order. Ties of the ordered field are broken by the item's ID in
/// the same direction, so every order is total and pages never repeat or skip an item.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum OrderDirection {
    /// Smallest first: A before Z (by code point, case-sensitive), earlier times first. The default.
    #[default]
    Asc,
    /// Largest first: Z before A, latest times first.
    Desc,
}

/// The page arguments every list takes.
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

type CountFuture = Pin<Box<dyn Future<Output = Result<u64, DbErr>> + Send>>;

/// `totalCount`, computed only when a client asks for it.
#[derive(Clone)]
pub enum TotalCount {
    Known(u64),
    Query(Arc<dyn Fn(DatabaseConnection) -> CountFuture + Send + Sync>),
    /// Counted with the request's other parents in one grouped query.
    Loaded(CountKey),
}

impl TotalCount {
    /// Counts the rows of `select` (its filters, without order or limit) when asked.
    pub fn of<E: EntityTrait>(select: Select<E>) -> Self
    where
        Select<E>: Clone + Send + Sync + 'static,
        E::Model: Sync,
    {
        TotalCount::Query(Arc::new(move |db: DatabaseConnection| {
            let select = select.clone();
            Box::pin(async move { select.count(&db).await })
        }))
    }
}

impl TotalCount {
    async fn count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        use crate::graphql::context::ContextExt;
        match self {
            TotalCount::Known(n) => Ok(*n),
            TotalCount::Query(count) => count(ctx.db().conn.clone()).await.gql(),
            TotalCount::Loaded(key) => {
                let loaders = ctx.data_unchecked::<Loaders>();
                let n = match key {
                    CountKey::AccountLeads(k) => loaders.load_one(*k).await?,
                    CountKey::LeadTouchpoints(k) => loaders.load_one(*k).await?,
                };
                Ok(n.unwrap_or(0))
            }
        }
    }
}

/// A page of one of our lists, named after its items (`LeadConnection`, ...). Our own rather
/// than async-graphql's `Connection`, which gives the type no description.
pub struct Conn<N: OutputType> {
    edges: Vec<Edge<Cursor, N, EmptyFields>>,
    has_previous_page: bool,
    has_next_page: bool,
    total: TotalCount,
}

impl<N: OutputType> TypeName for Conn<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", N::type_name()).into()
    }
}

/// One page of a list (a Relay cursor connection). Ask for a page with `first` (and `after`)
/// or `last` (and `before`), at most 100 items; follow `pageInfo.endCursor` to the next page.
/// Items are in the list's order (`orderBy`), ties broken by ID, so pages neither repeat nor
/// skip an item while the list does not change.
#[Object(name_type)]
impl<N: OutputType> Conn<N> {
    /// Whether there are items before and after this page, and the cursors of its first and
    /// last item (null on an empty page).
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous_page,
            has_next_page: self.has_next_page,
            start_cursor: self.edges.first().map(|e| e.cursor.encode_cursor()),
            end_cursor: self.edges.last().map(|e| e.cursor.encode_cursor()),
        }
    }
    /// The items of the page with their cursors, in order.
    async fn edges(&self) -> &[Edge<Cursor, N, EmptyFields>] {
        &self.edges
    }
    /// The items of the page, in order (the edges' nodes, without cursors).
    async fn nodes(&self) -> Vec<&N> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    /// Number of items matching the filter, over all pages (counted only when asked).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        self.total.count(ctx).await
    }
}

/// An edge's cursor, encoded when a client selects it (`cursor`, or `pageInfo`'s start and end
/// cursors) rather than for every edge: a page of 50 leads with 5 touchpoints each has 300 edges,
/// and Q2 of BENCHMARKS.md asks for one cursor of them.
pub struct Cursor(CursorKey);

impl CursorType for Cursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        CursorKey::decode(s).map(Cursor).ok_or("invalid cursor")
    }

    fn encode_cursor(&self) -> String {
        self.0.encode()
    }
}

impl PageArgs {
    /// Validates the arguments; `expects_value` says whether cursors of this ordering carry a
    /// sort value (everything but ordering by ID), and of which kind.
    pub fn request(&self, expects: CursorCheck) -> Result<PageRequest, AppError> {
        let (limit, backward, cursor) = match (self.first, self.last) {
            (Some(_), Some(_)) => return Err(AppError::BadInput("pass either `first` or `last`, not both".into())),
            (None, None) => return Err(AppError::BadInput("`first` or `last` is required".into())),
            (Some(n), None) => (n, false, self.after.as_deref()),
            (None, Some(n)) => (n, true, self.before.as_deref()),
        };
        if limit < 0 {
            return Err(AppError::BadInput("`first` and `last` must not be negative".into()));
        }
        if (!backward && self.before.is_some()) || (backward && self.after.is_some()) {
            return Err(AppError::BadInput("use `after` with `first` and `before` with `last`".into()));
        }
        let cursor = match cursor {
            None => None,
            Some(raw) => {
                let key = CursorKey::decode(raw).ok_or_else(|| AppError::BadInput(format!("invalid cursor {raw:?}")))?;
                let fits = match (&key.value, expects) {
                    (None, None) => true,
                    (Some(v), Some(check)) => check(v),
                    _ => false,
                };
                if !fits {
                    return Err(AppError::BadInput("the cursor belongs to another ordering of this list".into()));
                }
                Some(key)
            }
        };
        Ok(PageRequest {
            limit: limit.min(MAX_PAGE) as u64,
            backward,
            cursor,
        })
    }
}

/// Builds the connection for a fetched page.
pub fn connection<M, N>(
    page: PageRows<M>,
    req: &PageRequest,
    total: TotalCount,
    key: impl Fn(&M) -> CursorKey,
    node: impl Fn(M) -> N,
) -> Conn<N>
where
    N: async_graphql::OutputType,
{
    let (has_previous, has_next) = if req.backward {
        (page.has_more, req.cursor.is_some())
    } else {
        (req.cursor.is_some(), page.has_more)
    };
    Conn {
        edges: page.rows.into_iter().map(|m| Edge::new(Cursor(key(&m)), node(m))).collect(),
        has_previous_page: has_previous,
        has_next_page: has_next,
        total,
    }
}

/// Which cursors an ordering accepts: none with a sort value (by ID), or values of one kind.
pub type CursorCheck = Option<fn(&SortValue) -> bool>;

pub fn is_int(v: &SortValue) -> bool {
    matches!(v, SortValue::Int(_))
}
pub fn is_text(v: &SortValue) -> bool {
    matches!(v, SortValue::Text(_))
}
pub fn is_time(v: &SortValue) -> bool {
    matches!(v, SortValue::Time(_))
}
pub fn is_date(v: &SortValue) -> bool {
    matches!(v, SortValue::Date(_))
}

/// Complexity of a list field: its page size times what each item asks for.
pub fn page_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let n = first.or(last).unwrap_or(0).clamp(0, MAX_PAGE) as usize;
    1 + n.max(1) * child_complexity
}
