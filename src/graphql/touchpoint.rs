//! Touchpoints: tracked interactions of leads, optionally with a campaign.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::touchpoint;

use crate::domain::vocab::Action;
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::decode_opt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::filter::{self, Known};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{CampaignId, LeadId, Loaders};
use crate::graphql::pagination::{Conn, CursorCheck, OrderDirection, PageArgs};
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::DateTime;
use crate::service::touchpoint::NewTouchpoint;
use crate::store::page::Sort;
use crate::store::touchpoint::{Newest, TouchpointFilter as StoreFilter};
use crate::store::{self};

pub struct Touchpoint(pub touchpoint::Model);

/// One tracked interaction of a lead (an e-mail opened, a whitepaper downloaded, a trade-fair
/// scan ...), optionally with the campaign it came from. Touchpoints feed activity scores,
/// attribution and the KPIs.
#[Object]
impl Touchpoint {
    /// The touchpoint's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Touchpoint, self.0.id)
    }
    /// The source system's ID of the touchpoint; null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// The idempotency key it was recorded with, if any.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// A code of the workspace's touchpoint-type vocabulary, e.g. WHITEPAPER_DOWNLOAD.
    #[graphql(name = "type")]
    async fn touch_type(&self) -> &str {
        &self.0.touch_type
    }
    /// When the interaction happened (UTC), as reported.
    async fn occurred_at(&self) -> DateTime {
        self.0.occurred_at.into()
    }
    /// When it was recorded here (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The lead who interacted.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(self.0.lead_id)).await?.map(Lead))
    }
    /// The campaign it came from; null for none (attribution's NO_CAMPAIGN, channel DIRECT).
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let Some(id) = self.0.campaign_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
}

/// What a touchpoint list is sorted by; ties are broken by ID.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TouchpointOrderField {
    /// `occurredAt`.
    OccurredAt,
    /// Recording order.
    Id,
}

/// Order of touchpoints; the default is newest first (OCCURRED_AT, DESC). A cursor only fits
/// the order it came from.
#[derive(InputObject, Copy, Clone, Debug)]
#[graphql(name = "TouchpointOrderInput")]
pub struct TouchpointOrder {
    /// The sort key.
    pub field: TouchpointOrderField,
    /// Default ASC.
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl TouchpointOrder {
    pub const NEWEST_FIRST: TouchpointOrder = TouchpointOrder {
        field: TouchpointOrderField::OccurredAt,
        direction: OrderDirection::Desc,
    };

    /// Which end a per-parent loader starts from, for orders by time.
    pub fn newest(self) -> Option<Newest> {
        match (self.field, self.direction) {
            (TouchpointOrderField::OccurredAt, OrderDirection::Desc) => Some(Newest::First),
            (TouchpointOrderField::OccurredAt, OrderDirection::Asc) => Some(Newest::Last),
            (TouchpointOrderField::Id, _) => None,
        }
    }

    /// The touchpoints' sort in this order and the cursors that fit it, as the touchpoint
    /// description gives them (`plan::describe::TOUCHPOINT`).
    pub fn sort(self) -> (Sort<touchpoint::Column>, CursorCheck) {
        plan::sort::<touchpoint::Entity>(&plan::describe::TOUCHPOINT, self.field, self.direction)
    }
}

/// Which touchpoints to list. Every field given narrows the result; absent or null does not
/// filter.
#[derive(InputObject, Default)]
#[graphql(name = "TouchpointFilterInput")]
pub struct TouchpointFilter {
    /// The touchpoints of this lead.
    pub lead_id: Option<ID>,
    /// The touchpoints of this campaign.
    pub campaign_id: Option<ID>,
    /// Touchpoint type codes, e.g. ["EMAIL_CLICK"] (case-insensitive; spaces and dashes count
    /// as underscores).
    #[graphql(name = "type")]
    pub touch_type: Option<Vec<String>>,
    /// Touchpoints that occurred in this range (from inclusive, to exclusive).
    pub occurred_at: Option<DateTimeRange>,
    /// Recorded at or after this time (`createdAt`): an incremental sync's filter. Touchpoints
    /// do not change once recorded (a merge moves them to the surviving lead: the change feed's
    /// MERGED).
    pub updated_since: Option<DateTime>,
}

#[derive(Default)]
pub struct TouchpointQuery;

#[Object]
impl TouchpointQuery {
    /// Touchpoints of the workspace, newest first unless ordered otherwise. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn touchpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which touchpoints; default: all.")] filter: Option<TouchpointFilter>,
        #[graphql(desc = "Default: newest first (OCCURRED_AT, DESC).")] order_by: Option<TouchpointOrder>,
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
    ) -> async_graphql::Result<Planned<Conn<Touchpoint>>> {
        let p = ctx.principal()?;
        let f = filter.unwrap_or_default();
        let (occurred_from, occurred_to) = f.occurred_at.unwrap_or_default().bounds()?;
        let sf = StoreFilter {
            lead_id: decode_opt(NodeType::Lead, f.lead_id.as_ref())?,
            campaign_id: decode_opt(NodeType::Campaign, f.campaign_id.as_ref())?,
            types: filter::codes(ctx, &["filter", "type"], Known::TouchpointType, f.touch_type).await?,
            occurred_from,
            occurred_to,
            recorded_since: f.updated_since.map(|t| t.0),
        };
        let order = order_by.unwrap_or(TouchpointOrder::NEWEST_FIRST);
        let (sort, expects) = order.sort();
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::touchpoint::select(p.workspace_id, &sf);
        plan::page(ctx, &plan::describe::TOUCHPOINT, select, sort, req, Touchpoint).await
    }
}

/// One touchpoint to record. Name the lead exactly one way, the campaign at most one way.
#[derive(InputObject)]
pub struct TouchpointInput {
    /// The lead, by ID ...
    pub lead_id: Option<ID>,
    /// ... or by the source system's ID ...
    pub lead_external_id: Option<String>,
    /// ... or by e-mail.
    pub lead_email: Option<String>,
    /// The campaign, by ID ...
    pub campaign_id: Option<ID>,
    /// ... or by the source system's ID; neither: no campaign.
    pub campaign_external_id: Option<String>,
    /// A code of the workspace's touchpoint-type vocabulary (case-insensitive).
    #[graphql(name = "type")]
    pub touch_type: String,
    /// When the interaction happened (ISO 8601; UTC unless it carries an offset).
    pub occurred_at: DateTime,
    /// The source system's ID of the touchpoint; an item whose external ID was recorded before
    /// is a duplicate.
    pub external_id: Option<String>,
    /// A retried item with the same key is recorded once (a duplicate).
    pub idempotency_key: Option<String>,
}

/// A batch of touchpoints.
#[derive(InputObject)]
pub struct RecordTouchpointsInput {
    /// Up to 10,000 touchpoints (BAD_USER_INPUT beyond), recorded all or nothing.
    pub items: Vec<TouchpointInput>,
}

/// The result of `recordTouchpoints`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RecordTouchpointsPayload {
    /// Touchpoints written by this call.
    pub recorded_count: i32,
    /// Items skipped because their idempotency key (or external ID) was recorded before.
    pub duplicate_count: i32,
    #[graphql(skip)]
    pub touchpoints: Vec<touchpoint::Model>,
    /// What the end user can fix, with the item's index in `field`; when not empty, nothing was
    /// recorded.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl RecordTouchpointsPayload {
    /// The touchpoints of the batch in input order (already recorded ones included).
    async fn touchpoints(&self) -> Vec<Touchpoint> {
        self.touchpoints.iter().cloned().map(Touchpoint).collect()
    }
}

#[derive(Default)]
pub struct TouchpointMutation;

#[Object]
impl TouchpointMutation {
    /// MARKETING or ADMIN: records a batch of touchpoints: all or nothing, idempotent per item
    /// key. Updates the leads' first touch, e-mail reachability and activity scores, and may
    /// hand leads off (default scoring model).
    async fn record_touchpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The batch.")] input: RecordTouchpointsInput,
    ) -> async_graphql::Result<RecordTouchpointsPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let mut items = Vec::with_capacity(input.items.len());
        for it in input.items {
            items.push(NewTouchpoint {
                lead_id: it
                    .lead_id
                    .as_ref()
                    .map(|id| ids::decode(NodeType::Lead, id).map_err(|_| id.to_string())),
                lead_external_id: it.lead_external_id,
                lead_email: it.lead_email,
                campaign_id: it
                    .campaign_id
                    .as_ref()
                    .map(|id| ids::decode(NodeType::Campaign, id).map_err(|_| id.to_string())),
                campaign_external_id: it.campaign_external_id,
                touch_type: it.touch_type,
                occurred_at: it.occurred_at.0,
                external_id: it.external_id,
                idempotency_key: it.idempotency_key,
            });
        }
        let (result, user_errors) =
            split(crate::service::touchpoint::record(ctx.db(), ctx.data_unchecked::<crate::events::Bus>(), p, items).await)?;
        if let (Some(r), Ok(metrics)) = (&result, ctx.data::<std::sync::Arc<crate::metrics::Metrics>>()) {
            metrics.ingested("touchpoints", r.recorded as u64);
        }
        Ok(match result {
            Some(r) => RecordTouchpointsPayload {
                recorded_count: r.recorded as i32,
                duplicate_count: r.duplicates as i32,
                touchpoints: r.touchpoints,
                user_errors,
            },
            None => RecordTouchpointsPayload {
                recorded_count: 0,
                duplicate_count: 0,
                touchpoints: Vec::new(),
                user_errors,
            },
        })
    }
}
