//! Database queries. Every function takes the workspace it works in; none opens a transaction.
pub mod account;
pub mod attribution;
pub mod bulk;
pub mod campaign;
pub mod handoff;
pub mod lead;
pub mod opportunity;
pub mod page;
pub mod raw;
pub mod scoring;
pub mod touchpoint;
pub mod workspace;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Select};

/// A table whose rows belong to a workspace.
pub trait Scoped: EntityTrait {
    fn workspace_col() -> Self::Column;
    fn id_col() -> Self::Column;
    fn id_of(model: &Self::Model) -> i64;

    /// Every query of this table starts here.
    fn in_workspace(ws: i64) -> Select<Self> {
        Self::find().filter(Self::workspace_col().eq(ws))
    }
}

macro_rules! scoped {
    ($($m:ident),+) => {$(
        impl Scoped for entity::$m::Entity {
            fn workspace_col() -> Self::Column { entity::$m::Column::WorkspaceId }
            fn id_col() -> Self::Column { entity::$m::Column::Id }
            fn id_of(model: &Self::Model) -> i64 { model.id }
        }
    )+};
}
scoped!(
    account,
    attribution_model,
    attribution_credit,
    attribution_campaign_month,
    lead,
    campaign,
    campaign_cost,
    touchpoint,
    opportunity,
    opportunity_contact,
    persona,
    persona_criterion,
    funnel_stage,
    user,
    lead_stage_history,
    handoff,
    vocabulary_term,
    routing_rule,
    webhook,
    webhook_delivery,
    lead_persona_match,
    scoring_model,
    lead_score
);

/// Rows of `E` with the given ids in workspace `ws`; ids of other workspaces are simply absent.
pub async fn by_ids<E: Scoped>(db: &impl ConnectionTrait, ws: i64, ids: &[i64]) -> Result<Vec<E::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    E::in_workspace(ws).filter(E::id_col().is_in(ids.iter().copied())).all(db).await
}

pub async fn by_id<E: Scoped>(db: &impl ConnectionTrait, ws: i64, id: i64) -> Result<Option<E::Model>, DbErr> {
    E::in_workspace(ws).filter(E::id_col().eq(id)).one(db).await
}
