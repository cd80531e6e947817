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

#[Object]
impl Handoff {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Handoff, self.0.id)
    }
    async fn status(&self) -> HandoffStatus {
        HandoffStatus::from_db(&self.0.status)
    }
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(self.0.lead_id)).await?.map(Lead))
    }
    /// The sales user the handoff is routed to; null when no rule and no default owner applied.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The lead's stage before it was handed off.
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        let Some(id) = self.0.from_stage_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(StageId(id)).await?.map(FunnelStage))
    }
    /// Marketing's note for sales.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Why sales rejected the lead (a code of `workspace.rejectReasons`).
    async fn reason_code(&self) -> Option<&str> {
        self.0.reason_code.as_deref()
    }
    /// Sales' words: the rejection comment or the recycling feedback.
    async fn feedback(&self) -> Option<&str> {
        self.0.feedback.as_deref()
    }
    /// Until when a recycled lead is nurtured before marketing may hand it off again.
    async fn nurture_until(&self) -> Option<DateTime> {
        self.0.nurture_until.map(Into::into)
    }
    /// Who handed the lead off (`api-key:<id>` or `system:...`).
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// When sales answered (accepted, rejected or recycled).
    async fn responded_at(&self) -> Option<DateTime> {
        self.0.responded_at.map(Into::into)
    }
    async fn responded_by(&self) -> Option<&str> {
        self.0.responded_by.as_deref()
    }
    /// When sales must have answered: the MQL stage's SLA after the handoff.
    async fn due_at(&self) -> Option<DateTime> {
        self.0.due_at.map(Into::into)
    }
    /// Pending past its deadline now.
    async fn overdue(&self) -> bool {
        self.0.responded_at.is_none() && machine::breached(self.0.due_at, None, Utc::now())
    }
    /// Answered after its deadline, or pending past it.
    async fn sla_breached(&self) -> bool {
        machine::breached(self.0.due_at, self.0.responded_at, Utc::now())
    }
    /// Seconds from the handoff to sales' answer; null while pending.
    async fn time_to_first_response_seconds(&self) -> Option<i64> {
        self.0.responded_at.map(|r| (r - self.0.created_at).num_seconds())
    }
}

/// One change of a handoff, as subscribers and webhooks receive it.
///
/// One event goes to every subscriber, and each resolves it on its own: the payload is parsed
/// only when a field needs it (the row's columns answer seq, kind, time, handoff and lead).
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

#[Object]
impl HandoffEvent {
    /// Resume after this event: pass it as `after` to `handoffEvents`.
    async fn cursor(&self) -> String {
        event_cursor(self.row.seq)
    }
    /// Position in the workspace's event sequence (1, 2, 3, ... without gaps).
    async fn seq(&self) -> i64 {
        self.row.seq
    }
    async fn kind(&self) -> HandoffEventKind {
        HandoffEventKind::from_db(&self.row.kind)
    }
    async fn occurred_at(&self) -> DateTime {
        self.row.created_at.into()
    }
    /// The handoff as it is now (it may have changed since the event); null for a SALES key
    /// made for a user when the handoff has another owner now.
    async fn handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Handoff>> {
        load_visible(ctx, self.handoff_id_num()?).await
    }
    async fn handoff_id(&self) -> async_graphql::Result<ID> {
        Ok(ids::encode(NodeType::Handoff, self.handoff_id_num()?))
    }
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(LeadId(self.lead_id_num()?))
            .await?
            .map(Lead))
    }
    async fn lead_id(&self) -> async_graphql::Result<ID> {
        Ok(ids::encode(NodeType::Lead, self.lead_id_num()?))
    }
    /// The owner after the change.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.data()?.owner_id).await
    }
    /// REASSIGNED: the owner before.
    async fn previous_owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.data()?.previous_owner_id).await
    }
    /// The handoff's status after the change.
    async fn status(&self) -> async_graphql::Result<HandoffStatus> {
        Ok(HandoffStatus::from_db(&self.data()?.status))
    }
    /// The lead's stage before the change (its key is kept even if the stage is renamed).
    #[graphql(name = "fromStageKey")]
    async fn stage_key_before(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.from_stage.as_deref())
    }
    async fn to_stage_key(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.to_stage.as_deref())
    }
    #[graphql(name = "fromStage")]
    async fn stage_before(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.data()?.from_stage_id).await
    }
    async fn to_stage(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FunnelStage>> {
        stage(ctx, self.data()?.to_stage_id).await
    }
    async fn note(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.note.as_deref())
    }
    async fn reason_code(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.reason_code.as_deref())
    }
    async fn feedback(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.feedback.as_deref())
    }
    async fn nurture_until(&self) -> async_graphql::Result<Option<DateTime>> {
        Ok(self.data()?.nurture_until.map(Into::into))
    }
    /// The lead's cell in the default scoring model ("A1" ... "D4") when one is known.
    async fn scoring_cell(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.data()?.scoring_cell.as_deref())
    }
    /// Who made the change.
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

/// A routing rule: leads from `countries` (any when empty) that match `persona` (any when
/// null) go to `owners` in turn.
pub struct RoutingRule(routing_rule::Model);

#[Object]
impl RoutingRule {
    async fn id(&self) -> ID {
        ids::encode(NodeType::RoutingRule, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Rules are tried in this order (0 first); the first match wins.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn countries(&self) -> Vec<String> {
        json_strings(self.0.countries.as_ref())
    }
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

/// How handoffs are routed.
pub struct Routing {
    rules: Vec<routing_rule::Model>,
    default_owner_id: Option<i64>,
}

#[Object]
impl Routing {
    /// In the order they are tried.
    async fn rules(&self) -> Vec<RoutingRule> {
        self.rules.iter().cloned().map(RoutingRule).collect()
    }
    /// Who gets a handoff that no rule matches.
    async fn default_owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.default_owner_id).await
    }
}

/// Counts of one reason code.
#[derive(SimpleObject)]
pub struct ReasonCount {
    pub code: String,
    pub count: u64,
}

/// How the handoffs created in a range fared.
#[derive(SimpleObject, Default)]
pub struct HandoffStats {
    pub total: u64,
    pub pending: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub recycled: u64,
    /// Rejections per reason code, most frequent first.
    pub rejected_by_reason: Vec<ReasonCount>,
    /// Median seconds from handoff to acceptance (mean of the two middle ones for an even
    /// count, rounded down); null without accepted handoffs.
    pub median_time_to_accept_seconds: Option<i64>,
    /// 90th percentile (nearest rank) of the seconds from handoff to acceptance.
    pub p90_time_to_accept_seconds: Option<i64>,
    /// Median seconds from handoff to any answer.
    pub median_time_to_first_response_seconds: Option<i64>,
    /// Handoffs that had a deadline (the MQL stage had an SLA when they were made).
    pub with_sla: u64,
    /// Of those, answered after the deadline or still pending past it.
    pub sla_breaches: u64,
}

#[derive(InputObject, Default)]
pub struct HandoffFilter {
    pub status: Option<Vec<HandoffStatus>>,
    /// The owning sales user. A SALES key made for a user always gets that user's handoffs
    /// (FORBIDDEN for another user).
    pub owner_id: Option<ID>,
    pub lead_id: Option<ID>,
    pub created_at: Option<DateTimeRange>,
    /// true: pending past the SLA deadline; false: pending and within it (or without one).
    pub overdue: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct HandoffOrder {
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(Default)]
pub struct HandoffQuery;

#[Object]
impl HandoffQuery {
    /// Handoffs by creation time (oldest first unless ordered otherwise). A SALES key made for
    /// a user lists the handoffs that user owns now.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn handoffs(
        &self,
        ctx: &Context<'_>,
        filter: Option<HandoffFilter>,
        order_by: Option<HandoffOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
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
    /// user, when another user owns it.
    async fn handoff(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Handoff>> {
        ctx.principal()?;
        let Ok(id) = ids::decode(NodeType::Handoff, &id) else {
            return Ok(None);
        };
        load_visible(ctx, id).await
    }

    /// Outcomes, reasons, answer times and SLA breaches of the handoffs created in `range` (a
    /// SALES key made for a user: of that user's handoffs).
    async fn handoff_stats(&self, ctx: &Context<'_>, range: DateTimeRange) -> async_graphql::Result<HandoffStats> {
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

    /// How handoffs are routed to sales.
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
    /// `handoffEvents` subscription (at most 500 at a time). A SALES key made for a user gets
    /// the events of that user's handoffs only, as the subscription does.
    async fn handoff_event_log(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 100)] first: i32,
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

#[derive(InputObject)]
pub struct HandOffLeadInput {
    pub lead_id: ID,
    /// What sales should know.
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct AcceptHandoffInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RejectHandoffInput {
    pub id: ID,
    /// A code of `workspace.rejectReasons` (NO_BUDGET, NO_NEED, WRONG_CONTACT, COMPETITOR, DUPLICATE, OTHER, ...).
    pub reason_code: String,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct RecycleHandoffInput {
    pub id: ID,
    /// What marketing should know; required.
    pub feedback: String,
    /// Nurture the lead until then (in the future).
    pub nurture_until: Option<DateTime>,
}

#[derive(InputObject)]
pub struct ReassignHandoffInput {
    pub id: ID,
    pub owner_id: ID,
}

#[derive(InputObject)]
pub struct RoutingRuleInput {
    pub name: Option<String>,
    /// ISO 3166 codes; empty or absent matches every country.
    #[graphql(default)]
    pub countries: Vec<String>,
    /// Only leads that match this persona.
    pub persona_id: Option<ID>,
    /// Assigned in turn (round-robin); one user for a fixed owner.
    pub user_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct SetRoutingRulesInput {
    /// Replaces every rule; tried in this order.
    pub rules: Vec<RoutingRuleInput>,
    /// Who gets handoffs no rule matches; absent keeps it, null clears it.
    pub default_owner_id: MaybeUndefined<ID>,
}

#[derive(SimpleObject)]
pub struct HandoffPayload {
    pub handoff: Option<Handoff>,
    /// The event the change wrote (its cursor, sequence number and stages).
    pub event: Option<HandoffEvent>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct RoutingPayload {
    pub routing: Option<Routing>,
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
    /// MARKETING: hands a qualified lead to sales. The lead moves to MQL; a PENDING handoff goes
    /// to the owner the routing rules pick. One open handoff per lead (CONFLICT otherwise).
    async fn hand_off_lead(&self, ctx: &Context<'_>, input: HandOffLeadInput) -> async_graphql::Result<HandoffPayload> {
        let p = ctx.allowed(Action::HandOff)?;
        let lead_id = ids::decode(NodeType::Lead, &input.lead_id).gql()?;
        let bus = ctx.data_unchecked::<Bus>();
        step_payload(crate::service::handoff::hand_off(ctx.db(), bus, p, lead_id, input.note).await)
    }

    /// SALES: takes the lead (lead -> SQL; the handoff's owner becomes the lead's owner).
    async fn accept_handoff(&self, ctx: &Context<'_>, input: AcceptHandoffInput) -> async_graphql::Result<HandoffPayload> {
        answer(ctx, &input.id, Answer::Accept, None, None, None).await
    }

    /// SALES: turns the lead down with a reason code (lead -> Disqualified).
    async fn reject_handoff(&self, ctx: &Context<'_>, input: RejectHandoffInput) -> async_graphql::Result<HandoffPayload> {
        answer(ctx, &input.id, Answer::Reject, Some(input.reason_code), input.comment, None).await
    }

    /// SALES: sends the lead back to marketing with feedback (lead -> Nurture).
    async fn recycle_handoff(&self, ctx: &Context<'_>, input: RecycleHandoffInput) -> async_graphql::Result<HandoffPayload> {
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

    /// SALES or ADMIN: gives a pending handoff to another sales user.
    async fn reassign_handoff(&self, ctx: &Context<'_>, input: ReassignHandoffInput) -> async_graphql::Result<HandoffPayload> {
        let p = ctx.allowed(Action::AnswerHandoff)?;
        let id = ids::decode(NodeType::Handoff, &input.id).gql()?;
        let owner = ids::decode(NodeType::User, &input.owner_id).unwrap_or(0);
        let bus = ctx.data_unchecked::<Bus>();
        step_payload(crate::service::handoff::reassign(ctx.db(), bus, p, id, owner).await)
    }

    /// ADMIN: replaces the routing rules and sets the default owner.
    async fn set_routing_rules(&self, ctx: &Context<'_>, input: SetRoutingRulesInput) -> async_graphql::Result<RoutingPayload> {
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

/// Frees its slot when the subscription's stream is dropped.
struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Handoff events of your workspace: first the stored ones after `after` (a cursor from an
    /// earlier event), then live ones, without a gap or a duplicate. Without `after`, only events
    /// from now on. A SALES key made for a user follows only that user's handoffs, whether
    /// `ownerId` is given or not (FORBIDDEN for another user). A subscriber that falls too far
    /// behind gets an error with code SUBSCRIBER_TOO_SLOW and `extensions.resumeAfter`, the
    /// cursor to resume from.
    async fn handoff_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(desc = "Only events at which this user owned the handoff: its owner after the change, or before it for REASSIGNED.")]
        owner_id: Option<ID>,
        kinds: Option<Vec<HandoffEventKind>>,
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
        let guard = match ctx.data_opt::<SubscriptionSlots>() {
            Some(slots) => Some(
                slots
                    .take()
                    .ok_or_else(|| gql_error(AppError::BadInput(format!("at most {} subscriptions per connection", slots.max))))?,
            ),
            None => None,
        };
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
