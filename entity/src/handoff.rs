//! `handoffs` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "handoffs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub lead_id: i64,
    pub open_lead_id: Option<i64>,
    pub status: String,
    pub owner_id: Option<i64>,
    pub note: Option<String>,
    pub reason_code: Option<String>,
    pub feedback: Option<String>,
    pub nurture_until: Option<DateTimeUtc>,
    pub created_by: String,
    pub responded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The lead's stage before it was handed off.
    pub from_stage_id: Option<i64>,
    pub routing_rule_id: Option<i64>,
    /// When sales must have acted (the MQL stage's SLA), if it has one.
    pub due_at: Option<DateTimeUtc>,
    pub responded_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
