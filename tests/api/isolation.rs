//! Workspace isolation: a key of workspace A neither sees nor changes workspace B's data, by
//! any root field or mutation.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, user_errors};

/// Workspace B's objects.
struct Other {
    lead: String,
    account: String,
    campaign: String,
    cost: String,
    touchpoint: String,
    opportunity: String,
    user: String,
    stage: String,
}

async fn b(app: &TestApp, query: &str, vars: Value) -> Value {
    app.data(&app.other.admin, query, vars).await
}

async fn seed_other(app: &TestApp) -> Other {
    let account = id_of(
        &b(
            app,
            "mutation { upsertAccount(input: { name: \"Globex\", externalId: \"gx-1\", domain: \"globex.example\" }) { account { id } } }",
            json!({}),
        )
        .await["upsertAccount"]["account"],
    );
    let user = id_of(
        &b(
            app,
            "mutation { upsertUser(input: { name: \"Hank\", email: \"hank@globex.example\" }) { user { id } } }",
            json!({}),
        )
        .await["upsertUser"]["user"],
    );
    let lead = id_of(
        &b(
            app,
            "mutation($a: ID!, $u: ID!) { upsertLead(input: { email: \"hank@globex.example\", externalId: \"gx-lead\", firstName: \"Hank\", accountId: $a, ownerId: $u }) { lead { id } } }",
            json!({ "a": account, "u": user }),
        )
        .await["upsertLead"]["lead"],
    );
    let campaign = id_of(
        &b(app, "mutation { createCampaign(input: { name: \"Globex launch\", channel: \"EMAIL\", kind: ACQUISITION, externalId: \"gx-c\" }) { campaign { id } } }", json!({}))
            .await["createCampaign"]["campaign"],
    );
    let cost = id_of(
        &b(
            app,
            "mutation($c: ID!) { addCampaignCost(input: { campaignId: $c, category: MEDIA, amount: \"500.00\", incurredOn: \"2026-01-01\" }) { cost { id } } }",
            json!({ "c": campaign }),
        )
        .await["addCampaignCost"]["cost"],
    );
    let touchpoint = id_of(
        &b(
            app,
            "mutation($l: ID!, $c: ID!) { recordTouchpoints(input: { items: [{ leadId: $l, campaignId: $c, type: \"EMAIL_OPEN\", occurredAt: \"2026-01-02T00:00:00Z\", idempotencyKey: \"gx-k\" }] }) { touchpoints { id } } }",
            json!({ "l": lead, "c": campaign }),
        )
        .await["recordTouchpoints"]["touchpoints"][0],
    );
    let opportunity = id_of(
        &b(
            app,
            "mutation($a: ID!) { upsertOpportunity(input: { accountId: $a, name: \"Globex deal\", amount: \"9000\", externalId: \"gx-d\", createdAt: \"2026-01-01T00:00:00Z\" }) { opportunity { id } } }",
            json!({ "a": account }),
        )
        .await["upsertOpportunity"]["opportunity"],
    );
    b(
        app,
        "mutation($o: ID!, $l: ID!) { setBuyingCenter(input: { opportunityId: $o, contacts: [{ leadId: $l, role: \"Decision maker\", isPrimary: true }] }) { userErrors { code } } }",
        json!({ "o": opportunity, "l": lead }),
    )
    .await;
    let stage = id_of(&b(app, "{ funnelStages(first: 1) { nodes { id } } }", json!({})).await["funnelStages"]["nodes"][0]);
    Other {
        lead,
        account,
        campaign,
        cost,
        touchpoint,
        opportunity,
        user,
        stage,
    }
}

/// Everything workspace B has, as B sees it.
const SNAPSHOT: &str = "query($l: ID!, $c: ID!, $o: ID!, $a: ID!) {
  lead(id: $l) { email firstName jobTitle erasedAt updatedAt account { id } owner { id } touchpoints(first: 10) { totalCount } }
  account(id: $a) { name industry updatedAt }
  campaign(id: $c) { name status budget { amount } totalCost { amount } touchpointCount updatedAt }
  opportunity(id: $o) { name status amount { amount } closedAt contacts { role lead { id } } updatedAt }
  leads(first: 10) { totalCount } accounts(first: 10) { totalCount } campaigns(first: 10) { totalCount }
  touchpoints(first: 10) { totalCount } opportunities(first: 10) { totalCount } users(first: 10) { totalCount }
}";

async fn snapshot(app: &TestApp, o: &Other) -> Value {
    b(
        app,
        SNAPSHOT,
        json!({ "l": o.lead, "c": o.campaign, "o": o.opportunity, "a": o.account }),
    )
    .await
}

async fn reads_never_cross_workspaces(app: TestApp) {
    let o = seed_other(&app).await;
    // Workspace A has a little data of its own.
    let mine = app.lead("ada@acme.test").await;
    let key = &app.keys.admin;

    let lists = "{ leads(first: 100) { totalCount nodes { id } } accounts(first: 100) { totalCount } campaigns(first: 100) { totalCount }
                   touchpoints(first: 100) { totalCount } opportunities(first: 100) { totalCount } users(first: 100) { totalCount } }";
    let data = app.data(key, lists, json!({})).await;
    assert_eq!(
        data,
        json!({
            "leads": { "totalCount": 1, "nodes": [{ "id": mine }] },
            "accounts": { "totalCount": 0 }, "campaigns": { "totalCount": 0 }, "touchpoints": { "totalCount": 0 },
            "opportunities": { "totalCount": 0 }, "users": { "totalCount": 0 },
        })
    );

    let by_id = "query($l: ID!, $a: ID!, $c: ID!, $o: ID!) { lead(id: $l) { id } account(id: $a) { id } campaign(id: $c) { id } opportunity(id: $o) { id }
                   leadByEmail(email: \"hank@globex.example\") { id } leadByExternalId(externalId: \"gx-lead\") { id }
                   accountByExternalId(externalId: \"gx-1\") { id } campaignByExternalId(externalId: \"gx-c\") { id } }";
    let data = app
        .data(
            key,
            by_id,
            json!({ "l": o.lead, "a": o.account, "c": o.campaign, "o": o.opportunity }),
        )
        .await;
    for (field, value) in data.as_object().unwrap() {
        assert_eq!(value, &Value::Null, "{field} found workspace B's object");
    }

    let all_ids = [
        &o.lead,
        &o.account,
        &o.campaign,
        &o.cost,
        &o.touchpoint,
        &o.opportunity,
        &o.user,
        &o.stage,
    ];
    for id in all_ids {
        let data = app
            .data(key, "query($id: ID!) { node(id: $id) { id __typename } }", json!({ "id": id }))
            .await;
        assert_eq!(data["node"], Value::Null, "node({id})");
    }
    let data = app
        .data(key, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": all_ids }))
        .await;
    assert_eq!(data["nodes"], json!(vec![Value::Null; 8]));

    // Filters by B's IDs match nothing.
    let filtered = "query($l: ID!, $a: ID!, $c: ID!, $u: ID!) {
      byLead: touchpoints(first: 10, filter: { leadId: $l }) { totalCount }
      byCampaign: touchpoints(first: 10, filter: { campaignId: $c }) { totalCount }
      leadsOfAccount: leads(first: 10, filter: { accountId: $a }) { totalCount }
      leadsOfOwner: leads(first: 10, filter: { ownerId: $u }) { totalCount }
      dealsOfAccount: opportunities(first: 10, filter: { accountId: $a }) { totalCount } }";
    let data = app
        .data(key, filtered, json!({ "l": o.lead, "a": o.account, "c": o.campaign, "u": o.user }))
        .await;
    for (field, value) in data.as_object().unwrap() {
        assert_eq!(value["totalCount"], 0, "{field}");
    }

    // B's own view is complete, so the emptiness above is isolation, not missing data.
    let data = b(&app, lists, json!({})).await;
    for field in ["leads", "accounts", "campaigns", "touchpoints", "opportunities", "users"] {
        assert_eq!(data[field]["totalCount"], 1, "B's {field}");
    }
    for id in all_ids {
        let data = b(&app, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(data["node"]["id"], id.as_str());
    }
    // Every workspace has its own funnel.
    let mine_stages = app.data(key, "{ funnelStages(first: 20) { nodes { id key } } }", json!({})).await;
    assert!(
        !mine_stages["funnelStages"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == o.stage.as_str()),
        "A's funnel holds none of B's stages"
    );
    assert_eq!(mine_stages["funnelStages"]["nodes"][0]["key"], "LEAD");
}
both!(reads_never_cross_workspaces);

async fn mutations_never_cross_workspaces(app: TestApp) {
    let o = seed_other(&app).await;
    let before = snapshot(&app, &o).await;
    let my_lead = app.lead("ada@acme.test").await;
    let my_account = app.account(json!({ "name": "Acme" })).await;
    let my_deal = app
        .opportunity(json!({ "accountId": my_account, "name": "Acme deal", "amount": "1" }))
        .await;
    let key = &app.keys.admin;

    // Changing B's objects by their IDs: not found.
    let not_found = [
        (
            "mutation($id: ID!) { updateLead(input: { id: $id, jobTitle: \"Spy\" }) { lead { id } } }",
            &o.lead,
        ),
        ("mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id } } }", &o.lead),
        (
            "mutation($id: ID!) { updateCampaign(input: { id: $id, name: \"Hijacked\", status: CANCELLED }) { campaign { id } } }",
            &o.campaign,
        ),
        (
            "mutation($id: ID!) { addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: \"1.00\", incurredOn: \"2026-01-01\" }) { cost { id } } }",
            &o.campaign,
        ),
        (
            "mutation($id: ID!) { setBuyingCenter(input: { opportunityId: $id, contacts: [] }) { opportunity { id } } }",
            &o.opportunity,
        ),
        (
            "mutation($id: ID!) { closeOpportunity(input: { id: $id, outcome: LOST }) { opportunity { id } } }",
            &o.opportunity,
        ),
        (
            "mutation($id: ID!) { upsertOpportunity(input: { id: $id, name: \"Hijacked\" }) { opportunity { id } } }",
            &o.opportunity,
        ),
    ];
    for (query, id) in not_found {
        let resp = app.gql(key, query, json!({ "id": id })).await;
        assert_eq!(error_code(&resp), "NOT_FOUND", "{query}: {resp}");
    }

    // Pointing A's objects at B's: a NOT_FOUND user error.
    let user_error_cases = [
        (
            "mutation($id: ID!, $x: ID!) { updateLead(input: { id: $id, accountId: $x }) { userErrors { field code } } }",
            json!({ "id": my_lead, "x": o.account }),
            "updateLead",
            "input.accountId",
        ),
        (
            "mutation($id: ID!, $x: ID!) { updateLead(input: { id: $id, ownerId: $x }) { userErrors { field code } } }",
            json!({ "id": my_lead, "x": o.user }),
            "updateLead",
            "input.ownerId",
        ),
        (
            "mutation($id: ID!, $x: ID!) { setBuyingCenter(input: { opportunityId: $id, contacts: [{ leadId: $x, role: \"Spy\" }] }) { userErrors { field code } } }",
            json!({ "id": my_deal, "x": o.lead }),
            "setBuyingCenter",
            "input.contacts.0.leadId",
        ),
        (
            "mutation($x: ID!) { upsertOpportunity(input: { accountId: $x, name: \"Mine\", amount: \"1\" }) { userErrors { field code } } }",
            json!({ "x": o.account }),
            "upsertOpportunity",
            "input.accountId",
        ),
        (
            "mutation { upsertOpportunity(input: { accountExternalId: \"gx-1\", name: \"Mine\", amount: \"1\" }) { userErrors { field code } } }",
            json!({}),
            "upsertOpportunity",
            "input.accountId",
        ),
        (
            "mutation($x: ID!) { recordTouchpoints(input: { items: [{ leadId: $x, type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\" }] }) { userErrors { field code } } }",
            json!({ "x": o.lead }),
            "recordTouchpoints",
            "input.items.0.leadId",
        ),
        (
            "mutation($l: ID!, $x: ID!) { recordTouchpoints(input: { items: [{ leadId: $l, campaignId: $x, type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\" }] }) { userErrors { field code } } }",
            json!({ "l": my_lead, "x": o.campaign }),
            "recordTouchpoints",
            "input.items.0.campaignId",
        ),
        (
            "mutation { recordTouchpoints(input: { items: [{ leadEmail: \"hank@globex.example\", type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\" }] }) { userErrors { field code } } }",
            json!({}),
            "recordTouchpoints",
            "input.items.0.leadEmail",
        ),
        (
            "mutation { recordTouchpoints(input: { items: [{ leadExternalId: \"gx-lead\", campaignExternalId: \"gx-c\", type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\" }] }) { userErrors { field code } } }",
            json!({}),
            "recordTouchpoints",
            "input.items.0.leadExternalId",
        ),
    ];
    for (query, vars, field, path) in user_error_cases {
        let data = app.data(key, query, vars).await;
        assert_eq!(user_errors(&data[field]), [(path.to_owned(), "NOT_FOUND".to_owned())], "{query}");
    }

    // The same external keys in A create A's own objects and leave B's alone.
    let upsert = "mutation { upsertLead(input: { email: \"hank@globex.example\", externalId: \"gx-lead\", firstName: \"Other Hank\" }) { created lead { id } } }";
    let data = app.data(key, upsert, json!({})).await;
    assert_eq!(data["upsertLead"]["created"], true);
    assert_ne!(id_of(&data["upsertLead"]["lead"]), o.lead);
    let upsert = "mutation { upsertAccount(input: { externalId: \"gx-1\", name: \"Not Globex\", industry: \"Spying\" }) { created account { id } } }";
    let data = app.data(key, upsert, json!({})).await;
    assert_eq!(data["upsertAccount"]["created"], true);
    assert_ne!(id_of(&data["upsertAccount"]["account"]), o.account);
    let upsert = "mutation { upsertAccount(input: { domain: \"globex.example\", name: \"Not Globex\" }) { created } }";
    assert_eq!(app.data(key, upsert, json!({})).await["upsertAccount"]["created"], true);
    let upsert = "mutation($a: ID!) { upsertOpportunity(input: { externalId: \"gx-d\", accountId: $a, name: \"Mine\", amount: \"2\" }) { created opportunity { id } } }";
    let data = app.data(key, upsert, json!({ "a": my_account })).await;
    assert_eq!(data["upsertOpportunity"]["created"], true);
    assert_ne!(id_of(&data["upsertOpportunity"]["opportunity"]), o.opportunity);
    let record = "mutation($l: ID!) { recordTouchpoints(input: { items: [{ leadId: $l, type: \"PAGE_VIEW\", occurredAt: \"2026-01-01T00:00:00Z\", idempotencyKey: \"gx-k\" }] }) { recordedCount duplicateCount } }";
    let data = app.data(key, record, json!({ "l": my_lead })).await;
    assert_eq!(
        data["recordTouchpoints"],
        json!({ "recordedCount": 1, "duplicateCount": 0 }),
        "idempotency keys are per workspace"
    );

    assert_eq!(snapshot(&app, &o).await, before, "workspace B is unchanged");
}
both!(mutations_never_cross_workspaces);
