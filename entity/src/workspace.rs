//! `workspaces` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub currency: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub settings: serde_json::Value,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Who gets a handoff that no routing rule matches.
    pub handoff_owner_id: Option<i64>,
    /// Bumped by every committed write in the workspace; cached reports are keyed by it.
    pub data_revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
