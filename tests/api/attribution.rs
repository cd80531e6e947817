//! Attribution: every model over a small deal computed by hand, the ledger kept current by
//! every change that moves a credit, model versions, MARKOV, the explanation of a deal, and on
//! the demo data: totals equal won revenue, each deal's credits sum to its amount, and the
//! ledger agrees with the computation.
use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_month_sums_match_ledger, error_code, id_of, user_errors};

const RULES: [&str; 8] = [
    "FIRST_TOUCH",
    "LAST_TOUCH",
    "LINEAR",
    "TIME_DECAY",
    "POSITION_BASED",
    "W_SHAPED",
    "FULL_PATH",
    "CUSTOM",
];
const GROUPINGS: [&str; 5] = ["CAMPAIGN", "CHANNEL", "TOUCHPOINT_TYPE", "PERSONA", "SCORING_CELL"];

const REPORT: &str = "query($model: AttributionModelInput!, $range: DateTimeRangeInput!, $groupBy: AttributionGrouping!, $lookbackDays: Int, $source: AttributionSourceChoice) {
  attribution(model: $model, range: $range, groupBy: $groupBy, lookbackDays: $lookbackDays, source: $source) {
    model source modelVersion currency
    rows { key channel campaign { name } revenue { amount currency } conversions touchpoints deals }
    totals { revenue { amount } conversions deals unattributed { amount } } } }";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn dv(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("a decimal string, got {v}")))
}

async fn report(app: &TestApp, key: &str, model: Value, range: Value, group_by: &str, extra: Value) -> Value {
    let mut vars = json!({ "model": model, "range": range, "groupBy": group_by });
    for (k, v) in extra.as_object().unwrap() {
        vars[k] = v.clone();
    }
    app.data(key, REPORT, vars).await["attribution"].clone()
}

/// Row key -> revenue, the way a dashboard reads a report (campaign rows by campaign name).
fn revenue_by_key(r: &Value) -> BTreeMap<String, String> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let key = row["campaign"]["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| row["key"].as_str().unwrap().to_owned());
            (key, row["revenue"]["amount"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const Q1: &str = r#"{ "from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z" }"#;

fn q1() -> Value {
    serde_json::from_str(Q1).unwrap()
}

pub(crate) struct Fixture {
    pub deal: String,
    pub ada: String,
    pub bob: String,
    pub newsletter: String,
}

/// Deal "Rollout" (1,000.00, opened 1 Feb, won 1 Mar 2026) with Ada (primary) and Bob:
/// path T1 Ada webinar 10 Jan, T2 Bob newsletter 20 Jan, T3 Ada page view without campaign
/// 10 Feb. Bob's newsletter of 1 Jan 2025 is outside the 365-day lookback, Ada's page view of
/// 5 Mar after the close. Deal "Support" (500.00, won 15 Mar) has Carol, who has no touches.
pub(crate) async fn fixture(app: &TestApp) -> Fixture {
    let account = app.account(json!({ "name": "Initech" })).await;
    let ada = id_of(&app.upsert_lead(json!({ "email": "ada@initech.test", "accountId": account })).await);
    let bob = id_of(&app.upsert_lead(json!({ "email": "bob@initech.test", "accountId": account })).await);
    let carol = id_of(
        &app.upsert_lead(json!({ "email": "carol@initech.test", "accountId": account }))
            .await,
    );
    let webinar = app
        .campaign(json!({ "name": "Webinar", "channel": "WEBINAR", "kind": "ACQUISITION" }))
        .await;
    let newsletter = app
        .campaign(json!({ "name": "Newsletter", "channel": "EMAIL", "kind": "NURTURE" }))
        .await;
    let recorded = app
        .record(json!([
            { "leadId": ada, "campaignId": webinar, "type": "WEBINAR_ATTEND", "occurredAt": "2026-01-10T10:00:00Z" },
            { "leadId": bob, "campaignId": newsletter, "type": "EMAIL_OPEN", "occurredAt": "2026-01-20T10:00:00Z" },
            { "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-02-10T10:00:00Z" },
            { "leadId": bob, "campaignId": newsletter, "type": "EMAIL_OPEN", "occurredAt": "2025-01-01T10:00:00Z" },
            { "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-05T10:00:00Z" },
        ]))
        .await;
    assert_eq!(recorded["recordedCount"], 5, "{recorded}");
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Rollout", "amount": "1000", "createdAt": "2026-02-01T00:00:00Z" }))
        .await;
    let support = app
        .opportunity(json!({ "accountId": account, "name": "Support", "amount": "500", "createdAt": "2026-03-01T00:00:00Z" }))
        .await;
    app.buying_center(
        &deal,
        json!([{ "leadId": ada, "role": "Decision maker", "isPrimary": true }, { "leadId": bob, "role": "User" }]),
    )
    .await;
    app.buying_center(&support, json!([{ "leadId": carol, "role": "Decision maker", "isPrimary": true }]))
        .await;
    app.close_won(&deal, "2026-03-01T00:00:00Z").await;
    app.close_won(&support, "2026-03-15T00:00:00Z").await;
    Fixture {
        deal,
        ada,
        bob,
        newsletter,
    }
}

/// Every model by campaign, from the ledger and computed, against the figures worked out by
/// hand in docs/attribution.md.
async fn every_model_on_a_deal_worked_by_hand(app: TestApp) {
    fixture(&app).await;
    let expect = |pairs: &[(&str, &str)]| {
        let mut m = map(pairs);
        m.insert("UNATTRIBUTED".into(), "500.00".into());
        m
    };
    // W_SHAPED: Ada never became an MQL (no conversion touch); the opportunity-creation touch is
    // T2 (last at or before 1 Feb): 30 + 30 to T1 and T2, 10 to T3 -> 3/7, 3/7, 1/7.
    let cases: [(&str, BTreeMap<String, String>); 7] = [
        ("FIRST_TOUCH", expect(&[("Webinar", "1000.00")])),
        ("LAST_TOUCH", expect(&[("NO_CAMPAIGN", "1000.00")])),
        (
            "LINEAR",
            expect(&[("Webinar", "333.34"), ("Newsletter", "333.33"), ("NO_CAMPAIGN", "333.33")]),
        ),
        (
            "POSITION_BASED",
            expect(&[("Webinar", "400.00"), ("Newsletter", "200.00"), ("NO_CAMPAIGN", "400.00")]),
        ),
        (
            "W_SHAPED",
            expect(&[("Webinar", "428.57"), ("Newsletter", "428.57"), ("NO_CAMPAIGN", "142.86")]),
        ),
        // FULL_PATH: T1 (first), T2 (creation) and T3 (last) are key touches; no touch is left
        // for the 10, so thirds.
        (
            "FULL_PATH",
            expect(&[("Webinar", "333.34"), ("Newsletter", "333.33"), ("NO_CAMPAIGN", "333.33")]),
        ),
        // Default CUSTOM: webinar attend 30, e-mail open 5, page view 2 of 37.
        (
            "CUSTOM",
            expect(&[("Webinar", "810.81"), ("Newsletter", "135.14"), ("NO_CAMPAIGN", "54.05")]),
        ),
    ];
    for (model, expected) in cases {
        for source in ["LEDGER", "COMPUTE"] {
            let r = report(
                &app,
                &app.keys.analyst,
                json!({ "kind": model }),
                q1(),
                "CAMPAIGN",
                json!({ "source": source }),
            )
            .await;
            assert_eq!(revenue_by_key(&r), expected, "{model} from {source}");
            assert_eq!(
                r["totals"],
                json!({ "revenue": { "amount": "1500.00" }, "conversions": "2.000000", "deals": 2, "unattributed": { "amount": "500.00" } })
            );
            assert_eq!(r["source"], if source == "LEDGER" { "LEDGER" } else { "COMPUTED" });
        }
    }
    // TIME_DECAY (7 days) relative to T3: T2 is 21 days earlier (1/8), T1 31 days (2^(-31/7)).
    let r = report(
        &app,
        &app.keys.analyst,
        json!({ "kind": "TIME_DECAY" }),
        q1(),
        "CAMPAIGN",
        json!({}),
    )
    .await;
    let t1 = 2f64.powf(-31.0 / 7.0);
    let sum = t1 + 0.125 + 1.0;
    let by = revenue_by_key(&r);
    for (key, w) in [("Webinar", t1), ("Newsletter", 0.125), ("NO_CAMPAIGN", 1.0)] {
        let expected = 1000.0 * w / sum;
        let got: f64 = by[key].parse().unwrap();
        assert!((got - expected).abs() <= 0.01, "{key}: {got} vs {expected}");
    }
    let total: Decimal = by.values().map(|v| d(v)).sum();
    assert_eq!(total, d("1500.00"));

    // By channel: the campaign-less touch is DIRECT.
    let r = report(&app, &app.keys.analyst, json!({ "kind": "LINEAR" }), q1(), "CHANNEL", json!({})).await;
    assert_eq!(
        revenue_by_key(&r),
        map(&[
            ("WEBINAR", "333.34"),
            ("EMAIL", "333.33"),
            ("DIRECT", "333.33"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
    let unattributed = r["rows"].as_array().unwrap().iter().find(|x| x["key"] == "UNATTRIBUTED").unwrap();
    assert_eq!(unattributed["deals"], 1);
    assert_eq!(unattributed["conversions"], "1.000000");
    assert_eq!(unattributed["touchpoints"], 0);

    // A longer lookback reaches Bob's newsletter of January 2025: computed, not the ledger.
    let r = report(
        &app,
        &app.keys.analyst,
        json!({ "kind": "LINEAR" }),
        q1(),
        "CAMPAIGN",
        json!({ "lookbackDays": 500 }),
    )
    .await;
    assert_eq!(r["source"], "COMPUTED");
    assert_eq!(
        revenue_by_key(&r),
        map(&[
            ("Webinar", "250.00"),
            ("Newsletter", "500.00"),
            ("NO_CAMPAIGN", "250.00"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
}
both!(every_model_on_a_deal_worked_by_hand);

/// The ledger follows every change that moves a credit: a new touch on the path, a new amount,
/// the primary contact's conversion; and `opportunity.attribution` explains the numbers.
async fn the_ledger_follows_changes_and_explains_each_deal(app: TestApp) {
    let f = fixture(&app).await;
    // A touch of Bob's on 20 Feb enters the path.
    let p = app
        .record(json!([{ "leadId": f.bob, "campaignId": f.newsletter, "type": "EMAIL_CLICK", "occurredAt": "2026-02-20T10:00:00Z" }]))
        .await;
    assert_eq!(p["recordedCount"], 1);
    let linear = json!({ "kind": "LINEAR" });
    let r = report(
        &app,
        &app.keys.analyst,
        linear.clone(),
        q1(),
        "CAMPAIGN",
        json!({ "source": "LEDGER" }),
    )
    .await;
    assert_eq!(
        revenue_by_key(&r),
        map(&[
            ("Webinar", "250.00"),
            ("Newsletter", "500.00"),
            ("NO_CAMPAIGN", "250.00"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
    // A new amount.
    app.opportunity(json!({ "id": f.deal, "amount": "1200" })).await;
    let r = report(
        &app,
        &app.keys.analyst,
        linear.clone(),
        q1(),
        "CAMPAIGN",
        json!({ "source": "LEDGER" }),
    )
    .await;
    assert_eq!(
        revenue_by_key(&r),
        map(&[
            ("Webinar", "300.00"),
            ("Newsletter", "600.00"),
            ("NO_CAMPAIGN", "300.00"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
    // Ada becomes an MQL now: her last path touch at or before that is T3, the lead-conversion
    // touch. W_SHAPED keys T1 (first), T3 (conversion), T2 (creation); 10 to T6.
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { field code } } }";
    let p = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": f.ada } }))
        .await;
    assert_eq!(user_errors(&p), vec![]);
    let w = json!({ "kind": "W_SHAPED" });
    let ledger = report(&app, &app.keys.analyst, w.clone(), q1(), "CAMPAIGN", json!({ "source": "LEDGER" })).await;
    let computed = report(&app, &app.keys.analyst, w.clone(), q1(), "CAMPAIGN", json!({ "source": "COMPUTE" })).await;
    assert_eq!(ledger["rows"], computed["rows"]);
    // 30 : 30 : 30 : 10 of 1,200.00: 360 each for T1 (Webinar), T2 (Newsletter), T3 (none);
    // 120 for T6 (Newsletter).
    assert_eq!(
        revenue_by_key(&ledger),
        map(&[
            ("Webinar", "360.00"),
            ("Newsletter", "480.00"),
            ("NO_CAMPAIGN", "360.00"),
            ("UNATTRIBUTED", "500.00")
        ])
    );

    // The explanation: every touch of the path with its share and amount.
    let q = "query($id: ID!, $model: AttributionModelInput!) { opportunity(id: $id) { attribution(model: $model) {
        model amount { amount } unattributed
        credits { position type occurredAt share amount { amount } campaign { name } lead { email } touchpoint { id } } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": f.deal, "model": w })).await;
    let a = &data["opportunity"]["attribution"];
    assert_eq!(a["unattributed"], false);
    let credits = a["credits"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = credits
        .iter()
        .map(|c| {
            (
                c["lead"]["email"].as_str().unwrap().to_owned(),
                c["share"].as_str().unwrap().to_owned(),
                c["amount"]["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |e: &str, share: &str, amount: &str| (e.to_owned(), share.to_owned(), amount.to_owned());
    assert_eq!(
        summary,
        vec![
            s("ada@initech.test", "0.300000", "360.00"),
            s("bob@initech.test", "0.300000", "360.00"),
            s("ada@initech.test", "0.300000", "360.00"),
            s("bob@initech.test", "0.100000", "120.00"),
        ]
    );
    assert!(credits.iter().all(|c| c["touchpoint"]["id"].is_string()));
    // An open deal has nothing to explain.
    let account = app.account(json!({ "name": "Hooli" })).await;
    let open = app
        .opportunity(json!({ "accountId": account, "name": "Open", "amount": "10" }))
        .await;
    let data = app
        .data(&app.keys.analyst, q, json!({ "id": open, "model": { "kind": "LINEAR" } }))
        .await;
    assert_eq!(data["opportunity"]["attribution"], Value::Null);
    // MARKOV has no per-deal credit.
    let resp = app
        .gql(&app.keys.analyst, q, json!({ "id": f.deal, "model": { "kind": "MARKOV" } }))
        .await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    // Every change above moved the monthly sums by its own deal's credits; they are still the
    // ledger's.
    assert_month_sums_match_ledger(&app.db).await;
}
both!(the_ledger_follows_changes_and_explains_each_deal);

/// New parameters make a new version whose credits the ledger keeps; the old version's stay.
async fn model_versions_keep_their_credits(app: TestApp) {
    fixture(&app).await;
    let q = "mutation($input: ConfigureAttributionModelInput!) { configureAttributionModel(input: $input) {
        changed model { kind version isCurrent weights { type weight } halfLifeDays } userErrors { field code } } }";
    let custom =
        json!({ "kind": "CUSTOM", "weights": [{ "type": "webinar_attend", "weight": "3" }, { "type": "EMAIL_OPEN", "weight": "1" }] });
    // Only an ADMIN configures.
    let resp = app.gql(&app.keys.marketing, q, json!({ "input": custom })).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    // Bad parameters write nothing.
    let bad = json!({ "kind": "CUSTOM", "halfLifeDays": "3", "weights": [{ "type": "EMAIL_OPEN", "weight": "-1" }, { "type": "EMAIL_OPEN", "weight": "2" }] });
    let p = app.data(&app.keys.admin, q, json!({ "input": bad })).await;
    let mut errors = user_errors(&p["configureAttributionModel"]);
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ("input.halfLifeDays".to_owned(), "INVALID".to_owned()),
            ("input.weights.0.weight".to_owned(), "INVALID".to_owned()),
            ("input.weights.1.type".to_owned(), "DUPLICATE".to_owned()),
        ]
    );
    let p = app
        .mutate(&app.keys.admin, "configureAttributionModel", q, json!({ "input": custom }))
        .await;
    assert_eq!(p["changed"], true);
    assert_eq!(
        p["model"],
        json!({ "kind": "CUSTOM", "version": 2, "isCurrent": true, "weights": [{ "type": "EMAIL_OPEN", "weight": "1" }, { "type": "WEBINAR_ATTEND", "weight": "3" }], "halfLifeDays": null })
    );
    // The same again changes nothing.
    let p = app
        .mutate(&app.keys.admin, "configureAttributionModel", q, json!({ "input": custom }))
        .await;
    assert_eq!(p["changed"], false);
    assert_eq!(p["model"]["version"], 2);

    // CUSTOM without weights means the current version: from the ledger, 3 : 1 : 0.
    let r = report(&app, &app.keys.analyst, json!({ "kind": "CUSTOM" }), q1(), "CAMPAIGN", json!({})).await;
    assert_eq!((r["source"].as_str(), r["modelVersion"].as_i64()), (Some("LEDGER"), Some(2)));
    assert_eq!(
        revenue_by_key(&r),
        map(&[("Webinar", "750.00"), ("Newsletter", "250.00"), ("UNATTRIBUTED", "500.00")])
    );
    // The built-in table, named explicitly, is no longer current: computed.
    let builtin = json!({ "kind": "CUSTOM", "weights": [
        { "type": "EMAIL_OPEN", "weight": "5" }, { "type": "WEBINAR_ATTEND", "weight": "30" }, { "type": "PAGE_VIEW", "weight": "2" } ] });
    let r = report(&app, &app.keys.analyst, builtin, q1(), "CAMPAIGN", json!({})).await;
    assert_eq!(r["source"], "COMPUTED");
    assert_eq!(
        revenue_by_key(&r),
        map(&[
            ("Webinar", "810.81"),
            ("Newsletter", "135.14"),
            ("NO_CAMPAIGN", "54.05"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
    // A new half-life for TIME_DECAY.
    let p = app
        .mutate(
            &app.keys.admin,
            "configureAttributionModel",
            q,
            json!({ "input": { "kind": "TIME_DECAY", "halfLifeDays": "14" } }),
        )
        .await;
    assert_eq!(p["model"]["halfLifeDays"], "14");
    let r = report(
        &app,
        &app.keys.analyst,
        json!({ "kind": "TIME_DECAY", "halfLifeDays": "14" }),
        q1(),
        "CAMPAIGN",
        json!({}),
    )
    .await;
    assert_eq!(r["source"], "LEDGER");
    let list = app
        .data(&app.keys.analyst, "{ attributionModels { kind version isCurrent } }", json!({}))
        .await;
    let versions: Vec<(String, i64, bool)> = list["attributionModels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "CUSTOM" || m["kind"] == "TIME_DECAY")
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["version"].as_i64().unwrap(),
                m["isCurrent"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            ("CUSTOM".to_owned(), 2, true),
            ("TIME_DECAY".to_owned(), 2, true),
            ("CUSTOM".to_owned(), 1, false),
            ("TIME_DECAY".to_owned(), 1, false),
        ]
    );
    assert_month_sums_match_ledger(&app.db).await;
}
both!(model_versions_keep_their_credits);

/// MARKOV on the fixture, solved by hand: journeys WEBINAR > EMAIL > DIRECT > EMAIL (converts,
/// 1,200.00) and EMAIL (Dave, in no deal, does not). P(conversion) = 1/2; removal effects
/// WEBINAR 1/2, EMAIL 1, DIRECT 1/3 (sum 11/6): conversions 3/11, 6/11, 2/11.
async fn markov_by_channel_worked_by_hand(app: TestApp) {
    let f = fixture(&app).await;
    let dave = app.lead("dave@elsewhere.test").await;
    app.record(json!([
        { "leadId": f.bob, "campaignId": f.newsletter, "type": "EMAIL_CLICK", "occurredAt": "2026-02-20T10:00:00Z" },
        { "leadId": dave, "campaignId": f.newsletter, "type": "EMAIL_OPEN", "occurredAt": "2026-01-15T10:00:00Z" },
    ]))
    .await;
    app.opportunity(json!({ "id": f.deal, "amount": "1200" })).await;
    let r = report(&app, &app.keys.analyst, json!({ "kind": "MARKOV" }), q1(), "CHANNEL", json!({})).await;
    let rows: Vec<(String, String, String)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["key"].as_str().unwrap().to_owned(),
                x["revenue"]["amount"].as_str().unwrap().to_owned(),
                x["conversions"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |k: &str, rev: &str, c: &str| (k.to_owned(), rev.to_owned(), c.to_owned());
    assert_eq!(
        rows,
        vec![
            s("EMAIL", "654.55", "0.545455"),
            s("UNATTRIBUTED", "500.00", "1.000000"),
            s("WEBINAR", "327.27", "0.272727"),
            s("DIRECT", "218.18", "0.181818"),
        ]
    );
    assert_eq!(r["totals"]["revenue"]["amount"], "1700.00");
    assert_eq!(r["totals"]["conversions"], "2.000000");
    // MARKOV keys on channels or campaigns only, and has no ledger.
    for (group_by, source) in [("PERSONA", "AUTO"), ("CHANNEL", "LEDGER")] {
        let resp = app
            .gql(
                &app.keys.analyst,
                REPORT,
                json!({ "model": { "kind": "MARKOV" }, "range": q1(), "groupBy": group_by, "source": source }),
            )
            .await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{group_by} {source}");
    }
}
both!(markov_by_channel_worked_by_hand);

/// Bad arguments are top-level BAD_USER_INPUT errors naming the field; another workspace's deals
/// count for nothing.
async fn bad_input_and_other_workspaces(app: TestApp) {
    fixture(&app).await;
    let cases = [
        (
            json!({ "kind": "LINEAR" }),
            json!({ "from": "2026-04-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" }),
            json!({}),
            "range",
        ),
        (
            json!({ "kind": "LINEAR" }),
            json!({ "from": "2026-01-01T00:00:00Z" }),
            json!({}),
            "range",
        ),
        (json!({ "kind": "LINEAR" }), q1(), json!({ "lookbackDays": 0 }), "lookbackDays"),
        (
            json!({ "kind": "LINEAR" }),
            q1(),
            json!({ "lookbackDays": 30, "source": "LEDGER" }),
            "source",
        ),
        (
            json!({ "kind": "TIME_DECAY", "halfLifeDays": "0" }),
            q1(),
            json!({}),
            "model.halfLifeDays",
        ),
        (json!({ "kind": "LINEAR", "weights": [] }), q1(), json!({}), "model.weights"),
    ];
    for (model, range, extra, field) in cases {
        let mut vars = json!({ "model": model, "range": range, "groupBy": "CAMPAIGN" });
        for (k, v) in extra.as_object().unwrap() {
            vars[k] = v.clone();
        }
        let resp = app.gql(&app.keys.analyst, REPORT, vars).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{field}: {resp}");
        let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec![field], "{resp}");
    }
    let r = report(&app, &app.other.analyst, json!({ "kind": "LINEAR" }), q1(), "CAMPAIGN", json!({})).await;
    assert_eq!(r["rows"], json!([]));
    assert_eq!(r["totals"]["deals"], 0);
    let resp = app
        .gql(
            &app.keys.analyst,
            REPORT,
            json!({ "model": { "kind": "LINEAR" }, "range": q1(), "groupBy": "CAMPAIGN" }),
        )
        .await;
    assert!(resp.get("errors").is_none());
    let resp = app
        .gql(
            "",
            REPORT,
            json!({ "model": { "kind": "LINEAR" }, "range": q1(), "groupBy": "CAMPAIGN" }),
        )
        .await;
    assert_eq!(error_code(&resp), "UNAUTHENTICATED");
}
both!(bad_input_and_other_workspaces);

/// The rows of a report add up to the won revenue and the number of won deals.
fn assert_reconciles(r: &Value, won_revenue: Decimal, won: usize, what: &str) {
    let rows = r["rows"].as_array().unwrap();
    let revenue: Decimal = rows.iter().map(|x| dv(&x["revenue"]["amount"])).sum();
    let conversions: Decimal = rows.iter().map(|x| dv(&x["conversions"])).sum();
    assert_eq!(revenue, won_revenue, "{what}");
    assert_eq!(dv(&r["totals"]["revenue"]["amount"]), won_revenue, "{what}");
    assert_eq!(conversions, Decimal::from(won), "{what}");
    assert_eq!(r["totals"]["deals"], won, "{what}");
    assert!(rows.iter().all(|x| dv(&x["revenue"]["amount"]) >= Decimal::ZERO), "{what}");
}

/// A deal's explanation sums to its amount and its shares to one.
fn assert_explains(a: &Value, amount: Decimal, what: &str) {
    if a["unattributed"] == true {
        return;
    }
    let credits = a["credits"].as_array().unwrap();
    let sum: Decimal = credits.iter().map(|c| dv(&c["amount"]["amount"])).sum();
    let shares: Decimal = credits.iter().map(|c| dv(&c["share"])).sum();
    assert_eq!(sum, amount, "{what}");
    assert_eq!(shares, Decimal::ONE, "{what}");
}

/// The sum of column `i` of a comparison.
fn column_sum(c: &Value, i: usize, kind: &Value) -> Decimal {
    c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(&row["models"][i]["model"], kind);
            dv(&row["models"][i]["revenue"]["amount"])
        })
        .sum()
}

/// On the demo company: for every model and grouping the rows add up to the won revenue of the
/// range; every won deal's credits add up to its amount; and the ledger and the computation
/// agree row for row.
async fn demo_totals_reconcile_and_the_ledger_agrees(app: TestApp) {
    let key = app.demo().await;
    let range = json!({ "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" });
    // Won revenue of the range, from the opportunities themselves.
    let q = "query($after: String) { opportunities(first: 100, after: $after, filter: { status: [WON], closedAt: { from: \"2024-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\" } }) {
        nodes { id amount { amount } } pageInfo { hasNextPage endCursor } } }";
    let mut won = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(&key, q, json!({ "after": after })).await;
        let page = &data["opportunities"];
        for n in page["nodes"].as_array().unwrap() {
            won.push((n["id"].as_str().unwrap().to_owned(), dv(&n["amount"]["amount"])));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert!(won.len() >= 20, "the demo has won deals: {}", won.len());
    let won_revenue: Decimal = won.iter().map(|(_, a)| *a).sum();
    let mut models: Vec<Value> = RULES.iter().map(|k| json!({ "kind": k })).collect();
    models.push(json!({ "kind": "MARKOV" }));
    for model in &models {
        for g in GROUPINGS {
            if model["kind"] == "MARKOV" && !matches!(g, "CAMPAIGN" | "CHANNEL") {
                continue;
            }
            let r = report(&app, &key, model.clone(), range.clone(), g, json!({})).await;
            assert_reconciles(&r, won_revenue, won.len(), &format!("{model} by {g}"));
            if model["kind"] != "MARKOV" {
                let computed = report(&app, &key, model.clone(), range.clone(), g, json!({ "source": "COMPUTE" })).await;
                assert_eq!(r["source"], "LEDGER", "{model} by {g}");
                assert_eq!(computed["rows"], r["rows"], "{model} by {g}: ledger and computation");
            }
        }
    }
    // Ragged ends: the whole months inside come from the ledger's monthly campaign sums, the
    // ends from the ledger's rows; together they equal the computation.
    let ragged = json!({ "from": "2024-02-14T09:30:00Z", "to": "2025-10-03T17:00:00Z" });
    for kind in RULES {
        let model = json!({ "kind": kind });
        let ledger = report(&app, &key, model.clone(), ragged.clone(), "CAMPAIGN", json!({ "source": "LEDGER" })).await;
        let computed = report(&app, &key, model, ragged.clone(), "CAMPAIGN", json!({ "source": "COMPUTE" })).await;
        assert_eq!(ledger["source"], "LEDGER", "{kind}");
        assert_eq!(ledger["rows"], computed["rows"], "{kind} over a ragged range");
        assert_eq!(ledger["totals"], computed["totals"], "{kind} over a ragged range");
    }
    // Each deal's explanation sums to its amount, and its shares to one.
    let q = "query($id: ID!, $model: AttributionModelInput!) { opportunity(id: $id) { attribution(model: $model) { unattributed credits { share amount { amount } } } } }";
    for (id, amount) in &won {
        for kind in RULES {
            let data = app.data(&key, q, json!({ "id": id, "model": { "kind": kind } })).await;
            assert_explains(&data["opportunity"]["attribution"], *amount, &format!("{id} {kind}"));
        }
    }
    // The side-by-side report: a column per model, in the order asked.
    let q = "query($models: [AttributionModelInput!]!, $range: DateTimeRangeInput!) { attributionComparison(models: $models, range: $range, groupBy: CHANNEL) {
        reports { model totals { revenue { amount } } } rows { key channel models { model revenue { amount } conversions } } } }";
    let data = app.data(&key, q, json!({ "models": models, "range": range })).await;
    assert_month_sums_match_ledger(&app.db).await;
    let c = &data["attributionComparison"];
    assert_eq!(c["reports"].as_array().unwrap().len(), 9);
    for (i, m) in models.iter().enumerate() {
        assert_eq!(column_sum(c, i, &m["kind"]), won_revenue, "column {m}");
    }
}
both!(demo_totals_reconcile_and_the_ledger_agrees);

/// A report asked again on unchanged data comes from the cache (one statement: the workspace's
/// revision); any write makes the next one compute again, with the new figures.
async fn repeated_reports_come_from_the_cache_until_a_write(app: TestApp) {
    let f = fixture(&app).await;
    let vars = json!({ "model": { "kind": "LINEAR" }, "range": q1(), "groupBy": "CHANNEL" });
    let first = app.data(&app.keys.analyst, REPORT, vars.clone()).await;
    app.statements.clear();
    let again = app.data(&app.keys.analyst, REPORT, vars.clone()).await;
    let statements = app.statements.take();
    assert_eq!(first, again);
    assert_eq!(statements.len(), 1, "{statements:#?}");
    assert!(statements[0].contains("data_revision"), "{statements:#?}");
    // A campaign moves to another channel: no credit changes, but the report does.
    let q = "mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) { userErrors { field code } } }";
    let p = app
        .mutate(
            &app.keys.marketing,
            "updateCampaign",
            q,
            json!({ "input": { "id": f.newsletter, "channel": "CONTENT" } }),
        )
        .await;
    assert_eq!(user_errors(&p), vec![]);
    let after = app.data(&app.keys.analyst, REPORT, vars).await;
    assert_eq!(
        revenue_by_key(&after["attribution"]),
        map(&[
            ("WEBINAR", "333.34"),
            ("CONTENT", "333.33"),
            ("DIRECT", "333.33"),
            ("UNATTRIBUTED", "500.00")
        ])
    );
}
both!(alone: repeated_reports_come_from_the_cache_until_a_write);
