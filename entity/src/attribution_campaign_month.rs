//! `attribution_campaign_months` table: the ledger of a model version summed per campaign and
//! calendar month of the deals' close (kept with the ledger, read by campaign reports).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attribution_campaign_months")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub model_id: i64,
    pub currency: String,
    pub month_start: DateTimeUtc,
    pub campaign_id: Option<i64>,
    pub attributed: bool,
    pub amount_minor: i64,
    pub conversion_micros: i64,
    pub touchpoints: i64,
    pub deals: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
