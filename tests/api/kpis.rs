//! RPM KPIs through the API on the attribution fixture (docs/kpis.md): ROI and cost ratios per
//! campaign, channel and overall, forecast against actual, the sales cycle, funnel conversion
//! and flow, and customer lifetime value; every figure computed by hand.
use serde_json::{Value, json};

use crate::attribution::fixture;
use crate::helpers::{TestApp, error_code, user_errors};

const RANGE: &str = r#"{ "from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z" }"#;

fn range() -> Value {
    serde_json::from_str(RANGE).unwrap()
}

async fn campaign_id(app: &TestApp, name: &str) -> String {
    let data = app
        .data(&app.keys.analyst, "{ campaigns(first: 10) { nodes { id name } } }", json!({}))
        .await;
    data["campaigns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn cost(app: &TestApp, campaign: &str, amount: &str, on: &str) {
    let q = "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) { userErrors { field code } } }";
    let input = json!({ "campaignId": campaign, "category": "MEDIA", "amount": amount, "incurredOn": on });
    let p = app
        .mutate(&app.keys.marketing, "addCampaignCost", q, json!({ "input": input }))
        .await;
    assert_eq!(user_errors(&p), vec![]);
}

const ROI: &str = "query($range: DateTimeRangeInput!) { campaignRoi(range: $range) { model
  campaigns { campaign { name } figures { revenue { amount } costs { amount } roi revenuePerCost costPerRevenue }
    conversions leadsSourced mqls costPerLead { amount } costPerMql { amount } costPerOrder { amount }
    expectedRevenue { amount } forecastDifference { amount } forecastRatio }
  channels { channel figures { revenue { amount } costs { amount } roi } }
  total { revenue { amount } costs { amount } roi revenuePerCost } } }";

async fn roi_and_cost_ratios_by_hand(app: TestApp) {
    let f = fixture(&app).await;
    let webinar = campaign_id(&app, "Webinar").await;
    // Costs in the range: Webinar 200.00 (1 Feb), Newsletter 100.00 (15 Jan); outside: 999.
    cost(&app, &webinar, "200", "2026-02-01").await;
    cost(&app, &f.newsletter, "100", "2026-01-15").await;
    cost(&app, &webinar, "999", "2026-04-01").await;
    let q = "mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) { userErrors { field code } } }";
    app.mutate(
        &app.keys.marketing,
        "updateCampaign",
        q,
        json!({ "input": { "id": webinar, "expectedRevenue": "500" } }),
    )
    .await;

    let r = app.data(&app.keys.analyst, ROI, json!({ "range": range() })).await["campaignRoi"].clone();
    assert_eq!(r["model"], "LINEAR");
    // LINEAR: Webinar 333.34 (1/3 deal, the extra cent and millionth to the first touch),
    // Newsletter 333.33. ROI (333.34 - 200) / 200 = 0.6667; (333.33 - 100) / 100 = 2.3333.
    // Ada's first touch of all (10 Jan, Webinar) lies in the range: 1 lead, 200.00 per lead;
    // Bob's (1 Jan 2025, Newsletter) does not. Nobody was handed off: no cost per MQL.
    // Cost per order: 200 / 0.333334 = 599.9988 -> 600.00; 100 / 0.333333 = 300.00.
    // Forecast: 333.34 against 500.00: -166.66, ratio 0.6667.
    assert_eq!(
        r["campaigns"],
        json!([
            { "campaign": { "name": "Webinar" },
              "figures": { "revenue": { "amount": "333.34" }, "costs": { "amount": "200.00" }, "roi": "0.6667", "revenuePerCost": "1.6667", "costPerRevenue": "0.6000" },
              "conversions": "0.333334", "leadsSourced": 1, "mqls": 0, "costPerLead": { "amount": "200.00" }, "costPerMql": null,
              "costPerOrder": { "amount": "600.00" }, "expectedRevenue": { "amount": "500.00" },
              "forecastDifference": { "amount": "-166.66" }, "forecastRatio": "0.6667" },
            { "campaign": { "name": "Newsletter" },
              "figures": { "revenue": { "amount": "333.33" }, "costs": { "amount": "100.00" }, "roi": "2.3333", "revenuePerCost": "3.3333", "costPerRevenue": "0.3000" },
              "conversions": "0.333333", "leadsSourced": 0, "mqls": 0, "costPerLead": null, "costPerMql": null,
              "costPerOrder": { "amount": "300.00" }, "expectedRevenue": null, "forecastDifference": null, "forecastRatio": null },
        ])
    );
    // Summed first, then divided: (666.67 - 300) / 300 = 1.2222.
    assert_eq!(
        r["total"],
        json!({ "revenue": { "amount": "666.67" }, "costs": { "amount": "300.00" }, "roi": "1.2222", "revenuePerCost": "2.2222" })
    );
    assert_eq!(r["channels"][0]["channel"], "WEBINAR");
    assert_eq!(r["channels"][0]["figures"]["roi"], "0.6667");
    // The same figures on each campaign of a page, in one computation.
    let q = "query($range: DateTimeRangeInput!) { campaigns(first: 10) { nodes { name performance(range: $range) {
        figures { roi costs { amount } } leadsSourced costPerOrder { amount } forecastRatio } } } }";
    app.statements.clear();
    let page = app.data(&app.keys.analyst, q, json!({ "range": range() })).await;
    let statements = app.statements.take().len();
    let webinar_row = page["campaigns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "Webinar")
        .unwrap()
        .clone();
    assert_eq!(
        webinar_row["performance"],
        json!({ "figures": { "roi": "0.6667", "costs": { "amount": "200.00" } }, "leadsSourced": 1, "costPerOrder": { "amount": "600.00" }, "forecastRatio": "0.6667" })
    );
    assert!(statements <= 20, "{statements} statements for a page of performances");
    // A filter by channel keeps only that channel's campaigns.
    let q = "query($range: DateTimeRangeInput!) { campaignRoi(range: $range, filter: { channel: \"email\" }) { campaigns { campaign { name } } total { costs { amount } } } }";
    let r = app.data(&app.keys.analyst, q, json!({ "range": range() })).await["campaignRoi"].clone();
    assert_eq!(r["campaigns"], json!([{ "campaign": { "name": "Newsletter" } }]));
    assert_eq!(r["total"]["costs"]["amount"], "100.00");
}
both!(roi_and_cost_ratios_by_hand);

async fn sales_cycle_funnel_and_lifetime_value_by_hand(app: TestApp) {
    let f = fixture(&app).await;
    // Rollout: opened 1 Feb, won 1 Mar (28 days); Support: 1 Mar to 15 Mar (14 days).
    let q = "query($range: DateTimeRangeInput!) { velocity(range: $range) { salesCycle { won lost open medianDays meanDays winRate averageWonAmount { amount } salesVelocity { amount } } } }";
    let v = app.data(&app.keys.analyst, q, json!({ "range": range() })).await;
    assert_eq!(
        v["velocity"]["salesCycle"],
        json!({ "won": 2, "lost": 0, "open": 0, "medianDays": "21.0000", "meanDays": "21.0000", "winRate": "1.0000",
                "averageWonAmount": { "amount": "750.00" }, "salesVelocity": { "amount": "0.00" } })
    );

    // The funnel: Ada, Bob and Carol entered Lead when created (now); Ada is handed off (MQL).
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { field code } } }";
    app.mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": f.ada } }))
        .await;
    let now = chrono::Utc::now();
    let around = json!({ "from": (now - chrono::Duration::hours(1)).to_rfc3339(), "to": (now + chrono::Duration::hours(1)).to_rfc3339() });
    let q = "query($range: DateTimeRangeInput!) { funnelConversion(range: $range) { stage { key } next { key } cohort converted rate }
      funnelFlow(range: $range) { stage { key } inflow toNext toSide toOther balanceFrom balanceTo } }";
    let data = app.data(&app.keys.analyst, q, json!({ "range": around })).await;
    assert_eq!(
        data["funnelConversion"][0],
        json!({ "stage": { "key": "LEAD" }, "next": { "key": "MQL" }, "cohort": 3, "converted": 1, "rate": "0.3333" })
    );
    let last = data["funnelConversion"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({ "stage": { "key": "LEAD" }, "next": { "key": "CUSTOMER" }, "cohort": 3, "converted": 0, "rate": "0.0000" })
    );
    let flow = data["funnelFlow"].as_array().unwrap();
    let lead = flow.iter().find(|x| x["stage"]["key"] == "LEAD").unwrap();
    assert_eq!(
        lead,
        &json!({ "stage": { "key": "LEAD" }, "inflow": 3, "toNext": 1, "toSide": 0, "toOther": 0, "balanceFrom": 0, "balanceTo": 2 })
    );

    // The funnel now: Bob and Carol in Lead, Ada in MQL.
    let q = "{ funnelSnapshot { stage { key } leads reached conversionFromPrevious } }";
    let snap = app.data(&app.keys.analyst, q, json!({})).await["funnelSnapshot"].clone();
    assert_eq!(
        snap,
        json!([
            { "stage": { "key": "LEAD" }, "leads": 2, "reached": 3, "conversionFromPrevious": null },
            { "stage": { "key": "MQL" }, "leads": 1, "reached": 1, "conversionFromPrevious": "0.3333" },
            { "stage": { "key": "SQL" }, "leads": 0, "reached": 0, "conversionFromPrevious": "0.0000" },
            { "stage": { "key": "OPPORTUNITY" }, "leads": 0, "reached": 0, "conversionFromPrevious": null },
            { "stage": { "key": "CUSTOMER" }, "leads": 0, "reached": 0, "conversionFromPrevious": null },
        ])
    );

    // Lifetime value of Initech a year after its first deal: 1,500 won, tenure 365 days (under
    // a year, so one year): 1500 + 1500 x 3 = 6,000.00; before any deal: null.
    let q = "query($id: ID!, $at: DateTime) { opportunity(id: $id) { account { lifetimeValue(asOf: $at) { amount currency } } } }";
    let data = app
        .data(&app.keys.analyst, q, json!({ "id": f.deal, "at": "2027-03-01T00:00:00Z" }))
        .await;
    assert_eq!(
        data["opportunity"]["account"]["lifetimeValue"],
        json!({ "amount": "6000.00", "currency": "EUR" })
    );
    let data = app
        .data(&app.keys.analyst, q, json!({ "id": f.deal, "at": "2026-01-01T00:00:00Z" }))
        .await;
    assert_eq!(data["opportunity"]["account"]["lifetimeValue"], Value::Null);

    // All sections at once, and a bad range.
    let q =
        "query($range: DateTimeRangeInput!) { rpm(range: $range) { conversion { cohort } flow { inflow } velocity { salesCycle { won } }
      value { databaseValue { amount } } roi { total { revenue { amount } } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "range": range() })).await;
    assert_eq!(data["rpm"]["velocity"]["salesCycle"]["won"], 2);
    assert_eq!(data["rpm"]["roi"]["total"]["revenue"]["amount"], "666.67");
    let bad = json!({ "from": "2026-04-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" });
    let resp = app.gql(&app.keys.analyst, q, json!({ "range": bad })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
}
both!(sales_cycle_funnel_and_lifetime_value_by_hand);

/// Reports in mutation payloads see the writes before them, even those of an earlier mutation
/// in the same request (the report cache's revision is read anew in a mutation).
async fn a_payload_report_sees_the_mutation_before_it(app: TestApp) {
    let webinar = app.simple_campaign("Webinar").await;
    let q = "mutation($id: ID!) {
        a: addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: \"100.00\", incurredOn: \"2026-03-01\" }) {
            campaign { performance(range: { from: \"2026-01-01T00:00:00Z\", to: \"2027-01-01T00:00:00Z\" }) { figures { costs { amount } } } } }
        b: addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: \"50.00\", incurredOn: \"2026-03-02\" }) {
            campaign { performance(range: { from: \"2026-01-01T00:00:00Z\", to: \"2027-01-01T00:00:00Z\" }) { figures { costs { amount } } } } } }";
    let data = app.data(&app.keys.admin, q, json!({ "id": webinar })).await;
    let costs = |k: &str| data[k]["campaign"]["performance"]["figures"]["costs"]["amount"].clone();
    assert_eq!((costs("a"), costs("b")), (json!("100.00"), json!("150.00")), "{data}");
}
both!(a_payload_report_sees_the_mutation_before_it);

/// Cost per order divides by the exact attributed conversions, not by the sum of rounded
/// millionths: "Fair" has the first of three touches of one deal and the first of seven of
/// another (LINEAR), and 1,000.00 of costs.
async fn cost_per_order_divides_by_exact_conversions(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let ada = crate::helpers::id_of(&app.upsert_lead(json!({ "email": "ada@initech.test", "accountId": account })).await);
    let bob = crate::helpers::id_of(&app.upsert_lead(json!({ "email": "bob@initech.test", "accountId": account })).await);
    let fair = app.simple_campaign("Fair").await;
    let other = app.simple_campaign("Other").await;
    let touch = |lead: &str, campaign: &str, day: u32| json!({ "leadId": lead, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": format!("2026-01-{day:02}T10:00:00Z") });
    let mut items = vec![touch(&ada, &fair, 10), touch(&ada, &other, 11), touch(&ada, &other, 12)];
    items.push(touch(&bob, &fair, 13));
    items.extend((14..20).map(|day| touch(&bob, &other, day)));
    assert_eq!(app.record(json!(items)).await["recordedCount"], 10);
    for (lead, amount, closed) in [(&ada, "900", "2026-02-01T00:00:00Z"), (&bob, "700", "2026-02-02T00:00:00Z")] {
        let deal = app
            .opportunity(
                json!({ "accountId": account, "name": format!("Deal {amount}"), "amount": amount, "createdAt": "2026-01-20T00:00:00Z" }),
            )
            .await;
        app.buying_center(&deal, json!([{ "leadId": lead, "role": "Decision maker", "isPrimary": true }]))
            .await;
        app.close_won(&deal, closed).await;
    }
    cost(&app, &fair, "1000", "2026-01-15").await;

    let q = "query($range: DateTimeRangeInput!) { campaignRoi(range: $range) { model campaigns { campaign { name } conversions costPerOrder { amount } } } }";
    let r = app.data(&app.keys.analyst, q, json!({ "range": range() })).await["campaignRoi"].clone();
    assert_eq!(r["model"], "LINEAR");
    // Exact conversions of Fair: 1/3 + 1/7 = 10/21; 1,000 / (10/21) = 21,000 / 10 = 2,100.00.
    // Credited millionths: 333,334 + 142,858 (each deal's leftover millionth goes to its first
    // touch) = 0.476192, and 1,000 / 0.476192 = 2,099.9908 would be 2,099.99, a cent short.
    // Other: 2/3 + 6/7 of the deals and no costs: 0.00 per order.
    let fair_row = r["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign"]["name"] == "Fair")
        .unwrap()
        .clone();
    assert_eq!(
        fair_row,
        json!({ "campaign": { "name": "Fair" }, "conversions": "0.476192", "costPerOrder": { "amount": "2100.00" } })
    );
    let other_row = r["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign"]["name"] == "Other")
        .unwrap()
        .clone();
    assert_eq!(other_row["costPerOrder"], json!({ "amount": "0.00" }));
}
both!(cost_per_order_divides_by_exact_conversions);
