//! Campaigns: filters, ordering, creation and updates, the channel and cost-category vocabularies.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, user_errors};

async fn names(app: &TestApp, filter: Value) -> Vec<String> {
    let q = "query($f: CampaignFilterInput) { campaigns(filter: $f, first: 50) { totalCount nodes { name } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
    let nodes = data["campaigns"]["nodes"].as_array().unwrap();
    assert_eq!(data["campaigns"]["totalCount"], nodes.len(), "totalCount of {filter}");
    nodes.iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
}

async fn fixture(app: &TestApp) {
    for input in [
        json!({ "name": "Autumn webinar", "channel": "webinar", "kind": "ACQUISITION", "status": "ACTIVE",
                "startDate": "2026-09-01", "endDate": "2026-09-30" }),
        json!({ "name": "Brand awareness", "channel": "PAID_SOCIAL", "kind": "NURTURE", "startDate": "2026-10-01" }),
        json!({ "name": "Customer days", "channel": "EVENT", "kind": "LOYALTY", "status": "COMPLETED",
                "startDate": "2026-05-01", "endDate": "2026-05-02" }),
        json!({ "name": "Drip", "channel": "EMAIL", "kind": "NURTURE", "status": "ACTIVE" }),
    ] {
        app.campaign(input).await;
    }
}

async fn filters_by_channel_kind_status_and_day(app: TestApp) {
    fixture(&app).await;
    assert_eq!(
        names(&app, json!({})).await,
        ["Autumn webinar", "Brand awareness", "Customer days", "Drip"]
    );
    assert_eq!(names(&app, json!({ "channel": ["WEBINAR"] })).await, ["Autumn webinar"]);
    assert_eq!(
        names(&app, json!({ "channel": ["webinar", " email "] })).await,
        ["Autumn webinar", "Drip"]
    );
    assert!(names(&app, json!({ "channel": ["DISPLAY"] })).await.is_empty());
    assert_eq!(names(&app, json!({ "kind": ["NURTURE"] })).await, ["Brand awareness", "Drip"]);
    assert_eq!(
        names(&app, json!({ "kind": ["LOYALTY", "ACQUISITION"] })).await,
        ["Autumn webinar", "Customer days"]
    );
    assert_eq!(names(&app, json!({ "status": ["ACTIVE"] })).await, ["Autumn webinar", "Drip"]);
    assert_eq!(
        names(&app, json!({ "status": ["PLANNED"] })).await,
        ["Brand awareness"],
        "PLANNED is the default"
    );
    assert_eq!(names(&app, json!({ "status": ["CANCELLED"] })).await, Vec::<String>::new());

    // Running on a day: started on or before it and not ended before it (both ends inclusive).
    assert_eq!(names(&app, json!({ "activeOn": "2026-09-01" })).await, ["Autumn webinar"]);
    assert_eq!(names(&app, json!({ "activeOn": "2026-09-30" })).await, ["Autumn webinar"]);
    assert_eq!(
        names(&app, json!({ "activeOn": "2026-10-15" })).await,
        ["Brand awareness"],
        "no end date: still running"
    );
    assert_eq!(names(&app, json!({ "activeOn": "2026-05-02" })).await, ["Customer days"]);
    assert!(names(&app, json!({ "activeOn": "2026-05-03" })).await.is_empty());
    assert!(names(&app, json!({ "activeOn": "2026-08-31" })).await.is_empty());

    assert_eq!(names(&app, json!({ "kind": ["NURTURE"], "status": ["ACTIVE"] })).await, ["Drip"]);
    assert_eq!(
        names(&app, json!({ "channel": ["PAID_SOCIAL"], "activeOn": "2027-01-01" })).await,
        ["Brand awareness"]
    );
}
both!(filters_by_channel_kind_status_and_day);

async fn orders_by_name_and_creation(app: TestApp) {
    fixture(&app).await;
    let q = "query($o: CampaignOrderInput, $after: String) { campaigns(orderBy: $o, first: 2, after: $after) { nodes { name } pageInfo { hasNextPage endCursor } } }";
    let order = json!({ "field": "NAME", "direction": "DESC" });
    let p1 = app.data(&app.keys.analyst, q, json!({ "o": order })).await["campaigns"].clone();
    assert_eq!(p1["nodes"], json!([{ "name": "Drip" }, { "name": "Customer days" }]));
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    let p2 = app
        .data(&app.keys.analyst, q, json!({ "o": order, "after": p1["pageInfo"]["endCursor"] }))
        .await["campaigns"]
        .clone();
    assert_eq!(p2["nodes"], json!([{ "name": "Brand awareness" }, { "name": "Autumn webinar" }]));
    assert_eq!(p2["pageInfo"]["hasNextPage"], false);

    let q = "{ campaigns(orderBy: { field: CREATED_AT, direction: DESC }, first: 1) { nodes { name } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(data["campaigns"]["nodes"], json!([{ "name": "Drip" }]));
}
both!(orders_by_name_and_creation);

async fn creates_and_updates_campaigns(app: TestApp) {
    let create = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) {
      campaign { id name channel kind status trackingCode startDate endDate budget { amount currency } expectedRevenue { amount } touchpointCount totalCost { amount } costs { id } }
      userErrors { field code } } }";
    let input = json!({ "name": "  Hannover Messe ", "channel": "trade-fair", "kind": "ACQUISITION", "trackingCode": "HM26",
                        "startDate": "2026-04-20", "endDate": "2026-04-24", "budget": "25000", "expectedRevenue": "250000.5",
                        "externalId": "fair-26" });
    let payload = app
        .mutate(&app.keys.marketing, "createCampaign", create, json!({ "input": input }))
        .await;
    let c = &payload["campaign"];
    let id = crate::helpers::id_of(c);
    assert_eq!(
        c,
        &json!({ "id": id, "name": "Hannover Messe", "channel": "TRADE_FAIR", "kind": "ACQUISITION", "status": "PLANNED",
                 "trackingCode": "HM26", "startDate": "2026-04-20", "endDate": "2026-04-24",
                 "budget": { "amount": "25000.00", "currency": "EUR" }, "expectedRevenue": { "amount": "250000.50" },
                 "touchpointCount": 0, "totalCost": { "amount": "0.00" }, "costs": [] })
    );
    let data = app
        .data(
            &app.keys.analyst,
            "{ campaignByExternalId(externalId: \"fair-26\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["campaignByExternalId"]["id"], id.as_str());

    // Fixable mistakes, all named at once.
    let bad = json!({ "name": " ", "channel": "CARRIER_PIGEON", "kind": "NURTURE", "startDate": "2026-05-02", "endDate": "2026-05-01",
                      "budget": "-5" });
    let data = app.data(&app.keys.marketing, create, json!({ "input": bad })).await;
    let mut errors = user_errors(&data["createCampaign"]);
    errors.sort();
    let expected: Vec<(String, String)> = [
        ("input.budget", "INVALID"),
        ("input.channel", "INVALID"),
        ("input.endDate", "INVALID"),
        ("input.name", "REQUIRED"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(errors, expected);
    let dup = json!({ "name": "Again", "channel": "EMAIL", "kind": "NURTURE", "externalId": "fair-26" });
    let data = app.data(&app.keys.marketing, create, json!({ "input": dup })).await;
    assert_eq!(
        user_errors(&data["createCampaign"]),
        [("input.externalId".to_owned(), "TAKEN".to_owned())]
    );
    let data = app
        .data(&app.keys.analyst, "{ campaigns(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(data["campaigns"]["totalCount"], 1);

    // Updates: given fields change, null clears, absent fields stay.
    let update = "mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) {
      campaign { name channel status trackingCode endDate budget { amount } expectedRevenue { amount } updatedAt } userErrors { field code } } }";
    let payload = app
        .mutate(
            &app.keys.marketing,
            "updateCampaign",
            update,
            json!({ "input": { "id": id, "status": "ACTIVE", "trackingCode": null, "budget": "30000.10", "channel": "EVENT" } }),
        )
        .await;
    let u = &payload["campaign"];
    assert_eq!(
        (&u["name"], &u["channel"], &u["status"], &u["trackingCode"], &u["endDate"]),
        (
            &json!("Hannover Messe"),
            &json!("EVENT"),
            &json!("ACTIVE"),
            &Value::Null,
            &json!("2026-04-24")
        )
    );
    assert_eq!(u["budget"]["amount"], "30000.10");
    assert_eq!(u["expectedRevenue"]["amount"], "250000.50");
    let data = app
        .data(
            &app.keys.marketing,
            update,
            json!({ "input": { "id": id, "endDate": "2026-01-01" } }),
        )
        .await;
    assert_eq!(
        user_errors(&data["updateCampaign"]),
        [("input.endDate".to_owned(), "INVALID".to_owned())]
    );
    let q = "query($id: ID!) { campaign(id: $id) { endDate status } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": id })).await;
    assert_eq!(data["campaign"], json!({ "endDate": "2026-04-24", "status": "ACTIVE" }));

    let resp = app
        .gql(
            &app.keys.marketing,
            update,
            json!({ "input": { "id": crate::helpers::global_id("Campaign", 999_999), "name": "Ghost" } }),
        )
        .await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
}
both!(creates_and_updates_campaigns);

async fn channels_are_a_workspace_vocabulary(app: TestApp) {
    let create =
        "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { channel } userErrors { field code } } }";
    let input = json!({ "input": { "name": "Podcast ads", "channel": "podcast", "kind": "ACQUISITION" } });
    let data = app.data(&app.keys.marketing, create, input.clone()).await;
    assert_eq!(
        user_errors(&data["createCampaign"]),
        [("input.channel".to_owned(), "INVALID".to_owned())]
    );

    let add = "mutation { addVocabularyTerm(input: { kind: CHANNEL, code: \"pod cast\", label: \"Podcast\" }) { term { code label } userErrors { code } } }";
    let resp = app.gql(&app.keys.marketing, add, json!({})).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let payload = app.mutate(&app.keys.admin, "addVocabularyTerm", add, json!({})).await;
    assert_eq!(payload["term"], json!({ "code": "POD_CAST", "label": "Podcast" }));

    let input = json!({ "input": { "name": "Podcast ads", "channel": "Pod-Cast", "kind": "ACQUISITION" } });
    let payload = app.mutate(&app.keys.marketing, "createCampaign", create, input).await;
    assert_eq!(payload["campaign"]["channel"], "POD_CAST");

    let q = "{ viewer { workspace { channels { code } touchpointTypes { code } } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    let channels: Vec<&str> = data["viewer"]["workspace"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(channels.len(), 12, "11 defaults and the new one: {channels:?}");
    assert!(channels.contains(&"POD_CAST") && channels.contains(&"WEBINAR"));
    assert_eq!(data["viewer"]["workspace"]["touchpointTypes"].as_array().unwrap().len(), 15);
    // The other workspace's vocabulary is its own.
    let data = app.data(&app.other.analyst, q, json!({})).await;
    assert_eq!(data["viewer"]["workspace"]["channels"].as_array().unwrap().len(), 11);
}
both!(channels_are_a_workspace_vocabulary);

async fn cost_categories_are_a_workspace_vocabulary(app: TestApp) {
    let campaign = app.simple_campaign("Launch").await;
    let add_cost = "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) {
      cost { category amount { amount } } campaign { totalCost { amount } } userErrors { field code } } }";
    let cost = |category: &str, amount: &str| json!({ "input": { "campaignId": campaign, "category": category, "amount": amount, "incurredOn": "2026-03-01" } });
    // Unknown to the workspace: a user error, nothing written.
    let data = app.data(&app.keys.marketing, add_cost, cost("agency fees", "300.00")).await;
    assert_eq!(
        user_errors(&data["addCampaignCost"]),
        [("input.category".to_owned(), "INVALID".to_owned())]
    );

    // Only ADMIN adds terms, as to the other vocabularies.
    let add = "mutation { addVocabularyTerm(input: { kind: COST_CATEGORY, code: \"AGENCY_FEES\", label: \"Agency fees\" }) { term { code label } userErrors { code } } }";
    let resp = app.gql(&app.keys.marketing, add, json!({})).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let payload = app.mutate(&app.keys.admin, "addVocabularyTerm", add, json!({})).await;
    assert_eq!(payload["term"], json!({ "code": "AGENCY_FEES", "label": "Agency fees" }));

    // Case-insensitive, spaces and dashes as underscores; a bare name as when it was an enum.
    let payload = app
        .mutate(&app.keys.marketing, "addCampaignCost", add_cost, cost("agency fees", "300.00"))
        .await;
    assert_eq!(
        payload["cost"],
        json!({ "category": "AGENCY_FEES", "amount": { "amount": "300.00" } })
    );
    app.mutate(&app.keys.marketing, "addCampaignCost", add_cost, cost("Agency-Fees", "200.00"))
        .await;
    let bare = "mutation($id: ID!) { addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: \"50.00\", incurredOn: \"2026-03-02\" }) { cost { category } userErrors { code } } }";
    let payload = app
        .mutate(&app.keys.marketing, "addCampaignCost", bare, json!({ "id": campaign }))
        .await;
    assert_eq!(payload["cost"]["category"], "MEDIA");
    let data = app.data(&app.keys.marketing, add_cost, cost("VENUE", "1.00")).await;
    assert_eq!(
        user_errors(&data["addCampaignCost"]),
        [("input.category".to_owned(), "INVALID".to_owned())]
    );

    // costsByCategory groups by the new category: 300 + 200 under AGENCY_FEES, 50 under MEDIA.
    let q = "query($id: ID!, $range: DateTimeRangeInput!) { campaign(id: $id) { totalCost { amount }
      performance(range: $range) { costsByCategory { category amount { amount } } } } }";
    let range = json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z" });
    let data = app.data(&app.keys.analyst, q, json!({ "id": campaign, "range": range })).await;
    assert_eq!(data["campaign"]["totalCost"]["amount"], "550.00");
    assert_eq!(
        data["campaign"]["performance"]["costsByCategory"],
        json!([
            { "category": "AGENCY_FEES", "amount": { "amount": "500.00" } },
            { "category": "MEDIA", "amount": { "amount": "50.00" } },
        ])
    );

    // Seven defaults and the new one; the other workspace keeps its seven.
    let q = "{ viewer { workspace { costCategories { code } } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    let codes: Vec<&str> = data["viewer"]["workspace"]["costCategories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "AGENCY_FEES",
            "CONTENT",
            "DISCOUNTS",
            "MEDIA",
            "OTHER",
            "PRODUCTION",
            "SOFTWARE",
            "TICKETS"
        ]
    );
    let data = app.data(&app.other.analyst, q, json!({})).await;
    assert_eq!(data["viewer"]["workspace"]["costCategories"].as_array().unwrap().len(), 7);
}
both!(cost_categories_are_a_workspace_vocabulary);

async fn filters_accept_codes_as_inputs_do(app: TestApp) {
    // Inputs take codes case-insensitively with spaces or dashes for underscores ...
    let campaign = app
        .campaign(json!({ "name": "Social push", "channel": "paid social", "kind": "ACQUISITION" }))
        .await;
    let lead = app.lead("ada@example.com").await;
    let items = json!([{ "leadId": lead, "campaignId": campaign, "type": "email-click", "occurredAt": "2026-03-01T09:00:00Z" }]);
    assert_eq!(app.record(items).await["recordedCount"], 1);
    // ... so the filters find them by the same spelling.
    assert_eq!(names(&app, json!({ "channel": ["paid_social"] })).await, ["Social push"]);
    assert_eq!(names(&app, json!({ "channel": ["paid social"] })).await, ["Social push"]);
    assert_eq!(names(&app, json!({ "channel": ["Paid-Social"] })).await, ["Social push"]);
    let q = "query($t: [String!]) { touchpoints(first: 5, filter: { type: $t }) { totalCount } }";
    let data = app.data(&app.keys.analyst, q, json!({ "t": ["email-click"] })).await;
    assert_eq!(data["touchpoints"]["totalCount"], 1);
}
both!(filters_accept_codes_as_inputs_do);
