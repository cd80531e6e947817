//! The handoff loop in the API: handoffs, their events (queries and the live subscription),
//! routing rules and the loop's mutations.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, SimpleObject, Subscription};
use chrono::Utc;
use entity::{event, handoff, routing_rule};
use futures_util::{Stream, StreamExt};

use crate::domain::handoff::{self as machine, Answer, HandoffEventData};
use crate::domain::ids::{event_cursor, parse_event_cursor};
use crate::domain::vocab::Action;
use crate::error::AppError;
use crate::events::stream::{Filter, StreamError};
use crate::events::{self, Bus};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{HandoffEventKind, HandoffStatus};
use crate::graphql::errors::{IntoGql, UserError, gql_error, split};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{HandoffId, LeadId, Loaders, StageId, UserId};
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection, is_time};
use crate::graphql::persona::Persona;
use crate::graphql::scalars::DateTime;
use crate::graphql::user::User;
use crate::graphql::{decode_opt, patch_id};
use crate::service::handoff::{self as handoff_service, AnswerInput, RuleInput, Step};
use crate::store;
use crate::store::page::{CursorKey, Sort, SortValue, fetch_page};

pub struct Handoff(pub handoff::Model);

/// Marketing passing a lead to sales. It is PENDING until sales accepts it (the lead moves to
/// SQL), rejects it (DISQUALIFIED, with a reason code) or recycles it (NURTURE, with feedback).
/// A lead has at most one pending handoff. A SALES key made for a user sees only the handoffs
/// that user owns. Times are UTC.
#[Object]
impl Handoff {
    /// The handoff's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Handoff, self.0.id)
    }
    /// PENDING, or how sales answered.
    async fn status(&self) -> HandoffStatus {
        HandoffStatus::from_db(&self.0.status)
    }
    /// The lead handed off (an erased lead is a stub).
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(self.0.lead_id)).await?.map(Lead))
    }
    /// The sales user the handoff is routed to; null when no rule and no default owner applied.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The lead's stage before it was handed off (the handoff moved it to MQL); null when that
    /// stage is no longer known.
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        let Some(id) = self.0.from_stage_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
    }
    /// Marketing's note for sales; for an automatic handoff, which cell of which scoring model
    /// the lead entered. Null when none was given.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Why sales rejected the lead (a code of `workspace.rejectReasons`); null unless REJECTED.
    async fn reason_code(&self) -> Option<&str> {
        self.0.reason_code.as_deref()
    }
    /// Sales' words: the rejection comment or the recycling feedback; null when none.
    async fn feedback(&self) -> Option<&str> {
        self.0.feedback.as_deref()
    }
    /// RECYCLED: until when sales asked marketing to nurture the lead (UTC); null when not given.
    async fn nurture_until(&self) -> Option<DateTime> {
        self.0.nurture_until.map(Into::into)
    }
    /// Who handed the lead off: `api-key:<id>` (a call with that API key), `scoring-model:<id>`
    /// (automatically, on entering an MQL cell of the default model) or `import` (demo data).
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When the lead was handed off.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the handoff last changed (answer or reassignment).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// When sales answered (accepted, rejected or recycled); null while PENDING.
    async fn responded_at(&self) -> Option<DateTime> {
        self.0.responded_at.map(Into::into)
    }
    /// Who answered: `api-key:<id>` of the key used; null while PENDING.
    async fn responded_by(&self) -> Option<&str> {
        self.0.responded_by.as_deref()
    }
    /// When sales must have answered: `createdAt` plus the MQL stage's `slaHours` as it was at
    /// the handoff; null when the MQL stage had no SLA then.
    async fn due_at(&self) -> Option<DateTime> {
        self.0.due_at.map(Into::into)
    }
    /// PENDING and past `dueAt` now; false without a deadline.
    async fn overdue(&self) -> bool {
        self.0.responded_at.is_none() && machine::breached(self.0.due_at, None, Utc::now())
    }
    /// Answered after `dueAt`, or PENDING past it now; false without a deadline.
    async fn sla_breached(&self) -> bool {
        machine::breached(self.0.due_at, self.0.responded_at, Utc::now())
    }
    /// Whole seconds from the handoff to sales' answer (rounded down); null while PENDING.
    async fn time_to_first_response_seconds(&self) -> Option<i64> {
        self.0.responded_at.map(|r| (r - self.0.created_at).num_seconds())
    }
}

// One event goes to every subscriber, and each resolves it on its own: the payload is parsed
// only when a field needs it (the row's columns answer seq, kind, time, handoff and lead).
pub struct HandoffEvent {
    row: Arc<event::Model>,
    data: std::sync::OnceLock<HandoffEventData>,
}

impl HandoffEvent {
    pub fn new(row: Arc<event::Model>) -> async_graphql::Result<Self> {
        Ok(Self {
            row,
            data: std::sync::OnceLock::new(),
        })
    }

    fn data(&self) -> async_graphql::Result<&HandoffEventData> {
        if let Some(d) = self.data.get() {
            return Ok(d);
        }
        use serde::Deserialize;
        let parsed = HandoffEventData::deserialize(&self.row.payload).map_err(|e| gql_error(AppError::internal(e)))?;
        Ok(self.data.get_or_init(|| parsed))
    }

    fn handoff_id_num(&self) -> async_graphql::Result<i64> {
        match self.row.handoff_id {
            Some(id) => Ok(id),
            None => Ok(self.data()?.handoff_id),
        }
    }

    fn lead_id_num(&self) -> async_graphql::Result<i64> {
        match self.row.lead_id {
            Some(id) => Ok(id),
            None => Ok(self.data()?.lead_id),
        }
    }
}

/// One change of a handoff, as the `handoffEvents` subscription, `handoffEventLog` and webhooks
/// deliver it. Events are numbered per workspace without gaps (`seq`) and are never changed;
/// the fields after `leadId` describe the handoff as it was right after the change.
#[Object]
impl HandoffEvent {
    /// Opaque; pass it as `after` to `handoffEvents` or `handoffEventLog` to resume after this
    /// event.
    async fn cursor(&self) -> String {
        event_cursor(self.row.seq)
    }
    /// Position in the workspace's event sequence (1, 2, 3, ... without gaps).
    async fn seq(&self) -> i64 {
        self.row.seq
    }
    /// What happened.
    async fn kind(&self) -> HandoffEventKind {
        HandoffEventKind::from_db(&self.row.kind)
    }
    /// When it happened (UTC).
    async fn occurred_at(&self) -> DateTime {
        self.row.created_at.into()
    }
    /// The handoff as it is now (it may have changed since the event); null for a SALES key
    /// made for a user when the handoff has another owner now.
    async fn handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Handoff>> {
        load_visible(ctx, self.handoff_id_num()?).await
    }
    /// The handoff's global ID, also when `handoff` is null.
    async fn handoff_id(&self) -> async_graphql::Result<ID> {
        Ok(ids::encode(NodeType::Handoff, self.handoff_id_num()?))
    }
    /// The lead as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadId(self.lead_id_num()?))
            .await?
            .map(Lead))
    }
    /// The lead's global ID.
    async fn lead_id(&self) -> async_graphql::Result<ID> {
        Ok(ids::encode(NodeType::Lead, self.lead_id_num()?))
    }
    /// The handoff's owner after the change; null when it had none.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.data()?.owner_id).await
    }
    /// REASSIGNED: the owner before; null for other kinds.
    async fn previous_owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.data()?.previous_owner_id).await
    }
    /// The handoff's status after the change.
    async fn status(&self) -> async_graphql::Result<HandoffStatus> {
        Ok(HandoffStatus::from_db(&self.data()?.status))
    }
    /// The key of the lead's stage before the change, as it was then (kept if the stage is
    /// changed or deleted later).
    #[graphql(name = "fromStageKey")]
    async fn stage_key_before(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.from_stage.as_deref())
    }
    /// The key of the lead's stage after the change, as it was then (REASSIGNED: unchanged).
    async fn to_stage_key(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.to_stage.as_deref())
    }
    /// The lead's stage before the change, as the stage is now; null if it was deleted.
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.data()?.from_stage_id).await
    }
    /// The lead's stage after the change, as the stage is now; null if it was deleted.
    async fn to_stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.data()?.to_stage_id).await
    }
    /// Marketing's note of the handoff (see `Handoff.note`).
    async fn note(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.note.as_deref())
    }
    /// REJECTED: the reason code.
    async fn reason_code(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.reason_code.as_deref())
    }
    /// REJECTED: the comment; RECYCLED: the feedback for marketing.
    async fn feedback(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.feedback.as_deref())
    }
    /// RECYCLED: until when to nurture the lead (UTC), if sales said.
    async fn nurture_until(&self) -> async_graphql::Result<Option<DateTime>> {
        Ok(self.data()?.nurture_until.map(Into::into))
    }
    /// The lead's cell in the default scoring model at the change ("A1" ... "D4"); null without
    /// a default model or a score of the lead.
    async fn scoring_cell(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.scoring_cell.as_deref())
    }
    /// Who made the change: `api-key:<id>`, `scoring-model:<id>` or `import` (as
    /// `Handoff.createdBy`).
    async fn actor(&self) -> async_graphql::Result<&str> {
        Ok(&self.data()?.actor)
    }
}

/// A handoff by ID if the caller sees it (see `service::handoff::visible`): one row, so it is
/// checked after loading.
pub(crate) async fn load_visible(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<Handoff>> {
    let p = ctx.principal()?;
    let h = ctx.data_unchecked::<Loaders>().load_one(HandoffId(id)).await?;
    Ok(h.filter(|h| handoff_service::visible(&p, h)).map(Handoff))
}

async fn user(ctx: &Context<'_>, id: Option<i64>) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
}

async fn stage(ctx: &Context<'_>, id: Option<i64>) -> async_graphql::Result<Option<FunnelStage>> {
    let Some(id) = id else { return Ok(None) };
    Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
}

pub struct RoutingRule(routing_rule::Model);

/// A routing rule: leads from `countries` (any when empty) that match `persona` (any when
/// null) go to `owners` in turn.
#[Object]
impl RoutingRule {
    /// The rule's global ID (replaced by every `setRoutingRules`).
    async fn id(&self) -> ID {
        ids::encode(NodeType::RoutingRule, self.0.id)
    }
    /// A label for people; empty when none was given.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Rules are tried in this order (0 first); the first match wins.
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// ISO 3166 alpha-2 codes the lead's country must be one of; empty: any country.
    async fn countries(&self) -> Vec<String> {
        json_strings(self.0.countries.as_ref())
    }
    /// The persona the lead must be a member of; null: any lead.
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        let Some(id) = self.0.persona_id else { return Ok(None) };
        let p = ctx.principal()?;
        Ok(store::by_id::<entity::persona::Entity>(&ctx.db().conn, p.workspace_id, id)
            .await
            .gql()?
            .map(Persona))
    }
    /// The users the rule assigns, taken in turn (round-robin).
    async fn owners(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let ids: Vec<UserId> = self
            .0
            .user_ids
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_i64).map(UserId).collect())
            .unwrap_or_default();
        let mut found = ctx.data_unchecked::<Loaders>().load_many(ids.clone()).await?;
        Ok(ids.iter().filter_map(|k| found.remove(k)).map(User).collect())
    }
}

fn json_strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub struct Routing {
    rules: Vec<routing_rule::Model>,
    default_owner_id: Option<i64>,
}

/// How handoffs are routed: the first rule that matches the lead picks the owner, else the
/// default owner, else nobody (the handoff stays without owner).
#[Object]
impl Routing {
    /// In the order they are tried.
    async fn rules(&self) -> Vec<RoutingRule> {
        self.rules.iter().cloned().map(RoutingRule).collect()
    }
    /// Who gets a handoff that no rule matches; null: nobody.
    async fn default_owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.default_owner_id).await
    }
}

/// Counts of one reason code.
#[derive(SimpleObject)]
pub struct ReasonCount {
    /// A reject reason code, e.g. NO_BUDGET.
    pub code: String,
    /// Rejected handoffs with this code.
    pub count: u64,
}

/// How the handoffs created in a range fared, counted now. Durations are whole seconds.
#[derive(SimpleObject, Default)]
pub struct HandoffStats {
    /// Handoffs created in the range.
    pub total: u64,
    /// Of those, still PENDING.
    pub pending: u64,
    /// Of those, ACCEPTED.
    pub accepted: u64,
    /// Of those, REJECTED.
    pub rejected: u64,
    /// Of those, RECYCLED.
    pub recycled: u64,
    /// Rejections per reason code, most frequent first.
    pub rejected_by_reason: Vec<ReasonCount>,
    /// Median seconds from handoff to acceptance (mean of the two middle ones for an even
    /// count, rounded down); null without accepted handoffs.
    pub median_time_to_accept_seconds: Option<i64>,
    /// 90th percentile (nearest rank) of the seconds from handoff to acceptance; null without
    /// accepted handoffs.
    pub p90_time_to_accept_seconds: Option<i64>,
    /// Median seconds from handoff to any answer (as the accept median); null without answers.
    pub median_time_to_first_response_seconds: Option<i64>,
    /// Handoffs that had a deadline (the MQL stage had an SLA when they were made).
    pub with_sla: u64,
    /// Of those, answered after the deadline or still pending past it.
    pub sla_breaches: u64,
}

/// Which handoffs to list. Every field given narrows the result; absent or null does not filter.
#[derive(InputObject, Default)]
#[graphql(name = "HandoffFilterInput")]
pub struct HandoffFilter {
    /// Handoffs in one of these statuses.
    pub status: Option<Vec<HandoffStatus>>,
    /// The owning sales user. A SALES key made for a user always gets that user's handoffs
    /// (FORBIDDEN for another user).
    pub owner_id: Option<ID>,
    /// The handoffs of this lead.
    pub lead_id: Option<ID>,
    /// Handoffs created in this range (from inclusive, to exclusive).
    pub created_at: Option<DateTimeRange>,
    /// true: pending past the SLA deadline now; false: pending and within it (or without one).
    pub overdue: Option<bool>,
}

/// The order of the `handoffs` list: always by creation time, then ID.
#[derive(InputObject, Default)]
#[graphql(name = "HandoffOrderInput")]
pub struct HandoffOrder {
    /// ASC: oldest first (the default); DESC: newest first.
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(Default)]
pub struct HandoffQuery;

#[Object]
impl HandoffQuery {
    /// Handoffs by creation time (oldest first unless ordered otherwise). Any role; a SALES key
    /// made for a user lists the handoffs that user owns now.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn handoffs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which handoffs; default: all you may see.")] filter: Option<HandoffFilter>,
        #[graphql(desc = "Default: oldest first.")] order_by: Option<HandoffOrder>,
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Conn<Handoff>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(Some(is_time))
        .gql()?;
        let f = filter.unwrap_or_default();
        let now = Utc::now();
        let (created_from, created_to) = f.created_at.unwrap_or_default().bounds()?;
        let store_filter = store::handoff::HandoffFilter {
            statuses: f
                .status
                .map(|v| v.into_iter().map(|s| machine::HandoffStatus::from(s).as_str().to_owned()).collect()),
            owner_id: handoff_service::owner_scope(&p, decode_opt(NodeType::User, f.owner_id.as_ref())?).gql()?,
            lead_id: decode_opt(NodeType::Lead, f.lead_id.as_ref())?,
            created_from,
            created_to,
            overdue_at: (f.overdue == Some(true)).then_some(now),
            on_time_at: (f.overdue == Some(false)).then_some(now),
        };
        let select = store::handoff::select(p.workspace_id, &store_filter);
        let sort = Sort {
            column: Some(handoff::Column::CreatedAt),
            id: handoff::Column::Id,
            desc: order_by.unwrap_or_default().direction == OrderDirection::Desc,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            |h| CursorKey {
                value: Some(SortValue::Time(h.created_at)),
                id: h.id,
            },
            Handoff,
        ))
    }

    /// A handoff by ID; null when it is not in your workspace or, for a SALES key made for a
    /// user, when another user owns it. Any role.
    async fn handoff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The handoff's global ID.")] id: ID,
    ) -> async_graphql::Result<Option<Handoff>> {
        ctx.principal()?;
        let Ok(id) = ids::decode(NodeType::Handoff, &id) else {
            return Ok(None);
        };
        load_visible(ctx, id).await
    }

    /// Outcomes, reasons, answer times and SLA breaches of the handoffs created in `range` (a
    /// SALES key made for a user: of that user's handoffs). Any role.
    async fn handoff_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Creation times: `from` inclusive, `to` exclusive; both required (BAD_USER_INPUT otherwise).")]
        range: DateTimeRange,
    ) -> async_graphql::Result<HandoffStats> {
        let p = ctx.principal()?;
        let (Some(from), Some(to)) = range.bounds()? else {
            return Err(gql_error(AppError::BadInput(
                "handoffStats needs range.from and range.to, or range.lastDays".into(),
            )));
        };
        let owner = handoff_service::bound_user(&p);
        let rows = store::handoff::for_stats(&ctx.db().conn, p.workspace_id, from, to, owner)
            .await
            .gql()?;
        Ok(stats(&rows, Utc::now()))
    }

    /// How handoffs are routed to sales. Any role.
    async fn routing_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<Routing> {
        let p = ctx.principal()?;
        let db = &ctx.db().conn;
        let rules = store::handoff::rules(db, p.workspace_id).await.gql()?;
        let ws = store::workspace::by_id(db, p.workspace_id).await.gql()?;
        Ok(Routing {
            rules,
            default_owner_id: ws.and_then(|w| w.handoff_owner_id),
        })
    }

    /// Stored handoff events after a cursor, oldest first: the polling twin of the
    /// `handoffEvents` subscription (at most 500 at a time). Any role; a SALES key made for a
    /// user gets the events of that user's handoffs only, as the subscription does. Empty when
    /// there is nothing newer.
    async fn handoff_event_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An event's `cursor`: the events after it. Default: from the first event. BAD_USER_INPUT for a malformed cursor."
        )]
        after: Option<String>,
        #[graphql(default = 100, desc = "How many events: 0 to 500 (larger is clamped to 500).")] first: i32,
    ) -> async_graphql::Result<Vec<HandoffEvent>> {
        let p = ctx.principal()?;
        let after = cursor_arg(after.as_deref())?.unwrap_or(0);
        let limit = first.clamp(0, 500) as u64;
        let filter = Filter {
            owner_id: handoff_service::bound_user(&p),
            kinds: None,
        };
        let rows = events::after_matching(&ctx.db().conn, p.workspace_id, after, limit, &filter)
            .await
            .gql()?;
        rows.into_iter().map(|r| HandoffEvent::new(Arc::new(r))).collect()
    }
}

type StatRow = (
    String,
    Option<String>,
    chrono::DateTime<Utc>,
    Option<chrono::DateTime<Utc>>,
    Option<chrono::DateTime<Utc>>,
);

fn stats(rows: &[StatRow], now: chrono::DateTime<Utc>) -> HandoffStats {
    let mut s = HandoffStats::default();
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    let mut accept = Vec::new();
    let mut respond = Vec::new();
    for (status, reason, created, responded, due) in rows {
        s.total += 1;
        match machine::HandoffStatus::parse(status) {
            Some(machine::HandoffStatus::Pending) => s.pending += 1,
            Some(machine::HandoffStatus::Accepted) => s.accepted += 1,
            Some(machine::HandoffStatus::Rejected) => s.rejected += 1,
            Some(machine::HandoffStatus::Recycled) => s.recycled += 1,
            None => {}
        }
        if status == machine::HandoffStatus::Rejected.as_str() {
            *reasons.entry(reason.clone().unwrap_or_else(|| "OTHER".into())).or_default() += 1;
        }
        if let Some(r) = responded {
            let secs = (*r - *created).num_seconds();
            respond.push(secs);
            if status == machine::HandoffStatus::Accepted.as_str() {
                accept.push(secs);
            }
        }
        if due.is_some() {
            s.with_sla += 1;
            if machine::breached(*due, *responded, now) {
                s.sla_breaches += 1;
            }
        }
    }
    accept.sort_unstable();
    respond.sort_unstable();
    s.median_time_to_accept_seconds = machine::median_seconds(&accept);
    s.p90_time_to_accept_seconds = machine::percentile_seconds(&accept, 90);
    s.median_time_to_first_response_seconds = machine::median_seconds(&respond);
    let mut by_reason: Vec<ReasonCount> = reasons.into_iter().map(|(code, count)| ReasonCount { code, count }).collect();
    by_reason.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    s.rejected_by_reason = by_reason;
    s
}

fn cursor_arg(raw: Option<&str>) -> async_graphql::Result<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(c) => parse_event_cursor(c)
            .map(Some)
            .ok_or_else(|| gql_error(AppError::BadInput(format!("invalid event cursor {c:?}")))),
    }
}

/// The lead to hand to sales.
#[derive(InputObject)]
pub struct HandOffLeadInput {
    /// The lead's ID.
    pub lead_id: ID,
    /// What sales should know (trimmed; empty counts as none).
    pub note: Option<String>,
}

/// The pending handoff to accept.
#[derive(InputObject)]
pub struct AcceptHandoffInput {
    /// The handoff's ID.
    pub id: ID,
}

/// The pending handoff to reject, and why.
#[derive(InputObject)]
pub struct RejectHandoffInput {
    /// The handoff's ID.
    pub id: ID,
    /// A code of `workspace.rejectReasons` (NO_BUDGET, NO_NEED, WRONG_CONTACT, COMPETITOR,
    /// DUPLICATE, OTHER, ...); case-insensitive, spaces and dashes count as underscores.
    pub reason_code: String,
    /// Sales' words for marketing (kept as `feedback`).
    pub comment: Option<String>,
}

/// The pending handoff to send back to marketing.
#[derive(InputObject)]
pub struct RecycleHandoffInput {
    /// The handoff's ID.
    pub id: ID,
    /// What marketing should know; required (REQUIRED when blank).
    pub feedback: String,
    /// Nurture the lead until then; must lie in the future (INVALID otherwise).
    pub nurture_until: Option<DateTime>,
}

/// The pending handoff to give to another user.
#[derive(InputObject)]
pub struct ReassignHandoffInput {
    /// The handoff's ID.
    pub id: ID,
    /// An active user of the workspace other than the current owner (NOT_FOUND, NO_CHANGE).
    pub owner_id: ID,
}

/// One routing rule.
#[derive(InputObject)]
pub struct RoutingRuleInput {
    /// A label for people.
    pub name: Option<String>,
    /// ISO 3166 alpha-2 codes; empty or absent matches every country.
    #[graphql(default)]
    pub countries: Vec<String>,
    /// Only leads that are members of this persona (NOT_FOUND for an unknown one).
    pub persona_id: Option<ID>,
    /// Active users of the workspace, assigned in turn (round-robin); one user for a fixed
    /// owner. At least one (REQUIRED).
    pub user_ids: Vec<ID>,
}

/// The whole routing configuration.
#[derive(InputObject)]
pub struct SetRoutingRulesInput {
    /// Replaces every rule; tried in this order.
    pub rules: Vec<RoutingRuleInput>,
    /// Who gets handoffs no rule matches (an active user); absent keeps it, null clears it.
    pub default_owner_id: MaybeUndefined<ID>,
}

/// The result of a handoff mutation: the handoff and its event, or `userErrors` and nothing
/// written.
#[derive(SimpleObject)]
pub struct HandoffPayload {
    /// The handoff after the change; null when `userErrors` is not empty.
    pub handoff: Option<Handoff>,
    /// The event the change wrote (its cursor, sequence number and stages).
    pub event: Option<HandoffEvent>,
    /// What the end user can fix, e.g. CONFLICT, NOT_PENDING, ALREADY_WITH_SALES; empty on
    /// success.
    pub user_errors: Vec<UserError>,
}

/// The result of `setRoutingRules`.
#[derive(SimpleObject)]
pub struct RoutingPayload {
    /// The routing as saved; null when `userErrors` is not empty.
    pub routing: Option<Routing>,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

fn step_payload(result: Result<Step, crate::error::ServiceError>) -> async_graphql::Result<HandoffPayload> {
    let (step, user_errors) = split(result)?;
    let (handoff, event) = match step {
        Some(s) => (Some(Handoff(s.handoff)), Some(HandoffEvent::new(s.event)?)),
        None => (None, None),
    };
    Ok(HandoffPayload {
        handoff,
        event,
        user_errors,
    })
}

#[derive(Default)]
pub struct HandoffMutation;

#[Object]
impl HandoffMutation {
    /// MARKETING or ADMIN: hands a qualified lead to sales. The lead moves to MQL; a PENDING
    /// handoff goes to the owner the routing rules pick. One open handoff per lead (CONFLICT
    /// otherwise); a lead past MQL on the success path is ALREADY_WITH_SALES.
    async fn hand_off_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead and a note.")] input: HandOffLeadInput,
    ) -> async_graphql::Result<HandoffPayload> {
        let p = ctx.allowed(Action::HandOff)?;
        let lead_id = ids::decode(NodeType::Lead, &input.lead_id).gql()?;
        let bus = ctx.data_unchecked::<Bus>();
        step_payload(crate::service::handoff::hand_off(ctx.db(), bus, p, lead_id, input.note).await)
    }

    /// SALES or ADMIN: takes the lead (lead -> SQL; the handoff's owner becomes the lead's
    /// owner). NOT_PENDING when it was answered already.
    async fn accept_handoff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The handoff.")] input: AcceptHandoffInput,
    ) -> async_graphql::Result<HandoffPayload> {
        answer(ctx, &input.id, Answer::Accept, None, None, None).await
    }

    /// SALES or ADMIN: turns the lead down with a reason code (lead -> DISQUALIFIED).
    async fn reject_handoff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The handoff and the reason.")] input: RejectHandoffInput,
    ) -> async_graphql::Result<HandoffPayload> {
        answer(ctx, &input.id, Answer::Reject, Some(input.reason_code), input.comment, None).await
    }

    /// SALES or ADMIN: sends the lead back to marketing with feedback (lead -> NURTURE). The
    /// default scoring model does not hand the lead off again for its `cooldownDays`.
    async fn recycle_handoff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The handoff and the feedback.")] input: RecycleHandoffInput,
    ) -> async_graphql::Result<HandoffPayload> {
        answer(
            ctx,
            &input.id,
            Answer::Recycle,
            None,
            Some(input.feedback),
            input.nurture_until.map(|t| t.0),
        )
        .await
    }

    /// SALES or ADMIN: gives a pending handoff to another active user.
    async fn reassign_handoff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The handoff and its new owner.")] input: ReassignHandoffInput,
    ) -> async_graphql::Result<HandoffPayload> {
        let p = ctx.allowed(Action::AnswerHandoff)?;
        let id = ids::decode(NodeType::Handoff, &input.id).gql()?;
        let owner = ids::decode(NodeType::User, &input.owner_id).unwrap_or(0);
        let bus = ctx.data_unchecked::<Bus>();
        step_payload(crate::service::handoff::reassign(ctx.db(), bus, p, id, owner).await)
    }

    /// ADMIN: replaces the routing rules and sets the default owner; handoffs made before keep
    /// their owners.
    async fn set_routing_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Every rule, in order, and the default owner.")] input: SetRoutingRulesInput,
    ) -> async_graphql::Result<RoutingPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let rules = input
            .rules
            .into_iter()
            .map(|r| RuleInput {
                name: r.name.unwrap_or_default(),
                countries: r.countries,
                persona_id: r.persona_id.map(|id| ids::decode(NodeType::Persona, &id).unwrap_or(0)),
                user_ids: r.user_ids.iter().map(|id| ids::decode(NodeType::User, id).unwrap_or(0)).collect(),
            })
            .collect();
        let owner = patch_id(NodeType::User, input.default_owner_id)?;
        let (saved, user_errors) = split(crate::service::handoff::set_routing(ctx.db(), p, rules, owner).await)?;
        Ok(RoutingPayload {
            routing: saved.map(|(rules, default_owner_id)| Routing { rules, default_owner_id }),
            user_errors,
        })
    }
}

async fn answer(
    ctx: &Context<'_>,
    id: &ID,
    answer: Answer,
    reason_code: Option<String>,
    feedback: Option<String>,
    nurture_until: Option<chrono::DateTime<Utc>>,
) -> async_graphql::Result<HandoffPayload> {
    let p = ctx.allowed(Action::AnswerHandoff)?;
    let id = ids::decode(NodeType::Handoff, id).gql()?;
    let bus = ctx.data_unchecked::<Bus>();
    let input = AnswerInput {
        answer,
        reason_code,
        feedback,
        nurture_until,
    };
    step_payload(crate::service::handoff::answer(ctx.db(), bus, p, id, input).await)
}

/// How many subscriptions one WebSocket connection may hold at once.
#[derive(Clone)]
pub struct SubscriptionSlots {
    used: Arc<AtomicUsize>,
    max: usize,
}

impl SubscriptionSlots {
    pub fn new(max: usize) -> Self {
        Self { used: Arc::default(), max }
    }

    fn take(&self) -> Option<SlotGuard> {
        let prev = self.used.fetch_add(1, Ordering::SeqCst);
        if prev >= self.max {
            self.used.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(SlotGuard(Arc::clone(&self.used)))
    }
}

/// A slot of the caller's WebSocket connection for one more subscription (none over HTTP);
/// BAD_USER_INPUT when all are taken.
pub(crate) fn subscription_slot(ctx: &Context<'_>) -> async_graphql::Result<Option<SlotGuard>> {
    match ctx.data_opt::<SubscriptionSlots>() {
        Some(slots) => slots
            .take()
            .map(Some)
            .ok_or_else(|| gql_error(AppError::BadInput(format!("at most {} subscriptions per connection", slots.max)))),
        None => Ok(None),
    }
}

/// Frees its slot when the subscription's stream is dropped.
pub(crate) struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
pub struct HandoffSubscription;

/// Live streams over WebSocket at `/graphql/ws` (graphql-transport-ws); the API key goes in the
/// `connection_init` payload as `{"Authorization": "Bearer <key>"}`.
#[Subscription]
impl HandoffSubscription {
    /// Handoff events of your workspace: first the stored ones after `after` (a cursor from an
    /// earlier event), then live ones, without a gap or a duplicate. Without `after`, only events
    /// from now on. Any role; a SALES key made for a user follows only that user's handoffs, whether
    /// `ownerId` is given or not (FORBIDDEN for another user). A subscriber that falls too far
    /// behind gets an error with code SUBSCRIBER_TOO_SLOW and `extensions.resumeAfter`, the
    /// cursor to resume from.
    async fn handoff_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An event's `cursor`: replay the stored events after it, then go live. Default: live events only. BAD_USER_INPUT for a malformed cursor or one ahead of this workspace's events."
        )]
        after: Option<String>,
        #[graphql(desc = "Only events at which this user owned the handoff: its owner after the change, or before it for REASSIGNED.")]
        owner_id: Option<ID>,
        #[graphql(desc = "Only events of these kinds; default: all.")] kinds: Option<Vec<HandoffEventKind>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<HandoffEvent>> + use<>> {
        let p = ctx.principal()?;
        let owner = handoff_service::owner_scope(&p, decode_opt(NodeType::User, owner_id.as_ref())?).gql()?;
        let after = cursor_arg(after.as_deref())?;
        let db = ctx.db().conn.clone();
        if let Some(seq) = after {
            let head = events::head(&db, p.workspace_id).await.gql()?;
            if seq > head {
                return Err(gql_error(AppError::BadInput(
                    "the cursor is ahead of this workspace's events; it belongs elsewhere".into(),
                )));
            }
        }
        let guard = subscription_slot(ctx)?;
        let filter = Filter {
            owner_id: owner,
            kinds: kinds.map(|ks| ks.into_iter().map(Into::into).collect()),
        };
        let bus = ctx.data_unchecked::<Bus>();
        let stream = events::stream::events(db, bus, p.workspace_id, after, filter);
        Ok(stream.map(move |item| {
            let _held = &guard;
            match item {
                Ok(row) => HandoffEvent::new(row),
                Err(StreamError::TooSlow { resume_after }) => Err(async_graphql::Error::new(
                    "the subscriber fell too far behind; subscribe again with `after` set to extensions.resumeAfter",
                )
                .extend_with(|_, e| {
                    e.set("code", "SUBSCRIBER_TOO_SLOW");
                    e.set("resumeAfter", event_cursor(resume_after));
                })),
                Err(StreamError::Db(e)) => Err(gql_error(e.into())),
            }
        }))
    }
}
