//! What the planner knows of each entity: its GraphQL type, its table, and for each plannable
//! field where its value comes from. A field that is not listed here is not plannable: a
//! selection that names it runs through the generic resolvers. Adding a plain column field to
//! an entity is one line here (beside its resolver, which the generic path keeps using).
use async_graphql::{InputType, Value};

use crate::graphql::enums::{CampaignKind, CampaignStatus, LifecycleStatus};
use crate::graphql::funnel::StageKind;
use crate::graphql::ids::NodeType;
use crate::graphql::pagination::CursorCheck;
use crate::graphql::touchpoint::{TouchpointOrder, TouchpointOrderField};

/// How a column is read and written out. Nullability does not matter here: every column is read
/// as an `Option`, and NULL is written as null.
#[derive(Clone, Copy)]
pub enum Codec {
    Text,
    I64,
    I32,
    /// A `DateTime` (RFC 3339 UTC, as the `DateTime` scalar writes it).
    Time,
    /// A `Date` (`YYYY-MM-DD`).
    Date,
    /// A stored code written as a GraphQL enum value.
    Enum(fn(&str) -> Value),
}

/// Where a field's value comes from.
pub enum Read {
    /// The row's global ID (`id` column, entity's node type).
    Id,
    /// A column of the entity's table.
    Column(&'static str, Codec),
    /// `Lead.name`: first and last name joined by a space, null when neither is known.
    FullName,
    /// A to-one object through a foreign-key column of this table: joined into the statement
    /// of the level that holds this row (LEFT JOIN, same workspace).
    One { entity: &'static Entity, fk: &'static str },
    /// A page of a to-many relation: the first (or last) N rows per parent in one statement for
    /// all parents of the level.
    Many(&'static Many),
}

pub struct Field {
    pub name: &'static str,
    pub read: Read,
}

pub struct Entity {
    /// The GraphQL object type (`__typename`, fragment type conditions).
    pub type_name: &'static str,
    pub table: &'static str,
    pub node: NodeType,
    pub fields: &'static [Field],
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&'static Read> {
        self.fields.iter().find(|f| f.name == name).map(|f| &f.read)
    }
}

/// The order of a to-many page: a sort column (`None`: the ID alone) and its direction.
#[derive(Clone, Copy)]
pub struct ManyOrder {
    pub column: Option<&'static str>,
    pub desc: bool,
    /// Which cursors fit this order (as `PageArgs::request` checks them).
    pub expects: CursorCheck,
}

/// A to-many relation: the child entity, the child's column naming the parent, and how the
/// field's `orderBy` argument reads.
pub struct Many {
    pub entity: &'static Entity,
    pub fk: &'static str,
    /// The GraphQL type name of the connection (`TouchpointConnection`) and of its edges.
    pub connection: &'static str,
    pub edge: &'static str,
    /// The order that `orderBy` (absent: `None`) asks for; `None` when it does not parse, so
    /// that the generic path reports the error.
    pub order: fn(Option<Value>) -> Option<ManyOrder>,
}

const fn col(c: &'static str, codec: Codec) -> Read {
    Read::Column(c, codec)
}

macro_rules! fields {
    ($($name:literal => $read:expr),+ $(,)?) => {
        &[$(Field { name: $name, read: $read }),+]
    };
}

fn lifecycle(s: &str) -> Value {
    LifecycleStatus::from_db(s).to_value()
}

fn campaign_kind(s: &str) -> Value {
    CampaignKind::from_db(s).to_value()
}

fn campaign_status(s: &str) -> Value {
    CampaignStatus::from_db(s).to_value()
}

fn stage_kind(s: &str) -> Value {
    StageKind::from_db(s).to_value()
}

pub static LEAD: Entity = Entity {
    type_name: "Lead",
    table: "leads",
    node: NodeType::Lead,
    fields: fields! {
        "id" => Read::Id,
        "externalId" => col("external_id", Codec::Text),
        "email" => col("email", Codec::Text),
        "firstName" => col("first_name", Codec::Text),
        "lastName" => col("last_name", Codec::Text),
        "name" => Read::FullName,
        "jobTitle" => col("job_title", Codec::Text),
        "decisionRole" => col("decision_role", Codec::Text),
        "industry" => col("industry", Codec::Text),
        "companySize" => col("company_size", Codec::Text),
        "country" => col("country", Codec::Text),
        "phone" => col("phone", Codec::Text),
        "linkedinUrl" => col("linkedin_url", Codec::Text),
        "twitterHandle" => col("twitter_handle", Codec::Text),
        "facebookUrl" => col("facebook_url", Codec::Text),
        "street" => col("street", Codec::Text),
        "postalCode" => col("postal_code", Codec::Text),
        "city" => col("city", Codec::Text),
        "status" => col("lifecycle_status", Codec::Enum(lifecycle)),
        "convertedAt" => col("converted_at", Codec::Time),
        "firstTouchAt" => col("first_touch_at", Codec::Time),
        "emailBouncedAt" => col("email_bounced_at", Codec::Time),
        "unsubscribedAt" => col("unsubscribed_at", Codec::Time),
        "erasedAt" => col("erased_at", Codec::Time),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
        "stage" => Read::One { entity: &FUNNEL_STAGE, fk: "stage_id" },
        "account" => Read::One { entity: &ACCOUNT, fk: "account_id" },
        "touchpoints" => Read::Many(&LEAD_TOUCHPOINTS),
    },
};

pub static ACCOUNT: Entity = Entity {
    type_name: "Account",
    table: "accounts",
    node: NodeType::Account,
    fields: fields! {
        "id" => Read::Id,
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "domain" => col("domain", Codec::Text),
        "industry" => col("industry", Codec::Text),
        "employeeCount" => col("employee_count", Codec::I64),
        "country" => col("country", Codec::Text),
        "customerStatus" => col("customer_status", Codec::Enum(lifecycle)),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
    },
};

pub static FUNNEL_STAGE: Entity = Entity {
    type_name: "FunnelStage",
    table: "funnel_stages",
    node: NodeType::FunnelStage,
    fields: fields! {
        "id" => Read::Id,
        "key" => col("key", Codec::Text),
        "name" => col("name", Codec::Text),
        "kind" => col("kind", Codec::Enum(stage_kind)),
        "position" => col("position", Codec::I32),
        "slaHours" => col("sla_hours", Codec::I32),
    },
};

pub static CAMPAIGN: Entity = Entity {
    type_name: "Campaign",
    table: "campaigns",
    node: NodeType::Campaign,
    fields: fields! {
        "id" => Read::Id,
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "channel" => col("channel", Codec::Text),
        "kind" => col("kind", Codec::Enum(campaign_kind)),
        "status" => col("status", Codec::Enum(campaign_status)),
        "trackingCode" => col("tracking_code", Codec::Text),
        "startDate" => col("start_date", Codec::Date),
        "endDate" => col("end_date", Codec::Date),
        "expectedLeads" => col("expected_leads", Codec::I64),
        "touchpointCount" => col("touchpoint_count", Codec::I64),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
    },
};

pub static TOUCHPOINT: Entity = Entity {
    type_name: "Touchpoint",
    table: "touchpoints",
    node: NodeType::Touchpoint,
    fields: fields! {
        "id" => Read::Id,
        "externalId" => col("external_id", Codec::Text),
        "idempotencyKey" => col("idempotency_key", Codec::Text),
        "type" => col("touch_type", Codec::Text),
        "occurredAt" => col("occurred_at", Codec::Time),
        "createdAt" => col("created_at", Codec::Time),
        "lead" => Read::One { entity: &LEAD, fk: "lead_id" },
        "campaign" => Read::One { entity: &CAMPAIGN, fk: "campaign_id" },
    },
};

pub static LEAD_TOUCHPOINTS: Many = Many {
    entity: &TOUCHPOINT,
    fk: "lead_id",
    connection: "TouchpointConnection",
    edge: "TouchpointEdge",
    order: touchpoint_order,
};

fn touchpoint_order(arg: Option<Value>) -> Option<ManyOrder> {
    let order = match arg {
        None | Some(Value::Null) => TouchpointOrder::NEWEST_FIRST,
        Some(v) => TouchpointOrder::parse(Some(v)).ok()?,
    };
    Some(ManyOrder {
        column: match order.field {
            TouchpointOrderField::OccurredAt => Some("occurred_at"),
            TouchpointOrderField::Id => None,
        },
        desc: order.direction == crate::graphql::pagination::OrderDirection::Desc,
        expects: order.expects(),
    })
}
