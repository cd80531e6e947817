//! What the planner knows of each entity: its GraphQL types, its table, and for each plannable
//! field where its value comes from. A field that is not listed here is not plannable: a
//! selection that names it runs through the generic resolvers. Adding a column field to an
//! entity is one line here (beside its resolver, which the generic path keeps using); adding an
//! entity is one `Entity` here and a call of `plan::page` or `plan::one` in its list or lookup.
use async_graphql::{InputType, Value};

use crate::graphql::enums::{CampaignKind, CampaignStatus, LifecycleStatus, OpportunityStatus};
use crate::graphql::funnel::StageKind;
use crate::graphql::ids::NodeType;
use crate::graphql::pagination::{CursorCheck, OrderDirection, is_date, is_int, is_text, is_time};
use crate::graphql::touchpoint::TouchpointOrder;
use crate::store::page::SortValue;

/// How a column is read and written out. Nullability does not matter here: every column is read
/// as an `Option`, and NULL is written as null.
#[derive(Clone, Copy)]
pub enum Codec {
    Text,
    I64,
    I32,
    Bool,
    /// A `DateTime` (RFC 3339 UTC, as the `DateTime` scalar writes it).
    Time,
    /// A `Date` (`YYYY-MM-DD`).
    Date,
    /// A stored code written as a GraphQL enum value.
    Enum(fn(&str) -> Value),
}

/// Where a column's value comes from: a column of the row's table, or an SQL expression over
/// the row (`{t}` stands for the row's alias), such as a correlated sum.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Src {
    Column(&'static str),
    Expr(&'static str),
}

/// Where a field's value comes from.
pub enum Read {
    /// The row's global ID (`id` column, the entity's node type).
    Id,
    /// A column of the entity's table, or an expression.
    Value(Src, Codec),
    /// `Lead.name`: first and last name joined by a space, null when neither is known.
    FullName,
    /// A `Money` object of an amount in minor units (null when NULL) and a currency column.
    Money { minor: Src, currency: &'static str },
    /// A to-one object through a foreign-key column of this table: LEFT JOINed (same
    /// workspace) into the statement of the level that holds this row.
    One { entity: &'static Entity, fk: &'static str },
    /// A page of a to-many relation: the first (or last) N rows per parent, for all parents of
    /// the level in one statement.
    Many(&'static Many),
    /// All rows of a to-many relation as a list, for all parents of the level in one statement.
    List(&'static List),
}

pub struct Field {
    pub name: &'static str,
    pub read: Read,
}

pub struct Entity {
    /// The GraphQL object type (`__typename`, fragment type conditions).
    pub type_name: &'static str,
    /// Its connection and edge types (`LeadConnection`, `LeadEdge`).
    pub connection: &'static str,
    pub edge: &'static str,
    pub table: &'static str,
    /// The node type of its global IDs (`None`: the type has no ID).
    pub node: Option<NodeType>,
    /// What its list may be ordered by: each value of its order-field enum and the column it
    /// sorts by (`None`: the ID alone). Ties are broken by ID; cursors carry the column's value.
    pub orders: &'static [(&'static str, Option<&'static str>)],
    pub fields: &'static [Field],
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The column that `field` (a value of the entity's order-field enum) sorts by (`None`:
    /// the ID alone), and the cursors that fit that order (their values are the column's).
    pub fn order(&self, field: impl InputType) -> (Option<&'static str>, CursorCheck) {
        let name = match field.to_value() {
            Value::Enum(name) => name,
            other => unreachable!("an order field is an enum value, not {other}"),
        };
        let column = self
            .orders
            .iter()
            .find(|(value, _)| *value == name.as_str())
            .unwrap_or_else(|| panic!("{} orders by {name}, which its description does not give", self.type_name))
            .1;
        let expects = column.map(|c| match self.codec(c) {
            Codec::Text | Codec::Enum(_) => is_text as fn(&SortValue) -> bool,
            Codec::Time => is_time,
            Codec::Date => is_date,
            Codec::I64 | Codec::I32 | Codec::Bool => is_int,
        });
        (column, expects)
    }

    /// How `column` is read (a sort column: its cursor value).
    pub fn codec(&self, column: &str) -> Codec {
        self.fields
            .iter()
            .find_map(|f| match f.read {
                Read::Value(Src::Column(c), codec) if c == column => Some(codec),
                _ => None,
            })
            .unwrap_or(Codec::I64)
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

/// Where a nested page's `totalCount` comes from.
pub enum Total {
    /// Counted per parent in one grouped statement (the rows that `Many::filter` keeps).
    Count,
    /// A counter column of the parent (negative reads as 0).
    ParentColumn(&'static str),
}

/// A to-many relation read a page per parent.
pub struct Many {
    pub entity: &'static Entity,
    /// The child's column naming the parent.
    pub fk: &'static str,
    /// A condition on the child rows (SQL over the child table, unqualified).
    pub filter: &'static str,
    /// The order that `orderBy` (absent: `None`) asks for; `None` when it does not parse, so
    /// that the generic path reports the error.
    pub order: fn(Option<Value>) -> Option<ManyOrder>,
    pub total: Total,
}

/// A to-many relation read whole per parent.
pub struct List {
    pub entity: &'static Entity,
    pub fk: &'static str,
    /// The order of a parent's rows (SQL over the child's alias `b`).
    pub order: &'static str,
}

const fn col(c: &'static str, codec: Codec) -> Read {
    Read::Value(Src::Column(c), codec)
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

fn opportunity_status(s: &str) -> Value {
    OpportunityStatus::from_db(s).to_value()
}

fn stage_kind(s: &str) -> Value {
    StageKind::from_db(s).to_value()
}

pub static LEAD: Entity = Entity {
    type_name: "Lead",
    connection: "LeadConnection",
    edge: "LeadEdge",
    table: "leads",
    node: Some(NodeType::Lead),
    orders: &[("ID", None), ("CREATED_AT", Some("created_at")), ("UPDATED_AT", Some("updated_at"))],
    fields: fields! {
        "id" => Read::Id,
        "version" => col("version", Codec::I64),
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
        "owner" => Read::One { entity: &USER, fk: "owner_id" },
        "mergedInto" => Read::One { entity: &LEAD, fk: "merged_into_id" },
        "touchpoints" => Read::Many(&LEAD_TOUCHPOINTS),
    },
};

pub static ACCOUNT: Entity = Entity {
    type_name: "Account",
    connection: "AccountConnection",
    edge: "AccountEdge",
    table: "accounts",
    node: Some(NodeType::Account),
    orders: &[("ID", None), ("NAME", Some("name")), ("UPDATED_AT", Some("updated_at"))],
    fields: fields! {
        "id" => Read::Id,
        "version" => col("version", Codec::I64),
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "domain" => col("domain", Codec::Text),
        "industry" => col("industry", Codec::Text),
        "employeeCount" => col("employee_count", Codec::I64),
        "country" => col("country", Codec::Text),
        "customerStatus" => col("customer_status", Codec::Enum(lifecycle)),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
        "leads" => Read::Many(&ACCOUNT_LEADS),
    },
};

pub static FUNNEL_STAGE: Entity = Entity {
    type_name: "FunnelStage",
    connection: "FunnelStageConnection",
    edge: "FunnelStageEdge",
    table: "funnel_stages",
    node: Some(NodeType::FunnelStage),
    orders: &[],
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
    connection: "CampaignConnection",
    edge: "CampaignEdge",
    table: "campaigns",
    node: Some(NodeType::Campaign),
    orders: &[("ID", None), ("NAME", Some("name")), ("CREATED_AT", Some("created_at"))],
    fields: fields! {
        "id" => Read::Id,
        "version" => col("version", Codec::I64),
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "channel" => col("channel", Codec::Text),
        "kind" => col("kind", Codec::Enum(campaign_kind)),
        "status" => col("status", Codec::Enum(campaign_status)),
        "trackingCode" => col("tracking_code", Codec::Text),
        "startDate" => col("start_date", Codec::Date),
        "endDate" => col("end_date", Codec::Date),
        "budget" => Read::Money { minor: Src::Column("budget_minor"), currency: "currency" },
        "expectedRevenue" => Read::Money { minor: Src::Column("expected_revenue_minor"), currency: "currency" },
        "expectedLeads" => col("expected_leads", Codec::I64),
        // Every cost line, whatever its date: the sum of `costs`.
        "totalCost" => Read::Money {
            minor: Src::Expr(
                "(SELECT CAST(COALESCE(SUM(x.\"amount_minor\"), 0) AS BIGINT) FROM campaign_costs x \
                 WHERE x.\"workspace_id\" = {t}.\"workspace_id\" AND x.\"campaign_id\" = {t}.\"id\")",
            ),
            currency: "currency",
        },
        "touchpointCount" => col("touchpoint_count", Codec::I64),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
        "touchpoints" => Read::Many(&CAMPAIGN_TOUCHPOINTS),
    },
};

pub static TOUCHPOINT: Entity = Entity {
    type_name: "Touchpoint",
    connection: "TouchpointConnection",
    edge: "TouchpointEdge",
    table: "touchpoints",
    node: Some(NodeType::Touchpoint),
    orders: &[("OCCURRED_AT", Some("occurred_at")), ("ID", None)],
    fields: fields! {
        "id" => Read::Id,
        "version" => col("version", Codec::I64),
        "externalId" => col("external_id", Codec::Text),
        "idempotencyKey" => col("idempotency_key", Codec::Text),
        "type" => col("touch_type", Codec::Text),
        "occurredAt" => col("occurred_at", Codec::Time),
        "createdAt" => col("created_at", Codec::Time),
        "lead" => Read::One { entity: &LEAD, fk: "lead_id" },
        "campaign" => Read::One { entity: &CAMPAIGN, fk: "campaign_id" },
    },
};

pub static OPPORTUNITY: Entity = Entity {
    type_name: "Opportunity",
    connection: "OpportunityConnection",
    edge: "OpportunityEdge",
    table: "opportunities",
    node: Some(NodeType::Opportunity),
    orders: &[("ID", None), ("CREATED_AT", Some("created_at"))],
    fields: fields! {
        "id" => Read::Id,
        "version" => col("version", Codec::I64),
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "amount" => Read::Money { minor: Src::Column("amount_minor"), currency: "currency" },
        "status" => col("status", Codec::Enum(opportunity_status)),
        "expectedCloseDate" => col("expected_close_date", Codec::Date),
        "closedAt" => col("closed_at", Codec::Time),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
        "account" => Read::One { entity: &ACCOUNT, fk: "account_id" },
        "contacts" => Read::List(&OPPORTUNITY_CONTACTS),
    },
};

pub static USER: Entity = Entity {
    type_name: "User",
    connection: "UserConnection",
    edge: "UserEdge",
    table: "users",
    node: Some(NodeType::User),
    orders: &[("ID", None)],
    fields: fields! {
        "id" => Read::Id,
        "externalId" => col("external_id", Codec::Text),
        "name" => col("name", Codec::Text),
        "email" => col("email", Codec::Text),
        "team" => col("team", Codec::Text),
        "active" => col("active", Codec::Bool),
        "createdAt" => col("created_at", Codec::Time),
    },
};

/// A persona's own columns; its criteria and leads take the generic path.
pub static PERSONA: Entity = Entity {
    type_name: "Persona",
    connection: "PersonaConnection",
    edge: "PersonaEdge",
    table: "personas",
    node: Some(NodeType::Persona),
    orders: &[("ID", None)],
    fields: fields! {
        "id" => Read::Id,
        "name" => col("name", Codec::Text),
        "description" => col("description", Codec::Text),
        "matchThreshold" => col("match_threshold", Codec::I32),
        "createdAt" => col("created_at", Codec::Time),
        "updatedAt" => col("updated_at", Codec::Time),
    },
};

/// A row of the buying center (`opportunity_contacts`).
pub static BUYING_CENTER_MEMBER: Entity = Entity {
    type_name: "BuyingCenterMember",
    connection: "",
    edge: "",
    table: "opportunity_contacts",
    node: None,
    orders: &[],
    fields: fields! {
        "role" => col("role", Codec::Text),
        "version" => col("version", Codec::I64),
        "isPrimary" => col("is_primary", Codec::Bool),
        "lead" => Read::One { entity: &LEAD, fk: "lead_id" },
    },
};

pub static LEAD_TOUCHPOINTS: Many = Many {
    entity: &TOUCHPOINT,
    fk: "lead_id",
    filter: "1 = 1",
    order: touchpoint_order,
    total: Total::Count,
};

pub static CAMPAIGN_TOUCHPOINTS: Many = Many {
    entity: &TOUCHPOINT,
    fk: "campaign_id",
    filter: "1 = 1",
    order: touchpoint_order,
    total: Total::ParentColumn("touchpoint_count"),
};

/// An account's leads, oldest first; erased leads are left out.
pub static ACCOUNT_LEADS: Many = Many {
    entity: &LEAD,
    fk: "account_id",
    filter: "\"erased_at\" IS NULL",
    order: by_id,
    total: Total::Count,
};

/// The buying center: the primary contact first, then in the order added.
pub static OPPORTUNITY_CONTACTS: List = List {
    entity: &BUYING_CENTER_MEMBER,
    fk: "opportunity_id",
    order: "b.\"is_primary\" DESC, b.\"id\" ASC",
};

fn touchpoint_order(arg: Option<Value>) -> Option<ManyOrder> {
    let order = match arg {
        None | Some(Value::Null) => TouchpointOrder::NEWEST_FIRST,
        Some(v) => TouchpointOrder::parse(Some(v)).ok()?,
    };
    let (column, expects) = TOUCHPOINT.order(order.field);
    Some(ManyOrder {
        column,
        desc: order.direction == OrderDirection::Desc,
        expects,
    })
}

/// A list without `orderBy`: by ID, ascending.
fn by_id(arg: Option<Value>) -> Option<ManyOrder> {
    arg.is_none().then_some(ManyOrder {
        column: None,
        desc: false,
        expects: None,
    })
}
