//! Filter values that cannot match are refused: an unknown stage key, channel or touchpoint
//! type, or a country that is not an ISO 3166-1 alpha-2 code, is BAD_USER_INPUT naming the
//! allowed values, and a valid value still filters. The same countries are refused on write.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, user_errors};

/// The refusal of `query`: its `extensions.fields[0]` as (field, code) and the message.
async fn refusal(app: &TestApp, query: &str) -> (String, String, String) {
    let resp = app.gql(&app.keys.analyst, query, json!({})).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{resp:#}");
    assert!(
        resp["data"].is_null() || resp["data"].as_object().is_some_and(|d| d.values().all(Value::is_null)),
        "{resp:#}"
    );
    let e = &resp["errors"][0];
    let f = &e["extensions"]["fields"][0];
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{resp:#}")).to_owned();
    (text(&f["field"]), text(&f["code"]), text(&e["message"]))
}

async fn count(app: &TestApp, query: &str, list: &str) -> i64 {
    app.data(&app.keys.analyst, query, json!({})).await[list]["totalCount"]
        .as_i64()
        .unwrap()
}

async fn unknown_stage_keys_are_refused_with_the_funnel_s_keys(app: TestApp) {
    app.upsert_lead(json!({ "email": "ada@example.com", "stage": "MQL", "country": "DE" }))
        .await;

    let (field, code, message) = refusal(&app, r#"{ leads(first: 5, filter: { stage: ["MQL", "NOPE"] }) { totalCount } }"#).await;
    assert_eq!((field.as_str(), code.as_str()), ("filter.stage", "UNKNOWN_VALUE"));
    assert_eq!(
        message,
        r#"filter.stage: unknown stage key "NOPE"; this workspace has: LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER, NURTURE, DISQUALIFIED"#
    );

    assert_eq!(
        count(&app, r#"{ leads(first: 5, filter: { stage: ["mql"] }) { totalCount } }"#, "leads").await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"{ leads(first: 5, filter: { stage: ["CUSTOMER"] }) { totalCount } }"#,
            "leads"
        )
        .await,
        0
    );
}
both!(unknown_stage_keys_are_refused_with_the_funnel_s_keys);

async fn countries_must_be_iso_3166_alpha_2_codes(app: TestApp) {
    app.account(json!({ "name": "Acme", "country": "de" })).await;
    app.upsert_lead(json!({ "email": "ada@example.com", "country": "DE" })).await;

    let (field, code, message) = refusal(
        &app,
        r#"{ leads(first: 5, filter: { country: ["DE", "Germany"] }) { totalCount } }"#,
    )
    .await;
    assert_eq!((field.as_str(), code.as_str()), ("filter.country", "UNKNOWN_VALUE"));
    assert_eq!(
        message,
        r#"filter.country: "Germany" must be an ISO 3166-1 alpha-2 country code: two letters like DE, FR or GB"#
    );
    for bad in ["DEU", "UK", "XX"] {
        let (field, _, message) = refusal(
            &app,
            &format!(r#"{{ accounts(first: 5, filter: {{ country: ["{bad}"] }}) {{ totalCount }} }}"#),
        )
        .await;
        assert_eq!(field, "filter.country");
        assert!(message.contains(&format!("{bad:?}")) && message.contains("like DE"), "{message}");
    }

    assert_eq!(
        count(
            &app,
            r#"{ leads(first: 5, filter: { country: [" de "] }) { totalCount } }"#,
            "leads"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"{ accounts(first: 5, filter: { country: ["DE", "gb"] }) { totalCount } }"#,
            "accounts"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"{ accounts(first: 5, filter: { country: ["FR"] }) { totalCount } }"#,
            "accounts"
        )
        .await,
        0
    );
}
both!(countries_must_be_iso_3166_alpha_2_codes);

/// Every write that takes a country refuses one that is not an assigned code, and writes nothing.
async fn writes_refuse_countries_that_are_not_codes(app: TestApp) {
    let q = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } userErrors { field message code } } }";
    let data = app
        .data(
            &app.keys.admin,
            q,
            json!({ "input": { "email": "ada@example.com", "country": "Germany" } }),
        )
        .await;
    assert_eq!(
        user_errors(&data["upsertLead"]),
        [("input.country".to_owned(), "INVALID".to_owned())]
    );
    assert!(data["upsertLead"]["userErrors"][0]["message"].as_str().unwrap().contains("like DE"));
    assert!(data["upsertLead"]["lead"].is_null());

    let q = "mutation($input: UpsertAccountInput!) { upsertAccount(input: $input) { account { id } userErrors { field message code } } }";
    let data = app
        .data(&app.keys.admin, q, json!({ "input": { "name": "Acme", "country": "UK" } }))
        .await;
    assert_eq!(
        user_errors(&data["upsertAccount"]),
        [("input.country".to_owned(), "INVALID".to_owned())]
    );
    assert_eq!(count(&app, "{ accounts(first: 5) { totalCount } }", "accounts").await, 0);

    let q = "mutation($input: SetRoutingRulesInput!) { setRoutingRules(input: $input) { userErrors { field message code } } }";
    let claire = app.user("Claire", "claire@acme.test").await;
    let input = json!({ "rules": [{ "name": "Nowhere", "countries": ["XX"], "userIds": [claire] }] });
    let data = app.data(&app.keys.admin, q, json!({ "input": input })).await;
    assert_eq!(
        user_errors(&data["setRoutingRules"]),
        [("input.rules.0.countries".to_owned(), "INVALID".to_owned())]
    );

    let q = "mutation($input: CreatePersonaInput!) { createPersona(input: $input) { persona { id } userErrors { field message code } } }";
    let input = json!({ "name": "Germans", "matchThreshold": 50, "criteria": [
        { "attribute": "country", "operator": "IN", "values": ["DE", "Germany"], "weight": 10 },
    ] });
    let data = app.data(&app.keys.admin, q, json!({ "input": input })).await;
    assert_eq!(
        user_errors(&data["createPersona"]),
        [("input.criteria.0.values".to_owned(), "INVALID".to_owned())]
    );
    let input = json!({ "name": "Germans", "matchThreshold": 50, "criteria": [
        { "attribute": "country", "operator": "IN", "values": ["de", "AT"], "weight": 10 },
    ] });
    let data = app.data(&app.keys.admin, q, json!({ "input": input })).await;
    assert_eq!(data["createPersona"]["userErrors"], json!([]));
}
both!(writes_refuse_countries_that_are_not_codes);

async fn unknown_channels_are_refused_with_the_vocabulary(app: TestApp) {
    app.campaign(json!({ "name": "Drip", "channel": "EMAIL", "kind": "NURTURE" })).await;

    let (field, code, message) = refusal(&app, r#"{ campaigns(first: 5, filter: { channel: ["TV"] }) { totalCount } }"#).await;
    assert_eq!((field.as_str(), code.as_str()), ("filter.channel", "UNKNOWN_VALUE"));
    assert_eq!(
        message,
        "filter.channel: unknown channel \"TV\"; this workspace has: CONTENT, DIRECT, DISPLAY, EMAIL, EVENT, ORGANIC, \
         PAID_SEARCH, PAID_SOCIAL, REFERRAL, TRADE_FAIR, WEBINAR"
    );
    // The KPI filter's channel too.
    let range = r#"range: { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }"#;
    let (field, _, message) = refusal(
        &app,
        &format!(r#"{{ campaignRoi({range}, filter: {{ channel: "TV" }}) {{ total {{ roi }} }} }}"#),
    )
    .await;
    assert_eq!(field, "filter.channel");
    assert!(message.contains("EMAIL, EVENT"), "{message}");

    assert_eq!(
        count(
            &app,
            r#"{ campaigns(first: 5, filter: { channel: ["email"] }) { totalCount } }"#,
            "campaigns"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"{ campaigns(first: 5, filter: { channel: ["WEBINAR"] }) { totalCount } }"#,
            "campaigns"
        )
        .await,
        0
    );
    let q = format!(r#"{{ campaignRoi({range}, filter: {{ channel: "email" }}) {{ total {{ costs {{ amount }} }} }} }}"#);
    let data = app.data(&app.keys.analyst, &q, json!({})).await;
    assert!(data["campaignRoi"]["total"]["costs"]["amount"].is_string(), "{data:#}");

    // A term added to the vocabulary may be filtered on at once.
    let q = "mutation { addVocabularyTerm(input: { kind: CHANNEL, code: \"tv\" }) { term { code } userErrors { code } } }";
    app.mutate(&app.keys.admin, "addVocabularyTerm", q, json!({})).await;
    assert_eq!(
        count(
            &app,
            r#"{ campaigns(first: 5, filter: { channel: ["TV"] }) { totalCount } }"#,
            "campaigns"
        )
        .await,
        0
    );
}
both!(unknown_channels_are_refused_with_the_vocabulary);

async fn unknown_touchpoint_types_are_refused_with_the_vocabulary(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    let recorded = app
        .record(json!([{ "leadId": lead, "type": "EMAIL_OPEN", "occurredAt": "2026-01-05T10:00:00Z", "idempotencyKey": "k1" }]))
        .await;
    assert_eq!(recorded["recordedCount"], 1, "{recorded:#}");

    let (field, code, message) = refusal(
        &app,
        r#"{ touchpoints(first: 5, filter: { type: ["EMAIL_READ"] }) { totalCount } }"#,
    )
    .await;
    assert_eq!((field.as_str(), code.as_str()), ("filter.type", "UNKNOWN_VALUE"));
    assert!(
        message.starts_with(r#"filter.type: unknown touchpoint type "EMAIL_READ"; this workspace has: "#),
        "{message}"
    );
    for t in ["EMAIL_OPEN", "PAGE_VIEW", "WEBINAR_ATTEND"] {
        assert!(message.contains(t), "{message}");
    }

    assert_eq!(
        count(
            &app,
            r#"{ touchpoints(first: 5, filter: { type: ["email open"] }) { totalCount } }"#,
            "touchpoints"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"{ touchpoints(first: 5, filter: { type: ["PAGE_VIEW"] }) { totalCount } }"#,
            "touchpoints"
        )
        .await,
        0
    );
}
both!(unknown_touchpoint_types_are_refused_with_the_vocabulary);

/// Many filters in one request read the stage keys and vocabularies once.
async fn the_allowed_values_are_read_once_per_request(app: TestApp) {
    let q = r#"{
        a: campaigns(first: 1, filter: { channel: ["EMAIL"] }) { totalCount }
        b: campaigns(first: 1, filter: { channel: ["WEBINAR"] }) { totalCount }
        c: touchpoints(first: 1, filter: { type: ["PAGE_VIEW"] }) { totalCount }
        d: leads(first: 1, filter: { stage: ["MQL"] }) { totalCount }
    }"#;
    app.statements.clear();
    app.data(&app.keys.analyst, q, json!({})).await;
    let vocabulary_reads = app
        .statements
        .take()
        .iter()
        .filter(|s| s.contains("vocabulary_term") && !s.starts_with("INSERT"))
        .count();
    assert_eq!(vocabulary_reads, 1);
}
both!(the_allowed_values_are_read_once_per_request);
