//! Touchpoint queries.
use std::collections::HashMap;

use chrono::{DateTime, Timelike, Utc};
use entity::touchpoint;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, QueryFilter, Select, Value};

use super::Scoped;
use super::raw::statement;
use crate::domain::scoring::Touch;

#[derive(Debug, Default, Clone)]
pub struct TouchpointFilter {
    pub lead_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub types: Option<Vec<String>>,
    pub occurred_from: Option<DateTime<Utc>>,
    pub occurred_to: Option<DateTime<Utc>>,
    /// Recorded (`created_at`) at or after.
    pub recorded_since: Option<DateTime<Utc>>,
}

pub fn select(ws: i64, f: &TouchpointFilter) -> Select<touchpoint::Entity> {
    use touchpoint::Column as C;
    let mut s = touchpoint::Entity::in_workspace(ws);
    if let Some(id) = f.lead_id {
        s = s.filter(C::LeadId.eq(id));
    }
    if let Some(t) = f.recorded_since {
        s = s.filter(C::CreatedAt.gte(t));
    }
    if let Some(id) = f.campaign_id {
        s = s.filter(C::CampaignId.eq(id));
    }
    if let Some(v) = &f.types {
        s = s.filter(C::TouchType.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.occurred_from {
        s = s.filter(C::OccurredAt.gte(t));
    }
    if let Some(t) = f.occurred_to {
        s = s.filter(C::OccurredAt.lt(t));
    }
    s
}

/// Inserts `rows` (their `id` is ignored) in one statement and sets each row's `id`; on
/// PostgreSQL, which keeps microseconds, their times are cut to what it stores.
///
/// The rows travel as one JSON array parameter, read by `json_each` on SQLite and
/// `jsonb_array_elements` on PostgreSQL, instead of eight bound values per row: one short
/// statement, prepared once, for any batch size.
///
/// Rows go in ordered by lead and time (ties in the order of `rows`), the order of the lead
/// index, whose entries are most of a batch's cost: a batch names thousands of leads, and in
/// that order each leaf page of the index is found once, next to the one before, instead of at
/// a random place per row. The IDs, which only grow, are assigned in that order too; each
/// lead's touchpoints still get them in the order of their times.
///
/// On SQLite the statement is `INSERT OR FAIL`, and the caller's transaction (every caller has
/// one) defers its foreign-key checks to the commit (`PRAGMA defer_foreign_keys`, which the
/// commit resets). A multi-row statement that may abort half-way makes SQLite copy every page
/// it changes into a statement journal first, so that it can undo the statement alone; one that
/// stops with `FAIL` keeps the rows it wrote and needs none. A failure still rolls back
/// everything: the caller returns the error and its transaction is dropped, uncommitted.
pub async fn insert_batch(db: &impl ConnectionTrait, rows: &mut [touchpoint::Model]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let micros = |t: DateTime<Utc>| t.with_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t);
        for r in rows.iter_mut() {
            r.occurred_at = micros(r.occurred_at);
            r.created_at = micros(r.created_at);
        }
    }
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let (ws, created_at) = (first.workspace_id, first.created_at);
    debug_assert!(rows.iter().all(|r| r.workspace_id == ws && r.created_at == created_at));
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].lead_id, rows[i].occurred_at));
    let json = serde_json::to_string(
        &order
            .iter()
            .map(|&i| &rows[i])
            .map(|r| {
                (
                    r.external_id.as_deref(),
                    r.idempotency_key.as_deref(),
                    r.lead_id,
                    r.campaign_id,
                    r.touch_type.as_str(),
                    super::raw::time_text(&r.occurred_at),
                )
            })
            .collect::<Vec<_>>(),
    )
    .map_err(|e| DbErr::Custom(format!("touchpoint batch: {e}")))?;
    let columns = "workspace_id, external_id, idempotency_key, lead_id, campaign_id, touch_type, occurred_at, created_at";
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO touchpoints ({columns}) \
             SELECT ?, j.v ->> 0, j.v ->> 1, (j.v ->> 2)::bigint, (j.v ->> 3)::bigint, j.v ->> 4, (j.v ->> 5)::timestamptz, ? \
             FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n RETURNING id"
        ),
        _ => format!(
            "INSERT OR FAIL INTO touchpoints ({columns}) \
             SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, ? \
             FROM json_each(?) ORDER BY key RETURNING id"
        ),
    };
    if backend == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA defer_foreign_keys = ON").await?;
    }
    let values: Vec<Value> = vec![ws.into(), created_at.into(), json.into()];
    let ids = super::raw::inserted_ids(db, statement(backend, &sql, values), rows.len(), "touchpoints").await?;
    for (i, id) in order.into_iter().zip(ids) {
        rows[i].id = id;
    }
    Ok(())
}

/// Which end of a parent's touchpoints a nested page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Newest {
    First,
    Last,
}

fn order(newest: Newest) -> &'static str {
    match newest {
        Newest::First => "occurred_at DESC, id DESC",
        Newest::Last => "occurred_at ASC, id ASC",
    }
}

/// The first `limit` touchpoints of each lead.
pub async fn top_per_lead(
    db: &impl ConnectionTrait,
    ws: i64,
    lead_ids: &[i64],
    limit: u64,
    newest: Newest,
) -> Result<Vec<touchpoint::Model>, DbErr> {
    super::raw::top_n_per_parent::<touchpoint::Entity>(db, "touchpoints", "lead_id", order(newest), ws, lead_ids, limit, "1 = 1").await
}

/// The first `limit` touchpoints of each campaign.
pub async fn top_per_campaign(
    db: &impl ConnectionTrait,
    ws: i64,
    campaign_ids: &[i64],
    limit: u64,
    newest: Newest,
) -> Result<Vec<touchpoint::Model>, DbErr> {
    super::raw::top_n_per_parent::<touchpoint::Entity>(db, "touchpoints", "campaign_id", order(newest), ws, campaign_ids, limit, "1 = 1")
        .await
}

/// The touchpoints that `condition` selects (SQL over `touchpoints t`, with `?` placeholders for
/// `values`), per lead: id, type, campaign and time, which the covering index on (workspace,
/// lead, occurred_at, id, type, campaign) holds.
///
/// On SQLite each lead's touches come as one row (`group_concat`): the driver hands rows from
/// its worker thread one at a time, and at a million touchpoints that hand-over, not SQLite,
/// is most of the time of a bulk read.
pub async fn per_lead(db: &impl ConnectionTrait, condition: &str, values: Vec<Value>) -> Result<HashMap<i64, Vec<Touch>>, DbErr> {
    let backend = db.get_database_backend();
    let mut out: HashMap<i64, Vec<Touch>> = HashMap::new();
    if backend != DbBackend::Sqlite {
        let sql = format!("SELECT t.lead_id, t.id, t.touch_type, t.campaign_id, t.occurred_at FROM touchpoints t WHERE {condition}");
        for row in db.query_all_raw(statement(backend, &sql, values)).await? {
            out.entry(row.try_get_by_index(0)?).or_default().push(Touch {
                id: row.try_get_by_index(1)?,
                touch_type: row.try_get_by_index(2)?,
                campaign_id: row.try_get_by_index(3)?,
                occurred_at: row.try_get_by_index(4)?,
            });
        }
        return Ok(out);
    }
    // Touchpoint types are [A-Z0-9_] codes and times RFC 3339, so ',' and ';' separate safely.
    let sql = format!(
        "SELECT t.lead_id, group_concat(t.id || ',' || coalesce(t.campaign_id, '') || ',' || t.occurred_at || ',' || t.touch_type, ';') \
         FROM touchpoints t WHERE {condition} GROUP BY t.lead_id"
    );
    let bad = |what: &str| DbErr::Custom(format!("unreadable touchpoint list: {what}"));
    for row in db.query_all_raw(statement(backend, &sql, values)).await? {
        let lead_id: i64 = row.try_get_by_index(0)?;
        let list: String = row.try_get_by_index(1)?;
        let touches = out.entry(lead_id).or_default();
        for item in list.split(';') {
            let mut f = item.splitn(4, ',');
            let (Some(id), Some(campaign), Some(at), Some(touch_type)) = (f.next(), f.next(), f.next(), f.next()) else {
                return Err(bad(item));
            };
            touches.push(Touch {
                id: id.parse().map_err(|_| bad(item))?,
                campaign_id: if campaign.is_empty() {
                    None
                } else {
                    Some(campaign.parse().map_err(|_| bad(item))?)
                },
                occurred_at: parse_time(at).ok_or_else(|| bad(item))?,
                touch_type: touch_type.to_owned(),
            });
        }
    }
    Ok(out)
}

/// A time as SQLite keeps it (RFC 3339, or "YYYY-MM-DD HH:MM:SS[.f]" taken as UTC).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    })
}
