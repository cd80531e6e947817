//! Related objects load in batches: the number of SQL statements of a nested query does not grow
//! with the page size.
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of};

/// 60 leads, each at its own account, each with 7 touchpoints of 3 campaigns.
async fn seed(app: &TestApp) {
    let campaigns = [
        app.simple_campaign("Newsletter").await,
        app.simple_campaign("Webinar").await,
        app.simple_campaign("Trade fair").await,
    ];
    let owner = app.user("Sam Seller", "sam@acme.test").await;
    let mut items = Vec::new();
    for i in 0..60 {
        let account = app.account(json!({ "name": format!("Account {i:02}") })).await;
        let lead = app
            .upsert_lead(json!({ "email": format!("lead{i:02}@example.com"), "accountId": account, "ownerId": owner, "stage": "MQL" }))
            .await;
        for t in 0..7 {
            items.push(json!({
                "leadId": id_of(&lead), "campaignId": campaigns[(i + t) % 3], "type": "EMAIL_OPEN",
                "occurredAt": format!("2026-01-{:02}T10:00:00Z", t + 1),
            }));
        }
    }
    assert_eq!(app.record(json!(items)).await["recordedCount"], 420);
    let account = id_of(
        &app.data(&app.keys.admin, "{ accounts(first: 1) { nodes { id } } }", json!({}))
            .await["accounts"]["nodes"][0],
    );
    let lead = id_of(&app.data(&app.keys.admin, "{ leads(first: 1) { nodes { id } } }", json!({})).await["leads"]["nodes"][0]);
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Deal", "amount": "10" }))
        .await;
    let q = "mutation($o: ID!, $l: ID!) { setBuyingCenter(input: { opportunityId: $o, contacts: [{ leadId: $l, role: \"Champion\" }] }) { userErrors { code } } }";
    app.mutate(&app.keys.sales, "setBuyingCenter", q, json!({ "o": deal, "l": lead }))
        .await;
}

/// Runs `query` five times: its data and the statements of the costliest run.
async fn statements_of(app: &TestApp, query: &str, vars: Value) -> (Value, Vec<String>) {
    // The key lookup is cached after the first request; make sure it is not counted.
    app.data(&app.keys.analyst, "{ viewer { role } }", json!({})).await;
    let mut worst: Vec<String> = Vec::new();
    let mut data = Value::Null;
    for _ in 0..5 {
        app.statements.clear();
        data = app.data(&app.keys.analyst, query, vars.clone()).await;
        let stmts = app.statements.take();
        if stmts.len() > worst.len() {
            worst = stmts;
        }
    }
    (data, worst)
}

/// A statement without its bound values: `IN (?, ?, ?)` and `IN ($3, $4)` both read `IN (?)`,
/// and a run of identical `UNION ALL` arms (one per parent) reads as one arm.
fn shape(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    while out.contains("?, ?") {
        out = out.replace("?, ?", "?");
    }
    let mut arms: Vec<&str> = out.split(" UNION ALL ").collect();
    arms.dedup();
    arms.join(" UNION ALL ")
}

/// One line per statement: what it reads and how many values it binds.
fn summary(stmts: &[String]) -> String {
    stmts
        .iter()
        .map(|s| {
            let from = s.split(" FROM ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?");
            format!("  {from} ({} values)\n", s.matches('?').count() + s.matches('$').count())
        })
        .collect()
}

/// The statements of a page of 10 and of 50 are the same few queries: the same set of shapes,
/// at most `max_shapes` of them, each run once. A batch holds every key its level asks for
/// (`loaders::PollGate`), however busy the machine; one query per row would run a shape 10 and
/// 50 times.
fn assert_batched(ten: &[String], fifty: &[String], max_shapes: usize) {
    let shapes = |stmts: &[String]| stmts.iter().map(|s| shape(s)).collect::<std::collections::BTreeSet<_>>();
    let (s10, s50) = (shapes(ten), shapes(fifty));
    assert_eq!(
        s10,
        s50,
        "the page size changes which queries run:\n{}vs\n{}",
        summary(ten),
        summary(fifty)
    );
    assert!(s50.len() <= max_shapes, "{} different queries:\n{}", s50.len(), summary(fifty));
    for stmts in [ten, fifty] {
        for s in &s50 {
            let n = stmts.iter().filter(|t| shape(t) == *s).count();
            assert_eq!(n, 1, "a query ran {n} times for one page:\n{}", summary(stmts));
        }
    }
}

const LEADS: &str =
    "query($n: Int!) { leads(first: $n) { nodes { account { name } touchpoints(first: 5) { nodes { type campaign { name } } } } } }";

async fn nested_lists_cost_a_fixed_number_of_statements(app: TestApp) {
    seed(&app).await;
    let (small, ten) = statements_of(&app, LEADS, json!({ "n": 10 })).await;
    let (large, fifty) = statements_of(&app, LEADS, json!({ "n": 50 })).await;

    // The data is all there.
    let nodes = large["leads"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert_eq!(small["leads"]["nodes"].as_array().unwrap().len(), 10);
    for (i, lead) in nodes.iter().enumerate() {
        assert_eq!(lead["account"]["name"], format!("Account {i:02}"));
        let tps = lead["touchpoints"]["nodes"].as_array().unwrap();
        assert_eq!(tps.len(), 5);
        assert!(tps.iter().all(|t| t["campaign"]["name"].is_string()));
    }

    // One query each for the leads, their accounts, their touchpoints and those campaigns.
    assert_batched(&ten, &fifty, 4);
    assert!(ten.len() <= 6 && fifty.len() <= 6, "{} and {} statements", ten.len(), fifty.len());

    // More related objects, still a fixed number of queries.
    let rich = "query($n: Int!) { leads(first: $n) { totalCount nodes { stage { key } owner { name } opportunities { name }
      account { name leads(first: 2) { totalCount nodes { email } } }
      touchpoints(first: 3) { totalCount nodes { lead { email } campaign { name touchpointCount totalCost { amount } } } } } } }";
    let (_, ten) = statements_of(&app, rich, json!({ "n": 10 })).await;
    let (data, fifty) = statements_of(&app, rich, json!({ "n": 50 })).await;
    assert_eq!(data["leads"]["nodes"][0]["opportunities"], json!([{ "name": "Deal" }]));
    assert_eq!(data["leads"]["nodes"][1]["touchpoints"]["totalCount"], 7);
    assert_eq!(data["leads"]["nodes"][1]["account"]["leads"]["totalCount"], 1);
    // leads, count, stages, users, buying centers + their deals, accounts, top leads and top
    // touchpoints per parent, touchpoint counts, touchpoint leads, campaigns, lead counts, costs.
    assert_batched(&ten, &fifty, 14);

    // From the campaigns' side.
    let campaigns = "{ campaigns(first: 3) { nodes { name totalCost { amount } costs { id }
      touchpoints(first: 20) { totalCount nodes { lead { email account { name } } } } } } }";
    let (data, stmts) = statements_of(&app, campaigns, json!({})).await;
    assert_eq!(data["campaigns"]["nodes"][0]["touchpoints"]["totalCount"], 140);
    assert_eq!(data["campaigns"]["nodes"][2]["touchpoints"]["nodes"].as_array().unwrap().len(), 20);
    assert!(stmts.len() <= 6, "{} statements:\n{}", stmts.len(), summary(&stmts));
}
both!(alone: nested_lists_cost_a_fixed_number_of_statements);

async fn scores_of_a_page_cost_a_fixed_number_of_statements(app: TestApp) {
    seed(&app).await;
    let q = "mutation { createScoringModel(input: { name: \"Default\" }) { rescoredLeads userErrors { code } } }";
    assert_eq!(
        app.data(&app.keys.marketing, q, json!({})).await["createScoringModel"]["rescoredLeads"],
        60
    );
    // Now (every row judged by its stored value) and on Jan 3 (touches after it: recomputed).
    let page = "query($n: Int!) { leads(first: $n) { nodes { score { cell activityScore }
      past: score(asOf: \"2026-01-03T00:00:00Z\") { activityScore }
      scoreBreakdown { touchpoints { earned touchpoint { type } } } } } }";
    let (_, ten) = statements_of(&app, page, json!({ "n": 10 })).await;
    let (data, fifty) = statements_of(&app, page, json!({ "n": 50 })).await;
    let first = &data["leads"]["nodes"][0];
    // Two opens (5 points each) by Jan 3, at 10:00 on Jan 1 and 2, with a 30-day half-life.
    let expected = 5.0 * (-(38.0_f64 / 24.0) / 30.0).exp2() + 5.0 * (-(14.0_f64 / 24.0) / 30.0).exp2();
    assert!((first["past"]["activityScore"].as_f64().unwrap() - expected).abs() < 1e-9);
    assert_eq!(first["scoreBreakdown"]["touchpoints"].as_array().unwrap().len(), 7);
    // leads, models, stored scores (for both times), touchpoints of the leads with touches
    // after Jan 3, lead rows, accounts and all touchpoints for the breakdowns.
    assert_batched(&ten, &fifty, 7);
}
both!(alone: scores_of_a_page_cost_a_fixed_number_of_statements);

/// Each won deal of a page explains its credits: the paths of all of them come from one batch.
async fn attribution_of_a_page_costs_a_fixed_number_of_statements(app: TestApp) {
    seed(&app).await;
    let leads = app
        .data(&app.keys.admin, "{ leads(first: 60) { nodes { id account { id } } } }", json!({}))
        .await;
    let close = "mutation($id: ID!) { closeOpportunity(input: { id: $id, outcome: WON, closedAt: \"2026-02-01T00:00:00Z\" }) { userErrors { code } } }";
    let set = "mutation($o: ID!, $l: ID!) { setBuyingCenter(input: { opportunityId: $o, contacts: [{ leadId: $l, role: \"Champion\", isPrimary: true }] }) { userErrors { code } } }";
    for (i, lead) in leads["leads"]["nodes"].as_array().unwrap().iter().enumerate() {
        let deal = app
            .opportunity(json!({ "accountId": lead["account"]["id"], "name": format!("Won {i:02}"), "amount": "100", "createdAt": "2026-01-01T00:00:00Z" }))
            .await;
        app.mutate(&app.keys.sales, "setBuyingCenter", set, json!({ "o": deal, "l": lead["id"] }))
            .await;
        app.mutate(&app.keys.sales, "closeOpportunity", close, json!({ "id": deal })).await;
    }
    let page = "query($n: Int!) { opportunities(first: $n, filter: { status: [WON] }) { nodes { name
      attribution(model: { kind: LINEAR }) { credits { share amount { amount } campaign { name } lead { email } touchpoint { type } } } } } }";
    let (_, ten) = statements_of(&app, page, json!({ "n": 10 })).await;
    let (data, fifty) = statements_of(&app, page, json!({ "n": 50 })).await;
    let nodes = data["opportunities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    for n in nodes {
        let credits = n["attribution"]["credits"].as_array().unwrap();
        assert_eq!(credits.len(), 7, "{n}");
        // 100.00 over 7 touches by largest remainder: 14.29 four times, 14.28 three times.
        let amounts: Vec<&str> = credits.iter().map(|c| c["amount"]["amount"].as_str().unwrap()).collect();
        assert_eq!(amounts, ["14.29", "14.29", "14.29", "14.29", "14.28", "14.28", "14.28"]);
        assert!(
            credits
                .iter()
                .all(|c| c["campaign"]["name"].is_string() && c["touchpoint"]["type"] == "EMAIL_OPEN")
        );
    }
    // Deals; their path (deals, buying centers, touchpoints, conversions); campaigns, leads and
    // touchpoints of the credits.
    assert_batched(&ten, &fifty, 8);
}
both!(alone: attribution_of_a_page_costs_a_fixed_number_of_statements);
