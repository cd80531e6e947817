//! `campaigns` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub channel: String,
    pub kind: String,
    pub status: String,
    pub tracking_code: Option<String>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub budget_minor: Option<i64>,
    pub expected_revenue_minor: Option<i64>,
    pub expected_leads: Option<i64>,
    pub currency: String,
    pub touchpoint_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Incremented by every change the change feed reports (1 when created).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
