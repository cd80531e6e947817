//! Opportunities: buying centers, closing, and the opportunities filters.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, global_id, id_of, ids, user_errors};

const SET_BUYING_CENTER: &str = "mutation($input: SetBuyingCenterInput!) { setBuyingCenter(input: $input) {
  opportunity { id contacts { role isPrimary lead { email } } } userErrors { field code } } }";
const CLOSE: &str = "mutation($input: CloseOpportunityInput!) { closeOpportunity(input: $input) {
  opportunity { id status amount { amount } closedAt } userErrors { field code } } }";

async fn a_deal_from_open_to_won(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let ada = app.upsert_lead(json!({ "email": "ada@initech.test", "accountId": account })).await;
    let bob = app.upsert_lead(json!({ "email": "bob@initech.test", "accountId": account })).await;
    let deal = app
        .opportunity(
            json!({ "accountId": account, "name": "Rollout", "amount": "15000", "externalId": "d-1", "createdAt": "2026-02-01T00:00:00Z" }),
        )
        .await;

    // The buying center: primary first, whatever the input order.
    let contacts = json!([
        { "leadId": id_of(&bob), "role": "Technical evaluator" },
        { "leadId": id_of(&ada), "role": " Decision maker ", "isPrimary": true },
    ]);
    let payload = app
        .mutate(
            &app.keys.sales,
            "setBuyingCenter",
            SET_BUYING_CENTER,
            json!({ "input": { "opportunityId": deal, "contacts": contacts } }),
        )
        .await;
    assert_eq!(
        payload["opportunity"]["contacts"],
        json!([
            { "role": "Decision maker", "isPrimary": true, "lead": { "email": "ada@initech.test" } },
            { "role": "Technical evaluator", "isPrimary": false, "lead": { "email": "bob@initech.test" } },
        ])
    );

    // Invalid buying centers are refused as a whole.
    let bad = json!([
        { "leadId": id_of(&ada), "role": "Decision maker", "isPrimary": true },
        { "leadId": id_of(&ada), "role": "Champion" },
        { "leadId": global_id("Lead", 999_999), "role": "Champion", "isPrimary": true },
        { "leadId": id_of(&bob), "role": "  " },
    ]);
    let data = app
        .data(
            &app.keys.sales,
            SET_BUYING_CENTER,
            json!({ "input": { "opportunityId": deal, "contacts": bad } }),
        )
        .await;
    let mut errors = user_errors(&data["setBuyingCenter"]);
    errors.sort();
    let expected: Vec<(String, String)> = [
        ("input.contacts", "INVALID"),
        ("input.contacts.1.leadId", "DUPLICATE"),
        ("input.contacts.2.leadId", "NOT_FOUND"),
        ("input.contacts.3.role", "REQUIRED"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(errors, expected);
    let q = "query($id: ID!) { opportunity(id: $id) { contacts { role } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": deal })).await;
    assert_eq!(data["opportunity"]["contacts"].as_array().unwrap().len(), 2, "unchanged");

    // The lead sees the deal.
    let q = "query($id: ID!) { lead(id: $id) { opportunities { id name status amount { amount } account { name } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": id_of(&ada) })).await;
    assert_eq!(
        data["lead"]["opportunities"],
        json!([{ "id": deal, "name": "Rollout", "status": "OPEN", "amount": { "amount": "15000.00" }, "account": { "name": "Initech" } }])
    );

    // Closing: won, with the final amount and time.
    let input = json!({ "id": deal, "outcome": "WON", "amount": "14500.50", "closedAt": "2026-03-15T16:30:00+01:00" });
    let payload = app
        .mutate(&app.keys.sales, "closeOpportunity", CLOSE, json!({ "input": input }))
        .await;
    assert_eq!(
        payload["opportunity"],
        json!({ "id": deal, "status": "WON", "amount": { "amount": "14500.50" }, "closedAt": "2026-03-15T15:30:00Z" })
    );
    // Twice is a user error, and changes nothing.
    let again = json!({ "id": deal, "outcome": "LOST" });
    let data = app.data(&app.keys.sales, CLOSE, json!({ "input": again })).await;
    assert_eq!(
        user_errors(&data["closeOpportunity"]),
        [("input.id".to_owned(), "ALREADY_CLOSED".to_owned())]
    );
    assert_eq!(data["closeOpportunity"]["opportunity"], Value::Null);
    let data = app.data(&app.keys.analyst, q, json!({ "id": id_of(&bob) })).await;
    assert_eq!(data["lead"]["opportunities"][0]["status"], "WON");
    assert_eq!(data["lead"]["opportunities"][0]["amount"]["amount"], "14500.50");

    // An empty buying center clears it.
    let payload = app
        .mutate(
            &app.keys.sales,
            "setBuyingCenter",
            SET_BUYING_CENTER,
            json!({ "input": { "opportunityId": deal, "contacts": [] } }),
        )
        .await;
    assert_eq!(payload["opportunity"]["contacts"], json!([]));
    let data = app.data(&app.keys.analyst, q, json!({ "id": id_of(&ada) })).await;
    assert_eq!(data["lead"]["opportunities"], json!([]));
}
both!(a_deal_from_open_to_won);

async fn closing_checks_time_and_existence(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Rollout", "amount": "100", "createdAt": "2026-02-01T00:00:00Z" }))
        .await;
    let early = json!({ "id": deal, "outcome": "LOST", "closedAt": "2026-01-31T23:59:59Z" });
    let data = app.data(&app.keys.sales, CLOSE, json!({ "input": early })).await;
    assert_eq!(
        user_errors(&data["closeOpportunity"]),
        [("input.closedAt".to_owned(), "INVALID".to_owned())]
    );
    let bad_amount = json!({ "id": deal, "outcome": "WON", "amount": "-1" });
    let data = app.data(&app.keys.sales, CLOSE, json!({ "input": bad_amount })).await;
    assert_eq!(
        user_errors(&data["closeOpportunity"]),
        [("input.amount".to_owned(), "INVALID".to_owned())]
    );

    // Without closedAt, now; without amount, the current one.
    let lost = json!({ "id": deal, "outcome": "LOST" });
    let payload = app
        .mutate(&app.keys.sales, "closeOpportunity", CLOSE, json!({ "input": lost }))
        .await;
    assert_eq!(payload["opportunity"]["status"], "LOST");
    assert_eq!(payload["opportunity"]["amount"]["amount"], "100.00");
    let closed = chrono::DateTime::parse_from_rfc3339(payload["opportunity"]["closedAt"].as_str().unwrap()).unwrap();
    assert!(
        (chrono::Utc::now() - closed.to_utc()).num_seconds().abs() < 60,
        "closed now: {closed}"
    );

    for id in [global_id("Opportunity", 999_999), "garbage".to_owned(), account.clone()] {
        let resp = app
            .gql(&app.keys.sales, CLOSE, json!({ "input": { "id": id, "outcome": "WON" } }))
            .await;
        assert_eq!(error_code(&resp), "NOT_FOUND", "{id}");
        let resp = app
            .gql(
                &app.keys.sales,
                SET_BUYING_CENTER,
                json!({ "input": { "opportunityId": id, "contacts": [] } }),
            )
            .await;
        assert_eq!(error_code(&resp), "NOT_FOUND", "{id}");
    }
}
both!(closing_checks_time_and_existence);

async fn opportunity_filters(app: TestApp) {
    let a1 = app.account(json!({ "name": "Initech" })).await;
    let a2 = app.account(json!({ "name": "Globex" })).await;
    let mut deals = Vec::new();
    for (i, account) in [&a1, &a1, &a2, &a2].into_iter().enumerate() {
        let input = json!({ "accountId": account, "name": format!("Deal {i}"), "amount": "1000", "createdAt": "2026-01-01T00:00:00Z" });
        deals.push(app.opportunity(input).await);
    }
    for (deal, outcome, at) in [
        (&deals[0], "WON", "2026-03-01T00:00:00Z"),
        (&deals[1], "LOST", "2026-04-01T00:00:00Z"),
        (&deals[2], "WON", "2026-05-01T00:00:00Z"),
    ] {
        let input = json!({ "id": deal, "outcome": outcome, "closedAt": at });
        app.mutate(&app.keys.sales, "closeOpportunity", CLOSE, json!({ "input": input }))
            .await;
    }
    let q = "query($f: OpportunityFilterInput) { opportunities(filter: $f, first: 50) { totalCount nodes { id } } }";
    let run = |filter: Value| {
        let app = &app;
        async move {
            let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
            let conn = &data["opportunities"];
            assert_eq!(conn["totalCount"], conn["nodes"].as_array().unwrap().len(), "{filter}");
            ids(conn)
        }
    };
    let pick = |at: &[usize]| at.iter().map(|&i| deals[i].clone()).collect::<Vec<_>>();
    assert_eq!(run(json!(null)).await, pick(&[0, 1, 2, 3]));
    assert_eq!(run(json!({ "status": ["OPEN"] })).await, pick(&[3]));
    assert_eq!(run(json!({ "status": ["WON"] })).await, pick(&[0, 2]));
    assert_eq!(run(json!({ "status": ["WON", "LOST"] })).await, pick(&[0, 1, 2]));
    assert_eq!(run(json!({ "accountId": a1 })).await, pick(&[0, 1]));
    assert_eq!(run(json!({ "accountId": a2, "status": ["WON"] })).await, pick(&[2]));
    assert_eq!(
        run(json!({ "closedAt": { "from": "2026-03-01T00:00:00Z", "to": "2026-05-01T00:00:00Z" } })).await,
        pick(&[0, 1])
    );
    assert_eq!(run(json!({ "closedAt": { "from": "2026-04-01T00:00:00Z" } })).await, pick(&[1, 2]));
    assert_eq!(run(json!({ "closedAt": { "to": "2026-03-01T00:00:01Z" } })).await, pick(&[0]));
    assert!(
        run(json!({ "accountId": deals[0] })).await.is_empty(),
        "an opportunity ID is no account ID"
    );

    let q = "{ opportunities(first: 2, orderBy: { field: CREATED_AT, direction: DESC }) { nodes { id } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(ids(&data["opportunities"]), pick(&[3, 2]), "same createdAt: the id decides");
}
both!(opportunity_filters);
