//! `lead_scores` table: each lead's score under each scoring model.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_scores")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub model_id: i64,
    pub lead_id: i64,
    pub profile_score: i32,
    pub grade: String,
    /// The activity score at `activity_at` (the latest touch that earned points).
    pub activity_value: f64,
    pub activity_at: Option<DateTimeUtc>,
    /// `log2(activity_value) + activity_at / half-life` (seconds); NULL when the score is 0.
    pub activity_key: Option<f64>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
