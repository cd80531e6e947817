//! Campaign and cost queries.
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{campaign, campaign_cost};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, QueryFilter, QueryOrder, Select};

use super::Scoped;
use super::raw::statement;

#[derive(Debug, Default, Clone)]
pub struct CampaignFilter {
    pub channels: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    /// Campaigns running on this day: started on or before it, and not ended before it.
    pub active_on: Option<NaiveDate>,
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn select(ws: i64, f: &CampaignFilter) -> Select<campaign::Entity> {
    use campaign::Column as C;
    let mut s = campaign::Entity::in_workspace(ws);
    if let Some(v) = &f.channels {
        s = s.filter(C::Channel.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.kinds {
        s = s.filter(C::Kind.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.statuses {
        s = s.filter(C::Status.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.updated_since {
        s = s.filter(C::UpdatedAt.gte(t));
    }
    if let Some(day) = f.active_on {
        s = s
            .filter(C::StartDate.lte(day))
            .filter(Condition::any().add(C::EndDate.is_null()).add(C::EndDate.gte(day)));
    }
    s
}

pub async fn by_external_id(db: &impl ConnectionTrait, ws: i64, external_id: &str) -> Result<Option<campaign::Model>, DbErr> {
    campaign::Entity::in_workspace(ws)
        .filter(campaign::Column::ExternalId.eq(external_id))
        .one(db)
        .await
}

pub async fn costs_of(db: &impl ConnectionTrait, ws: i64, campaign_ids: &[i64]) -> Result<Vec<campaign_cost::Model>, DbErr> {
    campaign_cost::Entity::in_workspace(ws)
        .filter(super::id_in(db, campaign_cost::Column::CampaignId, campaign_ids))
        .order_by_asc(campaign_cost::Column::IncurredOn)
        .order_by_asc(campaign_cost::Column::Id)
        .all(db)
        .await
}

/// Restricts touchpoints `t` to some leads: members of a persona, leads of an owner.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeadScope {
    pub persona_id: Option<i64>,
    pub owner_id: Option<i64>,
}

impl LeadScope {
    fn sql(&self, ws: i64, values: &mut Vec<sea_orm::Value>) -> String {
        let mut out = String::new();
        if let Some(p) = self.persona_id {
            out.push_str(
                " AND t.lead_id IN (SELECT m.lead_id FROM lead_persona_matches m \
                 WHERE m.workspace_id = ? AND m.persona_id = ? AND m.is_member = ?)",
            );
            values.extend([ws.into(), p.into(), true.into()]);
        }
        if let Some(o) = self.owner_id {
            out.push_str(" AND t.lead_id IN (SELECT l.id FROM leads l WHERE l.workspace_id = ? AND l.owner_id = ?)");
            values.extend([ws.into(), o.into()]);
        }
        out
    }
}

/// Per campaign, over its touchpoints in [from, to) of the leads in scope: distinct leads
/// touched, and distinct leads sent an e-mail, of them not bounced, of those opened and
/// clicked, and whether it had any e-mail touchpoint. Aggregated in SQL: one row per campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchCounts {
    pub leads: i64,
    pub email_touched: bool,
    pub sent: i64,
    pub delivered: i64,
    pub opened: i64,
    pub clicked: i64,
}

pub async fn touch_counts(
    db: &impl ConnectionTrait,
    ws: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: LeadScope,
) -> Result<HashMap<i64, TouchCounts>, DbErr> {
    let flag = |kind: &str| format!("MAX(CASE WHEN t.touch_type = '{kind}' THEN 1 ELSE 0 END)");
    let mut values: Vec<sea_orm::Value> = vec![ws.into(), from.into(), to.into()];
    let scope = scope.sql(ws, &mut values);
    let sql = format!(
        "SELECT campaign_id, COUNT(*), SUM(e), SUM(s), SUM(s * (1 - b)), SUM(s * (1 - b) * o), SUM(s * (1 - b) * c) FROM (\
           SELECT t.campaign_id, t.lead_id, \
             MAX(CASE WHEN t.touch_type IN ('EMAIL_SENT', 'EMAIL_BOUNCED', 'EMAIL_OPEN', 'EMAIL_CLICK') THEN 1 ELSE 0 END) AS e, \
             {} AS s, {} AS b, {} AS o, {} AS c \
           FROM touchpoints t WHERE t.workspace_id = ? AND t.occurred_at >= ? AND t.occurred_at < ? \
             AND t.campaign_id IS NOT NULL{scope} \
           GROUP BY t.campaign_id, t.lead_id) x GROUP BY campaign_id",
        flag("EMAIL_SENT"),
        flag("EMAIL_BOUNCED"),
        flag("EMAIL_OPEN"),
        flag("EMAIL_CLICK"),
    );
    let mut out = HashMap::new();
    for row in db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await? {
        let n = |i: usize| -> Result<i64, DbErr> { row.try_get_by_index::<i64>(i) };
        out.insert(
            n(0)?,
            TouchCounts {
                leads: n(1)?,
                email_touched: n(2)? > 0,
                sent: n(3)?,
                delivered: n(4)?,
                opened: n(5)?,
                clicked: n(6)?,
            },
        );
    }
    Ok(out)
}

/// Per campaign: hits of mail privacy proxies and link scanners on its tracking links in
/// [from, to) (opens, then clicks), of the leads in scope; never touchpoints (docs/tracking.md).
pub async fn machine_mail_hits(
    db: &impl ConnectionTrait,
    ws: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: LeadScope,
) -> Result<HashMap<i64, (i64, i64)>, DbErr> {
    let mut values: Vec<sea_orm::Value> = vec![ws.into(), true.into(), from.into(), to.into()];
    let scope = scope.sql(ws, &mut values);
    let sql = format!(
        "SELECT t.campaign_id, \
           SUM(CASE WHEN t.touch_type = 'EMAIL_OPEN' THEN 1 ELSE 0 END), \
           SUM(CASE WHEN t.touch_type = 'EMAIL_OPEN' THEN 0 ELSE 1 END) \
         FROM tracked_hits t WHERE t.workspace_id = ? AND t.machine = ? AND t.occurred_at >= ? AND t.occurred_at < ? \
           AND t.campaign_id IS NOT NULL AND t.link_id IS NOT NULL{scope} \
         GROUP BY t.campaign_id"
    );
    let mut out = HashMap::new();
    for row in db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await? {
        out.insert(row.try_get_by_index(0)?, (row.try_get_by_index(1)?, row.try_get_by_index(2)?));
    }
    Ok(out)
}

/// Per campaign, over the site hits (not bots') of visitors on it in [from, to): distinct
/// visitors, those of them no lead is known for yet, and sessions (a visitor's hits on the
/// campaign with no gap over [`SESSION_GAP_SECONDS`] are one session). With a lead scope, only
/// the hits of leads in it count (an anonymous visitor is in no scope).
pub async fn visitor_activity(
    db: &impl ConnectionTrait,
    ws: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: LeadScope,
) -> Result<HashMap<i64, VisitorCounts>, DbErr> {
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![ws.into(), false.into(), from.into(), to.into()];
    let scope = scope.sql(ws, &mut values);
    // A new session: the visitor's first hit on the campaign, or one more than the gap after
    // the one before. Times are text on SQLite (RFC 3339), timestamps on PostgreSQL.
    let gap = match backend {
        DbBackend::Postgres => format!("t.occurred_at - t.prev > interval '{SESSION_GAP_SECONDS} seconds'"),
        _ => format!("(julianday(t.occurred_at) - julianday(t.prev)) * 86400.0 > {SESSION_GAP_SECONDS}"),
    };
    let sql = format!(
        "SELECT t.campaign_id, COUNT(DISTINCT t.visitor_id), \
           COUNT(DISTINCT CASE WHEN v.lead_id IS NULL THEN t.visitor_id END), \
           SUM(CASE WHEN t.prev IS NULL OR {gap} THEN 1 ELSE 0 END) \
         FROM (SELECT t.campaign_id, t.visitor_id, t.occurred_at, \
                 LAG(t.occurred_at) OVER (PARTITION BY t.campaign_id, t.visitor_id ORDER BY t.occurred_at, t.id) AS prev \
               FROM tracked_hits t WHERE t.workspace_id = ? AND t.bot = ? AND t.occurred_at >= ? AND t.occurred_at < ? \
                 AND t.visitor_id IS NOT NULL AND t.campaign_id IS NOT NULL{scope}) t \
         JOIN visitors v ON v.id = t.visitor_id \
         GROUP BY t.campaign_id"
    );
    let mut out = HashMap::new();
    for row in db.query_all_raw(statement(backend, &sql, values)).await? {
        out.insert(
            row.try_get_by_index(0)?,
            VisitorCounts {
                visitors: row.try_get_by_index(1)?,
                anonymous: row.try_get_by_index(2)?,
                sessions: row.try_get_by_index(3)?,
            },
        );
    }
    Ok(out)
}

/// A session ends after this long without a hit (30 minutes, as web analytics count them).
pub const SESSION_GAP_SECONDS: i64 = 1_800;

/// A campaign's site visitors in a range ([`visitor_activity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitorCounts {
    pub visitors: i64,
    pub anonymous: i64,
    pub sessions: i64,
}

/// Per (campaign, opportunity): the first touchpoint in [from, to) of the leads in scope that
/// are in the opportunity's buying center.
pub async fn first_touches_of_buying_centers(
    db: &impl ConnectionTrait,
    ws: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: LeadScope,
) -> Result<Vec<(i64, i64, DateTime<Utc>)>, DbErr> {
    let mut values: Vec<sea_orm::Value> = vec![ws.into(), from.into(), to.into()];
    let scope = scope.sql(ws, &mut values);
    let sql = format!(
        "SELECT t.campaign_id, oc.opportunity_id, MIN(t.occurred_at) FROM opportunity_contacts oc \
         JOIN touchpoints t ON t.workspace_id = oc.workspace_id AND t.lead_id = oc.lead_id \
         WHERE oc.workspace_id = ? AND t.occurred_at >= ? AND t.occurred_at < ? AND t.campaign_id IS NOT NULL{scope} \
         GROUP BY t.campaign_id, oc.opportunity_id"
    );
    let mut out = Vec::new();
    for row in db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await? {
        out.push((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?));
    }
    Ok(out)
}

/// Adds `n` to the stored touchpoint count of each `(campaign ID, n)`, in one statement however
/// many campaigns a batch of touchpoints names (the pairs travel as one JSON array on SQLite,
/// two arrays on PostgreSQL).
pub async fn add_touchpoint_counts(db: &impl ConnectionTrait, ws: i64, counts: &[(i64, i64)]) -> Result<(), DbErr> {
    if counts.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match backend {
        DbBackend::Postgres => {
            let (ids, added): (Vec<i64>, Vec<i64>) = counts.iter().copied().unzip();
            (
                "UPDATE campaigns AS c SET touchpoint_count = c.touchpoint_count + d.n \
                 FROM unnest(?::bigint[], ?::bigint[]) AS d(id, n) WHERE c.workspace_id = ? AND c.id = d.id",
                vec![ids.into(), added.into(), ws.into()],
            )
        }
        _ => (
            "UPDATE campaigns SET touchpoint_count = touchpoint_count + d.n \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS n FROM json_each(?)) AS d \
             WHERE campaigns.workspace_id = ? AND campaigns.id = d.id",
            vec![serde_json::to_string(counts).expect("pairs of integers are JSON").into(), ws.into()],
        ),
    };
    db.execute_raw(statement(backend, sql, values)).await?;
    Ok(())
}
