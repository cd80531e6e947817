//! The GraphQL API: thin resolvers that authorize, convert and call services or the store.
pub mod account;
pub mod attribution;
pub mod bounds;
pub mod campaign;
pub mod changes;
pub mod context;
pub mod enums;
pub mod errors;
pub mod filter;
pub mod funnel;
pub mod handoff;
pub mod ids;
pub mod kpi;
pub mod lead;
pub mod limits;
pub mod loaders;
pub mod node;
pub mod opportunity;
pub mod pagination;
pub mod persisted;
pub mod persona;
pub mod plan;
pub mod scalars;
pub mod scoring;
pub mod shape;
pub mod touchpoint;
pub mod tracking;
pub mod user;
pub mod webhook;
pub mod workspace;

use async_graphql::{Context, ID, MaybeUndefined, MergedObject, MergedSubscription, Schema};

use crate::config::Limits;
use crate::db::Db;
use crate::domain::destination::AllowList;
use crate::events::Bus;
use crate::graphql::ids::NodeType;
use crate::service::Patch;

/// Every read. Each needs an API key (`Authorization: Bearer ...`; UNAUTHENTICATED without
/// one) and sees only the key's workspace; every role may read. Times are UTC, money is exact
/// (`Money`, `Decimal`), lists are Relay connections of at most 100 items a page.
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    workspace::WorkspaceQuery,
    lead::LeadQuery,
    account::AccountQuery,
    campaign::CampaignQuery,
    touchpoint::TouchpointQuery,
    tracking::TrackingQuery,
    opportunity::OpportunityQuery,
    persona::PersonaQuery,
    scoring::ScoringQuery,
    attribution::AttributionQuery,
    kpi::KpiQuery,
    funnel::FunnelQuery,
    handoff::HandoffQuery,
    webhook::WebhookQuery,
    user::UserQuery,
    changes::ChangeQuery,
);

/// Every write, each in one transaction. Which role may call a mutation is in its
/// description (FORBIDDEN otherwise; ANALYST keys are read-only). What the end user can fix
/// comes back in the payload's `userErrors` and writes nothing; what the caller must fix is a
/// top-level error with `extensions.code` (BAD_USER_INPUT, NOT_FOUND, ...).
#[derive(MergedObject, Default)]
pub struct Mutation(
    lead::LeadMutation,
    account::AccountMutation,
    campaign::CampaignMutation,
    touchpoint::TouchpointMutation,
    tracking::TrackingMutation,
    opportunity::OpportunityMutation,
    user::UserMutation,
    workspace::WorkspaceMutation,
    funnel::FunnelMutation,
    persona::PersonaMutation,
    scoring::ScoringMutation,
    attribution::AttributionMutation,
    handoff::HandoffMutation,
    webhook::WebhookMutation,
);

/// Live streams over WebSocket at `/graphql/ws` (graphql-transport-ws); the API key goes in the
/// `connection_init` payload as `{"Authorization": "Bearer <key>"}`.
#[derive(MergedSubscription, Default)]
pub struct Subscription(handoff::HandoffSubscription, changes::ChangeSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema, with the database, the event bus, the limits and the networks webhooks may reach
/// besides public ones. Per-request data (the caller and the DataLoader) is added by the HTTP layer.
pub fn build_schema(
    db: Option<Db>,
    bus: Bus,
    limits: &Limits,
    webhook_allow: &AllowList,
    reads: plan::Reads,
    capture: Option<std::sync::Arc<crate::ingest::Capture>>,
    feed: crate::events::changes::Feed,
) -> AppSchema {
    // Depth is limited by `limits::Guarded`, which does not count introspection.
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64);
    if let Some(db) = db {
        builder = builder.data(db);
    }
    builder = builder.data(crate::cache::ReportCache::default());
    builder = builder.data(bus);
    builder = builder.data(webhook_allow.clone());
    builder = builder.data(reads);
    builder = builder.data(feed);
    if let Some(c) = capture {
        builder = builder.data(c);
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    build_schema(
        None,
        Bus::new(16),
        &Limits::default(),
        &AllowList::EMPTY,
        plan::Reads::Planned,
        None,
        crate::events::changes::Feed::new(tokio::sync::broadcast::channel(1).0),
    )
    .sdl_with_options(async_graphql::SDLExportOptions::new().sorted_fields().sorted_enum_items())
}

/// `MaybeUndefined` (absent / null / value) as a service patch (keep / clear / set).
pub fn patch<T>(v: MaybeUndefined<T>) -> Patch<T> {
    match v {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(v),
    }
}

/// A patch of a global ID. An ID of another type or workspace reads as unknown (id 0), which
/// the service reports as NOT_FOUND on the field.
pub fn patch_id(kind: NodeType, v: MaybeUndefined<ID>) -> async_graphql::Result<Patch<i64>> {
    Ok(patch(v).map(|id| ids::decode(kind, &id).unwrap_or(0)))
}

/// An optional global ID filter. A foreign or malformed ID matches nothing (id 0).
pub fn decode_opt(kind: NodeType, id: Option<&ID>) -> async_graphql::Result<Option<i64>> {
    Ok(id.map(|id| ids::decode(kind, id).unwrap_or(0)))
}

/// The caller's workspace currency.
pub async fn workspace_currency(ctx: &Context<'_>) -> async_graphql::Result<String> {
    let ws = ctx.data_unchecked::<loaders::Loaders>().load_one(loaders::WorkspaceKey).await?;
    ws.map(|w| w.currency)
        .ok_or_else(|| errors::gql_error(crate::error::AppError::not_found("workspace")))
}
