//! Global IDs: `node(id:)` and `nodes(ids:)` resolve every type; malformed IDs find nothing.
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, global_id, id_of};

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
  ... on Lead { email } ... on Account { name } ... on Campaign { name } ... on CampaignCost { amount { amount } }
  ... on FunnelStage { key } ... on Opportunity { name } ... on Persona { name matchThreshold } ... on Touchpoint { type }
  ... on User { name } } }";

/// A persona, inserted directly: the API has no mutation for personas yet.
async fn persona(app: &TestApp) -> String {
    let ws = closedloop::store::workspace::by_name(&app.db.conn, "Acme").await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let row = entity::persona::ActiveModel {
        workspace_id: Set(ws.id),
        name: Set("Peter Produzent".into()),
        description: Set(None),
        match_threshold: Set(60),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.db.conn)
    .await
    .unwrap();
    global_id("Persona", row.id)
}

async fn node_resolves_every_type(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let lead = app.upsert_lead(json!({ "email": "ada@initech.test", "accountId": account })).await;
    let lead = id_of(&lead);
    let campaign = app.simple_campaign("Newsletter").await;
    let cost = app
        .data(
            &app.keys.admin,
            "mutation($c: ID!) { addCampaignCost(input: { campaignId: $c, category: MEDIA, amount: \"12.5\", incurredOn: \"2026-01-01\" }) { cost { id } } }",
            json!({ "c": campaign }),
        )
        .await;
    let cost = id_of(&cost["addCampaignCost"]["cost"]);
    let touchpoint = id_of(
        &app.record(json!([{ "leadId": lead, "campaignId": campaign, "type": "WEBINAR_ATTEND", "occurredAt": "2026-01-02T00:00:00Z" }]))
            .await["touchpoints"][0],
    );
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Rollout", "amount": "5" }))
        .await;
    let user = app.user("Sam Seller", "sam@acme.test").await;
    let stage = app
        .data(&app.keys.admin, "{ funnelStages(first: 2) { nodes { id key } } }", json!({}))
        .await;
    let stage = id_of(&stage["funnelStages"]["nodes"][1]);
    let persona = persona(&app).await;

    let expected = [
        (&lead, json!({ "__typename": "Lead", "id": lead, "email": "ada@initech.test" })),
        (&account, json!({ "__typename": "Account", "id": account, "name": "Initech" })),
        (&campaign, json!({ "__typename": "Campaign", "id": campaign, "name": "Newsletter" })),
        (
            &cost,
            json!({ "__typename": "CampaignCost", "id": cost, "amount": { "amount": "12.50" } }),
        ),
        (&stage, json!({ "__typename": "FunnelStage", "id": stage, "key": "MQL" })),
        (&deal, json!({ "__typename": "Opportunity", "id": deal, "name": "Rollout" })),
        (
            &persona,
            json!({ "__typename": "Persona", "id": persona, "name": "Peter Produzent", "matchThreshold": 60 }),
        ),
        (
            &touchpoint,
            json!({ "__typename": "Touchpoint", "id": touchpoint, "type": "WEBINAR_ATTEND" }),
        ),
        (&user, json!({ "__typename": "User", "id": user, "name": "Sam Seller" })),
    ];
    for (id, node) in &expected {
        let data = app.data(&app.keys.analyst, NODE, json!({ "id": id })).await;
        assert_eq!(&data["node"], node);
    }

    // nodes(ids:) keeps the order asked, with null where nothing is found.
    let mut ask: Vec<String> = expected.iter().rev().map(|(id, _)| (*id).clone()).collect();
    ask.insert(2, global_id("Lead", 999_999));
    ask.push("garbage".into());
    let q = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";
    let data = app.data(&app.keys.analyst, q, json!({ "ids": ask })).await;
    let got: Vec<Value> = data["nodes"].as_array().unwrap().clone();
    assert_eq!(got.len(), 11);
    assert_eq!(got[2], Value::Null);
    assert_eq!(got[10], Value::Null);
    assert_eq!(got[0], json!({ "__typename": "User", "id": user }));
    assert_eq!(got[1], json!({ "__typename": "Touchpoint", "id": touchpoint }));
    assert_eq!(got[3], json!({ "__typename": "Persona", "id": persona }));
    assert_eq!(got[9], json!({ "__typename": "Lead", "id": lead }));

    let too_many = vec![lead.clone(); 101];
    let resp = app.gql(&app.keys.analyst, q, json!({ "ids": too_many })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    let hundred = vec![lead.clone(); 100];
    let data = app.data(&app.keys.analyst, q, json!({ "ids": hundred })).await;
    assert_eq!(data["nodes"].as_array().unwrap().len(), 100);
}
both!(node_resolves_every_type);

async fn malformed_ids_find_nothing(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let malformed = [
        "garbage".to_owned(),
        "".to_owned(),
        "!!!".to_owned(),
        b64("Lead"),
        b64("Lead:"),
        b64("Lead:abc"),
        b64("Lead:-1"),
        b64("Lead:0"),
        b64("Wizard:1"),
        b64("lead:1"),
        global_id("Lead", 999_999),
    ];
    for id in &malformed {
        let resp = app.gql(&app.keys.analyst, NODE, json!({ "id": id })).await;
        assert_eq!(resp, json!({ "data": { "node": null } }), "node({id:?})");
    }

    // Typed lookups: a malformed ID, or one of another type, is NOT_FOUND; a well-formed ID
    // that matches nothing is null.
    let account = app.account(json!({ "name": "Initech" })).await;
    for (field, wrong_type) in [("lead", &account), ("account", &lead), ("campaign", &lead), ("opportunity", &lead)] {
        let q = format!("query($id: ID!) {{ {field}(id: $id) {{ id }} }}");
        for id in ["garbage", wrong_type.as_str()] {
            let resp = app.gql(&app.keys.analyst, &q, json!({ "id": id })).await;
            assert_eq!(error_code(&resp), "NOT_FOUND", "{field}({id:?}): {resp}");
            assert_eq!(resp["data"][field], Value::Null);
        }
        let type_name = format!("{}{}", field[..1].to_uppercase(), &field[1..]);
        let resp = app
            .gql(&app.keys.analyst, &q, json!({ "id": global_id(&type_name, 999_999) }))
            .await;
        assert_eq!(resp, json!({ "data": { field: null } }), "{field} that does not exist");
    }
    let data = app
        .data(
            &app.keys.analyst,
            "query($id: ID!) { lead(id: $id) { id } }",
            json!({ "id": format!(" {lead} ") }),
        )
        .await;
    assert_eq!(data["lead"]["id"], lead.as_str(), "surrounding blanks are ignored");
}
both!(malformed_ids_find_nothing);
