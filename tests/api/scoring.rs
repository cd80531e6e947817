//! Lead scoring: models, scores and their breakdown, the matrix, score filters, automatic
//! handoffs of leads entering an MQL cell, and bulk re-scoring after a model change.
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, ids, user_errors};

const MODEL_FIELDS: &str = "scoringModel { id name isDefault version halfLifeDays mqlCells cooldownDays gradeBands { a b c } activityBands { band1 band2 band3 } activityRules { type points dailyCap campaign { id } } profileRules { attribute operator values points } } rescoredLeads handedOff userErrors { field message code }";

async fn create_model(app: &TestApp, input: Value) -> Value {
    let q = format!("mutation($input: ScoringModelInput!) {{ createScoringModel(input: $input) {{ {MODEL_FIELDS} }} }}");
    app.data(&app.keys.marketing, &q, json!({ "input": input })).await["createScoringModel"].clone()
}

async fn update_model(app: &TestApp, id: &str, changes: Value) -> Value {
    let q = format!("mutation($input: UpdateScoringModelInput!) {{ updateScoringModel(input: $input) {{ {MODEL_FIELDS} }} }}");
    app.data(&app.keys.marketing, &q, json!({ "input": { "id": id, "changes": changes } }))
        .await["updateScoringModel"]
        .clone()
}

/// Heads of something fit (80 points, grade A); students do not (-50).
fn fit_model() -> Value {
    json!({
        "name": "Default",
        "profileRules": [
            { "attribute": "jobTitle", "operator": "CONTAINS", "values": ["head"], "points": 80 },
            { "attribute": "jobTitle", "operator": "CONTAINS", "values": ["student"], "points": -50 },
        ],
    })
}

fn ago(minutes: i64) -> String {
    (Utc::now() - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn touches(lead: &str, types: &[&str], minutes_ago: i64) -> Value {
    Value::Array(
        types
            .iter()
            .map(|t| json!({ "leadId": lead, "type": t, "occurredAt": ago(minutes_ago) }))
            .collect(),
    )
}

async fn score(app: &TestApp, lead: &str, as_of: Option<&str>) -> Value {
    let q = "query($id: ID!, $asOf: DateTime) { node(id: $id) { ... on Lead { stage { key } score(asOf: $asOf) { profileScore grade activityScore band cell isMqlCell } } } }";
    app.data(&app.keys.analyst, q, json!({ "id": lead, "asOf": as_of })).await["node"].clone()
}

async fn created_events(app: &TestApp, lead: &str) -> usize {
    let log = app
        .data(&app.keys.analyst, "{ handoffEventLog(first: 100) { kind lead { id } } }", json!({}))
        .await;
    log["handoffEventLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "CREATED" && e["lead"]["id"] == lead)
        .count()
}

async fn matrix(app: &TestApp, filter: Value) -> Vec<(String, i64)> {
    let q = "query($f: LeadFilterInput) { scoringMatrix(filter: $f) { total cells { cell count isMql } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
    data["scoringMatrix"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cell"].as_str().unwrap().to_owned(), c["count"].as_i64().unwrap()))
        .collect()
}

fn count(m: &[(String, i64)], cell: &str) -> i64 {
    m.iter().find(|(c, _)| c == cell).map_or(0, |(_, n)| *n)
}

async fn touchpoints_move_a_lead_into_a1_and_hand_it_off_once(app: TestApp) {
    let made = create_model(&app, fit_model()).await;
    assert_eq!(user_errors(&made), vec![]);
    assert_eq!(made["scoringModel"]["isDefault"], true);
    assert_eq!(made["scoringModel"]["halfLifeDays"], "30");
    assert_eq!(made["scoringModel"]["mqlCells"], json!(["A1", "A2", "B1"]));
    assert_eq!(made["scoringModel"]["activityRules"].as_array().unwrap().len(), 9);

    let head = id_of(
        &app.upsert_lead(json!({ "email": "head@example.com", "jobTitle": "Head of IT" }))
            .await,
    );
    let s = score(&app, &head, None).await;
    assert_eq!(
        s["score"],
        json!({ "profileScore": 80, "grade": "A", "activityScore": 0.0, "band": 4, "cell": "A4", "isMqlCell": false })
    );

    // 40 + 30 + 25 + 20 = 115 a minute ago: band 1, so A1, an MQL cell: handed off, once.
    let got = app
        .record(touches(
            &head,
            &["TRADE_FAIR_SCAN", "WHITEPAPER_DOWNLOAD", "WEBINAR_ATTEND", "FORM_SUBMIT"],
            1,
        ))
        .await;
    assert_eq!(user_errors(&got), vec![]);
    let s = score(&app, &head, None).await;
    assert_eq!(s["score"]["cell"], "A1");
    let activity = s["score"]["activityScore"].as_f64().unwrap();
    assert!(activity < 115.0 && activity > 114.99, "{activity}");
    assert_eq!(s["stage"]["key"], "MQL");
    assert_eq!(created_events(&app, &head).await, 1);

    // More touches keep it in A1: no second handoff.
    app.record(touches(&head, &["EMAIL_CLICK"], 0)).await;
    let s = score(&app, &head, None).await;
    assert_eq!(s["score"]["cell"], "A1");
    assert_eq!(created_events(&app, &head).await, 1);

    // An hour ago it had no activity yet.
    let s = score(&app, &head, Some(&ago(60))).await;
    assert_eq!(s["score"]["cell"], "A4");
    assert_eq!(s["score"]["activityScore"], 0.0);

    // The breakdown explains the score: the rules and each touchpoint's part.
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { scoreBreakdown { score { activityScore profileScore } profileRules { rule { points } matched points } touchpoints { touchpoint { type } points earned decay contribution } } } } }";
    let b = app.data(&app.keys.analyst, q, json!({ "id": head })).await["node"]["scoreBreakdown"].clone();
    assert_eq!(
        b["profileRules"],
        json!([{ "rule": { "points": 80 }, "matched": true, "points": 80 }, { "rule": { "points": -50 }, "matched": false, "points": 0 }])
    );
    let parts = b["touchpoints"].as_array().unwrap();
    assert_eq!(parts.len(), 5);
    let sum: f64 = parts.iter().map(|p| p["contribution"].as_f64().unwrap()).sum();
    let total = b["score"]["activityScore"].as_f64().unwrap();
    assert!((sum - total).abs() < 1e-9, "{sum} vs {total}");
    assert!(
        parts
            .iter()
            .all(|p| p["decay"].as_f64().unwrap() <= 1.0 && p["points"] == p["earned"])
    );

    // A student never fits: D, and not handed off however active.
    let student = id_of(&app.upsert_lead(json!({ "email": "stud@example.com", "jobTitle": "Student" })).await);
    app.record(touches(
        &student,
        &["TRADE_FAIR_SCAN", "WHITEPAPER_DOWNLOAD", "WEBINAR_ATTEND", "FORM_SUBMIT"],
        1,
    ))
    .await;
    assert_eq!(score(&app, &student, None).await["score"]["cell"], "D1");
    assert_eq!(created_events(&app, &student).await, 0);

    // Filters and matrix agree.
    let q = "query($f: LeadFilterInput) { leads(first: 10, filter: $f) { nodes { id } } }";
    let a1 = app.data(&app.keys.analyst, q, json!({ "f": { "scoringCell": ["A1"] } })).await;
    assert_eq!(ids(&a1["leads"]), [head.as_str()]);
    let d = app.data(&app.keys.analyst, q, json!({ "f": { "grade": ["D"] } })).await;
    assert_eq!(ids(&d["leads"]), [student.as_str()]);
    let active = app.data(&app.keys.analyst, q, json!({ "f": { "minActivityScore": 100 } })).await;
    assert_eq!(ids(&active["leads"]), [head.clone(), student.clone()]);
    let m = matrix(&app, json!(null)).await;
    assert_eq!(m.len(), 16);
    assert_eq!((count(&m, "A1"), count(&m, "D1"), count(&m, "A4")), (1, 1, 0));
    // The same counts for a subset of the leads (the filter of `leads`).
    let m = matrix(&app, json!({ "search": "stud" })).await;
    assert_eq!((count(&m, "A1"), count(&m, "D1"), m.iter().map(|(_, n)| n).sum::<i64>()), (0, 1, 1));
    let m = matrix(&app, json!({ "minActivityScore": 1 })).await;
    assert_eq!((count(&m, "A1"), count(&m, "D1"), m.iter().map(|(_, n)| n).sum::<i64>()), (1, 1, 2));
    // An hour ago both had no activity.
    let q = "query($at: DateTime) { scoringMatrix(asOf: $at) { total cells { cell count } } }";
    let past = app.data(&app.keys.analyst, q, json!({ "at": ago(60) })).await;
    let cells = past["scoringMatrix"]["cells"].as_array().unwrap();
    let nonzero: Vec<&Value> = cells.iter().filter(|c| c["count"] != 0).collect();
    // Created seconds ago, they did not exist an hour ago.
    assert_eq!(nonzero.len(), 0, "{past}");
}
both!(touchpoints_move_a_lead_into_a1_and_hand_it_off_once);

async fn a_recycled_lead_in_cool_down_is_not_handed_off_again(app: TestApp) {
    let model = id_of(&create_model(&app, fit_model()).await["scoringModel"]);
    let lead = id_of(
        &app.upsert_lead(json!({ "email": "ann@example.com", "jobTitle": "Head of Sales" }))
            .await,
    );
    app.record(touches(
        &lead,
        &["TRADE_FAIR_SCAN", "WHITEPAPER_DOWNLOAD", "WEBINAR_ATTEND", "FORM_SUBMIT"],
        1,
    ))
    .await;
    assert_eq!(created_events(&app, &lead).await, 1);
    let open = "query($id: ID!) { node(id: $id) { ... on Lead { openHandoff { id note } } } }";
    let h = app.data(&app.keys.analyst, open, json!({ "id": lead })).await["node"]["openHandoff"].clone();
    assert!(h["note"].as_str().unwrap().starts_with("automatic: entered A1"), "{h}");
    let q = "mutation($input: RecycleHandoffInput!) { recycleHandoff(input: $input) { userErrors { field code } } }";
    let r = app
        .data(
            &app.keys.sales,
            q,
            json!({ "input": { "id": h["id"], "feedback": "after the budget round", "nurtureUntil": "2099-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(user_errors(&r["recycleHandoff"]), vec![]);

    // The lead leaves the MQL cells (no longer a head) and comes back: within the 30-day
    // cool-down, it is not handed off again.
    let update = |title: &'static str| {
        let lead = lead.clone();
        let app = &app;
        async move {
            let q = "mutation($input: UpdateLeadInput!) { updateLead(input: $input) { userErrors { field code } } }";
            app.data(&app.keys.marketing, q, json!({ "input": { "id": lead, "jobTitle": title } }))
                .await
        }
    };
    update("Sales manager").await;
    assert_eq!(score(&app, &lead, None).await["score"]["cell"], "D1");
    update("Head of Sales").await;
    assert_eq!(score(&app, &lead, None).await["score"]["cell"], "A1");
    assert_eq!(created_events(&app, &lead).await, 1);
    assert_eq!(score(&app, &lead, None).await["stage"]["key"], "NURTURE");

    // Without a cool-down the same re-entry hands it off.
    let changed = update_model(&app, &model, json!({ "cooldownDays": 0 })).await;
    assert_eq!(changed["scoringModel"]["version"], 2);
    update("Sales manager").await;
    update("Head of Sales").await;
    assert_eq!(created_events(&app, &lead).await, 2);
    assert_eq!(score(&app, &lead, None).await["stage"]["key"], "MQL");
}
both!(a_recycled_lead_in_cool_down_is_not_handed_off_again);

/// One batch brings several leads into A1: each is handed off once, except the one that sales
/// already has (an open handoff made by hand before its score got there).
async fn one_batch_hands_off_every_lead_it_brings_into_an_mql_cell(app: TestApp) {
    create_model(&app, fit_model()).await;
    let mut leads = Vec::new();
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        leads.push(id_of(
            &app.upsert_lead(json!({ "email": email, "jobTitle": "Head of Production" })).await,
        ));
    }
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { field code } } }";
    let p = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": leads[2] } }))
        .await;
    assert_eq!(user_errors(&p), vec![]);
    let mut items = Vec::new();
    for lead in &leads {
        let hot = touches(
            lead,
            &["TRADE_FAIR_SCAN", "WHITEPAPER_DOWNLOAD", "WEBINAR_ATTEND", "FORM_SUBMIT"],
            1,
        );
        items.extend(hot.as_array().unwrap().iter().cloned());
    }
    assert_eq!(user_errors(&app.record(Value::Array(items)).await), vec![]);
    for lead in &leads {
        assert_eq!(score(&app, lead, None).await["score"]["cell"], "A1");
        assert_eq!(created_events(&app, lead).await, 1, "one handoff each, the manual one included");
    }
    let open = "query($id: ID!) { node(id: $id) { ... on Lead { openHandoff { note } } } }";
    for (lead, automatic) in leads.iter().zip([true, true, false]) {
        let note = app.data(&app.keys.analyst, open, json!({ "id": lead })).await["node"]["openHandoff"]["note"].clone();
        let by_model = note.as_str().is_some_and(|n| n.starts_with("automatic: entered A1"));
        assert_eq!(by_model, automatic, "{lead}: {note}");
    }
}
both!(one_batch_hands_off_every_lead_it_brings_into_an_mql_cell);

async fn a_model_change_rescores_every_lead_in_bulk(app: TestApp) {
    // 12 leads: heads (A) with 0..=5 whitepapers, others (D) the same.
    let mut leads = Vec::new();
    for i in 0..12 {
        let title = if i % 2 == 0 { "Head of IT" } else { "Engineer" };
        let id = id_of(
            &app.upsert_lead(json!({ "email": format!("l{i}@example.com"), "jobTitle": title }))
                .await,
        );
        let n = i / 2;
        if n > 0 {
            app.record(touches(&id, &vec!["WHITEPAPER_DOWNLOAD"; n], 5)).await;
        }
        leads.push(id);
    }
    // Scored when the model is created: whitepapers are 30 each, so 0 -> band 4, 30 -> 4,
    // 60 / 90 -> 2, 120 / 150 -> 1 (bands 100 / 50 / 20; 30 is band 3).
    let made = create_model(&app, fit_model()).await;
    assert_eq!(made["rescoredLeads"], 12);
    // The heads now in A1 or A2 were handed off when the model was created.
    assert_eq!(made["handedOff"], 4);
    let model = id_of(&made["scoringModel"]);
    let m = matrix(&app, json!(null)).await;
    let expected = [
        ("A1", 2),
        ("A2", 2),
        ("A3", 1),
        ("A4", 1),
        ("D1", 2),
        ("D2", 2),
        ("D3", 1),
        ("D4", 1),
    ];
    for (cell, n) in expected {
        assert_eq!(count(&m, cell), n, "{cell}: {m:?}");
    }
    assert_eq!(m.iter().map(|(_, n)| n).sum::<i64>(), 12);

    // Whitepapers now count 101 (100.99 after five minutes): every lead with one is in band 1. Re-scored in bulk, and the
    // heads newly in an MQL cell (the ones with 1 whitepaper) are handed off.
    let changed = update_model(
        &app,
        &model,
        json!({ "activityRules": [{ "type": "WHITEPAPER_DOWNLOAD", "points": 101 }] }),
    )
    .await;
    assert_eq!(user_errors(&changed), vec![]);
    assert_eq!(changed["rescoredLeads"], 12);
    assert_eq!(changed["handedOff"], 1);
    assert_eq!(changed["scoringModel"]["version"], 2);
    let m = matrix(&app, json!(null)).await;
    for (cell, n) in [("A1", 5), ("A4", 1), ("D1", 5), ("D4", 1)] {
        assert_eq!(count(&m, cell), n, "{cell}: {m:?}");
    }
    // A rename is not a parameter change: nothing is re-scored.
    let renamed = update_model(&app, &model, json!({ "name": "Fit and engagement" })).await;
    assert_eq!(
        (renamed["rescoredLeads"].clone(), renamed["scoringModel"]["version"].clone()),
        (json!(0), json!(2))
    );

    // A second model (not the default) scores the same leads its own way and hands off nobody.
    let other = create_model(
        &app,
        json!({ "name": "Webinars", "activityRules": [{ "type": "WEBINAR_ATTEND", "points": 50 }], "mqlCells": ["D4"] }),
    )
    .await;
    assert_eq!((other["rescoredLeads"].clone(), other["handedOff"].clone()), (json!(12), json!(0)));
    assert_eq!(other["scoringModel"]["isDefault"], false);
    let q = "query($m: ID) { scoringMatrix(model: $m) { total cells { cell count } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "m": id_of(&other["scoringModel"]) })).await;
    assert_eq!(data["scoringMatrix"]["cells"][15], json!({ "cell": "D4", "count": 12 }));
    let list = app.data(&app.keys.analyst, "{ scoringModels { name isDefault } }", json!({})).await;
    assert_eq!(
        list["scoringModels"],
        json!([{ "name": "Fit and engagement", "isDefault": true }, { "name": "Webinars", "isDefault": false }])
    );
}
both!(a_model_change_rescores_every_lead_in_bulk);

async fn daily_caps_and_campaign_rules_apply(app: TestApp) {
    let camp = app.simple_campaign("Spring webinar").await;
    let made = create_model(
        &app,
        json!({
            "name": "Capped",
            "activityRules": [
                { "type": "PAGE_VIEW", "points": 2, "dailyCap": 5 },
                { "type": "WEBINAR_ATTEND", "points": 25 },
                { "type": "WEBINAR_ATTEND", "campaignId": camp, "points": 60 },
            ],
        }),
    )
    .await;
    assert_eq!(user_errors(&made), vec![]);
    let lead = id_of(&app.upsert_lead(json!({ "email": "cap@example.com" })).await);
    // Four page views within a few seconds (yesterday noon, so all on one UTC day) earn
    // 2 + 2 + 1 + 0 = 5.
    let day = (Utc::now() - Duration::days(1))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let items: Vec<Value> = (0..4)
        .map(|i| {
            let at = (day + Duration::seconds(i)).to_rfc3339_opts(SecondsFormat::Secs, true);
            json!({ "leadId": lead, "type": "PAGE_VIEW", "occurredAt": at })
        })
        .chain([json!({ "leadId": lead, "type": "WEBINAR_ATTEND", "campaignId": camp, "occurredAt": day.to_rfc3339() })])
        .collect();
    assert_eq!(user_errors(&app.record(Value::Array(items)).await), vec![]);
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { scoreBreakdown { score { activityScore } touchpoints { touchpoint { type } points earned } } } } }";
    let b = app.data(&app.keys.analyst, q, json!({ "id": lead })).await["node"]["scoreBreakdown"].clone();
    let earned: Vec<(String, i64, i64)> = b["touchpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["touchpoint"]["type"].as_str().unwrap().to_owned(),
                t["points"].as_i64().unwrap(),
                t["earned"].as_i64().unwrap(),
            )
        })
        .collect();
    let pv = |e: i64| ("PAGE_VIEW".to_owned(), 2, e);
    assert!(earned.contains(&("WEBINAR_ATTEND".to_owned(), 60, 60)), "{earned:?}");
    let views: Vec<&(String, i64, i64)> = earned.iter().filter(|e| e.0 == "PAGE_VIEW").collect();
    assert_eq!(views, [&pv(2), &pv(2), &pv(1), &pv(0)]);
    // 65 points, 12 to 36 hours old with a 30-day half-life.
    let activity = b["score"]["activityScore"].as_f64().unwrap();
    let (lo, hi) = (65.0 * (-1.5_f64 / 30.0).exp2(), 65.0 * (-0.5_f64 / 30.0).exp2());
    assert!(activity > lo && activity < hi, "{activity}");

    // A view recorded later but earlier in the day shifts what the others earned: the stored
    // score is recomputed and still equals the breakdown's sum.
    let early = (day - Duration::seconds(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    app.record(json!([{ "leadId": lead, "type": "PAGE_VIEW", "occurredAt": early }]))
        .await;
    let now = ago(0);
    let q = "query($id: ID!, $at: DateTime) { node(id: $id) { ... on Lead { scoreBreakdown(asOf: $at) { score { activityScore } touchpoints { earned } } } } }";
    let b = app.data(&app.keys.analyst, q, json!({ "id": lead, "at": now })).await["node"]["scoreBreakdown"].clone();
    let sum: i64 = b["touchpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["earned"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 65);
    let s = score(&app, &lead, Some(&now)).await["score"]["activityScore"].as_f64().unwrap();
    assert!((s - b["score"]["activityScore"].as_f64().unwrap()).abs() < 1e-9);
}
both!(daily_caps_and_campaign_rules_apply);

async fn bad_models_are_refused_and_write_nothing(app: TestApp) {
    let camp = app.simple_campaign("C").await;
    let bad = create_model(
        &app,
        json!({
            "name": " ",
            "halfLifeDays": "0",
            "gradeBands": { "a": 50, "b": 50, "c": 10 },
            "activityBands": { "band1": 100, "band2": 50, "band3": 0 },
            "activityRules": [
                { "type": "CARRIER_PIGEON", "points": 5 },
                { "type": "PAGE_VIEW", "campaignId": camp, "points": 5, "dailyCap": 10 },
                { "type": "EMAIL_OPEN", "points": -1 },
            ],
            "profileRules": [{ "attribute": "shoeSize", "operator": "EQUALS", "values": ["42"], "points": 5 }],
        }),
    )
    .await;
    let mut errors = user_errors(&bad);
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ("input.activityBands".into(), "INVALID".into()),
            ("input.activityRules.0.type".into(), "INVALID".into()),
            ("input.activityRules.1.dailyCap".into(), "INVALID".into()),
            ("input.activityRules.2.points".into(), "INVALID".into()),
            ("input.gradeBands".into(), "INVALID".into()),
            ("input.halfLifeDays".into(), "INVALID".into()),
            ("input.name".into(), "REQUIRED".into()),
            ("input.profileRules.0.attribute".into(), "INVALID".into()),
        ]
    );
    let list = app.data(&app.keys.analyst, "{ scoringModels { id } }", json!({})).await;
    assert_eq!(list["scoringModels"], json!([]));

    // Without a model, a score query says so.
    let lead = app.lead("x@example.com").await;
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { score { cell } } } }";
    let resp = app.gql(&app.keys.analyst, q, json!({ "id": lead })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");

    // Roles: analysts and sales read, only marketing and admins write.
    let q = format!("mutation($input: ScoringModelInput!) {{ createScoringModel(input: $input) {{ {MODEL_FIELDS} }} }}");
    for key in [&app.keys.analyst, &app.keys.sales] {
        let resp = app.gql(key, &q, json!({ "input": fit_model() })).await;
        assert_eq!(error_code(&resp), "FORBIDDEN");
    }
    let first = id_of(&create_model(&app, fit_model()).await["scoringModel"]);
    let second = create_model(&app, json!({ "name": "Other", "isDefault": true })).await;
    assert_eq!(second["scoringModel"]["isDefault"], true);
    // The default cannot be deleted while others exist; others can.
    let del = format!("mutation($input: DeleteScoringModelInput!) {{ deleteScoringModel(input: $input) {{ {MODEL_FIELDS} }} }}");
    let refused = app
        .data(
            &app.keys.marketing,
            &del,
            json!({ "input": { "id": id_of(&second["scoringModel"]) } }),
        )
        .await;
    assert_eq!(
        user_errors(&refused["deleteScoringModel"]),
        vec![("input.id".into(), "IS_DEFAULT".into())]
    );
    let gone = app.data(&app.keys.marketing, &del, json!({ "input": { "id": first } })).await;
    assert_eq!(user_errors(&gone["deleteScoringModel"]), vec![]);
    let node = app
        .data(
            &app.keys.analyst,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(node["node"], Value::Null);
}
both!(bad_models_are_refused_and_write_nothing);

async fn export(app: &TestApp, key: Option<&str>, query: &str) -> (u16, String, String) {
    let mut req = app.client.get(app.url(&format!("/export/leads.csv?{query}")));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

/// The lead IDs of a CSV export (first column), checking the header and CRLF line ends.
fn csv_ids(body: &str) -> Vec<String> {
    let mut lines = body.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "id,externalId,email,firstName,lastName,jobTitle,account,country,stage,grade,band,cell,profileScore,activityScore"
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect()
}

async fn the_csv_export_of_a_cell_lists_exactly_the_leads_the_matrix_counts(app: TestApp) {
    create_model(&app, fit_model()).await;
    let acme = app.account(json!({ "name": "Acme, \"the\" company", "externalId": "acme" })).await;
    // 9 leads over several cells: heads and engineers with 0, 1, 2, 4 whitepapers.
    for i in 0..9 {
        let title = if i % 3 == 0 { "Engineer" } else { "Head of R&D" };
        let id = id_of(
            &app.upsert_lead(json!({ "email": format!("c{i}@example.com"), "jobTitle": title, "accountId": acme, "firstName": "Zoë" }))
                .await,
        );
        let n = [0, 1, 2, 4][i % 4];
        if n > 0 {
            app.record(touches(&id, &vec!["WHITEPAPER_DOWNLOAD"; n], 3)).await;
        }
    }
    let m = matrix(&app, json!(null)).await;
    let mut nonzero = 0;
    for (cell, n) in &m {
        let (status, kind, body) = export(&app, Some(&app.keys.analyst), &format!("cell={cell}")).await;
        assert_eq!(status, 200);
        assert_eq!(kind, "text/csv; charset=utf-8; header=present");
        let exported = csv_ids(&body);
        assert_eq!(exported.len() as i64, *n, "{cell}: {body}");
        let q = "query($c: [ScoringCell!]) { leads(first: 100, filter: { scoringCell: $c }) { nodes { id } } }";
        let listed = app.data(&app.keys.analyst, q, json!({ "c": [cell] })).await;
        assert_eq!(ids(&listed["leads"]), exported, "{cell}");
        nonzero += usize::from(*n > 0);
    }
    assert!(nonzero >= 4, "{m:?}");
    // Several cells at once, the whole row quoted where needed, UTF-8 as is.
    let (_, _, body) = export(&app, Some(&app.keys.analyst), "cell=A1,A2,A3,A4").await;
    let a: i64 = ["A1", "A2", "A3", "A4"].iter().map(|c| count(&m, c)).sum();
    assert_eq!(csv_ids(&body).len() as i64, a);
    assert!(body.contains(",Zoë,,Head of R&D,\"Acme, \"\"the\"\" company\",,"), "{body}");

    // No key: 401; a bad cell: 400 with a code; another workspace sees none of these leads.
    let (status, _, _) = export(&app, None, "cell=A1").await;
    assert_eq!(status, 401);
    let (status, _, body) = export(&app, Some(&app.keys.analyst), "cell=E9").await;
    assert_eq!(status, 400);
    assert!(body.contains("BAD_USER_INPUT"), "{body}");
    create_model_as(&app, &app.other.admin, fit_model()).await;
    let (status, _, body) = export(&app, Some(&app.other.admin), "cell=A1,A2,A3,A4,D1,D2,D3,D4").await;
    assert_eq!(status, 200);
    assert_eq!(csv_ids(&body), Vec::<String>::new());
}
both!(the_csv_export_of_a_cell_lists_exactly_the_leads_the_matrix_counts);

async fn create_model_as(app: &TestApp, key: &str, input: Value) -> Value {
    let q = format!("mutation($input: ScoringModelInput!) {{ createScoringModel(input: $input) {{ {MODEL_FIELDS} }} }}");
    app.data(key, &q, json!({ "input": input })).await["createScoringModel"].clone()
}

async fn a_backtest_scores_a_draft_model_against_history(app: TestApp) {
    let acme = app.account(json!({ "name": "Acme" })).await;
    let lead = |email: &'static str, title: &'static str| {
        let app = &app;
        let acme = acme.clone();
        async move {
            id_of(
                &app.upsert_lead(json!({ "email": email, "jobTitle": title, "accountId": acme }))
                    .await,
            )
        }
    };
    let deal = |leads: Vec<String>, outcome: Option<&'static str>| {
        let app = &app;
        let acme = acme.clone();
        async move {
            let id = app
                .opportunity(json!({ "accountId": acme, "name": "Deal", "amount": "1000" }))
                .await;
            let contacts: Vec<Value> = leads.iter().map(|l| json!({ "leadId": l, "role": "Champion" })).collect();
            let q = "mutation($i: SetBuyingCenterInput!) { setBuyingCenter(input: $i) { userErrors { code } } }";
            app.data(&app.keys.sales, q, json!({ "i": { "opportunityId": id, "contacts": contacts } }))
                .await;
            if let Some(o) = outcome {
                let q = "mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { userErrors { code } } }";
                app.data(&app.keys.sales, q, json!({ "i": { "id": id, "outcome": o } })).await;
            }
        }
    };
    let wp = |n: usize| vec!["WHITEPAPER_DOWNLOAD"; n];
    let l1 = lead("l1@example.com", "Head of IT").await;
    app.record(touches(&l1, &wp(4), 5)).await;
    let l2 = lead("l2@example.com", "Head of IT").await;
    app.record(touches(&l2, &wp(2), 5)).await;
    let l3 = lead("l3@example.com", "Engineer").await;
    app.record(touches(&l3, &wp(4), 5)).await;
    let _l4 = lead("l4@example.com", "Head of IT").await;
    let l5 = lead("l5@example.com", "Head of IT").await;
    app.record(touches(&l5, &wp(4), 5)).await;
    let l6 = lead("l6@example.com", "Head of IT").await;
    deal(vec![l1.clone()], Some("WON")).await;
    deal(vec![l2.clone()], Some("LOST")).await;
    deal(vec![l3.clone()], Some("WON")).await;
    deal(vec![l6.clone()], None).await;
    // L6 became active only after its opportunity was created: that does not count.
    app.record(touches(&l6, &wp(4), -1)).await;

    let q = "query($m: ScoringModelInput!, $from: DateTime!, $to: DateTime!) { scoringBacktest(model: $m, from: $from, to: $to) {
      leads cells { cell isMql leads won lost open noOpportunity } mqlRule { predicted predictedWon won precision recall } } }";
    let vars = json!({ "m": fit_model(), "from": ago(24 * 60), "to": ago(-24 * 60) });
    let b = app.data(&app.keys.analyst, q, vars).await["scoringBacktest"].clone();
    assert_eq!(b["leads"], 6);
    let cell = |c: &str| b["cells"].as_array().unwrap().iter().find(|x| x["cell"] == c).unwrap().clone();
    assert_eq!(
        cell("A1"),
        json!({ "cell": "A1", "isMql": true, "leads": 2, "won": 1, "lost": 0, "open": 0, "noOpportunity": 1 })
    );
    assert_eq!(
        cell("A2"),
        json!({ "cell": "A2", "isMql": true, "leads": 1, "won": 0, "lost": 1, "open": 0, "noOpportunity": 0 })
    );
    assert_eq!(
        cell("D1"),
        json!({ "cell": "D1", "isMql": false, "leads": 1, "won": 1, "lost": 0, "open": 0, "noOpportunity": 0 })
    );
    assert_eq!(
        cell("A4"),
        json!({ "cell": "A4", "isMql": false, "leads": 2, "won": 0, "lost": 0, "open": 1, "noOpportunity": 1 })
    );
    // In MQL cells: L1 (won), L2 (lost), L5 (no deal). Won: L1, L3.
    assert_eq!(
        b["mqlRule"],
        json!({ "predicted": 3, "predictedWon": 1, "won": 2, "precision": "0.3333", "recall": "0.5000" })
    );
    // Nothing was saved.
    let list = app.data(&app.keys.analyst, "{ scoringModels { id } }", json!({})).await;
    assert_eq!(list["scoringModels"], json!([]));
    // A saved model as the base of an empty draft gives the same.
    let saved = id_of(&create_model(&app, fit_model()).await["scoringModel"]);
    let q2 = "query($b: ID, $from: DateTime!, $to: DateTime!) { scoringBacktest(base: $b, model: {}, from: $from, to: $to) { mqlRule { predicted predictedWon won precision recall } } }";
    let vars = json!({ "b": saved, "from": ago(24 * 60), "to": ago(-24 * 60) });
    let same = app.data(&app.keys.analyst, q2, vars).await["scoringBacktest"].clone();
    assert_eq!(same["mqlRule"], b["mqlRule"]);

    // A draft that makes engineers fit and counts the MQL cells A1 and D1 catches both wins.
    let mut draft = fit_model();
    draft["profileRules"][0]["values"] = json!(["head", "engineer"]);
    draft["mqlCells"] = json!(["A1"]);
    let vars = json!({ "m": draft, "from": ago(24 * 60), "to": ago(-24 * 60) });
    let b = app.data(&app.keys.analyst, q, vars).await["scoringBacktest"].clone();
    assert_eq!(
        b["mqlRule"],
        json!({ "predicted": 3, "predictedWon": 2, "won": 2, "precision": "0.6667", "recall": "1.0000" })
    );

    // Bad arguments: one error naming each field.
    let vars = json!({ "m": { "activityBands": { "band1": 1, "band2": 2, "band3": 3 } }, "from": ago(0), "to": ago(60) });
    let resp = app.gql(&app.keys.analyst, q, vars).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["to", "model.activityBands"]);
}
both!(a_backtest_scores_a_draft_model_against_history);

async fn concurrent_batches_for_one_lead_lose_no_points(app: TestApp) {
    create_model(&app, fit_model()).await;
    let lead = id_of(
        &app.upsert_lead(json!({ "email": "busy@example.com", "jobTitle": "Engineer" }))
            .await,
    );
    let batches = (0..8).map(|i| {
        let app = &app;
        let items = json!([{ "leadId": lead, "type": "EMAIL_CLICK", "occurredAt": ago(10 + i) }]);
        async move { app.record(items).await }
    });
    for r in futures_util::future::join_all(batches).await {
        assert_eq!(user_errors(&r), vec![]);
    }
    // 8 clicks of 10 points: the stored score equals the sum over the touchpoints.
    let now = ago(0);
    let q = "query($id: ID!, $at: DateTime) { node(id: $id) { ... on Lead { score(asOf: $at) { activityScore } scoreBreakdown(asOf: $at) { touchpoints { contribution } } } } }";
    let d = app.data(&app.keys.analyst, q, json!({ "id": lead, "at": now })).await["node"].clone();
    let parts = d["scoreBreakdown"]["touchpoints"].as_array().unwrap();
    assert_eq!(parts.len(), 8);
    let sum: f64 = parts.iter().map(|p| p["contribution"].as_f64().unwrap()).sum();
    let stored = d["score"]["activityScore"].as_f64().unwrap();
    assert!((stored - sum).abs() < 1e-9 && stored > 79.9, "{stored} vs {sum}");
}
both!(concurrent_batches_for_one_lead_lose_no_points);

/// Every handoff event carries the lead's cell in the default model, in all three channels: the
/// event log, the subscription and the webhook. A hand-made handoff and its answer (A1 is no MQL
/// cell yet), then one the model makes once A1 becomes an MQL cell.
async fn handoff_events_carry_the_scoring_cell_everywhere(app: TestApp) {
    use crate::websocket::{connect_to, init, next, send};
    let model = create_model(
        &app,
        json!({ "name": "Fit", "profileRules": fit_model()["profileRules"], "mqlCells": ["B1"] }),
    )
    .await;
    assert_eq!(user_errors(&model), vec![]);
    let (receiver, url) = crate::webhooks::Receiver::start(0).await;
    crate::webhooks::create_webhook(&app, &url, json!([])).await;
    let mut socket = connect_to(&app.ws_url()).await;
    init(&mut socket, &app.keys.analyst).await;
    let sub = "subscription { handoffEvents { seq kind scoringCell } }";
    send(&mut socket, json!({ "id": "s", "type": "subscribe", "payload": { "query": sub } })).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let hot = ["TRADE_FAIR_SCAN", "WHITEPAPER_DOWNLOAD", "WEBINAR_ATTEND", "FORM_SUBMIT"];
    let ada = id_of(
        &app.upsert_lead(json!({ "email": "ada@example.com", "jobTitle": "Head of IT" }))
            .await,
    );
    app.record(touches(&ada, &hot, 1)).await;
    assert_eq!(score(&app, &ada, None).await["score"]["cell"], "A1");
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } event { scoringCell } userErrors { field message code } } }";
    let made = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": ada } }))
        .await;
    assert_eq!(made["event"]["scoringCell"], "A1");
    let q = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { userErrors { field message code } } }";
    app.mutate(
        &app.keys.sales,
        "acceptHandoff",
        q,
        json!({ "input": { "id": made["handoff"]["id"] } }),
    )
    .await;

    let bob = id_of(
        &app.upsert_lead(json!({ "email": "bob@example.com", "jobTitle": "Head of Sales" }))
            .await,
    );
    app.record(touches(&bob, &hot, 1)).await;
    let changed = update_model(&app, &id_of(&model["scoringModel"]), json!({ "mqlCells": ["A1"] })).await;
    assert_eq!(changed["handedOff"], 1, "{changed}");

    let expected = json!([
        { "seq": 1, "kind": "CREATED", "scoringCell": "A1" },
        { "seq": 2, "kind": "ACCEPTED", "scoringCell": "A1" },
        { "seq": 3, "kind": "CREATED", "scoringCell": "A1" },
    ]);
    let log = app
        .data(
            &app.keys.analyst,
            "{ handoffEventLog(first: 10) { seq kind scoringCell actor } }",
            json!({}),
        )
        .await;
    let logged: Vec<Value> = log["handoffEventLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({ "seq": e["seq"], "kind": e["kind"], "scoringCell": e["scoringCell"] }))
        .collect();
    assert_eq!(json!(logged), expected, "{log}");
    assert!(
        log["handoffEventLog"][2]["actor"].as_str().unwrap().starts_with("scoring-model:"),
        "{log}"
    );

    let mut live = Vec::new();
    for _ in 0..3 {
        let msg = next(&mut socket).await.expect("an event");
        assert_eq!(msg["type"], "next", "{msg:#}");
        live.push(msg["payload"]["data"]["handoffEvents"].clone());
    }
    assert_eq!(json!(live), expected);

    let posted: Vec<Value> = receiver
        .wait_for(3)
        .await
        .iter()
        .map(|(_, body, _)| {
            let b: Value = serde_json::from_str(body).unwrap();
            json!({ "seq": b["seq"], "kind": b["kind"], "scoringCell": b["scoringCell"] })
        })
        .collect();
    assert_eq!(json!(posted), expected);
}
both!(handoff_events_carry_the_scoring_cell_everywhere);
