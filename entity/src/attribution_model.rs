//! `attribution_models` table: the versions of a workspace's rule-based attribution models.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attribution_models")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub kind: String,
    pub version: i32,
    #[sea_orm(column_type = "JsonBinary")]
    pub params: serde_json::Value,
    pub is_current: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
