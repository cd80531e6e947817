//! The funnel agreed by marketing and sales.
use async_graphql::{Context, Enum, ID, Object};
use entity::funnel_stage;

use crate::graphql::context::ContextExt;
use crate::graphql::errors::IntoGql;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection, is_int};
use crate::store::Scoped;
use crate::store::page::{CursorKey, Sort, SortValue, fetch_page};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// On the way from lead to customer.
    Success,
    /// Beside the success path (Nurture, Disqualified).
    Side,
}

pub struct FunnelStage(pub funnel_stage::Model);

#[Object]
impl FunnelStage {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::FunnelStage, self.0.id)
    }
    /// Stable key, e.g. MQL.
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> StageKind {
        if self.0.kind == crate::domain::vocab::STAGE_SUCCESS {
            StageKind::Success
        } else {
            StageKind::Side
        }
    }
    /// Order of the stage in the funnel (0 first).
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Hours the next team has to act on a lead in this stage.
    async fn sla_hours(&self) -> Option<i32> {
        self.0.sla_hours
    }
}

#[derive(Default)]
pub struct FunnelQuery;

#[Object]
impl FunnelQuery {
    /// The workspace's funnel stages in funnel order.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn funnel_stages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
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
