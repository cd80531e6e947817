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

/// Implements [`Tracked`] for a table's model with an `id` and a `version` column: its entity
/// and its view (`$m` the model).
macro_rules! tracked {
    ($table:ident, $entity:ident, |$m:ident| $view:block) => {
        impl Tracked for $table::Model {
            const ENTITY: ChangeEntity = ChangeEntity::$entity;
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
                let $m = self;
                $view
            }
        }
    };
}

tracked!(lead, Lead, |m| {
    vec![
        ("externalId", text(&m.external_id)),
        ("email", text(&m.email)),
        ("firstName", text(&m.first_name)),
        ("lastName", text(&m.last_name)),
        ("jobTitle", text(&m.job_title)),
        ("decisionRole", text(&m.decision_role)),
        ("industry", text(&m.industry)),
        ("companySize", text(&m.company_size)),
        ("country", text(&m.country)),
        ("phone", text(&m.phone)),
        ("linkedinUrl", text(&m.linkedin_url)),
        ("twitterHandle", text(&m.twitter_handle)),
        ("facebookUrl", text(&m.facebook_url)),
        ("street", text(&m.street)),
        ("postalCode", text(&m.postal_code)),
        ("city", text(&m.city)),
        ("accountId", id("Account", m.account_id)),
        ("ownerId", id("User", m.owner_id)),
        ("status", json!(m.lifecycle_status)),
        ("stageId", id("FunnelStage", Some(m.stage_id))),
        ("consents", m.consents.clone()),
        ("customFields", m.custom_fields.clone()),
        ("emailBouncedAt", time(m.email_bounced_at)),
        ("unsubscribedAt", time(m.unsubscribed_at)),
        ("convertedAt", time(m.converted_at)),
        ("erasedAt", time(m.erased_at)),
        ("mergedIntoId", id("Lead", m.merged_into_id)),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(account, Account, |m| {
    vec![
        ("externalId", text(&m.external_id)),
        ("name", json!(m.name)),
        ("domain", text(&m.domain)),
        ("industry", text(&m.industry)),
        ("employeeCount", m.employee_count.map_or(Value::Null, |n| json!(n))),
        ("annualRevenue", money(m.annual_revenue_minor)),
        ("country", text(&m.country)),
        ("customerStatus", json!(m.customer_status)),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(campaign, Campaign, |m| {
    vec![
        ("externalId", text(&m.external_id)),
        ("name", json!(m.name)),
        ("channel", json!(m.channel)),
        ("kind", json!(m.kind)),
        ("status", json!(m.status)),
        ("trackingCode", text(&m.tracking_code)),
        ("startDate", date(m.start_date)),
        ("endDate", date(m.end_date)),
        ("budget", money(m.budget_minor)),
        ("expectedRevenue", money(m.expected_revenue_minor)),
        ("expectedLeads", m.expected_leads.map_or(Value::Null, |n| json!(n))),
        ("currency", json!(m.currency)),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(campaign_cost, CostLine, |m| {
    vec![
        ("campaignId", id("Campaign", Some(m.campaign_id))),
        ("category", json!(m.category)),
        ("amount", money(Some(m.amount_minor))),
        ("incurredOn", date(Some(m.incurred_on))),
        ("note", text(&m.note)),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(touchpoint, Touchpoint, |m| {
    vec![
        ("externalId", text(&m.external_id)),
        ("idempotencyKey", text(&m.idempotency_key)),
        ("leadId", id("Lead", Some(m.lead_id))),
        ("campaignId", id("Campaign", m.campaign_id)),
        ("type", json!(m.touch_type)),
        ("occurredAt", time(Some(m.occurred_at))),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(opportunity, Opportunity, |m| {
    vec![
        ("externalId", text(&m.external_id)),
        ("accountId", id("Account", Some(m.account_id))),
        ("name", json!(m.name)),
        ("amount", money(Some(m.amount_minor))),
        ("currency", json!(m.currency)),
        ("status", json!(m.status)),
        ("ownerId", id("User", m.owner_id)),
        ("expectedCloseDate", date(m.expected_close_date)),
        ("closedAt", time(m.closed_at)),
        ("createdAt", time(Some(m.created_at))),
    ]
});

tracked!(opportunity_contact, Contact, |m| {
    vec![
        ("opportunityId", id("Opportunity", Some(m.opportunity_id))),
        ("leadId", id("Lead", Some(m.lead_id))),
        ("role", json!(m.role)),
        ("isPrimary", json!(m.is_primary)),
        ("createdAt", time(Some(m.created_at))),
    ]
});
