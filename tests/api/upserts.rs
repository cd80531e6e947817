//! Upserts are idempotent: the same input twice gives the same object and changes nothing.
use serde_json::json;

use crate::helpers::{TestApp, id_of, user_errors};

const UPSERT_LEAD: &str = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) {
  created lead { id email externalId firstName jobTitle createdAt updatedAt stage { key } } userErrors { field code } } }";

async fn upsert_lead_is_idempotent(app: TestApp) {
    let input = json!({ "email": "ada@example.com", "firstName": "Ada", "jobTitle": "Engineer", "stage": "MQL" });
    let first = app
        .mutate(&app.keys.marketing, "upsertLead", UPSERT_LEAD, json!({ "input": input }))
        .await;
    assert_eq!(first["created"], true);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = app
        .mutate(&app.keys.marketing, "upsertLead", UPSERT_LEAD, json!({ "input": input }))
        .await;
    assert_eq!(second["created"], false);
    assert_eq!(second["lead"], first["lead"], "same lead, same updatedAt");

    // Matched by e-mail case-insensitively; only a real change moves updatedAt; the stage stays.
    let changed = json!({ "email": "ADA@Example.com", "jobTitle": "Chief engineer", "stage": "SQL" });
    let third = app
        .mutate(&app.keys.marketing, "upsertLead", UPSERT_LEAD, json!({ "input": changed }))
        .await;
    assert_eq!(
        (third["created"].as_bool(), id_of(&third["lead"])),
        (Some(false), id_of(&first["lead"]))
    );
    assert_eq!(third["lead"]["jobTitle"], "Chief engineer");
    assert_eq!(third["lead"]["firstName"], "Ada");
    assert_eq!(third["lead"]["stage"]["key"], "MQL", "existing leads keep their stage");
    assert_eq!(third["lead"]["createdAt"], first["lead"]["createdAt"]);
    assert_ne!(third["lead"]["updatedAt"], first["lead"]["updatedAt"]);

    // The externalId is matched first, and attached to the lead found by e-mail.
    let with_ext = json!({ "email": "ada@example.com", "externalId": "crm-7" });
    let fourth = app
        .mutate(&app.keys.marketing, "upsertLead", UPSERT_LEAD, json!({ "input": with_ext }))
        .await;
    assert_eq!(
        (fourth["created"].as_bool(), id_of(&fourth["lead"])),
        (Some(false), id_of(&first["lead"]))
    );
    assert_eq!(fourth["lead"]["externalId"], "crm-7");
    let by_ext = json!({ "externalId": "crm-7", "email": "ada@newmail.example" });
    let fifth = app
        .mutate(&app.keys.marketing, "upsertLead", UPSERT_LEAD, json!({ "input": by_ext }))
        .await;
    assert_eq!(id_of(&fifth["lead"]), id_of(&first["lead"]));
    assert_eq!(fifth["lead"]["email"], "ada@newmail.example");

    // An e-mail that belongs to another lead than the externalId is refused.
    app.lead("bob@example.com").await;
    let data = app
        .data(
            &app.keys.marketing,
            UPSERT_LEAD,
            json!({ "input": { "externalId": "crm-7", "email": "bob@example.com" } }),
        )
        .await;
    assert_eq!(user_errors(&data["upsertLead"]), [("input.email".to_owned(), "TAKEN".to_owned())]);

    let data = app.data(&app.keys.analyst, "{ leads(first: 10) { totalCount } }", json!({})).await;
    assert_eq!(data["leads"]["totalCount"], 2);
}
both!(upsert_lead_is_idempotent);

async fn upsert_account_is_idempotent(app: TestApp) {
    let q = "mutation($input: UpsertAccountInput!) { upsertAccount(input: $input) { created account { id name domain industry updatedAt } userErrors { field code } } }";
    let input = json!({ "externalId": "sf-001", "name": "Initech", "domain": "Initech.example", "industry": "Software" });
    let first = app.mutate(&app.keys.sales, "upsertAccount", q, json!({ "input": input })).await;
    assert_eq!(first["created"], true);
    assert_eq!(first["account"]["domain"], "initech.example");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = app.mutate(&app.keys.sales, "upsertAccount", q, json!({ "input": input })).await;
    assert_eq!(second["created"], false);
    assert_eq!(second["account"], first["account"]);

    // Without an externalId the domain is the key.
    let by_domain = json!({ "domain": "INITECH.example", "industry": "Consulting" });
    let third = app.mutate(&app.keys.sales, "upsertAccount", q, json!({ "input": by_domain })).await;
    assert_eq!(
        (third["created"].as_bool(), id_of(&third["account"])),
        (Some(false), id_of(&first["account"]))
    );
    assert_eq!(
        (&third["account"]["name"], &third["account"]["industry"]),
        (&json!("Initech"), &json!("Consulting"))
    );

    // Another externalId is another account.
    let other = json!({ "externalId": "sf-002", "name": "Initech" });
    let fourth = app.mutate(&app.keys.sales, "upsertAccount", q, json!({ "input": other })).await;
    assert_eq!(fourth["created"], true);
    assert_ne!(id_of(&fourth["account"]), id_of(&first["account"]));
    let data = app
        .data(&app.keys.analyst, "{ accounts(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(data["accounts"]["totalCount"], 2);
}
both!(upsert_account_is_idempotent);

async fn upsert_opportunity_by_external_id(app: TestApp) {
    let account = app.account(json!({ "name": "Initech", "externalId": "sf-001" })).await;
    let q = "mutation($input: UpsertOpportunityInput!) { upsertOpportunity(input: $input) {
      created opportunity { id name externalId amount { amount currency } status account { id } expectedCloseDate createdAt updatedAt } userErrors { field code } } }";
    let input = json!({ "externalId": "deal-1", "accountExternalId": "sf-001", "name": "Initech rollout", "amount": "48000",
                        "expectedCloseDate": "2026-12-15", "createdAt": "2026-06-01T00:00:00Z" });
    let first = app.mutate(&app.keys.sales, "upsertOpportunity", q, json!({ "input": input })).await;
    assert_eq!(first["created"], true);
    let o = &first["opportunity"];
    assert_eq!(
        (
            &o["name"],
            &o["externalId"],
            &o["amount"],
            &o["status"],
            &o["account"]["id"],
            &o["expectedCloseDate"],
            &o["createdAt"]
        ),
        (
            &json!("Initech rollout"),
            &json!("deal-1"),
            &json!({ "amount": "48000.00", "currency": "EUR" }),
            &json!("OPEN"),
            &json!(account),
            &json!("2026-12-15"),
            &json!("2026-06-01T00:00:00Z")
        )
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = app.mutate(&app.keys.sales, "upsertOpportunity", q, json!({ "input": input })).await;
    assert_eq!(second["created"], false);
    assert_eq!(second["opportunity"], first["opportunity"], "nothing changed, not even updatedAt");

    // A partial update by externalId, then by id.
    let third = app
        .mutate(
            &app.keys.sales,
            "upsertOpportunity",
            q,
            json!({ "input": { "externalId": "deal-1", "amount": "50000.25", "currency": "usd" } }),
        )
        .await;
    assert_eq!(third["created"], false);
    assert_eq!(third["opportunity"]["amount"], json!({ "amount": "50000.25", "currency": "USD" }));
    assert_eq!(third["opportunity"]["name"], "Initech rollout");
    let fourth = app
        .mutate(
            &app.keys.sales,
            "upsertOpportunity",
            q,
            json!({ "input": { "id": id_of(&first["opportunity"]), "expectedCloseDate": null, "name": "Initech rollout EU" } }),
        )
        .await;
    assert_eq!(fourth["opportunity"]["expectedCloseDate"], json!(null));
    assert_eq!(fourth["opportunity"]["name"], "Initech rollout EU");

    // A new deal needs an account, a name and an amount.
    let data = app.data(&app.keys.sales, q, json!({ "input": { "externalId": "deal-2" } })).await;
    let mut errors = user_errors(&data["upsertOpportunity"]);
    errors.sort();
    assert_eq!(
        errors,
        [
            ("input.accountId".to_owned(), "REQUIRED".to_owned()),
            ("input.amount".to_owned(), "REQUIRED".to_owned()),
            ("input.name".to_owned(), "REQUIRED".to_owned()),
        ]
    );
    let data = app
        .data(
            &app.keys.sales,
            q,
            json!({ "input": { "externalId": "deal-2", "accountId": account, "accountExternalId": "sf-001" } }),
        )
        .await;
    assert_eq!(
        user_errors(&data["upsertOpportunity"]),
        [("input.accountId".to_owned(), "INVALID".to_owned())]
    );
    let data = app
        .data(&app.keys.analyst, "{ opportunities(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(data["opportunities"]["totalCount"], 1);
}
both!(upsert_opportunity_by_external_id);
