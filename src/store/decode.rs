//! Models of the tables that the API reads most (leads, accounts, campaigns, touchpoints, funnel
//! stages), decoded from rows by column position.
//!
//! sea-orm's derived `FromQueryResult` looks each column up by name in every row, and turns every
//! NULL of an `Option` field into an error whose message formats the column's name, which the
//! `Option` then turns back into `None`. On a page of 50 leads with their accounts and the 5 latest
//! touchpoints with their campaigns (Q2 of BENCHMARKS.md), building models took 16 % of the
//! server's CPU, a quarter of it formatting those messages. Here the columns are looked up by name
//! once per result, and each value is read by position with the driver's own decoding: the same
//! `Option<T>` decoding that sea-orm calls for these types, so values come out the same (a test
//! compares the two on both databases).
//!
//! On PostgreSQL every row of a result has the column types of the statement, so the types are
//! checked against the fields once per result ([`Decoded::check`]) and each value is then decoded
//! without the driver's check: comparing type descriptions took 6 % of the server's CPU for Q2.
//! SQLite types each value on its own, so there every value is checked as it is decoded.
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sqlx::Row;
use sea_orm::{DbErr, QueryResult};

/// A model whose fields can be read by position.
pub trait Decoded: Sized {
    /// Field names, which are the column names, in the order `decode` reads them.
    const COLUMNS: &'static [&'static str];

    /// The model of `row`, whose column `COLUMNS[i]` is at position `at[i]`.
    fn decode(row: &QueryResult, at: &[usize]) -> Result<Self, DbErr>;

    /// Whether the columns of `row`'s result at `at` have the fields' types (PostgreSQL; a
    /// no-op on SQLite, whose values are checked one by one).
    fn check(row: &QueryResult, at: &[usize]) -> Result<(), DbErr>;
}

/// The models of `rows`, which all come from one statement (one column layout).
pub fn all<M: Decoded>(rows: &[QueryResult]) -> Result<Vec<M>, DbErr> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let at = positions(first, M::COLUMNS)?;
    M::check(first, &at)?;
    rows.iter().map(|row| M::decode(row, &at)).collect()
}

/// Where each of `columns` is in `row`.
fn positions(row: &QueryResult, columns: &[&str]) -> Result<Vec<usize>, DbErr> {
    columns
        .iter()
        .map(|&name| {
            let found = if let Some(r) = row.try_as_pg_row() {
                r.try_column(name).map(sea_orm::sqlx::Column::ordinal)
            } else if let Some(r) = row.try_as_sqlite_row() {
                r.try_column(name).map(sea_orm::sqlx::Column::ordinal)
            } else {
                return Err(DbErr::Type("rows of this driver are decoded by sea-orm".into()));
            };
            found.map_err(|e| DbErr::Type(format!("column {name}: {e}")))
        })
        .collect()
}

/// A value that both drivers decode.
pub trait Cell:
    for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Postgres>
    + sea_orm::sqlx::Type<sea_orm::sqlx::Postgres>
    + for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Sqlite>
    + sea_orm::sqlx::Type<sea_orm::sqlx::Sqlite>
{
}

impl<T> Cell for T where
    T: for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Postgres>
        + sea_orm::sqlx::Type<sea_orm::sqlx::Postgres>
        + for<'r> sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Sqlite>
        + sea_orm::sqlx::Type<sea_orm::sqlx::Sqlite>
{
}

/// Whether the column at position `i` of `row`'s result can be read as `T` (on PostgreSQL;
/// always on SQLite); `name` is for the error.
pub(crate) fn check_column<T: Cell>(row: &QueryResult, i: usize, name: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{Column, Type, TypeInfo};
    let Some(r) = row.try_as_pg_row() else { return Ok(()) };
    let column = r.try_column(i).map_err(|e| DbErr::Type(format!("column {name}: {e}")))?;
    let ty = column.type_info();
    if ty.is_null() || <T as Type<sea_orm::sqlx::Postgres>>::compatible(ty) {
        Ok(())
    } else {
        Err(DbErr::Type(format!(
            "column {name}: a {} cannot be read as {}",
            ty.name(),
            std::any::type_name::<T>()
        )))
    }
}

/// The value at position `i` of `row`; `name` is for the error. On PostgreSQL the column's type
/// must have passed [`check_column`].
pub(crate) fn cell<T: Cell>(row: &QueryResult, i: usize, name: &str) -> Result<T, DbErr> {
    let value = if let Some(r) = row.try_as_pg_row() {
        r.try_get_unchecked::<T, usize>(i)
    } else if let Some(r) = row.try_as_sqlite_row() {
        r.try_get::<T, usize>(i)
    } else {
        return Err(DbErr::Type("rows of this driver are decoded by sea-orm".into()));
    };
    value.map_err(|e| DbErr::Type(format!("column {name}: {e}")))
}

/// Implements [`Decoded`] for a model from its fields, listed with their types. The struct
/// literal makes the compiler check that the list names every field, with its type.
macro_rules! decoded {
    ($model:path { $($field:ident : $ty:ty),+ $(,)? }) => {
        impl Decoded for $model {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];

            fn decode(row: &QueryResult, at: &[usize]) -> Result<Self, DbErr> {
                let mut at = at.iter().copied();
                let mut next = || at.next().ok_or_else(|| DbErr::Type("fewer positions than columns".into()));
                Ok(Self { $($field: cell::<$ty>(row, next()?, stringify!($field))?),+ })
            }

            fn check(row: &QueryResult, at: &[usize]) -> Result<(), DbErr> {
                let mut at = at.iter().copied();
                let mut next = || at.next().ok_or_else(|| DbErr::Type("fewer positions than columns".into()));
                $(check_column::<$ty>(row, next()?, stringify!($field))?;)+
                Ok(())
            }
        }
    };
}

decoded!(entity::lead::Model {
    id: i64,
    workspace_id: i64,
    external_id: Option<String>,
    account_id: Option<i64>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    job_title: Option<String>,
    decision_role: Option<String>,
    industry: Option<String>,
    company_size: Option<String>,
    country: Option<String>,
    phone: Option<String>,
    linkedin_url: Option<String>,
    twitter_handle: Option<String>,
    facebook_url: Option<String>,
    street: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    lifecycle_status: String,
    stage_id: i64,
    owner_id: Option<i64>,
    consents: serde_json::Value,
    custom_fields: serde_json::Value,
    email_bounced_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    converted_at: Option<DateTime<Utc>>,
    erased_at: Option<DateTime<Utc>>,
    merged_into_id: Option<i64>,
    first_touch_at: Option<DateTime<Utc>>,
    first_touch_campaign_id: Option<i64>,
    search_text: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
});

decoded!(entity::account::Model {
    id: i64,
    workspace_id: i64,
    external_id: Option<String>,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    employee_count: Option<i64>,
    annual_revenue_minor: Option<i64>,
    country: Option<String>,
    customer_status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
});

decoded!(entity::campaign::Model {
    id: i64,
    workspace_id: i64,
    external_id: Option<String>,
    name: String,
    channel: String,
    kind: String,
    status: String,
    tracking_code: Option<String>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    budget_minor: Option<i64>,
    expected_revenue_minor: Option<i64>,
    expected_leads: Option<i64>,
    currency: String,
    touchpoint_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
});

decoded!(entity::touchpoint::Model {
    id: i64,
    workspace_id: i64,
    external_id: Option<String>,
    idempotency_key: Option<String>,
    lead_id: i64,
    campaign_id: Option<i64>,
    touch_type: String,
    occurred_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    version: i64,
});

decoded!(entity::funnel_stage::Model {
    id: i64,
    workspace_id: i64,
    key: String,
    name: String,
    kind: String,
    position: i32,
    sla_hours: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
});
