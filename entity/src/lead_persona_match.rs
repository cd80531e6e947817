//! `lead_persona_matches` table: one row per lead and persona with any criteria.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_persona_matches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub lead_id: i64,
    pub persona_id: i64,
    pub matched_weight: i32,
    pub total_weight: i32,
    /// The match reaches the persona's threshold.
    pub is_member: bool,
    /// JSON array of booleans, one per criterion in position order.
    #[sea_orm(column_type = "JsonBinary")]
    pub criteria_met: serde_json::Value,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
