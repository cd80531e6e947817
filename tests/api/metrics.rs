//! `GET /metrics`: exact request counts by operation and outcome, latency and statement
//! histograms, WebSocket connections and subscriptions, webhook deliveries, ingested rows, and
//! the cap on operation-name labels.
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, id_of};
use crate::webhooks::{Receiver, create_webhook};
use crate::websocket::{connect, init, send};

/// The exposition text (the tests reach the server over loopback, which may read it).
async fn scrape(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    resp.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as printed), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.parse().expect("a number"))
}

/// Scrapes until `series` reads `want` (gauges and background counters move a moment later).
async fn eventually(app: &TestApp, series: &str, want: f64) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(app).await;
        if sample(&text, series) == Some(want) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never became {want}:\n{text}");
}

async fn requests_are_counted_by_operation_and_outcome(app: TestApp) {
    let leads = "query Leads { leads(first: 5) { nodes { id } } }";
    for _ in 0..3 {
        app.data(&app.keys.analyst, leads, json!({})).await;
    }
    // Two validation errors of an operation seen before (it keeps its label), one refused key
    // (before any operation name is read).
    for _ in 0..2 {
        let resp = app.gql(&app.keys.analyst, "query Leads { nope }", json!({})).await;
        assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    let resp = app
        .gql("cl_not_a_key", "query Leads { leads(first: 1) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // A mutation that a role may not run: a name that never ran without errors takes no label.
    let q = "mutation Forbidden($i: CreateCampaignInput!) { createCampaign(input: $i) { campaign { id } } }";
    let resp = app
        .gql(
            &app.keys.analyst,
            q,
            json!({ "i": { "name": "X", "channel": "EMAIL", "kind": "ACQUISITION" } }),
        )
        .await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "FORBIDDEN");

    let text = scrape(&app).await;
    let count = |s: &str| sample(&text, s);
    assert_eq!(
        count(r#"closedloop_graphql_requests_total{operation="Leads",outcome="ok"}"#),
        Some(3.0)
    );
    assert_eq!(
        count(r#"closedloop_graphql_requests_total{operation="Leads",outcome="BAD_USER_INPUT"}"#),
        Some(2.0)
    );
    assert_eq!(
        count(r#"closedloop_graphql_requests_total{operation="anonymous",outcome="UNAUTHENTICATED"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"closedloop_graphql_requests_total{operation="other",outcome="FORBIDDEN"}"#),
        Some(1.0)
    );
    assert!(!text.contains(r#"operation="Forbidden""#), "{text}");
    // Histograms: one observation per request, in every bucket up to +Inf.
    assert_eq!(
        count(r#"closedloop_graphql_request_duration_seconds_count{operation="Leads"}"#),
        Some(5.0)
    );
    assert_eq!(
        count(r#"closedloop_graphql_request_duration_seconds_bucket{le="+Inf",operation="Leads"}"#),
        Some(5.0)
    );
    assert_eq!(
        count(r#"closedloop_graphql_request_sql_statements_count{operation="Leads"}"#),
        Some(5.0)
    );
    // A page of leads reads the leads table at least once per request.
    let statements = count(r#"closedloop_graphql_request_sql_statements_sum{operation="Leads"}"#).unwrap();
    assert!(statements >= 3.0, "{statements}");
    // Refused before execution: no statements of its own.
    assert_eq!(
        count(r#"closedloop_graphql_request_sql_statements_sum{operation="anonymous"}"#),
        Some(0.0)
    );
    // The pool: SQLite in memory has one connection; PostgreSQL up to 16.
    let max = count(r#"closedloop_db_pool_connections{state="max"}"#).unwrap();
    assert!(max == 1.0 || max == 16.0, "{max}");
    let idle = count(r#"closedloop_db_pool_connections{state="idle"}"#).unwrap();
    let in_use = count(r#"closedloop_db_pool_connections{state="in_use"}"#).unwrap();
    assert!(idle + in_use >= 1.0 && idle + in_use <= max, "{idle} + {in_use} of {max}");
}
both!(requests_are_counted_by_operation_and_outcome);

async fn websockets_subscriptions_webhooks_and_ingest_are_counted(app: TestApp) {
    assert_eq!(sample(&scrape(&app).await, "closedloop_websocket_connections"), Some(0.0));
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.sales).await;
    let q = "subscription { handoffEvents { seq } }";
    send(&mut socket, json!({ "id": "s", "type": "subscribe", "payload": { "query": q } })).await;
    eventually(&app, "closedloop_websocket_connections", 1.0).await;
    eventually(&app, "closedloop_subscriptions_active", 1.0).await;

    // A webhook receiver that fails once, then takes the event.
    let (receiver, url) = Receiver::start(1).await;
    create_webhook(&app, &url, json!(["CREATED"])).await;
    let lead = app.lead("metrics@example.com").await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field message code } } }";
    id_of(
        &app.mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": lead } }))
            .await["handoff"],
    );
    receiver.wait_for(2).await;
    let text = eventually(&app, r#"closedloop_webhook_deliveries_total{outcome="delivered"}"#, 1.0).await;
    assert_eq!(sample(&text, r#"closedloop_webhook_deliveries_total{outcome="failed"}"#), Some(1.0));

    let campaign = app.simple_campaign("Newsletter").await;
    let items: Vec<_> = (1..=3)
        .map(|d| json!({ "leadId": lead, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": format!("2026-01-0{d}T10:00:00Z") }))
        .collect();
    assert_eq!(app.record(json!(items)).await["recordedCount"], 3);
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"closedloop_ingested_rows_total{table="touchpoints"}"#), Some(3.0));

    drop(socket);
    eventually(&app, "closedloop_websocket_connections", 0.0).await;
    eventually(&app, "closedloop_subscriptions_active", 0.0).await;
}
both!(websockets_subscriptions_webhooks_and_ingest_are_counted);

async fn operation_names_beyond_the_cap_count_as_other(app: TestApp) {
    let cap = closedloop::metrics::MAX_OPERATION_NAMES;
    // Requests that fail take no label: without a key, or naming an operation the text lacks.
    let no_key = app.gql("", "query NoKey { viewer { role } }", json!({})).await;
    assert_eq!(no_key["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    for i in 0..cap + 5 {
        let q = format!("query Op{i} {{ viewer {{ role }} }}");
        app.data(&app.keys.analyst, &q, json!({})).await;
    }
    // Too long, or not a name the label should carry: other, whatever the cap.
    let long = format!("query {} {{ viewer {{ role }} }}", "L".repeat(65));
    app.data(&app.keys.analyst, &long, json!({})).await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.keys.analyst)
        .json(&json!({ "query": "query A { viewer { role } }", "operationName": "A\"} 1\n# injected" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let text = scrape(&app).await;
    let labelled = text
        .lines()
        .filter(|l| l.starts_with(r#"closedloop_graphql_requests_total{operation="Op"#))
        .count();
    assert_eq!(labelled, cap);
    assert_eq!(
        sample(
            &text,
            &format!(r#"closedloop_graphql_requests_total{{operation="Op{}",outcome="ok"}}"#, cap - 1)
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"closedloop_graphql_requests_total{{operation="Op{cap}",outcome="ok"}}"#)
        ),
        None
    );
    assert!(!text.contains(r#"operation="NoKey""#), "{text}");
    // 5 beyond the cap, the long name, the odd one (refused: its name names no operation) and
    // the one without a key.
    let other: f64 = text
        .lines()
        .filter(|l| l.starts_with(r#"closedloop_graphql_requests_total{operation="other""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(other, 8.0, "{text}");
    assert!(!text.contains("injected"));
}
both!(operation_names_beyond_the_cap_count_as_other);
