//! `routing_rules` table: who gets a handoff, first matching rule wins.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "routing_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub position: i32,
    pub name: String,
    /// JSON array of ISO country codes; null matches every country.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub countries: Option<serde_json::Value>,
    pub persona_id: Option<i64>,
    /// JSON array of user IDs, taken in turn (round-robin).
    #[sea_orm(column_type = "JsonBinary")]
    pub user_ids: serde_json::Value,
    /// Index into `user_ids` of the next owner.
    pub next_index: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
