//! Authentication by API key, and what each role may do.
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code};

const LEADS: &str = "{ leads(first: 10) { totalCount nodes { id email } } }";
const UPSERT_LEAD: &str = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } userErrors { code } } }";

async fn post_with_header(app: &TestApp, authorization: &str, query: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", authorization)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn lead_count(app: &TestApp) -> i64 {
    app.data(&app.keys.admin, LEADS, json!({})).await["leads"]["totalCount"]
        .as_i64()
        .unwrap()
}

async fn without_a_key_every_root_field_is_unauthenticated(app: TestApp) {
    app.lead("ada@example.com").await;
    let resp = app.gql("", LEADS, json!({})).await;
    assert_eq!(error_code(&resp), "UNAUTHENTICATED");
    assert!(resp["data"].is_null(), "no data without a key: {resp}");

    let resp = app.gql("", "{ viewer { role } }", json!({})).await;
    assert_eq!(error_code(&resp), "UNAUTHENTICATED");

    let resp = app.gql("", UPSERT_LEAD, json!({ "input": { "email": "eve@example.com" } })).await;
    assert_eq!(error_code(&resp), "UNAUTHENTICATED");
    assert_eq!(lead_count(&app).await, 1, "nothing was written without a key");
}
both!(without_a_key_every_root_field_is_unauthenticated);

async fn a_bad_key_is_refused_with_401(app: TestApp) {
    for header in [
        "Bearer clk_0000000000000000000000000000000000000000000000".to_owned(),
        "Bearer not-a-key".to_owned(),
        format!("Basic {}", app.keys.admin),
        "Bearer".to_owned(),
    ] {
        let (status, body) = post_with_header(&app, &header, LEADS).await;
        assert_eq!(status, 401, "Authorization: {header}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "Authorization: {header}");
    }
    // A key of the right shape but with one character changed is not a key either.
    let mut forged = app.keys.admin.clone();
    let last = if forged.ends_with('0') { '1' } else { '0' };
    forged.pop();
    forged.push(last);
    let (status, body) = post_with_header(&app, &format!("Bearer {forged}"), LEADS).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "UNAUTHENTICATED"));

    // A valid key, in a lower-case scheme, works.
    let (status, body) = post_with_header(&app, &format!("bearer {}", app.keys.analyst), "{ viewer { role } }").await;
    assert_eq!(status, 200);
    assert_eq!(data_of(body)["viewer"]["role"], "ANALYST");
}
both!(a_bad_key_is_refused_with_401);

async fn viewer_tells_role_and_workspace(app: TestApp) {
    let q = "{ viewer { role workspace { name currency } } }";
    for (key, role) in [
        (&app.keys.admin, "ADMIN"),
        (&app.keys.marketing, "MARKETING"),
        (&app.keys.sales, "SALES"),
        (&app.keys.analyst, "ANALYST"),
    ] {
        let data = app.data(key, q, json!({})).await;
        assert_eq!(data["viewer"]["role"], role);
        assert_eq!(data["viewer"]["workspace"], json!({ "name": "Acme", "currency": "EUR" }));
    }
    let data = app.data(&app.other.sales, q, json!({})).await;
    assert_eq!(data["viewer"]["workspace"]["name"], "Globex");
}
both!(viewer_tells_role_and_workspace);

async fn analyst_reads_but_cannot_write(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    let campaign = app.simple_campaign("Spring webinar").await;

    let data = app.data(&app.keys.analyst, LEADS, json!({})).await;
    assert_eq!(data["leads"]["totalCount"], 1);
    assert_eq!(data["leads"]["nodes"][0]["email"], "ada@example.com");
    let data = app
        .data(&app.keys.analyst, "{ campaigns(first: 5) { nodes { name } } }", json!({}))
        .await;
    assert_eq!(data["campaigns"]["nodes"][0]["name"], "Spring webinar");

    let key = &app.keys.analyst;
    let attempts = [
        (UPSERT_LEAD, json!({ "input": { "email": "eve@example.com" } })),
        (
            "mutation($id: ID!) { updateLead(input: { id: $id, firstName: \"Eve\" }) { lead { id } } }",
            json!({ "id": lead }),
        ),
        (
            "mutation { upsertAccount(input: { name: \"Initech\" }) { account { id } } }",
            json!({}),
        ),
        (
            "mutation { createCampaign(input: { name: \"X\", channel: \"EMAIL\", kind: ACQUISITION }) { campaign { id } } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: \"1.00\", incurredOn: \"2026-01-01\" }) { cost { id } } }",
            json!({ "id": campaign }),
        ),
        (
            "mutation($id: ID!) { recordTouchpoints(input: { items: [{ leadId: $id, type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\" }] }) { recordedCount } }",
            json!({ "id": lead }),
        ),
        (
            "mutation { upsertOpportunity(input: { externalId: \"D1\", name: \"Deal\", amount: \"1.00\" }) { opportunity { id } } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id } } }",
            json!({ "id": lead }),
        ),
        ("mutation { upsertUser(input: { name: \"Sam\" }) { user { id } } }", json!({})),
        (
            "mutation { addVocabularyTerm(input: { kind: CHANNEL, code: \"PODCAST\" }) { term { code } } }",
            json!({}),
        ),
    ];
    for (query, vars) in attempts {
        let resp = app.gql(key, query, vars).await;
        assert_eq!(error_code(&resp), "FORBIDDEN", "ANALYST ran {query}: {resp}");
    }
    let data = app
        .data(
            &app.keys.admin,
            "query($id: ID!) { lead(id: $id) { firstName erasedAt touchpoints(first: 1) { totalCount } } leads(first: 1) { totalCount } accounts(first: 1) { totalCount } campaigns(first: 1) { totalCount nodes { totalCost { amount } } } }",
            json!({ "id": lead }),
        )
        .await;
    assert_eq!(
        data,
        json!({
            "lead": { "firstName": null, "erasedAt": null, "touchpoints": { "totalCount": 0 } },
            "leads": { "totalCount": 1 },
            "accounts": { "totalCount": 0 },
            "campaigns": { "totalCount": 1, "nodes": [{ "totalCost": { "amount": "0.00" } }] },
        }),
        "the analyst's attempts changed nothing"
    );
}
both!(analyst_reads_but_cannot_write);

async fn sales_cannot_run_campaigns(app: TestApp) {
    let campaign = app.simple_campaign("Spring webinar").await;
    let resp = app
        .gql(
            &app.keys.sales,
            "mutation { createCampaign(input: { name: \"Sales push\", channel: \"EMAIL\", kind: ACQUISITION }) { campaign { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let resp = app
        .gql(
            &app.keys.sales,
            "mutation($id: ID!) { updateCampaign(input: { id: $id, name: \"Renamed\" }) { campaign { id } } }",
            json!({ "id": campaign }),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let data = app
        .data(&app.keys.sales, "{ campaigns(first: 5) { totalCount nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        data["campaigns"],
        json!({ "totalCount": 1, "nodes": [{ "name": "Spring webinar" }] })
    );

    // Sales keep contacts and deals.
    let account = app.account(json!({ "name": "Initech" })).await;
    let q = "mutation($a: ID!) { upsertOpportunity(input: { accountId: $a, name: \"Deal\", amount: \"10.00\" }) { created userErrors { code } } }";
    let payload = app.mutate(&app.keys.sales, "upsertOpportunity", q, json!({ "a": account })).await;
    assert_eq!(payload["created"], true);
    let payload = app
        .mutate(
            &app.keys.sales,
            "upsertLead",
            "mutation { upsertLead(input: { email: \"bo@example.com\" }) { created userErrors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(payload["created"], true);
}
both!(sales_cannot_run_campaigns);

async fn marketing_cannot_close_deals(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Deal", "amount": "100.00", "createdAt": "2026-01-01T00:00:00Z" }))
        .await;
    let close = "mutation($id: ID!) { closeOpportunity(input: { id: $id, outcome: WON }) { opportunity { status } userErrors { code } } }";
    let resp = app.gql(&app.keys.marketing, close, json!({ "id": deal })).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let resp = app
        .gql(
            &app.keys.marketing,
            "mutation($a: ID!) { upsertOpportunity(input: { accountId: $a, name: \"Other\", amount: \"1.00\" }) { created } }",
            json!({ "a": account }),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let data = app
        .data(
            &app.keys.marketing,
            "query($id: ID!) { opportunity(id: $id) { status } opportunities(first: 5) { totalCount } }",
            json!({ "id": deal }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "opportunity": { "status": "OPEN" }, "opportunities": { "totalCount": 1 } })
    );

    // Marketing runs campaigns and records touchpoints.
    let campaign = app
        .mutate(
            &app.keys.marketing,
            "createCampaign",
            "mutation { createCampaign(input: { name: \"Fair\", channel: \"TRADE_FAIR\", kind: ACQUISITION }) { campaign { id } userErrors { code } } }",
            json!({}),
        )
        .await;
    assert!(campaign["campaign"]["id"].is_string());
    let data = app.data(&app.keys.sales, close, json!({ "id": deal })).await;
    assert_eq!(data["closeOpportunity"]["opportunity"]["status"], "WON");
}
both!(marketing_cannot_close_deals);

async fn only_admin_erases_leads(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { email erasedAt } userErrors { code } } }";
    for key in [&app.keys.marketing, &app.keys.sales, &app.keys.analyst] {
        let resp = app.gql(key, erase, json!({ "id": lead })).await;
        assert_eq!(error_code(&resp), "FORBIDDEN");
    }
    let data = app
        .data(
            &app.keys.admin,
            "query($id: ID!) { lead(id: $id) { email erasedAt } }",
            json!({ "id": lead }),
        )
        .await;
    assert_eq!(data["lead"], json!({ "email": "ada@example.com", "erasedAt": null }));

    let payload = app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": lead })).await;
    assert_eq!(payload["lead"]["email"], Value::Null);
    assert!(payload["lead"]["erasedAt"].is_string());
}
both!(only_admin_erases_leads);
