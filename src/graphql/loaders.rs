//! Per-request batching of related objects. One `DataLoader<DbLoader>` per request, scoped to the
//! caller's workspace; each key type below is one batched query, however many parents ask.
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{
    account, campaign, campaign_cost, funnel_stage, handoff, lead, lead_persona_match, lead_stage_history, opportunity,
    opportunity_contact, persona, scoring_model, touchpoint, user,
};
use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter};
use tokio::sync::Notify;

use crate::graphql::errors::gql_error;
use crate::store::touchpoint::Newest;
use crate::store::{self, Scoped};

/// The request's DataLoader. Its loads come boxed: a resolver that awaits a load then keeps only
/// a pointer in its state, instead of the DataLoader's own future. Every field
/// of an object shares the state of its type's `resolve_field` future, which async-graphql moves
/// when it boxes each field's future: unboxed loads made every scalar field of a `Touchpoint` or a
/// `Lead` as large as its largest nested load, and `memmove` took 6.5 % of the server's CPU under
/// Q2 of BENCHMARKS.md.
pub struct Loaders(DataLoader<DbLoader, HashMapCache>);

impl Loaders {
    /// The value of one key, batched with the request's other loads of its type.
    pub fn load_one<K>(&self, key: K) -> BoxFuture<'_, Result<Option<<DbLoader as Loader<K>>::Value>, async_graphql::Error>>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        DbLoader: Loader<K, Error = async_graphql::Error>,
    {
        Box::pin(self.0.load_one(key))
    }

    /// The values of several keys (absent keys are left out).
    pub fn load_many<K, I>(&self, keys: I) -> BoxFuture<'_, LoadResult<K, <DbLoader as Loader<K>>::Value>>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        I: IntoIterator<Item = K> + Send + 'static,
        I::IntoIter: Send,
        DbLoader: Loader<K, Error = async_graphql::Error>,
    {
        Box::pin(self.0.load_many(keys))
    }

    /// Turns the per-key cache on or off (a WebSocket connection's loaders must not cache).
    pub fn enable_all_cache(&self, enable: bool) {
        self.0.enable_all_cache(enable);
    }
}

/// How long a batch waits at most for the round that added its keys to end. Only a load made
/// outside the task that a [`PollGate`] drives can wait this long; none does.
const SAFETY_WINDOW: Duration = Duration::from_millis(20);

/// The loaders of one request (or one WebSocket connection), whose batches `gate` closes.
pub fn new_loaders(db: DatabaseConnection, workspace_id: i64, gate: Arc<PollGate>) -> Loaders {
    let spawn = move |batch: BoxFuture<'static, ()>| {
        let gate = gate.clone();
        let round = gate.current();
        // The batch's statements count for the request that asked for it (`/metrics`).
        let statements = crate::metrics::StatementCount::current().unwrap_or_default();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SAFETY_WINDOW, gate.ended(round)).await;
            statements.scope(batch).await;
        })
    };
    // async-graphql's own delay is off (its timer, async-io's, is ready at once for a zero
    // delay): the gate decides when a batch is complete.
    Loaders(DataLoader::with_cache(DbLoader { db, ws: workspace_id }, spawn, HashMapCache::default()).delay(Duration::ZERO))
}

/// Closes a request's DataLoader batches when the request's task has nothing left to do but
/// wait, instead of after a delay.
///
/// async-graphql resolves sibling fields (the `account` of each of 50 leads) as futures joined
/// in one task, so the task adds every sibling's key before it waits. A batch sent after a
/// timer instead went out when the timer fired on the other worker thread, often half-way:
/// on a busy machine a page of 50 leads with accounts, touchpoints and their campaigns ran 12
/// to 13 statements instead of 5. A batch here waits until the task's current round of polls
/// has ended. A poll that woke its own task does not end a round: that is a yield (a
/// `FuturesUnordered` yields after every two list items), and the next poll goes on adding keys.
#[derive(Default)]
pub struct PollGate {
    /// The rounds of the driven task that have ended.
    rounds: AtomicU64,
    round_ended: Notify,
}

impl PollGate {
    /// Runs `work`, ending a round whenever a poll of it leaves it waiting on something else.
    pub async fn drive<F: Future>(&self, work: F) -> F::Output {
        let mut work = pin!(work);
        let wakes = Arc::new(SelfWake::default());
        let waker = Waker::from(wakes.clone());
        poll_fn(|cx| {
            wakes.outer.register(cx.waker());
            wakes.woken.store(false, Ordering::Release);
            let result = work.as_mut().poll(&mut Context::from_waker(&waker));
            if result.is_ready() || !wakes.woken.load(Ordering::Acquire) {
                self.rounds.fetch_add(1, Ordering::AcqRel);
                self.round_ended.notify_waiters();
            }
            result
        })
        .await
    }

    /// The round running now (or the next).
    fn current(&self) -> u64 {
        self.rounds.load(Ordering::Acquire)
    }

    /// Returns once `round` has ended.
    async fn ended(&self, round: u64) {
        loop {
            let mut notified = pin!(self.round_ended.notified());
            // Registered before the check, so an end between the two is not missed.
            notified.as_mut().enable();
            if self.current() != round {
                return;
            }
            notified.await;
        }
    }
}

/// The waker a driven task sees: it records that the task was woken, and wakes it.
#[derive(Default)]
struct SelfWake {
    woken: AtomicBool,
    outer: AtomicWaker,
}

impl Wake for SelfWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.outer.wake();
    }
}

pub struct DbLoader {
    db: DatabaseConnection,
    ws: i64,
}

type LoadResult<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

fn err(e: sea_orm::DbErr) -> async_graphql::Error {
    gql_error(e.into())
}

macro_rules! by_id_key {
    ($key:ident, $entity:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub i64);

        impl Loader<$key> for DbLoader {
            type Value = $entity::Model;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, $entity::Model> {
                let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
                let rows = store::by_ids::<$entity::Entity>(&self.db, self.ws, &ids).await.map_err(err)?;
                Ok(rows
                    .into_iter()
                    .map(|m| ($key(<$entity::Entity as Scoped>::id_of(&m)), m))
                    .collect())
            }
        }
    };
}

by_id_key!(AccountId, account);
by_id_key!(LeadId, lead);
by_id_key!(CampaignId, campaign);
by_id_key!(StageId, funnel_stage);
by_id_key!(UserId, user);
by_id_key!(OpportunityId, opportunity);
by_id_key!(HandoffId, handoff);
by_id_key!(PersonaId, persona);
by_id_key!(ScoringModelId, scoring_model);
by_id_key!(TouchpointId, touchpoint);

/// The persona matches of a lead (personas it matches to any degree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadPersonaMatches(pub i64);

impl Loader<LeadPersonaMatches> for DbLoader {
    type Value = Vec<lead_persona_match::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadPersonaMatches]) -> LoadResult<LeadPersonaMatches, Vec<lead_persona_match::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<LeadPersonaMatches, Vec<lead_persona_match::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        let rows = lead_persona_match::Entity::in_workspace(self.ws)
            .filter(store::id_in(&self.db, lead_persona_match::Column::LeadId, &ids))
            .all(&self.db)
            .await
            .map_err(err)?;
        for row in rows {
            out.entry(LeadPersonaMatches(row.lead_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// The whole stage history of a lead, oldest first (short: a row per stage change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadHistory(pub i64);

impl Loader<LeadHistory> for DbLoader {
    type Value = Vec<lead_stage_history::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadHistory]) -> LoadResult<LeadHistory, Vec<lead_stage_history::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<LeadHistory, Vec<lead_stage_history::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in store::handoff::history_of(&self.db, self.ws, &ids).await.map_err(err)? {
            out.entry(LeadHistory(row.lead_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// The newest `limit` deliveries of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebhookDeliveries {
    pub webhook_id: i64,
    pub limit: u64,
}

impl Loader<WebhookDeliveries> for DbLoader {
    type Value = Vec<entity::webhook_delivery::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[WebhookDeliveries]) -> LoadResult<WebhookDeliveries, Vec<entity::webhook_delivery::Model>> {
        let mut out: HashMap<WebhookDeliveries, Vec<entity::webhook_delivery::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for (limit, group) in group_by(keys, |k| k.limit) {
            let ids: Vec<i64> = group.iter().map(|k| k.webhook_id).collect();
            let rows = store::raw::top_n_per_parent::<entity::webhook_delivery::Entity>(
                &self.db,
                "webhook_deliveries",
                "webhook_id",
                "id DESC",
                self.ws,
                &ids,
                limit,
                "1 = 1",
            )
            .await
            .map_err(err)?;
            for row in rows {
                out.entry(WebhookDeliveries {
                    webhook_id: row.webhook_id,
                    limit,
                })
                .or_default()
                .push(row);
            }
        }
        for rows in out.values_mut() {
            rows.sort_by_key(|d| std::cmp::Reverse(d.id));
        }
        Ok(out)
    }
}

/// The pending handoff of a lead, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadOpenHandoff(pub i64);

impl Loader<LeadOpenHandoff> for DbLoader {
    type Value = handoff::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadOpenHandoff]) -> LoadResult<LeadOpenHandoff, handoff::Model> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows = handoff::Entity::in_workspace(self.ws)
            .filter(store::id_in(&self.db, handoff::Column::OpenLeadId, &ids))
            .all(&self.db)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|h| (LeadOpenHandoff(h.lead_id), h)).collect())
    }
}

/// Groups list keys by everything but the parent id, so that each group is one query.
fn group_by<K: Clone, G: Hash + Eq>(keys: &[K], group: impl Fn(&K) -> G) -> HashMap<G, Vec<K>> {
    let mut groups: HashMap<G, Vec<K>> = HashMap::new();
    for k in keys {
        groups.entry(group(k)).or_default().push(k.clone());
    }
    groups
}

/// The first `limit` touchpoints of a lead, from the newest or the oldest end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadTouchpoints {
    pub lead_id: i64,
    pub limit: u64,
    pub newest: Newest,
}

impl Loader<LeadTouchpoints> for DbLoader {
    type Value = Vec<touchpoint::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadTouchpoints]) -> LoadResult<LeadTouchpoints, Vec<touchpoint::Model>> {
        let mut out: HashMap<LeadTouchpoints, Vec<touchpoint::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((limit, newest), group) in group_by(keys, |k| (k.limit, k.newest)) {
            let ids: Vec<i64> = group.iter().map(|k| k.lead_id).collect();
            for row in store::touchpoint::top_per_lead(&self.db, self.ws, &ids, limit, newest)
                .await
                .map_err(err)?
            {
                let key = LeadTouchpoints {
                    lead_id: row.lead_id,
                    limit,
                    newest,
                };
                out.entry(key).or_default().push(row);
            }
        }
        for (key, rows) in out.iter_mut() {
            sort_touchpoints(rows, key.newest);
        }
        Ok(out)
    }
}

/// Rows of one parent in page order (a UNION ALL promises no order across its arms).
fn sort_touchpoints(rows: &mut [touchpoint::Model], newest: Newest) {
    rows.sort_by_key(|t| (t.occurred_at, t.id));
    if newest == Newest::First {
        rows.reverse();
    }
}

/// The first `limit` touchpoints of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CampaignTouchpoints {
    pub campaign_id: i64,
    pub limit: u64,
    pub newest: Newest,
}

impl Loader<CampaignTouchpoints> for DbLoader {
    type Value = Vec<touchpoint::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[CampaignTouchpoints]) -> LoadResult<CampaignTouchpoints, Vec<touchpoint::Model>> {
        let mut out: HashMap<CampaignTouchpoints, Vec<touchpoint::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((limit, newest), group) in group_by(keys, |k| (k.limit, k.newest)) {
            let ids: Vec<i64> = group.iter().map(|k| k.campaign_id).collect();
            for row in store::touchpoint::top_per_campaign(&self.db, self.ws, &ids, limit, newest)
                .await
                .map_err(err)?
            {
                let Some(campaign_id) = row.campaign_id else { continue };
                out.entry(CampaignTouchpoints {
                    campaign_id,
                    limit,
                    newest,
                })
                .or_default()
                .push(row);
            }
        }
        for (key, rows) in out.iter_mut() {
            sort_touchpoints(rows, key.newest);
        }
        Ok(out)
    }
}

/// The first `limit` leads of an account, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountLeads {
    pub account_id: i64,
    pub limit: u64,
}

impl Loader<AccountLeads> for DbLoader {
    type Value = Vec<lead::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AccountLeads]) -> LoadResult<AccountLeads, Vec<lead::Model>> {
        let mut out: HashMap<AccountLeads, Vec<lead::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for (limit, group) in group_by(keys, |k| k.limit) {
            let ids: Vec<i64> = group.iter().map(|k| k.account_id).collect();
            for row in store::lead::first_per_account(&self.db, self.ws, &ids, limit).await.map_err(err)? {
                let Some(account_id) = row.account_id else { continue };
                out.entry(AccountLeads { account_id, limit }).or_default().push(row);
            }
        }
        for rows in out.values_mut() {
            rows.sort_by_key(|l| l.id);
        }
        Ok(out)
    }
}

/// The buying center of an opportunity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BuyingCenter(pub i64);

impl Loader<BuyingCenter> for DbLoader {
    type Value = Vec<opportunity_contact::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[BuyingCenter]) -> LoadResult<BuyingCenter, Vec<opportunity_contact::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<BuyingCenter, Vec<opportunity_contact::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in store::opportunity::contacts_of(&self.db, self.ws, &ids).await.map_err(err)? {
            out.entry(BuyingCenter(row.opportunity_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// The opportunities whose buying center a lead is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadDeals(pub i64);

impl Loader<LeadDeals> for DbLoader {
    type Value = Vec<opportunity::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadDeals]) -> LoadResult<LeadDeals, Vec<opportunity::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let contacts = store::opportunity::contacts_of_leads(&self.db, self.ws, &ids).await.map_err(err)?;
        let mut opp_ids: Vec<i64> = contacts.iter().map(|c| c.opportunity_id).collect();
        opp_ids.sort_unstable();
        opp_ids.dedup();
        let opps: HashMap<i64, opportunity::Model> = store::by_ids::<opportunity::Entity>(&self.db, self.ws, &opp_ids)
            .await
            .map_err(err)?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        let mut out: HashMap<LeadDeals, Vec<opportunity::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for c in contacts {
            if let Some(o) = opps.get(&c.opportunity_id) {
                out.entry(LeadDeals(c.lead_id)).or_default().push(o.clone());
            }
        }
        for deals in out.values_mut() {
            deals.sort_by_key(|o| o.id);
        }
        Ok(out)
    }
}

/// The cost lines of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CampaignCosts(pub i64);

impl Loader<CampaignCosts> for DbLoader {
    type Value = Vec<campaign_cost::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[CampaignCosts]) -> LoadResult<CampaignCosts, Vec<campaign_cost::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<CampaignCosts, Vec<campaign_cost::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in store::campaign::costs_of(&self.db, self.ws, &ids).await.map_err(err)? {
            out.entry(CampaignCosts(row.campaign_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// The counts that a nested connection's `totalCount` may ask for.
#[derive(Debug, Clone, Copy)]
pub enum CountKey {
    AccountLeads(AccountLeadCount),
    LeadTouchpoints(LeadTouchpointCount),
}

/// The caller's workspace (for its currency and settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkspaceKey;

impl Loader<WorkspaceKey> for DbLoader {
    type Value = entity::workspace::Model;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[WorkspaceKey]) -> LoadResult<WorkspaceKey, entity::workspace::Model> {
        let ws = store::workspace::by_id(&self.db, self.ws).await.map_err(err)?;
        Ok(ws.into_iter().map(|w| (WorkspaceKey, w)).collect())
    }
}

/// The values filters may name in the caller's workspace: its funnel's stage keys and its
/// vocabularies' codes, read once per request however many filters ask (`graphql::filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnownCodes;

/// Stage keys in funnel order, and each vocabulary's codes, sorted, by vocabulary kind.
#[derive(Debug, Default)]
pub struct Codes {
    pub stage_keys: Vec<String>,
    pub vocabularies: HashMap<String, Vec<String>>,
}

impl Loader<KnownCodes> for DbLoader {
    type Value = Arc<Codes>;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[KnownCodes]) -> LoadResult<KnownCodes, Arc<Codes>> {
        let stages = store::workspace::stages(&self.db, self.ws).await.map_err(err)?;
        let terms = store::workspace::vocabularies(&self.db, self.ws).await.map_err(err)?;
        let mut vocabularies: HashMap<String, Vec<String>> = HashMap::new();
        for t in terms {
            vocabularies.entry(t.kind).or_default().push(t.code);
        }
        let codes = Codes {
            stage_keys: stages.into_iter().map(|s| s.key).collect(),
            vocabularies,
        };
        Ok(HashMap::from([(KnownCodes, Arc::new(codes))]))
    }
}

/// The caller's workspace's data revision, read once per request (the report cache's key to
/// freshness; a page of 50 campaigns asks it for every field of every row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevisionKey;

impl Loader<RevisionKey> for DbLoader {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[RevisionKey]) -> LoadResult<RevisionKey, i64> {
        let revision = store::workspace::revision(&self.db, self.ws).await.map_err(err)?;
        Ok(HashMap::from([(RevisionKey, revision)]))
    }
}

/// Number of touchpoints of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadTouchpointCount(pub i64);

impl Loader<LeadTouchpointCount> for DbLoader {
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadTouchpointCount]) -> LoadResult<LeadTouchpointCount, u64> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let counts = count_by::<touchpoint::Entity>(&self.db, self.ws, touchpoint::Column::LeadId, &ids)
            .await
            .map_err(err)?;
        Ok(keys.iter().map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0))).collect())
    }
}

/// Number of (not erased) leads of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountLeadCount(pub i64);

impl Loader<AccountLeadCount> for DbLoader {
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AccountLeadCount]) -> LoadResult<AccountLeadCount, u64> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let counts = count_by::<lead::Entity>(&self.db, self.ws, lead::Column::AccountId, &ids)
            .await
            .map_err(err)?;
        Ok(keys.iter().map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0))).collect())
    }
}

/// `SELECT parent, COUNT(*) ... GROUP BY parent` for the given parents.
async fn count_by<E: Scoped>(
    db: &DatabaseConnection,
    ws: i64,
    parent: E::Column,
    ids: &[i64],
) -> Result<HashMap<i64, u64>, sea_orm::DbErr> {
    use sea_orm::QuerySelect;
    let mut select = E::in_workspace(ws).filter(store::id_in(db, parent, ids));
    if let Ok(erased) = <E::Column as std::str::FromStr>::from_str("erased_at") {
        select = select.filter(erased.is_null());
    }
    let rows: Vec<(i64, i64)> = select
        .select_only()
        .column(parent)
        .column_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), "n")
        .group_by(parent)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(id, n)| (id, n as u64)).collect())
}

/// The criteria of a persona, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersonaCriteria(pub i64);

impl Loader<PersonaCriteria> for DbLoader {
    type Value = Vec<entity::persona_criterion::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[PersonaCriteria]) -> LoadResult<PersonaCriteria, Vec<entity::persona_criterion::Model>> {
        use entity::persona_criterion::{Column, Entity};
        use sea_orm::QueryOrder;
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows = Entity::in_workspace(self.ws)
            .filter(store::id_in(&self.db, Column::PersonaId, &ids))
            .order_by_asc(Column::Position)
            .order_by_asc(Column::Id)
            .all(&self.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<PersonaCriteria, Vec<_>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(PersonaCriteria(row.persona_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// A lead's score under a model (`None`: the default) at a time (microseconds since the epoch;
/// `None`: now, one "now" for the whole batch, so that a page of leads is scored at one time):
/// the model, the score (`None` when the lead has none, e.g. erased) and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadScoreAt {
    pub model: Option<i64>,
    pub lead: i64,
    pub at_micros: Option<i64>,
}

pub type ScoreOf = (
    std::sync::Arc<crate::service::scoring::Scorer>,
    Option<crate::domain::scoring::Score>,
    chrono::DateTime<chrono::Utc>,
);

impl Loader<LeadScoreAt> for DbLoader {
    type Value = ScoreOf;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadScoreAt]) -> LoadResult<LeadScoreAt, ScoreOf> {
        use crate::service::scoring::{Scorer, scorers, scores_for};
        use std::sync::Arc;
        let all: Vec<Arc<Scorer>> = scorers(&self.db, self.ws).await.map_err(err)?.into_iter().map(Arc::new).collect();
        let pick = |m: Option<i64>| match m {
            Some(id) => all.iter().find(|s| s.id() == id).cloned(),
            None => all.iter().find(|s| s.row.is_default).cloned(),
        };
        let now = chrono::Utc::now().timestamp_micros();
        let at = |k: &LeadScoreAt| k.at_micros.unwrap_or(now);
        let time = |k: &LeadScoreAt| chrono::DateTime::from_timestamp_micros(at(k)).unwrap_or_default();
        let picked: Vec<(Arc<Scorer>, &LeadScoreAt)> = keys.iter().filter_map(|k| Some((pick(k.model)?, k))).collect();
        let wanted: Vec<(&Scorer, i64, chrono::DateTime<chrono::Utc>)> =
            picked.iter().map(|(s, k)| (s.as_ref(), k.lead, time(k))).collect();
        let scores = scores_for(&self.db, self.ws, &wanted).await.map_err(err)?;
        let mut out = HashMap::new();
        for (s, k) in &picked {
            let score = scores.get(&(s.id(), k.lead, time(k))).copied();
            out.insert(**k, (Arc::clone(s), score, time(k)));
        }
        Ok(out)
    }
}

/// Every touchpoint of a lead (for score breakdowns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeadAllTouchpoints(pub i64);

impl Loader<LeadAllTouchpoints> for DbLoader {
    type Value = Vec<touchpoint::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[LeadAllTouchpoints]) -> LoadResult<LeadAllTouchpoints, Vec<touchpoint::Model>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows = touchpoint::Entity::in_workspace(self.ws)
            .filter(store::id_in(&self.db, touchpoint::Column::LeadId, &ids))
            .all(&self.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<LeadAllTouchpoints, Vec<touchpoint::Model>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(LeadAllTouchpoints(row.lead_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// A won deal's attribution path with a lookback (absent for deals not won).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DealPath {
    pub id: i64,
    pub lookback_days: i64,
}

impl Loader<DealPath> for DbLoader {
    type Value = crate::domain::attribution::Deal;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[DealPath]) -> Result<HashMap<DealPath, Self::Value>, Self::Error> {
        use crate::store::attribution as store;
        let mut out = HashMap::with_capacity(keys.len());
        let mut lookbacks: Vec<i64> = keys.iter().map(|k| k.lookback_days).collect();
        lookbacks.sort_unstable();
        lookbacks.dedup();
        for lookback_days in lookbacks {
            let ids: Vec<i64> = keys.iter().filter(|k| k.lookback_days == lookback_days).map(|k| k.id).collect();
            let won: Vec<store::DealRow> = store::closed_deals_by_ids(&self.db, self.ws, &ids)
                .await
                .map_err(err)?
                .into_iter()
                .filter(|d| d.status == crate::domain::vocab::OpportunityStatus::Won.as_str())
                .collect();
            let paths = crate::service::attribution::paths(&self.db, self.ws, &won, lookback_days)
                .await
                .map_err(err)?;
            for (d, p) in won.iter().zip(paths) {
                out.insert(DealPath { id: d.id, lookback_days }, p);
            }
        }
        Ok(out)
    }
}

/// An account's customer lifetime value at a time (absent without a won deal before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountLifetimeValue {
    pub id: i64,
    pub as_of_micros: i64,
}

impl Loader<AccountLifetimeValue> for DbLoader {
    type Value = rust_decimal::Decimal;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AccountLifetimeValue]) -> LoadResult<AccountLifetimeValue, rust_decimal::Decimal> {
        let mut out = HashMap::with_capacity(keys.len());
        let mut times: Vec<i64> = keys.iter().map(|k| k.as_of_micros).collect();
        times.sort_unstable();
        times.dedup();
        for micros in times {
            let ids: Vec<i64> = keys.iter().filter(|k| k.as_of_micros == micros).map(|k| k.id).collect();
            let as_of = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
            let values = crate::service::kpi::lifetime_value(&self.db, self.ws, &ids, as_of)
                .await
                .map_err(err)?;
            out.extend(
                values
                    .into_iter()
                    .map(|(id, v)| (AccountLifetimeValue { id, as_of_micros: micros }, v)),
            );
        }
        Ok(out)
    }
}
