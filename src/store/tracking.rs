//! Hand-written reads of first-party capture's tables.
use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use super::raw::statement;

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
