//! `leads` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub external_id: Option<String>,
    pub account_id: Option<i64>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub decision_role: Option<String>,
    pub industry: Option<String>,
    pub company_size: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub linkedin_url: Option<String>,
    pub twitter_handle: Option<String>,
    pub facebook_url: Option<String>,
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub lifecycle_status: String,
    pub stage_id: i64,
    pub owner_id: Option<i64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub consents: serde_json::Value,
    #[sea_orm(column_type = "JsonBinary")]
    pub custom_fields: serde_json::Value,
    pub email_bounced_at: Option<DateTimeUtc>,
    pub unsubscribed_at: Option<DateTimeUtc>,
    pub converted_at: Option<DateTimeUtc>,
    pub erased_at: Option<DateTimeUtc>,
    /// The lead this one was merged into (`mergeLeads`); such a lead is an erased stub.
    pub merged_into_id: Option<i64>,
    /// When the earliest touchpoint of the lead occurred (kept by every write of touchpoints).
    pub first_touch_at: Option<DateTimeUtc>,
    /// The campaign of the first touchpoint in path order (NULL: none, or it had no campaign).
    pub first_touch_campaign_id: Option<i64>,
    /// Lower-cased e-mail, first and last name (Unicode case folding in Rust), for `search`.
    pub search_text: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Incremented by every change the change feed reports (1 when created).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
