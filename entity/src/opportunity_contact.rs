//! `opportunity_contacts` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity_contacts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub opportunity_id: i64,
    pub lead_id: i64,
    pub role: String,
    pub is_primary: bool,
    pub created_at: DateTimeUtc,
    /// Incremented by every change the change feed reports (1 when created).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
