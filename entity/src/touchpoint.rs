//! `touchpoints` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "touchpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub lead_id: i64,
    pub campaign_id: Option<i64>,
    pub touch_type: String,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// Incremented by every change the change feed reports (1 when created).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
