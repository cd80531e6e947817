//! Accounts: filters, ordering, lookups and their leads.
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, user_errors};

async fn names(app: &TestApp, filter: Value) -> Vec<String> {
    let q = "query($f: AccountFilterInput) { accounts(filter: $f, first: 50) { totalCount nodes { name } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
    let nodes = data["accounts"]["nodes"].as_array().unwrap();
    assert_eq!(data["accounts"]["totalCount"], nodes.len(), "totalCount of {filter}");
    nodes.iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
}

async fn fixture(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for input in [
        json!({ "name": "Acme Tools", "country": "de", "industry": "Machinery", "externalId": "crm-a1" }),
        json!({ "name": "Acme Foods", "country": "AT", "industry": "Food", "customerStatus": "EXISTING_CUSTOMER" }),
        json!({ "name": "Beta Corp", "country": "DE", "industry": "Food", "customerStatus": "NEW_CUSTOMER", "domain": "beta.example" }),
        json!({ "name": "Zeta Labs" }),
    ] {
        ids.push(app.account(input).await);
    }
    ids
}

async fn filters_accounts(app: TestApp) {
    fixture(&app).await;
    let all = ["Acme Tools", "Acme Foods", "Beta Corp", "Zeta Labs"];
    assert_eq!(names(&app, json!(null)).await, all);
    assert_eq!(names(&app, json!({ "country": ["DE"] })).await, ["Acme Tools", "Beta Corp"]);
    assert_eq!(
        names(&app, json!({ "country": ["de", "at"] })).await,
        ["Acme Tools", "Acme Foods", "Beta Corp"]
    );
    assert_eq!(names(&app, json!({ "industry": ["Food"] })).await, ["Acme Foods", "Beta Corp"]);
    assert_eq!(
        names(&app, json!({ "customerStatus": ["LEAD"] })).await,
        ["Acme Tools", "Zeta Labs"],
        "LEAD is the default"
    );
    assert_eq!(
        names(&app, json!({ "customerStatus": ["EXISTING_CUSTOMER", "NEW_CUSTOMER"] })).await,
        ["Acme Foods", "Beta Corp"]
    );
    assert_eq!(names(&app, json!({ "namePrefix": "Acme" })).await, ["Acme Tools", "Acme Foods"]);
    assert_eq!(names(&app, json!({ "namePrefix": "Acme F" })).await, ["Acme Foods"]);
    assert!(
        names(&app, json!({ "namePrefix": "acme" })).await.is_empty(),
        "the prefix is case-sensitive"
    );
    assert_eq!(names(&app, json!({ "namePrefix": "" })).await, all);
    assert_eq!(
        names(&app, json!({ "namePrefix": "Acme", "industry": ["Food"], "country": ["AT"] })).await,
        ["Acme Foods"]
    );

    // updatedSince: only what changed at or after the time.
    let q = "{ accounts(first: 50, orderBy: { field: UPDATED_AT, direction: DESC }) { nodes { name updatedAt } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    let newest = &data["accounts"]["nodes"][0];
    assert_eq!(newest["name"], "Zeta Labs");
    assert_eq!(names(&app, json!({ "updatedSince": newest["updatedAt"] })).await, ["Zeta Labs"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let upsert = "mutation { upsertAccount(input: { externalId: \"crm-a1\", employeeCount: 120 }) { created account { updatedAt employeeCount } userErrors { code } } }";
    let payload = app.mutate(&app.keys.sales, "upsertAccount", upsert, json!({})).await;
    assert_eq!(
        (&payload["created"], &payload["account"]["employeeCount"]),
        (&json!(false), &json!(120))
    );
    assert_eq!(
        names(&app, json!({ "updatedSince": newest["updatedAt"] })).await,
        ["Acme Tools", "Zeta Labs"]
    );
    assert_eq!(
        names(&app, json!({ "updatedSince": payload["account"]["updatedAt"] })).await,
        ["Acme Tools"]
    );
}
both!(filters_accounts);

async fn orders_accounts_by_name(app: TestApp) {
    fixture(&app).await;
    let q = "query($after: String, $dir: OrderDirection!) { accounts(first: 3, after: $after, orderBy: { field: NAME, direction: $dir }) { nodes { name } pageInfo { hasNextPage endCursor } } }";
    let p1 = app.data(&app.keys.analyst, q, json!({ "dir": "ASC" })).await["accounts"].clone();
    assert_eq!(
        p1["nodes"],
        json!([{ "name": "Acme Foods" }, { "name": "Acme Tools" }, { "name": "Beta Corp" }])
    );
    let p2 = app
        .data(&app.keys.analyst, q, json!({ "dir": "ASC", "after": p1["pageInfo"]["endCursor"] }))
        .await["accounts"]
        .clone();
    assert_eq!(p2["nodes"], json!([{ "name": "Zeta Labs" }]));
    assert_eq!(p2["pageInfo"]["hasNextPage"], false);
    let d = app.data(&app.keys.analyst, q, json!({ "dir": "DESC" })).await["accounts"].clone();
    assert_eq!(
        d["nodes"],
        json!([{ "name": "Zeta Labs" }, { "name": "Beta Corp" }, { "name": "Acme Tools" }])
    );
}
both!(orders_accounts_by_name);

async fn account_lookups_and_leads(app: TestApp) {
    let ids = fixture(&app).await;
    for i in 0..3 {
        app.upsert_lead(json!({ "email": format!("p{i}@acme.test"), "accountId": ids[0] }))
            .await;
    }
    app.upsert_lead(json!({ "email": "q@beta.test", "accountId": ids[2] })).await;
    let q = "query($id: ID!) { account(id: $id) { name country customerStatus annualRevenue { amount } leads(first: 10) { totalCount nodes { email account { name } } } }
                            accountByExternalId(externalId: \"crm-a1\") { id } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": ids[0] })).await;
    assert_eq!(
        data,
        json!({
            "account": {
                "name": "Acme Tools", "country": "DE", "customerStatus": "LEAD", "annualRevenue": null,
                "leads": { "totalCount": 3, "nodes": [
                    { "email": "p0@acme.test", "account": { "name": "Acme Tools" } },
                    { "email": "p1@acme.test", "account": { "name": "Acme Tools" } },
                    { "email": "p2@acme.test", "account": { "name": "Acme Tools" } },
                ] },
            },
            "accountByExternalId": { "id": ids[0] },
        })
    );
    // Several accounts' leads in one request (one batched query per field).
    let q = "{ accounts(first: 10) { nodes { name leads(first: 2) { totalCount nodes { email } } } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    let counts: Vec<(String, i64, usize)> = data["accounts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["leads"]["totalCount"].as_i64().unwrap(),
                a["leads"]["nodes"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("Acme Tools".to_owned(), 3, 2),
            ("Acme Foods".to_owned(), 0, 0),
            ("Beta Corp".to_owned(), 1, 1),
            ("Zeta Labs".to_owned(), 0, 0),
        ]
    );

    // Annual revenue is money, and a new account needs a name.
    let upsert = "mutation($input: UpsertAccountInput!) { upsertAccount(input: $input) { account { id annualRevenue { amount currency } } created userErrors { field code } } }";
    let payload = app
        .mutate(
            &app.keys.admin,
            "upsertAccount",
            upsert,
            json!({ "input": { "externalId": "crm-a1", "annualRevenue": "1250000.5" } }),
        )
        .await;
    assert_eq!(
        payload["account"]["annualRevenue"],
        json!({ "amount": "1250000.50", "currency": "EUR" })
    );
    assert_eq!(id_of(&payload["account"]), ids[0]);
    let data = app
        .data(
            &app.keys.admin,
            upsert,
            json!({ "input": { "externalId": "crm-new", "country": "Deutschland" } }),
        )
        .await;
    let mut errors = user_errors(&data["upsertAccount"]);
    errors.sort();
    assert_eq!(
        errors,
        [
            ("input.country".to_owned(), "INVALID".to_owned()),
            ("input.name".to_owned(), "REQUIRED".to_owned()),
        ]
    );
}
both!(account_lookups_and_leads);
