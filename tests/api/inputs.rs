//! Every text input is checked before it reaches the database: NUL refused, strings bounded per
//! field, decimals in plain notation, dates zero-padded, dates and times within 1900-9999. Each
//! refusal is a BAD_USER_INPUT naming the field, and nothing is written.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code, user_errors};

/// Rows of the tables these tests write to, in one tuple, to compare before and after.
async fn rows(app: &TestApp) -> Vec<i64> {
    let db = &app.db.conn;
    let sql = "SELECT (SELECT COUNT(*) FROM leads), (SELECT COUNT(*) FROM campaigns), \
               (SELECT COUNT(*) FROM campaign_costs), (SELECT COUNT(*) FROM touchpoints), \
               (SELECT COUNT(*) FROM accounts)";
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    (0..5).map(|i| row.try_get_by_index::<i64>(i).unwrap()).collect()
}

/// Asserts that `resp` is refused with BAD_USER_INPUT whose message names `field` (dotted path).
fn assert_refused(resp: &Value, field: &str) {
    assert_eq!(error_code(resp), "BAD_USER_INPUT", "{resp:#}");
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(field), "{field} named in {message:?}");
    assert_eq!(resp["data"], Value::Null, "nothing ran: {resp:#}");
}

const UPSERT_LEAD: &str = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } userErrors { field code } } }";
const RECORD: &str =
    "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount userErrors { field code } } }";
const SEARCH: &str = "query($s: String) { leads(first: 5, filter: { search: $s }) { totalCount } }";
const ADD_COST: &str =
    "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) { cost { id } userErrors { field code } } }";

async fn a_nul_byte_is_refused_in_every_text_field_and_nothing_is_written(app: TestApp) {
    let admin = app.keys.admin.clone();
    app.lead("ada@example.com").await;
    let before = rows(&app).await;

    let resp = app
        .gql(
            &admin,
            UPSERT_LEAD,
            json!({ "input": { "email": "bob@example.com", "firstName": "Bo\u{0}b" } }),
        )
        .await;
    assert_refused(&resp, "input.firstName");
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!(["input", "firstName"]));

    // A literal in the query text, escaped as GraphQL allows.
    let q = r#"mutation { createCampaign(input: { name: "Spring\u0000", channel: "EMAIL", kind: ACQUISITION }) { campaign { id } } }"#;
    assert_refused(&app.gql(&admin, q, json!({})).await, "input.name");

    assert_refused(&app.gql(&admin, SEARCH, json!({ "s": "ad\u{0}a" })).await, "filter.search");

    let items = json!([
        { "leadEmail": "ada@example.com", "type": "PAGE_VIEW", "occurredAt": "2026-01-01T00:00:00Z", "idempotencyKey": "k1" },
        { "leadEmail": "ada@example.com", "type": "PAGE_VIEW", "occurredAt": "2026-01-02T00:00:00Z", "idempotencyKey": "k\u{0}2" },
    ]);
    let resp = app.gql(&admin, RECORD, json!({ "input": { "items": items } })).await;
    assert_refused(&resp, "input.items.1.idempotencyKey");
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        json!(["input", "items", "1", "idempotencyKey"])
    );

    // Inside JSON too, in a name as in a value.
    let custom = json!({ "input": { "email": "bob@example.com", "customFields": { "note\u{0}": "x" } } });
    assert_refused(&app.gql(&admin, UPSERT_LEAD, custom).await, "input.customFields");

    assert_eq!(rows(&app).await, before, "nothing written");
}

async fn strings_longer_than_their_field_allows_are_refused_and_the_longest_allowed_work(app: TestApp) {
    let admin = app.keys.admin.clone();
    app.lead("ada@example.com").await;
    let before = rows(&app).await;

    // SQLite refused this one as "LIKE or GLOB pattern too complex".
    assert_refused(&app.gql(&admin, SEARCH, json!({ "s": "a".repeat(60_000) })).await, "filter.search");
    // PostgreSQL refused this one as "index row requires 12032 bytes".
    let item = |key: String| json!({ "leadEmail": "ada@example.com", "type": "PAGE_VIEW", "occurredAt": "2026-01-01T00:00:00Z", "idempotencyKey": key });
    let resp = app
        .gql(&admin, RECORD, json!({ "input": { "items": [item("k".repeat(1 << 20))] } }))
        .await;
    assert_refused(&resp, "input.items.0.idempotencyKey");
    let resp = app
        .gql(
            &admin,
            UPSERT_LEAD,
            json!({ "input": { "email": "bob@example.com", "lastName": "x".repeat(201) } }),
        )
        .await;
    assert_refused(&resp, "input.lastName");
    assert_eq!(rows(&app).await, before, "nothing written");

    // The largest allowed, in characters (not bytes): four-byte characters fill 800 bytes of a key.
    let found = data_of(app.gql(&admin, SEARCH, json!({ "s": "a".repeat(200) })).await);
    assert_eq!(found["leads"]["totalCount"], 0);
    let key = "🔑".repeat(200);
    let recorded = data_of(app.gql(&admin, RECORD, json!({ "input": { "items": [item(key.clone())] } })).await);
    assert_eq!(recorded["recordTouchpoints"]["recordedCount"], 1, "{recorded:#}");
    let again = data_of(app.gql(&admin, RECORD, json!({ "input": { "items": [item(key)] } })).await);
    assert_eq!(again["recordTouchpoints"]["recordedCount"], 0, "the same key is recorded once");
    let lead = json!({ "input": { "email": "bob@example.com", "lastName": "ß".repeat(200), "externalId": "e".repeat(200) } });
    let upserted = data_of(app.gql(&admin, UPSERT_LEAD, lead).await);
    assert_eq!(upserted["upsertLead"]["userErrors"], json!([]));
}

async fn decimals_dates_and_times_in_other_notations_or_out_of_range_are_refused(app: TestApp) {
    let admin = app.keys.admin.clone();
    let campaign = app.simple_campaign("Spring").await;
    let lead = app.lead("ada@example.com").await;
    let before = rows(&app).await;

    let cost =
        |amount: &str, on: &str| json!({ "input": { "campaignId": campaign, "category": "MEDIA", "amount": amount, "incurredOn": on } });
    for amount in ["1e3", "1E2", "+1", " 1", "1.", "12345678901234567890.123456789"] {
        let resp = app.gql(&admin, ADD_COST, cost(amount, "2025-01-01")).await;
        assert_refused(&resp, "input.amount");
    }
    for on in ["2025-1-1", "0000-01-01", "1899-12-31", "10000-01-01"] {
        let resp = app.gql(&admin, ADD_COST, cost("10.00", on)).await;
        assert_refused(&resp, "input.incurredOn");
    }
    let touch = |at: &str| json!({ "input": { "items": [{ "leadId": lead, "type": "PAGE_VIEW", "occurredAt": at }] } });
    for at in ["0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "1900-01-01T00:30:00+01:00"] {
        let resp = app.gql(&admin, RECORD, touch(at)).await;
        assert_refused(&resp, "input.items.0.occurredAt");
    }
    assert_eq!(rows(&app).await, before, "nothing written");

    // The edges that are allowed are stored and read back as given, on both databases.
    for (amount, on) in [("-0.50", "1900-01-01"), ("1000", "9999-12-31")] {
        let added = data_of(app.gql(&admin, ADD_COST, cost(amount, on)).await);
        assert_eq!(added["addCampaignCost"]["userErrors"], json!([]), "{added:#}");
    }
    for at in ["1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        let recorded = data_of(app.gql(&admin, RECORD, touch(at)).await);
        assert_eq!(recorded["recordTouchpoints"]["recordedCount"], 1, "{recorded:#}");
    }
    let read = data_of(
        app.gql(
            &admin,
            "query($id: ID!) { lead(id: $id) { touchpoints(first: 5) { nodes { occurredAt } } } }",
            json!({ "id": lead }),
        )
        .await,
    );
    let mut times: Vec<&str> = read["lead"]["touchpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["occurredAt"].as_str().unwrap())
        .collect();
    times.sort();
    assert_eq!(times, ["1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]);
}

/// Decimals inside strings (persona RANGE values) follow the scalar's notation; as userErrors,
/// as the mutation reports its other value problems.
async fn persona_ranges_and_the_export_time_follow_the_same_notations(app: TestApp) {
    let q = "mutation($input: CreatePersonaInput!) { createPersona(input: $input) { persona { id } userErrors { field message code } } }";
    let persona = |lo: &str| {
        json!({ "input": { "name": "Big", "criteria": [
            { "attribute": "employeeCount", "operator": "RANGE", "values": [lo, null], "weight": 10 },
        ] } })
    };
    for lo in ["1e3", "+50"] {
        let data = data_of(app.gql(&app.keys.admin, q, persona(lo)).await);
        assert_eq!(
            user_errors(&data["createPersona"]),
            [("input.criteria.0.values".to_owned(), "INVALID".to_owned())],
            "{lo}"
        );
    }
    let data = data_of(app.gql(&app.keys.admin, q, persona("1000")).await);
    assert_eq!(data["createPersona"]["userErrors"], json!([]));

    let resp = app
        .client
        .get(app.url("/export/leads.csv?asOf=0000-01-01T00:00:00Z"))
        .bearer_auth(&app.keys.analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().starts_with("asOf"), "{body:#}");
}

both!(a_nul_byte_is_refused_in_every_text_field_and_nothing_is_written);
both!(strings_longer_than_their_field_allows_are_refused_and_the_longest_allowed_work);
both!(decimals_dates_and_times_in_other_notations_or_out_of_range_are_refused);
both!(persona_ranges_and_the_export_time_follow_the_same_notations);
