//! The tables of the bulk export (`closedloop export DIR`, `GET /export/tables/{table}.parquet`),
//! each described once: where its rows come from and, per column, the SQL that reads it, its
//! type and what it means. A page of a table is one keyset statement (`id > after`, by id) in
//! the caller's transaction, always within one workspace, read into one vector per column.
//!
//! A new column is one more [`Column`]; a filter (e.g. rows changed since a cursor) is one more
//! condition in [`page_sql`].
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::decode::{Cell, cell, check_column};
use super::raw::statement;

/// What a column holds, which decides how it is read and how it is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A row ID, written as the global ID of this type (`base64("Lead:42")`).
    Id(&'static str),
    Text,
    /// JSON, written as its text.
    Json,
    Int,
    /// A float that is not money (an activity score).
    Float,
    Bool,
    /// Money in integer cents, written as a decimal with 2 places.
    Cents,
    /// Millionths (fractional deals), written as a decimal with 6 places.
    Micros,
    /// A moment, UTC.
    Time,
    /// A calendar day.
    Date,
}

/// One column of an exported table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The column's name in the file (snake_case).
    pub name: &'static str,
    /// The SQL that reads it; the table's row is `t`.
    pub sql: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// Personal data of a lead: NULL once the lead is erased (see [`Table::personal_while`]).
    pub personal: bool,
    /// What it means (docs/export.md says the same).
    pub doc: &'static str,
}

/// One exported table.
#[derive(Debug)]
pub struct Table {
    /// The file's name without its extension, and the name in `--tables` and the URL.
    pub name: &'static str,
    /// The rows, `t`, and what the columns look up: LEFT JOINs on the same workspace, which keep
    /// `t` the outer loop, read by ID without a sort (SQLite drove an inner join from the funnel
    /// stages and sorted every remaining lead for each page).
    pub from: &'static str,
    /// The condition under which personal columns are read; NULL is written otherwise.
    pub personal_while: Option<&'static str>,
    /// The columns; the first is the row's ID (`t.id`), by which pages are cut.
    pub columns: &'static [Column],
    /// An incremental export (`--since`): the condition on `t` that selects the rows changes in
    /// a range of the change feed touched, with two `?` for the range (after, up to). `None`:
    /// the table is always exported whole.
    pub changed: Option<&'static str>,
}

impl Table {
    /// The table called `name`, if it is one of [`TABLES`].
    pub fn named(name: &str) -> Option<&'static Table> {
        TABLES.iter().find(|t| t.name == name)
    }
}

const fn col(name: &'static str, sql: &'static str, kind: Kind, nullable: bool, doc: &'static str) -> Column {
    Column {
        name,
        sql,
        kind,
        nullable,
        personal: false,
        doc,
    }
}

/// A personal column of a lead: nullable, NULL for an erased lead.
const fn personal(name: &'static str, sql: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column {
        name,
        sql,
        kind,
        nullable: true,
        personal: true,
        doc,
    }
}

use Kind::{Bool, Cents, Date, Float, Id, Int, Json, Micros, Text, Time};

const CREATED: Column = col("created_at", "t.created_at", Time, false, "When the row was written (UTC).");
const UPDATED: Column = col("updated_at", "t.updated_at", Time, false, "When the row was last changed (UTC).");

/// The rows of an entity the change feed names in a range: its `entity_id`s there.
macro_rules! changed_entity {
    ($entity:literal) => {
        concat!(
            "t.id IN (SELECT c.entity_id FROM changes c WHERE c.workspace_id = t.workspace_id AND c.entity = '",
            $entity,
            "' AND c.seq > ? AND c.seq <= ?)"
        )
    };
}
const CHANGED_ACCOUNT: &str = changed_entity!("ACCOUNT");
const CHANGED_CAMPAIGN: &str = changed_entity!("CAMPAIGN");
const CHANGED_COST_LINE: &str = changed_entity!("COST_LINE");
const CHANGED_LEAD: &str = changed_entity!("LEAD");
const CHANGED_TOUCHPOINT: &str = changed_entity!("TOUCHPOINT");
const CHANGED_OPPORTUNITY: &str = changed_entity!("OPPORTUNITY");
const CHANGED_CONTACT: &str = changed_entity!("CONTACT");
/// The whole stage history of every lead that changed in the range.
const CHANGED_STAGES: &str = "t.lead_id IN (SELECT c.entity_id FROM changes c WHERE c.workspace_id = t.workspace_id \
     AND c.entity = 'LEAD' AND c.seq > ? AND c.seq <= ?)";
/// Every ledger row of the deals whose credits changed in the range.
const CHANGED_CREDITS: &str = "t.opportunity_id IN (SELECT c.entity_id FROM changes c WHERE c.workspace_id = t.workspace_id \
     AND c.entity = 'OPPORTUNITY' AND c.kind = 'CREDITS_CHANGED' AND c.seq > ? AND c.seq <= ?)";

/// Every exported table, in the order `closedloop export` writes them.
pub const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        from: "accounts t",
        personal_while: None,
        changed: Some(CHANGED_ACCOUNT),
        columns: &[
            col("id", "t.id", Id("Account"), false, "The account's global ID (`Account`)."),
            col("external_id", "t.external_id", Text, true, "The source system's ID (CRM)."),
            col("name", "t.name", Text, false, "The company's name."),
            col("domain", "t.domain", Text, true, "The company's web domain."),
            col("industry", "t.industry", Text, true, "Industry."),
            col("employee_count", "t.employee_count", Int, true, "Number of employees."),
            col(
                "annual_revenue",
                "t.annual_revenue_minor",
                Cents,
                true,
                "Annual revenue, in the workspace currency.",
            ),
            col("country", "t.country", Text, true, "ISO 3166-1 alpha-2 country code."),
            col(
                "customer_status",
                "t.customer_status",
                Text,
                false,
                "LEAD, NEW_CUSTOMER or EXISTING_CUSTOMER.",
            ),
            CREATED,
            UPDATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "campaigns",
        from: "campaigns t",
        personal_while: None,
        changed: Some(CHANGED_CAMPAIGN),
        columns: &[
            col("id", "t.id", Id("Campaign"), false, "The campaign's global ID (`Campaign`)."),
            col("external_id", "t.external_id", Text, true, "The source system's ID."),
            col("name", "t.name", Text, false, "The campaign's name."),
            col(
                "channel",
                "t.channel",
                Text,
                false,
                "The channel, a key of the workspace's channel vocabulary.",
            ),
            col(
                "kind",
                "t.kind",
                Text,
                false,
                "ACQUISITION, NURTURE, ONBOARDING, CROSS_SELL, UPSELL or LOYALTY.",
            ),
            col("status", "t.status", Text, false, "PLANNED, ACTIVE, COMPLETED or CANCELLED."),
            col("tracking_code", "t.tracking_code", Text, true, "The code that tracked links carry."),
            col("start_date", "t.start_date", Date, true, "First day."),
            col("end_date", "t.end_date", Date, true, "Last day."),
            col("budget", "t.budget_minor", Cents, true, "The planned spend, in `currency`."),
            col(
                "expected_revenue",
                "t.expected_revenue_minor",
                Cents,
                true,
                "The revenue forecast, in `currency`.",
            ),
            col("expected_leads", "t.expected_leads", Int, true, "The leads forecast."),
            col("currency", "t.currency", Text, false, "ISO 4217 code of the campaign's amounts."),
            col(
                "touchpoint_count",
                "t.touchpoint_count",
                Int,
                false,
                "Touchpoints that name the campaign.",
            ),
            CREATED,
            UPDATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "cost_lines",
        from: "campaign_costs t LEFT JOIN campaigns c ON c.id = t.campaign_id AND c.workspace_id = t.workspace_id",
        personal_while: None,
        changed: Some(CHANGED_COST_LINE),
        columns: &[
            col(
                "id",
                "t.id",
                Id("CampaignCost"),
                false,
                "The cost line's global ID (`CampaignCost`).",
            ),
            col(
                "campaign_id",
                "t.campaign_id",
                Id("Campaign"),
                false,
                "The campaign it is a cost of.",
            ),
            col(
                "category",
                "t.category",
                Text,
                false,
                "A key of the workspace's cost-category vocabulary.",
            ),
            col("amount", "t.amount_minor", Cents, false, "The cost, in `currency`."),
            col("currency", "c.currency", Text, false, "The campaign's currency."),
            col("incurred_on", "t.incurred_on", Date, false, "The day the cost was incurred."),
            col("note", "t.note", Text, true, "Free text."),
            CREATED,
            UPDATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "leads",
        from: "leads t LEFT JOIN funnel_stages s ON s.id = t.stage_id AND s.workspace_id = t.workspace_id",
        personal_while: Some("t.erased_at IS NULL"),
        changed: Some(CHANGED_LEAD),
        columns: &[
            col("id", "t.id", Id("Lead"), false, "The lead's global ID (`Lead`)."),
            personal("external_id", "t.external_id", Text, "The source system's ID."),
            col("account_id", "t.account_id", Id("Account"), true, "The lead's account."),
            personal("email", "t.email", Text, "E-mail address."),
            personal("first_name", "t.first_name", Text, "First name."),
            personal("last_name", "t.last_name", Text, "Last name."),
            personal("job_title", "t.job_title", Text, "Job title."),
            personal("decision_role", "t.decision_role", Text, "Role in buying decisions, free text."),
            col("industry", "t.industry", Text, true, "Industry."),
            col("company_size", "t.company_size", Text, true, "Company size band, e.g. 50-199."),
            col("country", "t.country", Text, true, "ISO 3166-1 alpha-2 country code."),
            personal("phone", "t.phone", Text, "Phone number."),
            personal("linkedin_url", "t.linkedin_url", Text, "LinkedIn profile."),
            personal("twitter_handle", "t.twitter_handle", Text, "Twitter/X handle."),
            personal("facebook_url", "t.facebook_url", Text, "Facebook profile."),
            personal("street", "t.street", Text, "Street address."),
            personal("postal_code", "t.postal_code", Text, "Postal code."),
            personal("city", "t.city", Text, "City."),
            col(
                "lifecycle_status",
                "t.lifecycle_status",
                Text,
                false,
                "LEAD, NEW_CUSTOMER or EXISTING_CUSTOMER.",
            ),
            col(
                "stage",
                "s.key",
                Text,
                false,
                "The funnel stage's key (LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER, NURTURE, DISQUALIFIED, ...).",
            ),
            col("owner_id", "t.owner_id", Id("User"), true, "The owning user."),
            personal("consents", "t.consents", Json, "Consent per channel, as JSON."),
            personal("custom_fields", "t.custom_fields", Json, "Custom fields, as a JSON object."),
            col(
                "email_bounced_at",
                "t.email_bounced_at",
                Time,
                true,
                "The latest bounce of the current e-mail address.",
            ),
            col("unsubscribed_at", "t.unsubscribed_at", Time, true, "The latest unsubscription."),
            col(
                "converted_at",
                "t.converted_at",
                Time,
                true,
                "When the lead first entered the MQL stage (kept when it moves on or back).",
            ),
            col("erased_at", "t.erased_at", Time, true, "When the lead's personal data were erased."),
            col(
                "merged_into_id",
                "t.merged_into_id",
                Id("Lead"),
                true,
                "The lead this one was merged into.",
            ),
            col(
                "first_touch_at",
                "t.first_touch_at",
                Time,
                true,
                "When the lead's earliest touchpoint occurred.",
            ),
            col(
                "first_touch_campaign_id",
                "t.first_touch_campaign_id",
                Id("Campaign"),
                true,
                "The campaign of the lead's first touchpoint.",
            ),
            CREATED,
            UPDATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "touchpoints",
        from: "touchpoints t",
        personal_while: None,
        changed: Some(CHANGED_TOUCHPOINT),
        columns: &[
            col("id", "t.id", Id("Touchpoint"), false, "The touchpoint's global ID (`Touchpoint`)."),
            col("external_id", "t.external_id", Text, true, "The source system's ID."),
            col(
                "idempotency_key",
                "t.idempotency_key",
                Text,
                true,
                "The key the touchpoint was recorded with.",
            ),
            col("lead_id", "t.lead_id", Id("Lead"), false, "The lead who interacted."),
            col("campaign_id", "t.campaign_id", Id("Campaign"), true, "The campaign, if any."),
            col(
                "touch_type",
                "t.touch_type",
                Text,
                false,
                "A key of the workspace's touchpoint-type vocabulary.",
            ),
            col("occurred_at", "t.occurred_at", Time, false, "When it happened (UTC)."),
            CREATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "stage_history",
        from: "lead_stage_history t \
               LEFT JOIN funnel_stages s ON s.id = t.to_stage_id AND s.workspace_id = t.workspace_id \
               LEFT JOIN funnel_stages f ON f.id = t.from_stage_id AND f.workspace_id = t.workspace_id",
        personal_while: None,
        changed: Some(CHANGED_STAGES),
        columns: &[
            col("id", "t.id", Id("StageChange"), false, "The change's ID (no node of the API)."),
            col("lead_id", "t.lead_id", Id("Lead"), false, "The lead that moved."),
            col(
                "from_stage",
                "f.key",
                Text,
                true,
                "The stage it left; NULL for the stage it was created in.",
            ),
            col("to_stage", "s.key", Text, false, "The stage it entered."),
            col("changed_at", "t.changed_at", Time, false, "When it entered `to_stage` (UTC)."),
            col(
                "actor",
                "t.actor",
                Text,
                false,
                "Who moved it: `api-key:<id>`, `scoring-model:<id>` or `import`.",
            ),
            col("reason", "t.reason", Text, true, "Why."),
            CREATED,
        ],
    },
    Table {
        name: "opportunities",
        from: "opportunities t",
        personal_while: None,
        changed: Some(CHANGED_OPPORTUNITY),
        columns: &[
            col("id", "t.id", Id("Opportunity"), false, "The deal's global ID (`Opportunity`)."),
            col("external_id", "t.external_id", Text, true, "The source system's ID (CRM)."),
            col("account_id", "t.account_id", Id("Account"), false, "The account the deal is with."),
            col("name", "t.name", Text, false, "The deal's name."),
            col("amount", "t.amount_minor", Cents, false, "The deal's amount, in `currency`."),
            col("currency", "t.currency", Text, false, "ISO 4217 code."),
            col("status", "t.status", Text, false, "OPEN, WON or LOST."),
            col("owner_id", "t.owner_id", Id("User"), true, "The owning user."),
            col(
                "expected_close_date",
                "t.expected_close_date",
                Date,
                true,
                "When the deal is expected to close.",
            ),
            col(
                "closed_at",
                "t.closed_at",
                Time,
                true,
                "When it was won or lost (UTC); NULL while OPEN.",
            ),
            CREATED,
            UPDATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "contacts",
        from: "opportunity_contacts t",
        personal_while: None,
        changed: Some(CHANGED_CONTACT),
        columns: &[
            col(
                "id",
                "t.id",
                Id("BuyingCenterMember"),
                false,
                "The member's ID (no node of the API).",
            ),
            col("opportunity_id", "t.opportunity_id", Id("Opportunity"), false, "The deal."),
            col("lead_id", "t.lead_id", Id("Lead"), false, "The contact, a lead."),
            col(
                "role",
                "t.role",
                Text,
                false,
                "The contact's role in the buying center (free text).",
            ),
            col(
                "is_primary",
                "t.is_primary",
                Bool,
                false,
                "The deal's primary contact (at most one per deal).",
            ),
            CREATED,
            col(
                "version",
                "t.version",
                Int,
                false,
                "The row's version: one more with every change the change feed reports (docs/changes.md).",
            ),
        ],
    },
    Table {
        name: "scores",
        from: "lead_scores t",
        personal_while: None,
        changed: None,
        columns: &[
            col("id", "t.id", Id("LeadScore"), false, "The score row's ID (no node of the API)."),
            col("model_id", "t.model_id", Id("ScoringModel"), false, "The scoring model."),
            col("lead_id", "t.lead_id", Id("Lead"), false, "The lead scored."),
            col(
                "profile_score",
                "CAST(t.profile_score AS BIGINT)",
                Int,
                false,
                "The profile (fit) score.",
            ),
            col("grade", "t.grade", Text, false, "The profile score's grade, A to D."),
            col(
                "activity_score",
                "t.activity_value",
                Float,
                false,
                "The activity score at `activity_at`; it halves every half-life of the model after it.",
            ),
            col("activity_at", "t.activity_at", Time, true, "The latest touch that earned points."),
            UPDATED,
        ],
    },
    Table {
        name: "attribution_credits",
        from: "attribution_credits t LEFT JOIN attribution_models m ON m.id = t.model_id AND m.workspace_id = t.workspace_id",
        personal_while: None,
        changed: Some(CHANGED_CREDITS),
        columns: &[
            col(
                "id",
                "t.id",
                Id("AttributionCredit"),
                false,
                "The credit's ID (no node of the API).",
            ),
            col(
                "model",
                "m.kind",
                Text,
                false,
                "The attribution model's kind (LINEAR, W_SHAPED, ...).",
            ),
            col("model_version", "CAST(m.version AS BIGINT)", Int, false, "The model's version."),
            col(
                "model_is_current",
                "m.is_current",
                Bool,
                false,
                "The version is the kind's current one.",
            ),
            col("opportunity_id", "t.opportunity_id", Id("Opportunity"), false, "The won deal."),
            col("closed_at", "t.closed_at", Time, false, "When the deal was won (UTC)."),
            col("currency", "t.currency", Text, false, "The deal's currency."),
            col(
                "lead_id",
                "t.lead_id",
                Id("Lead"),
                true,
                "The credited lead; NULL on the UNATTRIBUTED row.",
            ),
            col(
                "campaign_id",
                "t.campaign_id",
                Id("Campaign"),
                true,
                "The credited campaign; NULL for none.",
            ),
            col("touch_type", "t.touch_type", Text, true, "The credited touchpoints' type."),
            col(
                "touchpoint_id",
                "t.touchpoint_id",
                Id("Touchpoint"),
                true,
                "The first credited touchpoint on the deal's path.",
            ),
            col(
                "position",
                "CAST(t.position AS BIGINT)",
                Int,
                false,
                "That touchpoint's position on the path (0: the first touch).",
            ),
            col(
                "touches",
                "t.touches",
                Int,
                false,
                "The credited touches the row sums (0 on UNATTRIBUTED).",
            ),
            col("credit", "t.amount_minor", Cents, false, "The revenue credited, in `currency`."),
            col(
                "conversions",
                "t.conversion_micros",
                Micros,
                false,
                "The fraction of the deal credited.",
            ),
        ],
    },
];

/// A column's values, one per row of a page (`None` for NULL).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// IDs, cents, millionths and integers.
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Json(Vec<Option<serde_json::Value>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
}

impl Values {
    fn with_capacity(kind: Kind, n: usize) -> Self {
        match kind {
            Id(_) | Int | Cents | Micros => Values::Int(Vec::with_capacity(n)),
            Float => Values::Float(Vec::with_capacity(n)),
            Bool => Values::Bool(Vec::with_capacity(n)),
            Text => Values::Text(Vec::with_capacity(n)),
            Json => Values::Json(Vec::with_capacity(n)),
            Time => Values::Time(Vec::with_capacity(n)),
            Date => Values::Date(Vec::with_capacity(n)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::Json(v) => v.len(),
            Values::Time(v) => v.len(),
            Values::Date(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rows of one table, by column (in the table's column order).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: usize,
    /// The last row's ID: the next page starts after it.
    pub last_id: i64,
    pub columns: Vec<Values>,
}

/// The statement text of a page of `table`: `?` for the workspace, the last ID, (incremental)
/// the range of the change feed, and the limit.
pub fn page_sql(table: &Table, incremental: bool) -> String {
    let select: Vec<String> = table
        .columns
        .iter()
        .map(|c| match (c.personal, table.personal_while) {
            (true, Some(cond)) => format!("CASE WHEN {cond} THEN {} END", c.sql),
            _ => c.sql.to_owned(),
        })
        .collect();
    let changed = match (incremental, table.changed) {
        (true, Some(cond)) => format!(" AND {cond}"),
        _ => String::new(),
    };
    format!(
        "SELECT {} FROM {} WHERE t.workspace_id = ? AND t.id > ?{changed} ORDER BY t.id LIMIT ?",
        select.join(", "),
        table.from
    )
}

/// A range of the change feed, (after, up to]: what an incremental export selects by.
pub type Range = (i64, i64);

/// Up to `limit` rows of `table` in workspace `ws` after row `after`, by ID; `None` when none
/// is left.
pub async fn page(
    db: &impl ConnectionTrait,
    table: &Table,
    ws: i64,
    after: i64,
    limit: u64,
    since: Option<Range>,
) -> Result<Option<Page>, DbErr> {
    let incremental = since.is_some() && table.changed.is_some();
    let mut values: Vec<Value> = vec![ws.into(), after.into()];
    if let (true, Some((from, to))) = (incremental, since) {
        values.extend([from.into(), to.into()]);
    }
    values.push((limit as i64).into());
    let rows = db
        .query_all_raw(statement(db.get_database_backend(), &page_sql(table, incremental), values))
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<Values> = table.columns.iter().map(|c| Values::with_capacity(c.kind, rows.len())).collect();
    for (i, (column, values)) in table.columns.iter().zip(columns.iter_mut()).enumerate() {
        read_column(&rows, i, column.name, values)?;
    }
    let last_id = match columns.first() {
        Some(Values::Int(ids)) => ids.last().copied().flatten(),
        _ => None,
    }
    .ok_or_else(|| DbErr::Type(format!("{}: the first column is not the row's ID", table.name)))?;
    Ok(Some(Page {
        rows: rows.len(),
        last_id,
        columns,
    }))
}

/// Reads column `i` of every row into `into`.
fn read_column(rows: &[QueryResult], i: usize, name: &str, into: &mut Values) -> Result<(), DbErr> {
    fn read<T: Cell>(rows: &[QueryResult], i: usize, name: &str, into: &mut Vec<Option<T>>) -> Result<(), DbErr> {
        check_column::<Option<T>>(&rows[0], i, name)?;
        for row in rows {
            into.push(cell::<Option<T>>(row, i, name)?);
        }
        Ok(())
    }
    match into {
        Values::Int(v) => read(rows, i, name, v),
        Values::Float(v) => read(rows, i, name, v),
        Values::Bool(v) => read(rows, i, name, v),
        Values::Text(v) => read(rows, i, name, v),
        Values::Json(v) => read(rows, i, name, v),
        Values::Time(v) => read(rows, i, name, v),
        Values::Date(v) => read(rows, i, name, v),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tables_have_unique_snake_case_names_and_start_with_their_id() {
        let mut names = HashSet::new();
        for t in TABLES {
            assert!(names.insert(t.name), "{} twice", t.name);
            assert_eq!(t.columns[0].name, "id", "{}", t.name);
            assert_eq!(t.columns[0].sql, "t.id", "{}", t.name);
            assert!(matches!(t.columns[0].kind, Id(_)), "{}", t.name);
            let mut columns = HashSet::new();
            for c in t.columns {
                assert!(columns.insert(c.name), "{}.{} twice", t.name, c.name);
                assert!(
                    c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{}.{} is not snake_case",
                    t.name,
                    c.name
                );
                assert!(!c.personal || (c.nullable && t.personal_while.is_some()), "{}.{}", t.name, c.name);
            }
        }
    }

    /// Every field that erasing a lead blanks is exported as personal (NULL once erased), or not
    /// at all: a field added to `erase_personal` fails this test until the export knows it.
    #[test]
    fn what_erasure_blanks_is_personal_in_the_export() {
        use entity::lead;
        use sea_orm::{IdenStatic, Iterable, ModelTrait};
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let text = || Some("x".to_owned());
        let full = lead::Model {
            id: 1,
            workspace_id: 1,
            external_id: text(),
            account_id: Some(1),
            email: text(),
            first_name: text(),
            last_name: text(),
            job_title: text(),
            decision_role: text(),
            industry: text(),
            company_size: text(),
            country: text(),
            phone: text(),
            linkedin_url: text(),
            twitter_handle: text(),
            facebook_url: text(),
            street: text(),
            postal_code: text(),
            city: text(),
            lifecycle_status: "LEAD".into(),
            stage_id: 1,
            owner_id: Some(1),
            consents: serde_json::json!({ "EMAIL": true }),
            custom_fields: serde_json::json!({ "a": 1 }),
            email_bounced_at: Some(t),
            unsubscribed_at: Some(t),
            converted_at: Some(t),
            erased_at: None,
            merged_into_id: None,
            first_touch_at: Some(t),
            first_touch_campaign_id: Some(1),
            search_text: text(),
            created_at: t,
            updated_at: t,
            version: 1,
        };
        let mut erased = full.clone();
        crate::service::lead::erase_personal(&mut erased, t);
        let leads = Table::named("leads").unwrap();
        let exported: Vec<&str> = leads.columns.iter().map(|c| c.sql.trim_start_matches("t.")).collect();
        for column in lead::Column::iter() {
            let name = column.as_str();
            if full.get(column) == erased.get(column) || name == "erased_at" {
                continue;
            }
            let Some(i) = exported.iter().position(|&e| e == name) else {
                continue;
            };
            assert!(
                leads.columns[i].personal,
                "leads.{name} is blanked by erasure but exported as it is"
            );
        }
    }

    #[test]
    fn personal_columns_are_read_only_while_the_lead_is_not_erased() {
        let sql = page_sql(Table::named("leads").unwrap(), false);
        assert!(sql.contains("CASE WHEN t.erased_at IS NULL THEN t.email END"), "{sql}");
        assert!(sql.contains(", t.country,"), "{sql}");
        assert!(
            sql.ends_with("WHERE t.workspace_id = ? AND t.id > ? ORDER BY t.id LIMIT ?"),
            "{sql}"
        );
        // Incremental: the leads the change feed names in the range, two more parameters.
        let sql = page_sql(Table::named("leads").unwrap(), true);
        assert!(
            sql.ends_with(
                "WHERE t.workspace_id = ? AND t.id > ? AND t.id IN (SELECT c.entity_id FROM changes c WHERE \
                 c.workspace_id = t.workspace_id AND c.entity = 'LEAD' AND c.seq > ? AND c.seq <= ?) ORDER BY t.id LIMIT ?"
            ),
            "{sql}"
        );
    }
}
