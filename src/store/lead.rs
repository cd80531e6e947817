//! Lead (contact) queries.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{funnel_stage, lead};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, Select};

use super::Scoped;
use crate::domain::reach::{Contact, ReachChannel};

/// Filters of the `leads` list; every set field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct LeadFilter {
    pub stage_keys: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    pub owner_id: Option<i64>,
    pub account_id: Option<i64>,
    pub countries: Option<Vec<String>>,
    pub industries: Option<Vec<String>>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
    pub search: Option<String>,
    pub include_erased: bool,
    /// Leads that reach at least `min_match` percent of this persona's weight.
    pub persona: Option<PersonaMatchFilter>,
    /// A condition on the leads' scores under one scoring model.
    pub scoring: Option<super::scoring::ScoreFilter>,
}

/// Leads matching a persona to at least `min_match` percent (`None`: its own threshold).
#[derive(Debug, Clone, Copy)]
pub struct PersonaMatchFilter {
    pub persona_id: i64,
    pub min_match: Option<i32>,
}

pub fn select(ws: i64, f: &LeadFilter) -> Select<lead::Entity> {
    use lead::Column as C;
    let mut s = lead::Entity::in_workspace(ws);
    if let Some(keys) = &f.stage_keys {
        let stages = Query::select()
            .column(funnel_stage::Column::Id)
            .from(funnel_stage::Entity)
            .and_where(funnel_stage::Column::WorkspaceId.eq(ws))
            .and_where(funnel_stage::Column::Key.is_in(keys.iter().cloned()))
            .to_owned();
        s = s.filter(C::StageId.in_subquery(stages));
    }
    if let Some(v) = &f.statuses {
        s = s.filter(C::LifecycleStatus.is_in(v.iter().cloned()));
    }
    if let Some(id) = f.owner_id {
        s = s.filter(C::OwnerId.eq(id));
    }
    if let Some(id) = f.account_id {
        s = s.filter(C::AccountId.eq(id));
    }
    if let Some(v) = &f.countries {
        s = s.filter(C::Country.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.industries {
        s = s.filter(C::Industry.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.created_from {
        s = s.filter(C::CreatedAt.gte(t));
    }
    if let Some(t) = f.created_to {
        s = s.filter(C::CreatedAt.lt(t));
    }
    if let Some(t) = f.updated_since {
        s = s.filter(C::UpdatedAt.gte(t));
    }
    if !f.include_erased {
        s = s.filter(C::ErasedAt.is_null());
    }
    if let Some(pf) = f.persona {
        use entity::lead_persona_match::Column as M;
        let mut matches = Query::select()
            .column(M::LeadId)
            .from(entity::lead_persona_match::Entity)
            .and_where(M::WorkspaceId.eq(ws))
            .and_where(M::PersonaId.eq(pf.persona_id))
            .to_owned();
        match pf.min_match {
            // matched / total x 100 >= min, in integers.
            Some(min) => {
                matches.and_where(Expr::col(M::MatchedWeight).mul(100).gte(Expr::col(M::TotalWeight).mul(min)));
            }
            None => {
                matches.and_where(M::IsMember.eq(true));
            }
        }
        s = s.filter(C::Id.in_subquery(matches));
    }
    if let Some(sf) = &f.scoring {
        s = s.filter(sf.condition(ws));
    }
    if let Some(q) = f.search.as_deref().filter(|q| !q.trim().is_empty()) {
        let pattern = LikeExpr::new(crate::domain::search::contains_pattern(q)).escape('\\');
        s = s.filter(Expr::col(C::SearchText).like(pattern));
    }
    s
}

pub async fn by_email(db: &impl ConnectionTrait, ws: i64, email: &str) -> Result<Option<lead::Model>, DbErr> {
    super::one(db, with_email(ws, email)).await
}

/// The lead of workspace `ws` with this (lower-cased) e-mail address.
pub fn with_email(ws: i64, email: &str) -> Select<lead::Entity> {
    lead::Entity::in_workspace(ws).filter(lead::Column::Email.eq(email))
}

pub async fn by_external_id(db: &impl ConnectionTrait, ws: i64, external_id: &str) -> Result<Option<lead::Model>, DbErr> {
    super::one(db, with_external_id(ws, external_id)).await
}

/// The lead of workspace `ws` with this source-system ID.
pub fn with_external_id(ws: i64, external_id: &str) -> Select<lead::Entity> {
    lead::Entity::in_workspace(ws).filter(lead::Column::ExternalId.eq(external_id))
}

/// The live lead each of these IDs stands for: itself when it is live, the lead it was merged
/// into when that one is live (personal links and client IDs outlive a merge); erased leads and
/// IDs of no lead of the workspace are left out.
pub async fn live_ids(db: &impl ConnectionTrait, ws: i64, ids: &[i64]) -> Result<HashMap<i64, i64>, DbErr> {
    use sea_orm::QuerySelect;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, Option<i64>, Option<DateTime<Utc>>)> = lead::Entity::in_workspace(ws)
        .filter(super::id_in(db, lead::Column::Id, ids))
        .filter(lead::Column::ErasedAt.is_null().or(lead::Column::MergedIntoId.is_not_null()))
        .select_only()
        .column(lead::Column::Id)
        .column(lead::Column::MergedIntoId)
        .column(lead::Column::ErasedAt)
        .into_tuple()
        .all(db)
        .await?;
    let targets: Vec<i64> = rows.iter().filter_map(|(_, into, _)| *into).collect();
    let live_targets: std::collections::HashSet<i64> = if targets.is_empty() {
        Default::default()
    } else {
        lead::Entity::in_workspace(ws)
            .filter(super::id_in(db, lead::Column::Id, &targets))
            .filter(lead::Column::ErasedAt.is_null())
            .select_only()
            .column(lead::Column::Id)
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, into, erased)| match into {
            Some(to) => live_targets.contains(&to).then_some((id, to)),
            None => erased.is_none().then_some((id, id)),
        })
        .collect())
}

/// Locks these leads' rows until the transaction ends (PostgreSQL `FOR NO KEY UPDATE`, in ID
/// order so that two transactions locking the same leads cannot deadlock; not `FOR UPDATE`,
/// which would also wait for every insert of a row that refers to the lead); a later read in the
/// transaction sees what the transaction that held the lock before committed. SQLite has one
/// writer anyway. Callers take the workspace's scoring lock first ([`lock_lead_writes`]).
pub async fn lock(db: &impl ConnectionTrait, ws: i64, ids: &[i64]) -> Result<(), DbErr> {
    use super::raw::{placeholders, statement};
    if db.get_database_backend() != sea_orm::DbBackend::Postgres || ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT id FROM leads WHERE workspace_id = ? AND id IN ({}) ORDER BY id FOR NO KEY UPDATE",
        placeholders(ids.len())
    );
    let mut values: Vec<sea_orm::Value> = vec![ws.into()];
    values.extend(ids.iter().map(|&id| id.into()));
    db.query_all_raw(statement(sea_orm::DbBackend::Postgres, &sql, values)).await?;
    Ok(())
}

/// Serializes the writes of leads, their touchpoints and scores in one workspace until the
/// transaction ends (the scoring lock of [`super::raw::lock_workspace`]). Every such write takes
/// it before it reads or locks a lead, so the locks are always taken in one order: this one, then
/// lead rows, then the ledger's.
pub async fn lock_lead_writes(db: &impl ConnectionTrait, ws: i64) -> Result<(), DbErr> {
    super::raw::lock_workspace(db, super::raw::LOCK_CHANGES, ws).await?;
    super::raw::lock_workspace(db, super::raw::LOCK_SCORING, ws).await
}

/// The first `limit` leads of each account, by id.
pub async fn first_per_account(db: &impl ConnectionTrait, ws: i64, account_ids: &[i64], limit: u64) -> Result<Vec<lead::Model>, DbErr> {
    super::raw::top_n_per_parent::<lead::Entity>(db, "leads", "account_id", "id ASC", ws, account_ids, limit, "erased_at IS NULL").await
}

/// The IDs of an account's leads.
pub async fn ids_of_account(db: &impl ConnectionTrait, ws: i64, account_id: i64) -> Result<Vec<i64>, DbErr> {
    use sea_orm::QuerySelect;
    lead::Entity::in_workspace(ws)
        .filter(lead::Column::AccountId.eq(account_id))
        .select_only()
        .column(lead::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

/// The next `limit` live (not erased) leads after ID `after`, by ID: one page of a walk over
/// every lead of the workspace.
pub async fn live_page(db: &impl ConnectionTrait, ws: i64, after: i64, limit: u64) -> Result<Vec<lead::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    lead::Entity::in_workspace(ws)
        .filter(lead::Column::Id.gt(after))
        .filter(lead::Column::ErasedAt.is_null())
        .order_by_asc(lead::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Sets `first_touch_at` of these leads to the time of their earliest touchpoint, and
/// `first_touch_campaign_id` to the campaign of their first touchpoint in path order (ties at
/// that instant by external ID in byte order, none first, then by ID), after touchpoints were
/// written: two statements per thousand leads, and only rows whose value changes are written (a
/// new first touch makes `updated_at` `now`, so that an incremental sync sees the change). The
/// time is the stored MIN itself, so that on SQLite (times as text) it equals that touchpoint's
/// `occurred_at` exactly. Returns the number of leads whose first touch time changed.
pub async fn refresh_first_touch(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64], now: DateTime<Utc>) -> Result<u64, DbErr> {
    use super::raw::{placeholders, statement};
    const CHUNK: usize = 1_000;
    let backend = db.get_database_backend();
    let first = "(SELECT MIN(t.occurred_at) FROM touchpoints t WHERE t.workspace_id = leads.workspace_id AND t.lead_id = leads.id)";
    // Byte order of external IDs, as `path_order` compares them: PostgreSQL's "C" collation,
    // SQLite's BINARY. On SQLite `+` keeps the order from being read off the (workspace,
    // external ID) index: without statistics SQLite 3.40 walked the whole workspace's
    // touchpoints in that index for every lead instead of seeking the lead's first instant.
    let external = match backend {
        sea_orm::DbBackend::Postgres => "t.external_id COLLATE \"C\"",
        _ => "+t.external_id",
    };
    let campaign = format!(
        "(SELECT t.campaign_id FROM touchpoints t WHERE t.workspace_id = leads.workspace_id AND t.lead_id = leads.id \
         AND t.occurred_at = leads.first_touch_at ORDER BY {external} NULLS FIRST, t.id LIMIT 1)"
    );
    let mut changed = 0;
    for chunk in lead_ids.chunks(CHUNK) {
        // `+workspace_id`: looked up by primary key. Without statistics for every index of leads
        // (a database not analyzed yet, or just migrated), SQLite otherwise walked all the
        // workspace's leads in an index that starts with workspace_id, for every statement.
        let sql = format!(
            "UPDATE leads SET first_touch_at = {first}, updated_at = ? \
             WHERE id IN ({}) AND +workspace_id = ? AND first_touch_at IS DISTINCT FROM {first}",
            placeholders(chunk.len())
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() + 2);
        values.push(now.into());
        values.extend(chunk.iter().map(|&id| id.into()));
        values.push(ws.into());
        changed += db.execute_raw(statement(backend, &sql, values)).await?.rows_affected();
        // After the time: a touch at the same instant can win the tie and change the campaign.
        let sql = format!(
            "UPDATE leads SET first_touch_campaign_id = {campaign} \
             WHERE id IN ({}) AND +workspace_id = ? AND first_touch_campaign_id IS DISTINCT FROM {campaign}",
            placeholders(chunk.len())
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() + 1);
        values.extend(chunk.iter().map(|&id| id.into()));
        values.push(ws.into());
        db.execute_raw(statement(backend, &sql, values)).await?;
    }
    Ok(changed)
}

/// Per first-touch campaign, of the leads first touched in [from, to) (optionally of one owner
/// and members of one persona): (campaign, leads, of them with a handoff, of them that ever
/// entered `sql_stage`). One aggregate over the (workspace, first touch, first-touch campaign)
/// index; the handed-off and SQL leads are each read once into a set the scan probes.
pub async fn sourced_by_campaign(
    db: &impl ConnectionTrait,
    ws: i64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    sql_stage: Option<i64>,
    owner_id: Option<i64>,
    persona_id: Option<i64>,
) -> Result<Vec<(i64, i64, i64, i64)>, DbErr> {
    use super::raw::statement;
    let mut values: Vec<sea_orm::Value> = vec![ws.into()];
    let qualified = match sql_stage {
        Some(stage) => {
            values.extend([ws.into(), stage.into()]);
            "CASE WHEN l.id IN (SELECT s.lead_id FROM lead_stage_history s WHERE s.workspace_id = ? AND s.to_stage_id = ?) \
             THEN 1 ELSE 0 END"
        }
        None => "0",
    };
    let mut sql = format!(
        "SELECT l.first_touch_campaign_id, COUNT(*), \
         CAST(SUM(CASE WHEN l.id IN (SELECT h.lead_id FROM handoffs h WHERE h.workspace_id = ?) THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM({qualified}) AS BIGINT) \
         FROM leads l WHERE l.workspace_id = ? AND l.first_touch_at >= ? AND l.first_touch_at < ? \
         AND l.first_touch_campaign_id IS NOT NULL"
    );
    values.extend([ws.into(), from.into(), to.into()]);
    if let Some(o) = owner_id {
        sql.push_str(" AND l.owner_id = ?");
        values.push(o.into());
    }
    if let Some(p) = persona_id {
        sql.push_str(
            " AND l.id IN (SELECT m.lead_id FROM lead_persona_matches m WHERE m.workspace_id = ? AND m.persona_id = ? AND m.is_member = ?)",
        );
        values.extend([ws.into(), p.into(), true.into()]);
    }
    sql.push_str(" GROUP BY l.first_touch_campaign_id");
    let mut out = Vec::new();
    for row in db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await? {
        out.push((
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
            row.try_get_by_index(3)?,
        ));
    }
    Ok(out)
}

/// What reach needs of every lead created before `at`, read as facts computed in SQL (which
/// contact data is present, which consents are exactly `true`, as bit masks in
/// [`ReachChannel::ALL`] order) instead of decoding every lead's consent map.
pub async fn contact_facts(db: &impl ConnectionTrait, ws: i64, at: DateTime<Utc>) -> Result<Vec<(i64, Contact)>, DbErr> {
    let backend = db.get_database_backend();
    let consent = |code: &str| match backend {
        sea_orm::DbBackend::Postgres => format!("l.consents -> '{code}' = 'true'::jsonb"),
        _ => format!("json_type(l.consents, '$.{code}') = 'true'"),
    };
    // In `ReachChannel::ALL` order.
    let present = [
        "l.email IS NOT NULL",
        "l.phone IS NOT NULL",
        "l.linkedin_url IS NOT NULL",
        "l.twitter_handle IS NOT NULL",
        "l.facebook_url IS NOT NULL",
        "l.street IS NOT NULL AND l.postal_code IS NOT NULL AND l.city IS NOT NULL",
    ];
    // Bit i set when condition i holds; BIGINT, as PostgreSQL would add the integers as int4.
    let mask = |conditions: Vec<String>| {
        let bits: Vec<String> = conditions
            .iter()
            .enumerate()
            .map(|(i, c)| format!("CASE WHEN {c} THEN {} ELSE 0 END", 1 << i))
            .collect();
        format!("CAST({} AS BIGINT)", bits.join(" + "))
    };
    let sql = format!(
        "SELECT l.id, {}, {}, l.email_bounced_at, l.unsubscribed_at FROM leads l WHERE l.workspace_id = ? AND l.created_at < ? AND l.merged_into_id IS NULL",
        mask(present.iter().map(|c| c.to_string()).collect()),
        mask(ReachChannel::ALL.iter().map(|c| consent(c.code())).collect()),
    );
    let mut out = Vec::new();
    for row in db
        .query_all_raw(super::raw::statement(backend, &sql, vec![ws.into(), at.into()]))
        .await?
    {
        let (data, consents): (i64, i64) = (row.try_get_by_index(1)?, row.try_get_by_index(2)?);
        let bit = |m: i64, i: usize| m & (1 << i) != 0;
        let c = Contact {
            email: bit(data, 0),
            phone: bit(data, 1),
            linkedin: bit(data, 2),
            twitter: bit(data, 3),
            facebook: bit(data, 4),
            postal: bit(data, 5),
            consents: ReachChannel::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| bit(consents, *i))
                .map(|(_, c)| *c)
                .collect(),
            email_bounced_at: row.try_get_by_index(3)?,
            unsubscribed_at: row.try_get_by_index(4)?,
        };
        out.push((row.try_get_by_index(0)?, c));
    }
    Ok(out)
}
