//! `tracked_hits` table: every processed hit of the tracking endpoints.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tracked_hits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub visitor_id: Option<i64>,
    pub lead_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub link_id: Option<i64>,
    pub touch_type: String,
    pub event_id: Option<String>,
    pub campaign_code: Option<String>,
    pub machine: bool,
    pub bot: bool,
    pub url: Option<String>,
    pub referrer: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub params: Option<serde_json::Value>,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
