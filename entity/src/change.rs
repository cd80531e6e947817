//! `changes` table: the change feed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub seq: i64,
    pub entity: String,
    pub entity_id: i64,
    pub kind: String,
    pub version: Option<i64>,
    pub actor: String,
    pub source: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: serde_json::Value,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
