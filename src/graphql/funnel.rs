//! The funnel agreed by marketing and sales.
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::funnel_stage;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection, is_int};
use crate::graphql::patch;
use crate::service::funnel::{self as service, NewStage};
use crate::store::Scoped;
use crate::store::page::{CursorKey, Sort, SortValue, fetch_page};

/// Whether a stage is on the way from lead to customer or beside it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// On the way from lead to customer.
    Success,
    /// Beside the success path (Nurture, Disqualified).
    Side,
}

impl StageKind {
    /// From the stored kind: SUCCESS, anything else is beside the path.
    pub fn from_db(kind: &str) -> Self {
        if kind == crate::domain::vocab::STAGE_SUCCESS {
            StageKind::Success
        } else {
            StageKind::Side
        }
    }
}

pub struct FunnelStage(pub funnel_stage::Model);

/// A stage of the funnel agreed by marketing and sales. The default funnel is LEAD, MQL, SQL,
/// OPPORTUNITY, CUSTOMER on the success path, with NURTURE and DISQUALIFIED beside it.
#[Object]
impl FunnelStage {
    /// The stage's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::FunnelStage, self.0.id)
    }
    /// Stable key, e.g. MQL: what filters, imports and handoff events use; never changes.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Display name, e.g. "Marketing qualified lead"; may be renamed.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// On the success path or beside it.
    async fn kind(&self) -> StageKind {
        StageKind::from_db(&self.0.kind)
    }
    /// Order of the stage in the funnel (0 first).
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Hours the next team has to act on a lead in this stage; null: no SLA. The MQL stage's
    /// SLA sets `Handoff.dueAt`.
    async fn sla_hours(&self) -> Option<i32> {
        self.0.sla_hours
    }
}

#[derive(Default)]
pub struct FunnelQuery;

#[Object]
impl FunnelQuery {
    /// The workspace's funnel stages in funnel order (by position). Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn funnel_stages(
        &self,
        ctx: &Context<'_>,
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
    ) -> async_graphql::Result<Conn<FunnelStage>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(Some(is_int))
        .gql()?;
        let select = funnel_stage::Entity::in_workspace(p.workspace_id);
        let sort = Sort {
            column: Some(funnel_stage::Column::Position),
            id: funnel_stage::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            |s| CursorKey {
                value: Some(SortValue::Int(s.position as i64)),
                id: s.id,
            },
            FunnelStage,
        ))
    }
}

/// A new funnel stage.
#[derive(InputObject)]
pub struct CreateFunnelStageInput {
    /// Stable key, e.g. DEMO_BOOKED: letters, digits and underscores, at most 64; stored in upper
    /// case; unique in the funnel (TAKEN).
    pub key: String,
    /// Display name.
    pub name: String,
    /// On the success path or beside it.
    pub kind: StageKind,
    /// Where the stage goes (0 first); the stages from there on move down one. Default: last.
    pub position: Option<i32>,
    /// Hours the next team has to act on a lead in this stage: 1 to 8760; absent: no SLA.
    pub sla_hours: Option<i32>,
}

/// Changes to one funnel stage; its key stays.
#[derive(InputObject)]
pub struct UpdateFunnelStageInput {
    /// The stage's ID.
    pub id: ID,
    /// A new display name; absent keeps it.
    pub name: Option<String>,
    /// Built-in stages keep their kind (BUILT_IN).
    pub kind: Option<StageKind>,
    /// 1 to 8760 hours; absent keeps the SLA, null removes it.
    pub sla_hours: MaybeUndefined<i32>,
}

/// A new order of the whole funnel.
#[derive(InputObject)]
pub struct ReorderFunnelStagesInput {
    /// Every stage of the funnel, once each, in the new order.
    pub stage_ids: Vec<ID>,
}

/// The stage to delete.
#[derive(InputObject)]
pub struct DeleteFunnelStageInput {
    /// The stage's ID.
    pub id: ID,
}

/// A manual move of a lead.
#[derive(InputObject)]
pub struct MoveLeadToStageInput {
    /// The lead's ID.
    pub lead_id: ID,
    /// The stage to move it to; not the one it is in.
    pub stage_id: ID,
    /// Kept in the stage history.
    pub reason: Option<String>,
}

/// The result of a funnel stage mutation.
#[derive(SimpleObject)]
pub struct FunnelStagePayload {
    /// The stage as saved (as it was, for a delete); null when `userErrors` is not empty.
    pub stage: Option<FunnelStage>,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The result of `reorderFunnelStages`.
#[derive(SimpleObject)]
pub struct FunnelPayload {
    /// The whole funnel in its new order; null when `userErrors` is not empty.
    pub stages: Option<Vec<FunnelStage>>,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The result of `moveLeadToStage`.
#[derive(SimpleObject)]
pub struct MoveLeadPayload {
    /// The lead in its new stage; null when `userErrors` is not empty.
    pub lead: Option<Lead>,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

fn stage_payload(result: Result<funnel_stage::Model, crate::error::ServiceError>) -> async_graphql::Result<FunnelStagePayload> {
    let (stage, user_errors) = split(result)?;
    Ok(FunnelStagePayload {
        stage: stage.map(FunnelStage),
        user_errors,
    })
}

#[derive(Default)]
pub struct FunnelMutation;

#[Object]
impl FunnelMutation {
    /// ADMIN: adds a stage to the funnel.
    async fn create_funnel_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new stage.")] input: CreateFunnelStageInput,
    ) -> async_graphql::Result<FunnelStagePayload> {
        let p = ctx.allowed(Action::Administer)?;
        let new = NewStage {
            key: input.key,
            name: input.name,
            success: input.kind == StageKind::Success,
            position: input.position,
            sla_hours: input.sla_hours,
        };
        stage_payload(service::create_stage(ctx.db(), p, new).await)
    }

    /// ADMIN: renames a stage, changes its kind or its SLA. The key stays.
    async fn update_funnel_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stage and its changes.")] input: UpdateFunnelStageInput,
    ) -> async_graphql::Result<FunnelStagePayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::FunnelStage, &input.id).gql()?;
        let success = input.kind.map(|k| k == StageKind::Success);
        stage_payload(service::update_stage(ctx.db(), p, id, input.name, success, patch(input.sla_hours)).await)
    }

    /// ADMIN: puts the stages in a new order.
    async fn reorder_funnel_stages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new order.")] input: ReorderFunnelStagesInput,
    ) -> async_graphql::Result<FunnelPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let ids: Vec<i64> = input
            .stage_ids
            .iter()
            .map(|id| ids::decode(NodeType::FunnelStage, id).unwrap_or(0))
            .collect();
        let (stages, user_errors) = split(service::reorder(ctx.db(), p, &ids).await)?;
        Ok(FunnelPayload {
            stages: stages.map(|s| s.into_iter().map(FunnelStage).collect()),
            user_errors,
        })
    }

    /// ADMIN: deletes a stage that no lead is in and no history refers to (IN_USE otherwise).
    async fn delete_funnel_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stage to delete.")] input: DeleteFunnelStageInput,
    ) -> async_graphql::Result<FunnelStagePayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::FunnelStage, &input.id).gql()?;
        stage_payload(service::delete_stage(ctx.db(), p, id).await)
    }

    /// ADMIN, MARKETING or SALES: moves a lead to a stage by hand, backward too (recycling);
    /// writes a stage-history row. A lead with a pending handoff moves through the handoff
    /// instead.
    async fn move_lead_to_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead, the stage and why.")] input: MoveLeadToStageInput,
    ) -> async_graphql::Result<MoveLeadPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let lead_id = ids::decode(NodeType::Lead, &input.lead_id).gql()?;
        let stage_id = ids::decode(NodeType::FunnelStage, &input.stage_id).unwrap_or(0);
        let (lead, user_errors) = split(service::move_lead_to_stage(ctx.db(), p, lead_id, stage_id, input.reason).await)?;
        Ok(MoveLeadPayload {
            lead: lead.map(Lead),
            user_errors,
        })
    }
}
