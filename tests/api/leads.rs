//! Leads: every filter of `leads`, lookups, and partial updates.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, user_errors};

/// The e-mails of the leads matching `filter`, by id; checks that totalCount agrees.
async fn emails(app: &TestApp, filter: Value) -> Vec<String> {
    let q = "query($f: LeadFilterInput) { leads(filter: $f, first: 100) { totalCount nodes { email } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
    let nodes = data["leads"]["nodes"].as_array().unwrap();
    assert_eq!(data["leads"]["totalCount"], nodes.len(), "totalCount of {filter}");
    nodes.iter().map(|n| n["email"].as_str().unwrap().to_owned()).collect()
}

struct Fixture {
    owner: String,
    account1: String,
    account2: String,
}

/// ada: DE Machinery MQL LEAD owner account1 2026-01-10
/// bob: AT Construction SQL NEW_CUSTOMER account2 2026-02-10
/// carla: de (DE) Machinery LEAD EXISTING_CUSTOMER owner 2026-03-10
/// dora_explorer: NURTURE LEAD account1 2026-04-10
async fn fixture(app: &TestApp) -> Fixture {
    let owner = app.user("Sam Seller", "sam@acme.test").await;
    let account1 = app.account(json!({ "name": "Lovelace Machines" })).await;
    let account2 = app.account(json!({ "name": "Builder Bros" })).await;
    let leads = [
        json!({ "email": "ada@lovelace.dev", "firstName": "Ada", "lastName": "Lovelace", "country": "DE", "industry": "Machinery",
                "stage": "MQL", "status": "LEAD", "ownerId": owner, "accountId": account1, "createdAt": "2026-01-10T00:00:00Z" }),
        json!({ "email": "bob@example.com", "firstName": "Bob", "lastName": "Builder", "country": "AT", "industry": "Construction",
                "stage": "SQL", "status": "NEW_CUSTOMER", "accountId": account2, "createdAt": "2026-02-10T00:00:00Z" }),
        json!({ "email": "carla@example.com", "firstName": "Carla", "lastName": "Adams", "country": "de", "industry": "Machinery",
                "status": "EXISTING_CUSTOMER", "ownerId": owner, "createdAt": "2026-03-10T00:00:00Z" }),
        json!({ "email": "dora_explorer@example.com", "firstName": "Dora", "stage": "nurture", "accountId": account1,
                "createdAt": "2026-04-10T00:00:00Z" }),
    ];
    for input in leads {
        app.upsert_lead(input).await;
    }
    Fixture { owner, account1, account2 }
}

const ADA: &str = "ada@lovelace.dev";
const BOB: &str = "bob@example.com";
const CARLA: &str = "carla@example.com";
const DORA: &str = "dora_explorer@example.com";

async fn filters_by_stage_status_owner_and_account(app: TestApp) {
    let f = fixture(&app).await;
    assert_eq!(emails(&app, json!(null)).await, [ADA, BOB, CARLA, DORA]);
    assert_eq!(emails(&app, json!({})).await, [ADA, BOB, CARLA, DORA]);

    assert_eq!(emails(&app, json!({ "stage": ["MQL", "SQL"] })).await, [ADA, BOB]);
    assert_eq!(emails(&app, json!({ "stage": ["mql"] })).await, [ADA]);
    assert_eq!(emails(&app, json!({ "stage": ["LEAD"] })).await, [CARLA]);
    assert_eq!(emails(&app, json!({ "stage": ["NURTURE"] })).await, [DORA]);
    assert!(emails(&app, json!({ "stage": ["CUSTOMER"] })).await.is_empty());
    // A key the funnel does not have is refused (tests/api/filters.rs), not an empty list.

    assert_eq!(emails(&app, json!({ "status": ["LEAD"] })).await, [ADA, DORA]);
    assert_eq!(
        emails(&app, json!({ "status": ["NEW_CUSTOMER", "EXISTING_CUSTOMER"] })).await,
        [BOB, CARLA]
    );

    assert_eq!(emails(&app, json!({ "ownerId": f.owner })).await, [ADA, CARLA]);
    assert_eq!(emails(&app, json!({ "accountId": f.account1 })).await, [ADA, DORA]);
    assert_eq!(emails(&app, json!({ "accountId": f.account2 })).await, [BOB]);
    // An ID of another type, or no ID at all, matches nothing rather than failing.
    assert!(emails(&app, json!({ "accountId": f.owner })).await.is_empty());
    assert!(emails(&app, json!({ "ownerId": "garbage" })).await.is_empty());

    // Filters combine with AND.
    assert_eq!(
        emails(&app, json!({ "status": ["LEAD"], "accountId": f.account1, "stage": ["NURTURE"] })).await,
        [DORA]
    );
    assert_eq!(emails(&app, json!({ "ownerId": f.owner, "status": ["LEAD"] })).await, [ADA]);

    // The lead's own view agrees with the filters.
    let q = "{ leads(first: 10) { nodes { email stage { key } status owner { name } account { name } } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(
        data["leads"]["nodes"][0],
        json!({ "email": ADA, "stage": { "key": "MQL" }, "status": "LEAD", "owner": { "name": "Sam Seller" }, "account": { "name": "Lovelace Machines" } })
    );
    assert_eq!(
        data["leads"]["nodes"][2],
        json!({ "email": CARLA, "stage": { "key": "LEAD" }, "status": "EXISTING_CUSTOMER", "owner": { "name": "Sam Seller" }, "account": null })
    );
}
both!(filters_by_stage_status_owner_and_account);

async fn filters_by_country_industry_and_search(app: TestApp) {
    fixture(&app).await;
    assert_eq!(emails(&app, json!({ "country": ["DE"] })).await, [ADA, CARLA]);
    assert_eq!(emails(&app, json!({ "country": ["de", " at "] })).await, [ADA, BOB, CARLA]);
    assert!(emails(&app, json!({ "country": ["FR"] })).await.is_empty());
    assert_eq!(emails(&app, json!({ "industry": ["Machinery"] })).await, [ADA, CARLA]);
    assert_eq!(
        emails(&app, json!({ "industry": ["Construction", "Machinery"] })).await,
        [ADA, BOB, CARLA]
    );
    assert_eq!(
        emails(&app, json!({ "country": ["DE"], "industry": ["Construction"] })).await,
        Vec::<String>::new()
    );

    // Case-insensitive, in the e-mail, first or last name.
    assert_eq!(emails(&app, json!({ "search": "ADA" })).await, [ADA, CARLA], "ada@..., Ada, Adams");
    assert_eq!(emails(&app, json!({ "search": "builder" })).await, [BOB]);
    assert_eq!(emails(&app, json!({ "search": "dora" })).await, [DORA]);
    assert_eq!(emails(&app, json!({ "search": "example.com" })).await, [BOB, CARLA, DORA]);
    assert_eq!(emails(&app, json!({ "search": "  lovelace " })).await, [ADA]);
    // LIKE wildcards in the text are literal characters.
    assert_eq!(emails(&app, json!({ "search": "_" })).await, [DORA]);
    assert!(emails(&app, json!({ "search": "%" })).await.is_empty());
    assert!(emails(&app, json!({ "search": "nobody" })).await.is_empty());
    assert_eq!(emails(&app, json!({ "search": "a", "country": ["AT"] })).await, [BOB]);
}
both!(filters_by_country_industry_and_search);

async fn filters_by_created_and_updated_time(app: TestApp) {
    fixture(&app).await;
    let range = |from: Option<&str>, to: Option<&str>| json!({ "createdAt": { "from": from, "to": to } });
    assert_eq!(
        emails(&app, range(Some("2026-02-01T00:00:00Z"), Some("2026-04-01T00:00:00Z"))).await,
        [BOB, CARLA]
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(emails(&app, range(Some("2026-03-10T00:00:00Z"), None)).await, [CARLA, DORA]);
    assert_eq!(emails(&app, range(None, Some("2026-03-10T00:00:00Z"))).await, [ADA, BOB]);
    // Offsets are converted to UTC: 01:00+01:00 is midnight UTC.
    assert_eq!(
        emails(&app, range(Some("2026-03-10T01:00:00+01:00"), Some("2026-03-10T00:00:01Z"))).await,
        [CARLA]
    );
    assert!(emails(&app, range(Some("2027-01-01T00:00:00Z"), None)).await.is_empty());

    let q = "query($e: String!) { leadByEmail(email: $e) { id updatedAt } }";
    let dora = app.data(&app.keys.admin, q, json!({ "e": DORA })).await["leadByEmail"].clone();
    let since = dora["updatedAt"].as_str().unwrap().to_owned();
    assert_eq!(
        emails(&app, json!({ "updatedSince": since })).await,
        [DORA],
        "the last lead written"
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let bob = app.data(&app.keys.admin, q, json!({ "e": BOB })).await["leadByEmail"].clone();
    let update =
        "mutation($id: ID!) { updateLead(input: { id: $id, jobTitle: \"Site manager\" }) { lead { updatedAt } userErrors { code } } }";
    let payload = app
        .mutate(&app.keys.sales, "updateLead", update, json!({ "id": id_of(&bob) }))
        .await;
    let bob_updated = payload["lead"]["updatedAt"].as_str().unwrap().to_owned();
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    assert!(t(&bob_updated) > t(&since), "{bob_updated} after {since}");
    assert_eq!(emails(&app, json!({ "updatedSince": since })).await, [BOB, DORA]);
    assert_eq!(emails(&app, json!({ "updatedSince": bob_updated })).await, [BOB]);
    assert_eq!(
        emails(
            &app,
            json!({ "updatedSince": since, "createdAt": { "to": "2026-03-01T00:00:00Z" } })
        )
        .await,
        [BOB]
    );
}
both!(filters_by_created_and_updated_time);

async fn lookups_by_id_email_and_external_id(app: TestApp) {
    let lead = app
        .upsert_lead(json!({ "email": "Ada@Lovelace.DEV", "externalId": "crm-1", "firstName": "Ada", "lastName": "Lovelace" }))
        .await;
    assert_eq!(lead["email"], "ada@lovelace.dev", "e-mails are stored lower-cased");
    let id = id_of(&lead);
    let q = "query($id: ID!, $e: String!, $x: String!) { lead(id: $id) { id name } leadByEmail(email: $e) { id } leadByExternalId(externalId: $x) { id externalId } }";
    let data = app
        .data(&app.keys.analyst, q, json!({ "id": id, "e": "  ADA@lovelace.dev ", "x": "crm-1" }))
        .await;
    assert_eq!(
        data,
        json!({
            "lead": { "id": id, "name": "Ada Lovelace" },
            "leadByEmail": { "id": id },
            "leadByExternalId": { "id": id, "externalId": "crm-1" },
        })
    );
    let data = app
        .data(
            &app.keys.analyst,
            q,
            json!({ "id": crate::helpers::global_id("Lead", 999_999), "e": "nobody@example.com", "x": "crm-2" }),
        )
        .await;
    assert_eq!(data, json!({ "lead": null, "leadByEmail": null, "leadByExternalId": null }));
}
both!(lookups_by_id_email_and_external_id);

async fn update_lead_changes_only_the_given_fields(app: TestApp) {
    let account = app.account(json!({ "name": "Lovelace Machines" })).await;
    let lead = app
        .upsert_lead(json!({
            "email": "ada@lovelace.dev", "firstName": "Ada", "lastName": "Lovelace", "jobTitle": "Engineer",
            "phone": "+49 30 123", "accountId": account, "consents": { "EMAIL": true, "PHONE": false },
            "customFields": { "shoeSize": 38 },
        }))
        .await;
    let id = id_of(&lead);
    let update = "mutation($input: UpdateLeadInput!) { updateLead(input: $input) { lead { email firstName lastName jobTitle phone country consents customFields account { name } updatedAt } userErrors { field code } } }";

    // Absent fields stay, null clears, maps merge (null removes a key).
    let payload = app
        .mutate(
            &app.keys.marketing,
            "updateLead",
            update,
            json!({ "input": { "id": id, "jobTitle": "Chief engineer", "phone": null, "country": "gb",
                               "consents": { "PHONE": null, "SMS": true }, "customFields": { "team": "R&D" } } }),
        )
        .await;
    let l = &payload["lead"];
    assert_eq!(l["email"], "ada@lovelace.dev");
    assert_eq!(l["firstName"], "Ada");
    assert_eq!(l["lastName"], "Lovelace");
    assert_eq!(l["jobTitle"], "Chief engineer");
    assert_eq!(l["phone"], Value::Null);
    assert_eq!(l["country"], "GB");
    assert_eq!(l["consents"], json!({ "EMAIL": true, "SMS": true }));
    assert_eq!(l["customFields"], json!({ "shoeSize": 38, "team": "R&D" }));
    assert_eq!(l["account"], json!({ "name": "Lovelace Machines" }));

    // Nothing to change: updatedAt stays.
    let again = app
        .mutate(
            &app.keys.marketing,
            "updateLead",
            update,
            json!({ "input": { "id": id, "jobTitle": "Chief engineer" } }),
        )
        .await;
    assert_eq!(again["lead"]["updatedAt"], l["updatedAt"]);

    // What the end user can fix comes back as userErrors, and nothing is written.
    app.lead("bob@example.com").await;
    let data = app
        .data(
            &app.keys.marketing,
            update,
            json!({ "input": { "id": id, "email": "not an e-mail", "country": "Germany", "accountId": crate::helpers::global_id("Account", 999_999) } }),
        )
        .await;
    let mut errors = user_errors(&data["updateLead"]);
    errors.sort();
    assert_eq!(
        errors,
        [
            ("input.accountId".to_owned(), "NOT_FOUND".to_owned()),
            ("input.country".to_owned(), "INVALID".to_owned()),
            ("input.email".to_owned(), "INVALID".to_owned()),
        ]
    );
    assert_eq!(data["updateLead"]["lead"], Value::Null);
    let data = app
        .data(
            &app.keys.marketing,
            update,
            json!({ "input": { "id": id, "email": "BOB@example.com" } }),
        )
        .await;
    assert_eq!(user_errors(&data["updateLead"]), [("input.email".to_owned(), "TAKEN".to_owned())]);
    let q = "query($id: ID!) { lead(id: $id) { email country } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": id })).await;
    assert_eq!(data["lead"], json!({ "email": "ada@lovelace.dev", "country": "GB" }));

    // An unknown lead is the caller's mistake.
    let resp = app
        .gql(
            &app.keys.marketing,
            update,
            json!({ "input": { "id": crate::helpers::global_id("Lead", 999_999), "firstName": "X" } }),
        )
        .await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
}
both!(update_lead_changes_only_the_given_fields);

async fn upsert_lead_reports_fixable_input_as_user_errors(app: TestApp) {
    let q = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } created userErrors { field code } } }";
    // Each mistake is named at its field (an invalid e-mail may also leave nothing to match on).
    let cases = [
        (json!({ "firstName": "Anonymous" }), "input", "REQUIRED"),
        (json!({ "email": "no-at-sign" }), "input.email", "INVALID"),
        (json!({ "email": "ok@example.com", "stage": "NOPE" }), "input.stage", "NOT_FOUND"),
        (json!({ "email": "ok@example.com", "country": "DEU" }), "input.country", "INVALID"),
    ];
    for (input, field, code) in cases {
        let data = app.data(&app.keys.admin, q, json!({ "input": input })).await;
        let payload = &data["upsertLead"];
        let errors = user_errors(payload);
        assert!(errors.contains(&(field.to_owned(), code.to_owned())), "{input}: {errors:?}");
        assert_eq!(payload["lead"], Value::Null);
        assert_eq!(payload["created"], false);
    }
    let data = app.data(&app.keys.admin, "{ leads(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(data["leads"]["totalCount"], 0);
}
both!(upsert_lead_reports_fixable_input_as_user_errors);

async fn search_folds_case_beyond_ascii(app: TestApp) {
    for (email, first, last) in [
        ("oe@example.com", "Özlem", "Özdemir"),
        ("ae@example.com", "Ärne", "Ärztekammer"),
        ("plain@example.com", "Uwe", "Mueller"),
    ] {
        app.upsert_lead(json!({ "email": email, "firstName": first, "lastName": last }))
            .await;
    }
    // "Case-insensitive": a user typing in lower or upper case finds the same leads.
    assert_eq!(emails(&app, json!({ "search": "Özdemir" })).await, ["oe@example.com"]);
    assert_eq!(emails(&app, json!({ "search": "özdemir" })).await, ["oe@example.com"]);
    assert_eq!(emails(&app, json!({ "search": "ÄRZTE" })).await, ["ae@example.com"]);
}
both!(search_folds_case_beyond_ascii);

async fn a_lead_keeps_something_to_match_on(app: TestApp) {
    let plain = app.lead("ada@example.com").await;
    let synced = id_of(
        &app.upsert_lead(json!({ "email": "bob@example.com", "externalId": "crm-bob" }))
            .await,
    );
    let q = "mutation($id: ID!) { updateLead(input: { id: $id, email: null }) { lead { email externalId } userErrors { field code } } }";
    let data = app.data(&app.keys.sales, q, json!({ "id": plain })).await;
    assert_eq!(
        user_errors(&data["updateLead"]),
        [("input.email".to_owned(), "REQUIRED".to_owned())]
    );
    // A lead with an external ID may lose its e-mail.
    let payload = app.mutate(&app.keys.sales, "updateLead", q, json!({ "id": synced })).await;
    assert_eq!(payload["lead"], json!({ "email": null, "externalId": "crm-bob" }));
}
both!(a_lead_keeps_something_to_match_on);
