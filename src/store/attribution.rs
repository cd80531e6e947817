//! Queries of attribution: the deals of a range, their buying centers and touchpoints, the
//! paths of leads in no deal (Markov's non-converting journeys), and the ledger.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{attribution_campaign_month, attribution_credit, attribution_model, lead, opportunity, opportunity_contact, touchpoint};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Scoped;
use super::raw::{placeholders, statement};
use crate::domain::attribution::Touch;

/// IN lists are cut to this many values (both backends take far more; plans stay small).
const CHUNK: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRow {
    pub id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub closed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

type DealTuple = (i64, i64, String, String, Option<DateTime<Utc>>, DateTime<Utc>);

fn deal_columns(s: sea_orm::Select<opportunity::Entity>) -> sea_orm::Selector<sea_orm::SelectGetableTuple<DealTuple>> {
    use opportunity::Column as C;
    s.select_only()
        .columns([C::Id, C::AmountMinor, C::Currency, C::Status, C::ClosedAt, C::CreatedAt])
        .into_tuple::<DealTuple>()
}

fn deal_rows(rows: Vec<DealTuple>) -> Vec<DealRow> {
    rows.into_iter()
        .filter_map(|(id, amount_minor, currency, status, closed_at, created_at)| {
            Some(DealRow {
                id,
                amount_minor,
                currency,
                status,
                closed_at: closed_at?,
                created_at,
            })
        })
        .collect()
}

/// Deals closed with `status` in [from, to), in one currency, by close time.
pub async fn closed_deals(
    db: &impl ConnectionTrait,
    ws: i64,
    status: &str,
    currency: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DealRow>, DbErr> {
    use opportunity::Column as C;
    let q = opportunity::Entity::in_workspace(ws)
        .filter(C::Status.eq(status))
        .filter(C::ClosedAt.gte(from))
        .filter(C::ClosedAt.lt(to))
        .filter(C::Currency.eq(currency))
        .order_by_asc(C::ClosedAt)
        .order_by_asc(C::Id);
    Ok(deal_rows(deal_columns(q).all(db).await?))
}

/// How many deals closed with `status` in [from, to) in one currency.
pub async fn count_closed_deals(
    db: &impl ConnectionTrait,
    ws: i64,
    status: &str,
    currency: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, DbErr> {
    use opportunity::Column as C;
    use sea_orm::PaginatorTrait;
    let n = opportunity::Entity::in_workspace(ws)
        .filter(C::Status.eq(status))
        .filter(C::ClosedAt.gte(from))
        .filter(C::ClosedAt.lt(to))
        .filter(C::Currency.eq(currency))
        .count(db)
        .await?;
    Ok(n as i64)
}

/// Closed deals with these IDs (others, and open ones, are absent).
pub async fn closed_deals_by_ids(db: &impl ConnectionTrait, ws: i64, ids: &[i64]) -> Result<Vec<DealRow>, DbErr> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let q = opportunity::Entity::in_workspace(ws).filter(opportunity::Column::Id.is_in(chunk.iter().copied()));
        out.extend(deal_rows(deal_columns(q).all(db).await?));
    }
    Ok(out)
}

/// (opportunity, lead, is primary) of the buying centers of these deals.
pub async fn buying_centers(db: &impl ConnectionTrait, ws: i64, deal_ids: &[i64]) -> Result<Vec<(i64, i64, bool)>, DbErr> {
    use opportunity_contact::Column as C;
    let mut out = Vec::new();
    for chunk in deal_ids.chunks(CHUNK) {
        out.extend(
            opportunity_contact::Entity::in_workspace(ws)
                .filter(C::OpportunityId.is_in(chunk.iter().copied()))
                .select_only()
                .columns([C::OpportunityId, C::LeadId, C::IsPrimary])
                .into_tuple::<(i64, i64, bool)>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// When each of these leads became an MQL (leads that never did are absent).
pub async fn conversions(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<HashMap<i64, DateTime<Utc>>, DbErr> {
    use lead::Column as C;
    let mut out = HashMap::new();
    for chunk in lead_ids.chunks(CHUNK) {
        let rows = lead::Entity::in_workspace(ws)
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::ConvertedAt.is_not_null())
            .select_only()
            .columns([C::Id, C::ConvertedAt])
            .into_tuple::<(i64, Option<DateTime<Utc>>)>()
            .all(db)
            .await?;
        out.extend(rows.into_iter().filter_map(|(id, at)| Some((id, at?))));
    }
    Ok(out)
}

type TouchTuple = (i64, i64, Option<i64>, String, DateTime<Utc>);

fn touch_of((id, lead_id, campaign_id, touch_type, occurred_at): TouchTuple) -> Touch {
    Touch {
        id,
        external_id: None,
        lead_id,
        campaign_id,
        touch_type,
        occurred_at,
    }
}

/// The touchpoints of these leads with `from <= occurredAt < to`, through the covering index
/// on (workspace, lead, occurred_at, id, type, campaign). `external_id` is not read here (it is
/// not in the index); [`external_ids`] fills it in where a path has ties.
pub async fn touches_of_leads(
    db: &impl ConnectionTrait,
    ws: i64,
    lead_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Touch>, DbErr> {
    use touchpoint::Column as C;
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(CHUNK) {
        let rows = touchpoint::Entity::in_workspace(ws)
            .filter(C::LeadId.is_in(chunk.iter().copied()))
            .filter(C::OccurredAt.gte(from))
            .filter(C::OccurredAt.lt(to))
            .select_only()
            .columns([C::Id, C::LeadId, C::CampaignId, C::TouchType, C::OccurredAt])
            .into_tuple::<TouchTuple>()
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(touch_of));
    }
    Ok(out)
}

/// The external IDs of these touchpoints (those without one are absent).
pub async fn external_ids(db: &impl ConnectionTrait, ws: i64, touch_ids: &[i64]) -> Result<HashMap<i64, String>, DbErr> {
    use touchpoint::Column as C;
    let mut out = HashMap::new();
    for chunk in touch_ids.chunks(CHUNK) {
        let rows = touchpoint::Entity::in_workspace(ws)
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::ExternalId.is_not_null())
            .select_only()
            .columns([C::Id, C::ExternalId])
            .into_tuple::<(i64, Option<String>)>()
            .all(db)
            .await?;
        out.extend(rows.into_iter().filter_map(|(id, x)| Some((id, x?))));
    }
    Ok(out)
}

/// Every touchpoint before `to` of the leads that are in no opportunity, grouped by lead
/// (the non-converting journeys of MARKOV).
pub async fn touches_of_leads_without_deals(
    db: &impl ConnectionTrait,
    ws: i64,
    to: DateTime<Utc>,
) -> Result<HashMap<i64, Vec<Touch>>, DbErr> {
    let without_deal = "t.workspace_id = ? AND t.occurred_at < ? AND NOT EXISTS \
        (SELECT 1 FROM opportunity_contacts oc WHERE oc.workspace_id = t.workspace_id AND oc.lead_id = t.lead_id)";
    let per_lead = super::touchpoint::per_lead(db, without_deal, vec![ws.into(), to.into()]).await?;
    Ok(per_lead
        .into_iter()
        .map(|(lead_id, touches)| {
            let touches = touches
                .into_iter()
                .map(|t| Touch {
                    id: t.id,
                    external_id: None,
                    lead_id,
                    campaign_id: t.campaign_id,
                    touch_type: t.touch_type,
                    occurred_at: t.occurred_at,
                })
                .collect();
            (lead_id, touches)
        })
        .collect())
}

/// The won deals with one of these leads in their buying center (that closed after `after`).
pub async fn won_deals_of_leads(
    db: &impl ConnectionTrait,
    ws: i64,
    lead_ids: &[i64],
    after: Option<DateTime<Utc>>,
) -> Result<Vec<i64>, DbErr> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT DISTINCT o.id FROM opportunity_contacts oc JOIN opportunities o ON o.id = oc.opportunity_id \
             WHERE oc.workspace_id = ? AND oc.lead_id IN ({}) AND o.workspace_id = ? AND o.status = 'WON'{}",
            placeholders(chunk.len()),
            if after.is_some() { " AND o.closed_at > ?" } else { "" }
        );
        let mut values: Vec<sea_orm::Value> = vec![ws.into()];
        values.extend(chunk.iter().map(|&id| id.into()));
        values.push(ws.into());
        if let Some(t) = after {
            values.push(t.into());
        }
        for row in db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await? {
            out.push(row.try_get_by_index::<i64>(0)?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Campaign ID -> channel, for every campaign of the workspace.
pub async fn campaign_channels(db: &impl ConnectionTrait, ws: i64) -> Result<HashMap<i64, String>, DbErr> {
    use entity::campaign::Column as C;
    Ok(entity::campaign::Entity::in_workspace(ws)
        .select_only()
        .columns([C::Id, C::Channel])
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Every version of the workspace's attribution models, current ones first.
pub async fn models(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<attribution_model::Model>, DbErr> {
    use attribution_model::Column as C;
    attribution_model::Entity::in_workspace(ws)
        .order_by_desc(C::IsCurrent)
        .order_by_asc(C::Kind)
        .order_by_desc(C::Version)
        .all(db)
        .await
}

/// What a ledger read sums by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerGroup {
    Campaign,
    TouchpointType,
    /// The campaign's channel (joined), DIRECT without a campaign.
    Channel,
    /// (lead, deal) pairs, for groupings by what is known of the lead.
    LeadAndDeal,
}

/// One group of a ledger read. `key` is the campaign ID (as text), the type, the channel or
/// the lead ID; `None` for the UNATTRIBUTED rows (no touchpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSum {
    pub key: Option<String>,
    /// The campaign grouping's "no campaign" row has a touch but no campaign.
    pub attributed: bool,
    /// Only for [`LedgerGroup::LeadAndDeal`].
    pub deal: Option<(i64, DateTime<Utc>)>,
    pub amount_minor: i64,
    pub conversion_micros: i64,
    pub touchpoints: i64,
    pub deals: i64,
}

/// The ledger's credits of a model version for the deals closed in [from, to) in a currency,
/// summed in SQL over one range scan of the covering index (which holds `lead_id`, NULL exactly
/// on UNATTRIBUTED rows, but not `touchpoint_id`).
#[allow(clippy::too_many_arguments)]
pub async fn credits_summed(
    db: &impl ConnectionTrait,
    ws: i64,
    model_id: i64,
    currency: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by: LedgerGroup,
) -> Result<Vec<LedgerSum>, DbErr> {
    let backend = db.get_database_backend();
    let channel = "CASE WHEN a.lead_id IS NULL THEN NULL ELSE COALESCE(c.channel, 'DIRECT') END";
    let (select, join, group) = match by {
        LedgerGroup::Campaign => ("CAST(a.campaign_id AS TEXT)", "", "a.campaign_id"),
        LedgerGroup::TouchpointType => ("a.touch_type", "", "a.touch_type"),
        LedgerGroup::Channel => (
            channel,
            " LEFT JOIN campaigns c ON c.workspace_id = a.workspace_id AND c.id = a.campaign_id",
            channel,
        ),
        LedgerGroup::LeadAndDeal => (
            "CAST(a.lead_id AS TEXT), a.opportunity_id, a.closed_at",
            "",
            "a.lead_id, a.opportunity_id, a.closed_at",
        ),
    };
    let pair = by == LedgerGroup::LeadAndDeal;
    let sql = format!(
        "SELECT {select}, CASE WHEN a.lead_id IS NULL THEN 0 ELSE 1 END, \
         CAST(SUM(a.amount_minor) AS BIGINT), CAST(SUM(a.conversion_micros) AS BIGINT), CAST(SUM(a.touches) AS BIGINT), \
         COUNT(DISTINCT a.opportunity_id) \
         FROM attribution_credits a{join} \
         WHERE a.workspace_id = ? AND a.model_id = ? AND a.currency = ? AND a.closed_at >= ? AND a.closed_at < ? \
         GROUP BY {group}, CASE WHEN a.lead_id IS NULL THEN 0 ELSE 1 END"
    );
    let values: Vec<sea_orm::Value> = vec![ws.into(), model_id.into(), currency.into(), from.into(), to.into()];
    let mut out = Vec::new();
    for row in db.query_all_raw(statement(backend, &sql, values)).await? {
        let at = if pair { 3 } else { 1 };
        let attributed: i32 = row.try_get_by_index(at)?;
        out.push(LedgerSum {
            key: row.try_get_by_index(0)?,
            attributed: attributed == 1,
            deal: if pair {
                Some((row.try_get_by_index(1)?, row.try_get_by_index(2)?))
            } else {
                None
            },
            amount_minor: row.try_get_by_index(at + 1)?,
            conversion_micros: row.try_get_by_index(at + 2)?,
            touchpoints: row.try_get_by_index(at + 3)?,
            deals: row.try_get_by_index(at + 4)?,
        });
    }
    Ok(out)
}

/// The ledger of a model version summed per campaign over the whole months [from_month,
/// to_month), from `attribution_campaign_months`: one streaming pass over the campaign-ordered
/// covering index, no sort. `touchpoints` and `deals` add up over months because a deal closes
/// in one month.
pub async fn campaign_months_summed(
    db: &impl ConnectionTrait,
    ws: i64,
    model_id: i64,
    currency: &str,
    from_month: DateTime<Utc>,
    to_month: DateTime<Utc>,
) -> Result<Vec<LedgerSum>, DbErr> {
    let sql = "SELECT CAST(campaign_id AS TEXT), attributed, CAST(SUM(amount_minor) AS BIGINT), \
               CAST(SUM(conversion_micros) AS BIGINT), CAST(SUM(touchpoints) AS BIGINT), CAST(SUM(deals) AS BIGINT) \
               FROM attribution_campaign_months \
               WHERE workspace_id = ? AND model_id = ? AND currency = ? AND month_start >= ? AND month_start < ? \
               GROUP BY campaign_id, attributed";
    let values: Vec<sea_orm::Value> = vec![ws.into(), model_id.into(), currency.into(), from_month.into(), to_month.into()];
    let mut out = Vec::new();
    for row in db.query_all_raw(statement(db.get_database_backend(), sql, values)).await? {
        out.push(LedgerSum {
            key: row.try_get_by_index(0)?,
            attributed: row.try_get_by_index(1)?,
            deal: None,
            amount_minor: row.try_get_by_index(2)?,
            conversion_micros: row.try_get_by_index(3)?,
            touchpoints: row.try_get_by_index(4)?,
            deals: row.try_get_by_index(5)?,
        });
    }
    Ok(out)
}

/// The close times of these deals' ledger rows under these model versions (what a rewrite of
/// their credits takes out of the monthly sums).
pub async fn credited_closes(db: &impl ConnectionTrait, ws: i64, deal_ids: &[i64], model_ids: &[i64]) -> Result<Vec<DateTime<Utc>>, DbErr> {
    use attribution_credit::Column as C;
    let mut out = Vec::new();
    for chunk in deal_ids.chunks(CHUNK) {
        out.extend(
            attribution_credit::Entity::in_workspace(ws)
                .filter(C::OpportunityId.is_in(chunk.iter().copied()))
                .filter(C::ModelId.is_in(model_ids.iter().copied()))
                .select_only()
                .column(C::ClosedAt)
                .distinct()
                .into_tuple::<DateTime<Utc>>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// Sums the ledger of these model versions for the deals closed in [month, next) into
/// `attribution_campaign_months`, replacing the month's rows: the monthly sums stay equal to
/// the ledger they are read instead of.
pub async fn refresh_campaign_month(
    db: &impl ConnectionTrait,
    ws: i64,
    model_ids: &[i64],
    month: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<(), DbErr> {
    use attribution_campaign_month::Column as M;
    if model_ids.is_empty() {
        return Ok(());
    }
    attribution_campaign_month::Entity::delete_many()
        .filter(M::WorkspaceId.eq(ws))
        .filter(M::ModelId.is_in(model_ids.iter().copied()))
        .filter(M::MonthStart.eq(month))
        .exec(db)
        .await?;
    let sql = format!(
        "INSERT INTO attribution_campaign_months (workspace_id, model_id, currency, month_start, campaign_id, attributed, \
         amount_minor, conversion_micros, touchpoints, deals) \
         SELECT workspace_id, model_id, currency, ?, campaign_id, lead_id IS NOT NULL, CAST(SUM(amount_minor) AS BIGINT), \
         CAST(SUM(conversion_micros) AS BIGINT), CAST(SUM(touches) AS BIGINT), COUNT(DISTINCT opportunity_id) \
         FROM attribution_credits \
         WHERE workspace_id = ? AND model_id IN ({}) AND closed_at >= ? AND closed_at < ? \
         GROUP BY workspace_id, model_id, currency, campaign_id, lead_id IS NOT NULL",
        placeholders(model_ids.len())
    );
    let mut values: Vec<sea_orm::Value> = vec![month.into(), ws.into()];
    values.extend(model_ids.iter().map(|&id| id.into()));
    values.push(month.into());
    values.push(next.into());
    db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?;
    Ok(())
}

/// A row of `attribution_campaign_months`: model version, currency, month, campaign, and
/// whether the credits are a touch's (not UNATTRIBUTED).
pub type MonthKey = (i64, String, DateTime<Utc>, Option<i64>, bool);

/// What some deals' credits add to the rows of `attribution_campaign_months`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthSums {
    pub amount_minor: i64,
    pub conversion_micros: i64,
    /// Credited touches (`SUM(touches)`).
    pub touchpoints: i64,
    /// Distinct deals.
    pub deals: i64,
}

/// How a rewrite of some deals' credits changes the monthly sums: the old credits taken out,
/// the new put in. A deal counts once per row it has credits in, so deal counts add up as the
/// sums do.
#[derive(Debug, Default)]
pub struct MonthDelta {
    rows: HashMap<MonthKey, MonthSums>,
}

impl MonthDelta {
    pub fn take_out(&mut self, credits: &[attribution_credit::Model]) {
        self.add(credits, -1);
    }

    pub fn put_in(&mut self, credits: &[attribution_credit::Model]) {
        self.add(credits, 1);
    }

    fn add(&mut self, credits: &[attribution_credit::Model], sign: i64) {
        let mut deals_seen: std::collections::HashSet<(MonthKey, i64)> = std::collections::HashSet::new();
        for c in credits {
            let key: MonthKey = (
                c.model_id,
                c.currency.clone(),
                crate::domain::attribution::month_start(c.closed_at),
                c.campaign_id,
                c.lead_id.is_some(),
            );
            let first_of_deal = deals_seen.insert((key.clone(), c.opportunity_id));
            let sums = self.rows.entry(key).or_default();
            sums.amount_minor += sign * c.amount_minor;
            sums.conversion_micros += sign * c.conversion_micros;
            sums.touchpoints += sign * c.touches;
            sums.deals += sign * i64::from(first_of_deal);
        }
    }
}

/// The credits of these deals under these model versions, as they are stored.
pub async fn credits_of_deals(
    db: &impl ConnectionTrait,
    ws: i64,
    deal_ids: &[i64],
    model_ids: &[i64],
) -> Result<Vec<attribution_credit::Model>, DbErr> {
    use attribution_credit::Column as C;
    let mut out = Vec::new();
    for chunk in deal_ids.chunks(CHUNK) {
        out.extend(
            attribution_credit::Entity::in_workspace(ws)
                .filter(C::OpportunityId.is_in(chunk.iter().copied()))
                .filter(C::ModelId.is_in(model_ids.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// Moves the monthly sums by `delta`: each row it changes is read, changed and written again
/// (and dropped when no deal is left in it). Returns the months whose rows did not add up (a
/// row would keep money without a deal, or go below zero), which the caller sums again from
/// the ledger.
pub async fn apply_month_delta(db: &impl ConnectionTrait, ws: i64, delta: MonthDelta) -> Result<Vec<DateTime<Utc>>, DbErr> {
    use attribution_campaign_month::Column as M;
    use sea_orm::ActiveValue::Set;
    let changes: Vec<(MonthKey, MonthSums)> = delta.rows.into_iter().filter(|(_, d)| *d != MonthSums::default()).collect();
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut models: Vec<i64> = changes.iter().map(|(k, _)| k.0).collect();
    models.sort_unstable();
    models.dedup();
    let mut months: Vec<DateTime<Utc>> = changes.iter().map(|(k, _)| k.2).collect();
    months.sort_unstable();
    months.dedup();
    let stored = attribution_campaign_month::Entity::in_workspace(ws)
        .filter(M::ModelId.is_in(models))
        .filter(M::MonthStart.is_in(months))
        .all(db)
        .await?;
    let by_key: HashMap<MonthKey, &attribution_campaign_month::Model> = stored
        .iter()
        .map(|r| ((r.model_id, r.currency.clone(), r.month_start, r.campaign_id, r.attributed), r))
        .collect();
    let mut drop_ids = Vec::new();
    let mut rows = Vec::new();
    let mut stale = std::collections::BTreeSet::new();
    for (key, d) in changes {
        let old = by_key.get(&key);
        let was = old.map_or(MonthSums::default(), |r| MonthSums {
            amount_minor: r.amount_minor,
            conversion_micros: r.conversion_micros,
            touchpoints: r.touchpoints,
            deals: r.deals,
        });
        let now = MonthSums {
            amount_minor: was.amount_minor + d.amount_minor,
            conversion_micros: was.conversion_micros + d.conversion_micros,
            touchpoints: was.touchpoints + d.touchpoints,
            deals: was.deals + d.deals,
        };
        let nothing_left = MonthSums { deals: 0, ..now } == MonthSums::default();
        if now.deals < 0 || now.touchpoints < 0 || (now.deals == 0 && !nothing_left) {
            stale.insert(key.2);
            continue;
        }
        if let Some(r) = old {
            drop_ids.push(r.id);
        }
        if now.deals > 0 {
            rows.push(attribution_campaign_month::ActiveModel {
                workspace_id: Set(ws),
                model_id: Set(key.0),
                currency: Set(key.1),
                month_start: Set(key.2),
                campaign_id: Set(key.3),
                attributed: Set(key.4),
                amount_minor: Set(now.amount_minor),
                conversion_micros: Set(now.conversion_micros),
                touchpoints: Set(now.touchpoints),
                deals: Set(now.deals),
                ..Default::default()
            });
        }
    }
    if !drop_ids.is_empty() {
        attribution_campaign_month::Entity::delete_many()
            .filter(M::WorkspaceId.eq(ws))
            .filter(M::Id.is_in(drop_ids))
            .exec(db)
            .await?;
    }
    if !rows.is_empty() {
        attribution_campaign_month::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    if !stale.is_empty() {
        tracing::warn!(
            workspace = ws,
            months = stale.len(),
            "monthly attribution sums out of step with the ledger; summed again"
        );
    }
    Ok(stale.into_iter().collect())
}

/// Rows of ledger one statement writes at most (a JSON text of about a megabyte).
const CREDITS_PER_STATEMENT: usize = 10_000;

/// Writes ledger rows of workspace `ws` (their `id` is ignored). As touchpoints are written
/// ([`super::touchpoint::insert_batch`]), the rows travel as one JSON array parameter, read by
/// `json_each` on SQLite and `jsonb_array_elements` on PostgreSQL: one short statement,
/// prepared once, instead of a statement of thirteen bound values a row built for each batch.
/// The caller's transaction is rolled back on an error (on SQLite the statement stops with
/// FAIL, keeping the rows it wrote until then).
pub async fn insert_credits(db: &impl ConnectionTrait, ws: i64, rows: &[attribution_credit::Model]) -> Result<(), DbErr> {
    debug_assert!(rows.iter().all(|r| r.workspace_id == ws));
    let backend = db.get_database_backend();
    let columns = "workspace_id, model_id, opportunity_id, closed_at, currency, position, touchpoint_id, lead_id, \
                   campaign_id, touch_type, amount_minor, conversion_micros, touches";
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO attribution_credits ({columns}) \
             SELECT ?, (v ->> 0)::bigint, (v ->> 1)::bigint, (v ->> 2)::timestamptz, v ->> 3, (v ->> 4)::int, \
             (v ->> 5)::bigint, (v ->> 6)::bigint, (v ->> 7)::bigint, v ->> 8, (v ->> 9)::bigint, (v ->> 10)::bigint, \
             (v ->> 11)::bigint \
             FROM jsonb_array_elements(?::jsonb) AS j(v)"
        ),
        _ => format!(
            "INSERT OR FAIL INTO attribution_credits ({columns}) \
             SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
             value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11 FROM json_each(?)"
        ),
    };
    if backend == DbBackend::Sqlite && !rows.is_empty() {
        // As for touchpoints: a statement that stops with FAIL, its foreign keys checked at the
        // commit, needs no statement journal (every caller writes in a transaction).
        db.execute_unprepared("PRAGMA defer_foreign_keys = ON").await?;
    }
    for chunk in rows.chunks(CREDITS_PER_STATEMENT) {
        let json = serde_json::to_string(
            &chunk
                .iter()
                .map(|r| {
                    (
                        r.model_id,
                        r.opportunity_id,
                        super::raw::time_text(&r.closed_at),
                        r.currency.as_str(),
                        r.position,
                        r.touchpoint_id,
                        r.lead_id,
                        r.campaign_id,
                        r.touch_type.as_deref(),
                        r.amount_minor,
                        r.conversion_micros,
                        r.touches,
                    )
                })
                .collect::<Vec<_>>(),
        )
        .map_err(|e| DbErr::Custom(format!("ledger rows: {e}")))?;
        db.execute_raw(statement(backend, &sql, vec![ws.into(), json.into()])).await?;
    }
    Ok(())
}

/// Removes the credits of these deals under these model versions.
pub async fn delete_credits(db: &impl ConnectionTrait, ws: i64, deal_ids: &[i64], model_ids: &[i64]) -> Result<(), DbErr> {
    use attribution_credit::Column as C;
    for chunk in deal_ids.chunks(CHUNK) {
        attribution_credit::Entity::delete_many()
            .filter(C::WorkspaceId.eq(ws))
            .filter(C::OpportunityId.is_in(chunk.iter().copied()))
            .filter(C::ModelId.is_in(model_ids.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Won deals with no credit row under a model version (closed before the version existed, or
/// written by a bulk import).
pub async fn won_deals_missing_credits(db: &impl ConnectionTrait, ws: i64, model_id: i64) -> Result<Vec<i64>, DbErr> {
    use opportunity::Column as C;
    opportunity::Entity::in_workspace(ws)
        .filter(C::Status.eq("WON"))
        .filter(
            C::Id.not_in_subquery(
                Query::select()
                    .column(attribution_credit::Column::OpportunityId)
                    .from(attribution_credit::Entity)
                    .and_where(attribution_credit::Column::WorkspaceId.eq(ws))
                    .and_where(attribution_credit::Column::ModelId.eq(model_id))
                    .to_owned(),
            ),
        )
        .select_only()
        .column(C::Id)
        .order_by_asc(C::Id)
        .into_tuple::<i64>()
        .all(db)
        .await
}
