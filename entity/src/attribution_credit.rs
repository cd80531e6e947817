//! `attribution_credits` table: the ledger, one row per credited touch of a won deal and model
//! version (or one UNATTRIBUTED row for a deal no touch earned).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attribution_credits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub model_id: i64,
    pub opportunity_id: i64,
    pub closed_at: DateTimeUtc,
    pub currency: String,
    pub position: i32,
    pub touchpoint_id: Option<i64>,
    pub lead_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub touch_type: Option<String>,
    pub amount_minor: i64,
    pub conversion_micros: i64,
    /// The credited touches the row sums (0 on the UNATTRIBUTED row); `position` and
    /// `touchpoint_id` are the first of them on the deal's path.
    pub touches: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
