//! Money is exact: decimal strings in, decimal strings with two places out, no floats.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, user_errors};

const ADD_COST: &str = "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) {
  cost { id amount { amount currency } category incurredOn note } campaign { totalCost { amount } } userErrors { field code message } } }";

async fn add_cost(app: &TestApp, campaign: &str, amount: Value) -> Value {
    let input = json!({ "campaignId": campaign, "category": "MEDIA", "amount": amount, "incurredOn": "2026-03-01" });
    app.data(&app.keys.marketing, ADD_COST, json!({ "input": input })).await["addCampaignCost"].clone()
}

async fn total_cost(app: &TestApp, campaign: &str) -> String {
    let q = "query($id: ID!) { campaign(id: $id) { totalCost { amount currency } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": campaign })).await;
    assert_eq!(data["campaign"]["totalCost"]["currency"], "EUR");
    data["campaign"]["totalCost"]["amount"].as_str().unwrap().to_owned()
}

async fn costs_add_up_exactly(app: TestApp) {
    let campaign = app.simple_campaign("Newsletter").await;
    let first = add_cost(&app, &campaign, json!("0.10")).await;
    assert_eq!(first["userErrors"], json!([]));
    assert_eq!(first["cost"]["amount"], json!({ "amount": "0.10", "currency": "EUR" }));
    assert_eq!(first["campaign"]["totalCost"]["amount"], "0.10");
    let second = add_cost(&app, &campaign, json!("0.20")).await;
    assert_eq!(
        second["campaign"]["totalCost"]["amount"], "0.30",
        "0.1 + 0.2 is 0.30, not 0.30000000000000004"
    );
    assert_eq!(total_cost(&app, &campaign).await, "0.30");

    // Scale is normalized to two places; trailing zeros are not precision.
    for (input, shown) in [("1234.5", "1234.50"), ("7", "7.00"), ("2.500", "2.50"), ("19.99", "19.99")] {
        let payload = add_cost(&app, &campaign, json!(input)).await;
        assert_eq!(payload["cost"]["amount"]["amount"], shown, "{input:?}");
    }
    // 0.30 + 1234.50 + 7.00 + 2.50 + 19.99 = 1264.29
    assert_eq!(total_cost(&app, &campaign).await, "1264.29");

    // A negative line corrects an earlier one.
    let payload = add_cost(&app, &campaign, json!("-0.99")).await;
    assert_eq!(payload["cost"]["amount"]["amount"], "-0.99");
    assert_eq!(total_cost(&app, &campaign).await, "1263.30");

    // Many small amounts stay exact: 100 × 0.01 on a fresh campaign is 1.00.
    let small = app.simple_campaign("Pennies").await;
    for _ in 0..100 {
        assert_eq!(add_cost(&app, &small, json!("0.01")).await["userErrors"], json!([]));
    }
    assert_eq!(total_cost(&app, &small).await, "1.00");

    let q = "query($id: ID!) { campaign(id: $id) { costs { amount { amount } category incurredOn } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": campaign })).await;
    let amounts: Vec<&str> = data["campaign"]["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["0.10", "0.20", "1234.50", "7.00", "2.50", "19.99", "-0.99"]);
}
both!(costs_add_up_exactly);

async fn fractions_of_a_cent_and_numbers_are_refused(app: TestApp) {
    let campaign = app.simple_campaign("Newsletter").await;
    for bad in ["0.001", "12.345", "-0.005"] {
        let payload = add_cost(&app, &campaign, json!(bad)).await;
        assert_eq!(
            user_errors(&payload),
            [("input.amount".to_owned(), "INVALID".to_owned())],
            "{bad:?}"
        );
        assert_eq!(payload["cost"], Value::Null);
    }
    // What is not a decimal number at all is the caller's mistake.
    for garbage in ["1,5", "abc", "", "0x10", "NaN"] {
        let input = json!({ "campaignId": campaign, "category": "MEDIA", "amount": garbage, "incurredOn": "2026-03-01" });
        let resp = app.gql(&app.keys.marketing, ADD_COST, json!({ "input": input })).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{garbage:?}: {resp}");
    }
    // A JSON number never reaches the server as money, in variables or inline.
    for number in [json!(0.1), json!(10), json!(1234.5)] {
        let input = json!({ "campaignId": campaign, "category": "MEDIA", "amount": number, "incurredOn": "2026-03-01" });
        let resp = app.gql(&app.keys.marketing, ADD_COST, json!({ "input": input })).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{number}: {resp}");
        assert!(resp["data"].is_null(), "{resp}");
    }
    let inline = "mutation($id: ID!) { addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: 0.1, incurredOn: \"2026-03-01\" }) { cost { id } } }";
    let resp = app.gql(&app.keys.marketing, inline, json!({ "id": campaign })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    assert_eq!(total_cost(&app, &campaign).await, "0.00", "nothing was recorded");

    // Budgets and deal amounts follow the same rules, and may not be negative.
    let create = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { budget { amount } } userErrors { field code } } }";
    for (budget, expected) in [("0.005", "INVALID"), ("-1.00", "INVALID")] {
        let input = json!({ "name": "X", "channel": "EMAIL", "kind": "NURTURE", "budget": budget });
        let data = app.data(&app.keys.marketing, create, json!({ "input": input })).await;
        assert_eq!(
            user_errors(&data["createCampaign"]),
            [("input.budget".to_owned(), expected.to_owned())]
        );
    }
    let input = json!({ "name": "X", "channel": "EMAIL", "kind": "NURTURE", "budget": 100 });
    let resp = app.gql(&app.keys.marketing, create, json!({ "input": input })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
}
both!(fractions_of_a_cent_and_numbers_are_refused);

async fn large_amounts_round_trip(app: TestApp) {
    let account = app.account(json!({ "name": "Megacorp" })).await;
    let q = "mutation($input: UpsertOpportunityInput!) { upsertOpportunity(input: $input) { opportunity { amount { amount } } userErrors { field code } } }";
    // More digits than an f64 holds exactly: 9007199254740993 cents is 2^53 + 1.
    for (amount, shown) in [("90071992547409.93", "90071992547409.93"), ("0", "0.00"), ("0.1", "0.10")] {
        let input = json!({ "accountId": account, "name": format!("Deal {amount}"), "amount": amount });
        let payload = app.mutate(&app.keys.sales, "upsertOpportunity", q, json!({ "input": input })).await;
        assert_eq!(payload["opportunity"]["amount"]["amount"], shown);
    }
    let input = json!({ "accountId": account, "name": "Too big", "amount": "99999999999999999999" });
    let data = app.data(&app.keys.sales, q, json!({ "input": input })).await;
    assert_eq!(
        user_errors(&data["upsertOpportunity"]),
        [("input.amount".to_owned(), "INVALID".to_owned())]
    );
}
both!(large_amounts_round_trip);
