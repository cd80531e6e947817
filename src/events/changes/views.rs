//! Each followed record as the change feed shows it: the API's field names, global IDs for
//! references (`accountId`, ...), money as exact decimal text, times in RFC 3339 (UTC). Internal
//! columns (search text, first touch, counters, `updatedAt`, the version itself) are left out:
//! they change with other records, not with this one.
use chrono::{DateTime, NaiveDate, Utc};
use entity::{account, campaign, campaign_cost, lead, opportunity, opportunity_contact, touchpoint};
use serde_json::{Value, json};

use crate::domain::change::{ChangeEntity, View};
use crate::domain::ids::global_id;
use crate::domain::money::from_minor;

/// A record the feed follows.
pub trait Tracked {
    const ENTITY: ChangeEntity;
    fn id(&self) -> i64;
    fn version(&self) -> i64;
    fn set_version(&mut self, version: i64);
    fn view(&self) -> View;
}

fn id(type_name: &str, id: Option<i64>) -> Value {
    id.map_or(Value::Null, |id| Value::String(global_id(type_name, id)))
}

fn text(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn money(minor: Option<i64>) -> Value {
    minor.map_or(Value::Null, |m| Value::String(from_minor(m).to_string()))
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    })
}

fn date(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

impl Tracked for lead::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Lead;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("externalId", text(&self.external_id)),
            ("email", text(&self.email)),
            ("firstName", text(&self.first_name)),
            ("lastName", text(&self.last_name)),
            ("jobTitle", text(&self.job_title)),
            ("decisionRole", text(&self.decision_role)),
            ("industry", text(&self.industry)),
            ("companySize", text(&self.company_size)),
            ("country", text(&self.country)),
            ("phone", text(&self.phone)),
            ("linkedinUrl", text(&self.linkedin_url)),
            ("twitterHandle", text(&self.twitter_handle)),
            ("facebookUrl", text(&self.facebook_url)),
            ("street", text(&self.street)),
            ("postalCode", text(&self.postal_code)),
            ("city", text(&self.city)),
            ("accountId", id("Account", self.account_id)),
            ("ownerId", id("User", self.owner_id)),
            ("status", json!(self.lifecycle_status)),
            ("stageId", id("FunnelStage", Some(self.stage_id))),
            ("consents", self.consents.clone()),
            ("customFields", self.custom_fields.clone()),
            ("emailBouncedAt", time(self.email_bounced_at)),
            ("unsubscribedAt", time(self.unsubscribed_at)),
            ("convertedAt", time(self.converted_at)),
            ("erasedAt", time(self.erased_at)),
            ("mergedIntoId", id("Lead", self.merged_into_id)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for account::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Account;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("externalId", text(&self.external_id)),
            ("name", json!(self.name)),
            ("domain", text(&self.domain)),
            ("industry", text(&self.industry)),
            ("employeeCount", self.employee_count.map_or(Value::Null, |n| json!(n))),
            ("annualRevenue", money(self.annual_revenue_minor)),
            ("country", text(&self.country)),
            ("customerStatus", json!(self.customer_status)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for campaign::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Campaign;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("externalId", text(&self.external_id)),
            ("name", json!(self.name)),
            ("channel", json!(self.channel)),
            ("kind", json!(self.kind)),
            ("status", json!(self.status)),
            ("trackingCode", text(&self.tracking_code)),
            ("startDate", date(self.start_date)),
            ("endDate", date(self.end_date)),
            ("budget", money(self.budget_minor)),
            ("expectedRevenue", money(self.expected_revenue_minor)),
            ("expectedLeads", self.expected_leads.map_or(Value::Null, |n| json!(n))),
            ("currency", json!(self.currency)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for campaign_cost::Model {
    const ENTITY: ChangeEntity = ChangeEntity::CostLine;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("campaignId", id("Campaign", Some(self.campaign_id))),
            ("category", json!(self.category)),
            ("amount", money(Some(self.amount_minor))),
            ("incurredOn", date(Some(self.incurred_on))),
            ("note", text(&self.note)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for touchpoint::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Touchpoint;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("externalId", text(&self.external_id)),
            ("idempotencyKey", text(&self.idempotency_key)),
            ("leadId", id("Lead", Some(self.lead_id))),
            ("campaignId", id("Campaign", self.campaign_id)),
            ("type", json!(self.touch_type)),
            ("occurredAt", time(Some(self.occurred_at))),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for opportunity::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Opportunity;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("externalId", text(&self.external_id)),
            ("accountId", id("Account", Some(self.account_id))),
            ("name", json!(self.name)),
            ("amount", money(Some(self.amount_minor))),
            ("currency", json!(self.currency)),
            ("status", json!(self.status)),
            ("ownerId", id("User", self.owner_id)),
            ("expectedCloseDate", date(self.expected_close_date)),
            ("closedAt", time(self.closed_at)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}

impl Tracked for opportunity_contact::Model {
    const ENTITY: ChangeEntity = ChangeEntity::Contact;
    fn id(&self) -> i64 {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn set_version(&mut self, version: i64) {
        self.version = version;
    }
    fn view(&self) -> View {
        vec![
            ("opportunityId", id("Opportunity", Some(self.opportunity_id))),
            ("leadId", id("Lead", Some(self.lead_id))),
            ("role", json!(self.role)),
            ("isPrimary", json!(self.is_primary)),
            ("createdAt", time(Some(self.created_at))),
        ]
    }
}
