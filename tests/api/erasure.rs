//! GDPR erasure: personal data goes, the anonymous stub and its touchpoints stay.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of};

async fn erased_lead_keeps_its_touchpoints(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let ada = id_of(
        &app.upsert_lead(json!({
            "email": "ada@initech.test", "externalId": "crm-ada", "firstName": "Ada", "lastName": "Lovelace", "phone": "+49 30 1",
            "jobTitle": "CTO", "decisionRole": "Decision maker", "country": "DE", "industry": "Software", "accountId": account,
            "consents": { "EMAIL": true }, "customFields": { "birthday": "12-10" },
        }))
        .await,
    );
    let bob = app.lead("bob@initech.test").await;
    let campaign = app.simple_campaign("Newsletter").await;
    let items: Vec<Value> = (1..=3)
        .map(|d| json!({ "leadId": ada, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": format!("2026-03-0{d}T09:00:00Z") }))
        .chain([json!({ "leadId": bob, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-03-01T09:00:00Z" })])
        .collect();
    assert_eq!(app.record(json!(items)).await["recordedCount"], 4);

    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id email firstName lastName name phone jobTitle decisionRole consents customFields erasedAt country } userErrors { code } } }";
    let payload = app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": ada })).await;
    let stub = &payload["lead"];
    assert_eq!(stub["id"], ada.as_str());
    for field in ["email", "firstName", "lastName", "name", "phone", "jobTitle", "decisionRole"] {
        assert_eq!(stub[field], Value::Null, "{field} is erased");
    }
    assert_eq!((&stub["consents"], &stub["customFields"]), (&json!({}), &json!({})));
    let erased_at = stub["erasedAt"].as_str().expect("erasedAt is set");
    let erased_at = chrono::DateTime::parse_from_rfc3339(erased_at).unwrap();
    assert!((chrono::Utc::now() - erased_at.to_utc()).num_seconds().abs() < 60);

    // The stub is still found by ID, with its touchpoints.
    let q = "query($id: ID!, $c: ID!) {
      lead(id: $id) { email erasedAt touchpoints(first: 10) { totalCount } }
      campaign(id: $c) { touchpointCount touchpoints(first: 10) { totalCount nodes { lead { id email } } } }
      touchpoints(first: 10, filter: { campaignId: $c }) { totalCount }
      byLead: touchpoints(first: 10, filter: { leadId: $id }) { totalCount }
      leadByEmail(email: \"ada@initech.test\") { id }
      leadByExternalId(externalId: \"crm-ada\") { id erasedAt }
      leads(first: 10) { totalCount nodes { id } }
      search: leads(first: 10, filter: { search: \"ada\" }) { totalCount }
      account(id: \"ACCOUNT\") { leads(first: 10) { totalCount nodes { id } } }
    }"
    .replace("ACCOUNT", &account);
    let data = app.data(&app.keys.analyst, &q, json!({ "id": ada, "c": campaign })).await;
    assert_eq!(data["lead"]["email"], Value::Null);
    assert!(data["lead"]["erasedAt"].is_string());
    assert_eq!(data["lead"]["touchpoints"]["totalCount"], 3);
    assert_eq!(data["campaign"]["touchpointCount"], 4, "the campaign's count is unchanged");
    assert_eq!(data["campaign"]["touchpoints"]["totalCount"], 4);
    assert_eq!(data["touchpoints"]["totalCount"], 4);
    assert_eq!(data["byLead"]["totalCount"], 3);
    let stubs = data["campaign"]["touchpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lead"]["id"] == ada.as_str())
        .count();
    assert_eq!(stubs, 3, "the touchpoints still point at the stub");
    assert_eq!(data["leadByEmail"], Value::Null, "the e-mail is gone");
    assert_eq!(data["leads"]["totalCount"], 1, "lists leave erased leads out");
    assert_eq!(data["leads"]["nodes"], json!([{ "id": bob }]));
    assert_eq!(data["search"]["totalCount"], 0);
    assert_eq!(data["account"]["leads"]["totalCount"], 0);
    assert_eq!(data["account"]["leads"]["nodes"], json!([]));
    // The source system's ID goes too, so a later sync cannot find (or refill) the stub.
    assert_eq!(data["leadByExternalId"], Value::Null);

    // An erased lead cannot be erased, edited or given touchpoints again.
    let resp = app.gql(&app.keys.admin, erase, json!({ "id": ada })).await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
    let update = "mutation($id: ID!) { updateLead(input: { id: $id, firstName: \"Ada\" }) { lead { id } } }";
    let resp = app.gql(&app.keys.admin, update, json!({ "id": ada })).await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
    let payload = app
        .record(json!([{ "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-05T09:00:00Z" }]))
        .await;
    assert_eq!(
        crate::helpers::user_errors(&payload),
        [("input.items.0.leadId".to_owned(), "NOT_FOUND".to_owned())]
    );

    // The e-mail is free again: the same person signing up anew is a new lead.
    let fresh = app.upsert_lead(json!({ "email": "ada@initech.test" })).await;
    assert_ne!(id_of(&fresh), ada);
}
both!(erased_lead_keeps_its_touchpoints);

async fn an_upsert_does_not_bring_personal_data_back(app: TestApp) {
    let ada = id_of(
        &app.upsert_lead(json!({ "email": "ada@initech.test", "externalId": "crm-ada", "firstName": "Ada" }))
            .await,
    );
    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { erasedAt } userErrors { code } } }";
    app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": ada })).await;

    // The CRM syncs the contact again, with its external ID.
    let upsert =
        "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { created lead { id email erasedAt } userErrors { field code } } }";
    let input = json!({ "externalId": "crm-ada", "email": "ada@initech.test", "firstName": "Ada", "phone": "+49 30 1" });
    let data = app.data(&app.keys.admin, upsert, json!({ "input": input })).await;
    let payload = &data["upsertLead"];
    if payload["userErrors"] == json!([]) {
        assert_ne!(id_of(&payload["lead"]), ada, "the erased stub is not filled again: {payload}");
        assert_eq!(payload["lead"]["erasedAt"], Value::Null);
    }
    let q = "query($id: ID!) { lead(id: $id) { email firstName phone erasedAt } }";
    let data = app.data(&app.keys.admin, q, json!({ "id": ada })).await;
    assert_eq!(data["lead"]["email"], Value::Null);
    assert_eq!(data["lead"]["firstName"], Value::Null);
    assert_eq!(data["lead"]["phone"], Value::Null);
    assert!(data["lead"]["erasedAt"].is_string());
}
both!(an_upsert_does_not_bring_personal_data_back);

/// The bytes of every file of the SQLite database at `db` (the file, its log and shared memory).
fn database_bytes(db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let path = format!("{}{suffix}", db.display());
            std::fs::read(&path).ok().map(|bytes| (path, bytes))
        })
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Erasure leaves no copy of the e-mail in a SQLite file database: not in the free space of its
/// pages (secure_delete) and not in older page versions in its write-ahead log (truncated).
#[tokio::test]
async fn an_erased_email_leaves_no_bytes_in_the_sqlite_files() {
    let dir = crate::helpers::scratch_dir("erasure");
    let app = TestApp::spawn_sqlite_file(&dir).await;
    let db = dir.join("closedloop.db");
    let email = format!("erase-me-{}@initech.test", std::process::id());
    let ada = id_of(&app.upsert_lead(json!({ "email": email, "firstName": "Ada" })).await);
    // More versions of the row, in the log and (once checkpointed) in the file.
    for title in ["CTO", "CEO", "Founder"] {
        let q = "mutation($id: ID!, $t: String) { updateLead(input: { id: $id, jobTitle: $t }) { lead { id } } }";
        app.data(&app.keys.admin, q, json!({ "id": ada, "t": title })).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        database_bytes(&db).iter().any(|(_, bytes)| holds(bytes, &email)),
        "the e-mail is stored before the erasure"
    );

    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { email } userErrors { code } } }";
    let payload = app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": ada })).await;
    assert_eq!(payload["lead"]["email"], Value::Null);
    for (path, bytes) in database_bytes(&db) {
        assert!(!holds(&bytes, &email), "{path} still holds the erased e-mail");
    }
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn an_edit_at_the_same_time_does_not_bring_personal_data_back(app: TestApp) {
    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id } userErrors { code } } }";
    let update = "mutation($id: ID!) { updateLead(input: { id: $id, firstName: \"Grace\", phone: \"+1 555\" }) { lead { id } userErrors { code } } }";
    let upsert = "mutation($e: String!) { upsertLead(input: { email: $e, lastName: \"Hopper\" }) { lead { id } userErrors { code } } }";
    for round in 0..8 {
        let email = format!("grace{round}@navy.test");
        let id = id_of(&app.upsert_lead(json!({ "email": email, "firstName": "G" })).await);
        let (_, _, _) = tokio::join!(
            app.gql(&app.keys.sales, update, json!({ "id": id })),
            app.gql(&app.keys.admin, erase, json!({ "id": id })),
            app.gql(&app.keys.marketing, upsert, json!({ "e": email })),
        );
        let q = "query($id: ID!) { lead(id: $id) { email firstName lastName phone erasedAt } }";
        let lead = app.data(&app.keys.admin, q, json!({ "id": id })).await["lead"].clone();
        assert!(lead["erasedAt"].is_string(), "{lead}");
        for field in ["email", "firstName", "lastName", "phone"] {
            assert_eq!(lead[field], Value::Null, "round {round}: {field} came back: {lead}");
        }
    }
}
both!(an_edit_at_the_same_time_does_not_bring_personal_data_back);
