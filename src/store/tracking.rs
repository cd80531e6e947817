//! Hand-written reads of first-party capture's tables.
use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use entity::tracked_hit;

use super::raw::{statement, time_text};

/// Which of these (visitor, event ID) pairs of workspace `ws` a stored hit has already. The
/// pairs travel as one JSON array parameter and each is one look-up in the index on
/// (workspace, visitor, event ID).
pub async fn events_seen(db: &impl ConnectionTrait, ws: i64, pairs: &[(i64, &str)]) -> Result<HashSet<(i64, String)>, DbErr> {
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT t.visitor_id, t.event_id FROM jsonb_array_elements(?::jsonb) AS j(v) \
             JOIN tracked_hits AS t ON t.workspace_id = ? AND t.visitor_id = (j.v ->> 0)::bigint AND t.event_id = j.v ->> 1"
        }
        // CROSS JOIN keeps the pairs outside: SQLite otherwise walks every hit of the
        // workspace and looks for it among the pairs.
        _ => {
            "SELECT t.visitor_id, t.event_id FROM json_each(?) AS j \
             CROSS JOIN tracked_hits AS t ON t.workspace_id = ? AND t.visitor_id = j.value ->> 0 AND t.event_id = j.value ->> 1"
        }
    };
    let json = serde_json::to_string(pairs).map_err(|e| DbErr::Custom(format!("event pairs: {e}")))?;
    let mut seen = HashSet::new();
    for row in db.query_all_raw(statement(backend, sql, vec![json.into(), ws.into()])).await? {
        seen.insert((row.try_get_by_index::<i64>(0)?, row.try_get_by_index::<String>(1)?));
    }
    Ok(seen)
}

/// Inserts processed hits, all of one workspace and one batch (`created_at`), as one statement (the rows travel as one JSON array
/// parameter, as touchpoints and credits do) and sets their IDs, which grow in the rows' order.
pub async fn insert_hits(db: &impl ConnectionTrait, rows: &mut [tracked_hit::Model]) -> Result<(), DbErr> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let (ws, created_at) = (first.workspace_id, first.created_at);
    debug_assert!(rows.iter().all(|r| r.workspace_id == ws && r.created_at == created_at));
    let json = serde_json::to_string(
        &rows
            .iter()
            .map(|r| {
                (
                    (r.visitor_id, r.lead_id, r.campaign_id, r.link_id),
                    (r.touch_type.as_str(), r.event_id.as_deref(), r.campaign_code.as_deref()),
                    (r.machine, r.bot, r.url.as_deref(), r.referrer.as_deref(), r.params.as_ref()),
                    (time_text(&r.occurred_at), time_text(&r.received_at)),
                )
            })
            .collect::<Vec<_>>(),
    )
    .map_err(|e| DbErr::Custom(format!("hit batch: {e}")))?;
    let columns = "workspace_id, visitor_id, lead_id, campaign_id, link_id, touch_type, event_id, campaign_code, \
                   machine, bot, url, referrer, params, occurred_at, received_at, created_at";
    let backend = db.get_database_backend();
    // Each row is [[visitor, lead, campaign, link], [type, event ID, code], [machine, bot, url,
    // referrer, params], [occurred, received]].
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO tracked_hits ({columns}) \
             SELECT ?, (j.v #>> '{{0,0}}')::bigint, (j.v #>> '{{0,1}}')::bigint, (j.v #>> '{{0,2}}')::bigint, \
             (j.v #>> '{{0,3}}')::bigint, j.v #>> '{{1,0}}', j.v #>> '{{1,1}}', j.v #>> '{{1,2}}', \
             (j.v #>> '{{2,0}}')::boolean, (j.v #>> '{{2,1}}')::boolean, j.v #>> '{{2,2}}', j.v #>> '{{2,3}}', \
             NULLIF(j.v #> '{{2,4}}', 'null'::jsonb), (j.v #>> '{{3,0}}')::timestamptz, (j.v #>> '{{3,1}}')::timestamptz, ? \
             FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n RETURNING id"
        ),
        _ => format!(
            "INSERT OR FAIL INTO tracked_hits ({columns}) \
             SELECT ?, value ->> '$[0][0]', value ->> '$[0][1]', value ->> '$[0][2]', value ->> '$[0][3]', \
             value ->> '$[1][0]', value ->> '$[1][1]', value ->> '$[1][2]', \
             value ->> '$[2][0]', value ->> '$[2][1]', value ->> '$[2][2]', value ->> '$[2][3]', value ->> '$[2][4]', \
             value ->> '$[3][0]', value ->> '$[3][1]', ? \
             FROM json_each(?) ORDER BY key RETURNING id"
        ),
    };
    let values: Vec<sea_orm::Value> = vec![ws.into(), created_at.into(), json.into()];
    let ids = super::raw::inserted_ids(db, statement(backend, &sql, values), rows.len(), "hits").await?;
    for (r, id) in rows.iter_mut().zip(ids) {
        r.id = id;
    }
    Ok(())
}
