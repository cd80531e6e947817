//! `persona_criteria` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "persona_criteria")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub persona_id: i64,
    pub position: i32,
    pub attribute: String,
    pub operator: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub values: serde_json::Value,
    pub weight: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
