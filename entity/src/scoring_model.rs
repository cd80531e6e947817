//! `scoring_models` table: a workspace's scoring models (one is the default).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scoring_models")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub half_life_seconds: i64,
    pub grade_a: i32,
    pub grade_b: i32,
    pub grade_c: i32,
    pub band_1: i32,
    pub band_2: i32,
    pub band_3: i32,
    /// JSON array of cells ("A1", ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub mql_cells: serde_json::Value,
    pub cooldown_days: i32,
    /// JSON array of `{attribute, operator, values, points}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub profile_rules: serde_json::Value,
    /// JSON array of `{type, campaignId?, points, dailyCap?}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub activity_rules: serde_json::Value,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
