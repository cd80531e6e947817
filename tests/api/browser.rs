//! In a real browser (Debian's Chromium, headless, driven by Playwright from npm), with the
//! network cut off from everything but 127.0.0.1: GraphiQL as the server serves it, and a
//! single-page app on another origin. `tests/browser/setup.sh` installs Chromium when the machine
//! has none and the pinned npm packages; where it cannot, the tests say so and pass.
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The installed scenarios (tests/browser/*.mjs) and their node_modules, with Chromium when
/// `chromium`; `Err` says why this machine cannot have them. A failed install fails the test.
pub fn kit(chromium: bool) -> Result<PathBuf, String> {
    static NPM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static BROWSER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    // One setup at a time: both kits install the npm packages into the same directory.
    static SETUP: Mutex<()> = Mutex::new(());
    let install = || {
        let _one = SETUP.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
        let mut setup = Command::new("bash");
        setup.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/setup.sh")).arg(&dir);
        if chromium {
            setup.arg("chromium");
        }
        let out = setup.output().expect("bash runs");
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        match out.status.code() {
            Some(0) => Ok(dir),
            Some(3) => Err(why),
            _ => panic!("tests/browser/setup.sh failed: {why}"),
        }
    };
    if chromium { &BROWSER } else { &NPM }.get_or_init(install).clone()
}

/// Runs the scenario `name`.mjs (in Chromium when `chromium`) with `env`: what it printed, as
/// JSON; `None` when the kit cannot be installed here.
pub async fn scenario(name: &str, chromium: bool, env: Vec<(&'static str, String)>) -> Option<Value> {
    let dir = match tokio::task::spawn_blocking(move || kit(chromium)).await.unwrap() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("SKIPPED the scenario {name}: {why}");
            return None;
        }
    };
    let mut node = Command::new("node");
    node.arg(dir.join(format!("{name}.mjs"))).current_dir(&dir).envs(env);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the scenario {name} failed: {stderr}");
    Some(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}")))
}

async fn graphiql_renders_and_answers_offline(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    let env = vec![
        ("API", format!("http://{}", app.addr)),
        ("KEY", app.keys.analyst.clone()),
        ("MARKETING_KEY", app.keys.marketing.clone()),
        ("LEAD", lead),
    ];
    let Some(seen) = scenario("graphiql", true, env).await else {
        return;
    };
    assert_eq!(seen["failure"], Value::Null, "{seen:#}");
    assert_eq!(seen["title"], "closedloop GraphiQL");
    assert!(
        seen["defaultHeaders"].as_str().unwrap().contains("Bearer <your API key>"),
        "the header editor offers the key header: {seen:#}"
    );
    assert_eq!(
        seen["query"],
        json!({ "data": { "viewer": { "role": "ANALYST", "workspace": { "name": "Acme" } } } })
    );
    assert_eq!(seen["socket"], format!("ws://{}/graphql/ws", app.addr));
    assert_eq!(seen["handOff"], json!({ "data": { "handOffLead": { "userErrors": [] } } }));
    assert_eq!(
        seen["event"],
        json!({ "data": { "handoffEvents": { "seq": 1, "kind": "CREATED", "lead": { "email": "ada@example.com" } } } })
    );
    assert_eq!(seen["outside"], json!([]), "no request left 127.0.0.1");
    assert_eq!(seen["errors"], json!([]), "no page or console errors (a CSP violation is one)");
}
both!(graphiql_renders_and_answers_offline);

/// A static server for the SPA's page and its graphql-ws client, on its own origin.
async fn spa_origin(kit: &std::path::Path) -> String {
    let client = std::fs::read(kit.join("node_modules/graphql-ws/umd/graphql-ws.min.js")).expect("graphql-ws UMD build");
    let page = std::fs::read_to_string(kit.join("spa.html")).expect("spa.html");
    let app = Router::new().route("/", get(move || async move { Html(page) })).route(
        "/graphql-ws.min.js",
        get(move || async move { ([("content-type", "text/javascript")], client) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn a_spa_on_another_origin_lists_leads_and_follows_handoffs(app: TestApp) {
    let kit = match tokio::task::spawn_blocking(|| kit(true)).await.unwrap() {
        Ok(kit) => kit,
        Err(why) => return eprintln!("SKIPPED the scenario spa: {why}"),
    };
    let spa = spa_origin(&kit).await;
    let other = spa_origin(&kit).await;
    let allowed = spa.clone();
    let api = app.serve_with(move |c| c.cors_origins = vec![allowed]).await;
    let first = app.lead("ada@example.com").await;
    let second = app.lead("bob@example.com").await;
    // A handoff before the page opens: the page follows from the last event it finds.
    let q = "mutation($id: ID!) { handOffLead(input: { leadId: $id }) { userErrors { code } } }";
    app.mutate(&app.keys.marketing, "handOffLead", q, json!({ "id": first })).await;

    let env = vec![
        ("SPA", format!("{spa}/")),
        ("OTHER", format!("{other}/")),
        ("API", format!("http://{api}")),
        ("KEY", app.keys.analyst.clone()),
        ("MARKETING_KEY", app.keys.marketing.clone()),
        ("LEAD", second),
    ];
    let Some(seen) = scenario("spa", true, env).await else { return };
    assert_eq!(seen["failure"], Value::Null, "{seen:#}");
    assert_eq!(seen["status"], "following", "{seen:#}");
    let mut leads: Vec<&str> = seen["leads"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    leads.sort_unstable();
    assert_eq!(leads, ["ada@example.com", "bob@example.com"]);
    assert_eq!(seen["handOff"], json!({ "data": { "handOffLead": { "userErrors": [] } } }));
    assert_eq!(seen["events"], json!(["2 CREATED bob@example.com"]));
    assert_eq!(seen["outside"], json!([]), "no request left 127.0.0.1");
    assert_eq!(seen["errors"], json!([]), "{seen:#}");

    // From an origin the server does not allow, the browser hands the page no answer.
    assert!(seen["otherStatus"].as_str().unwrap().starts_with("failed: TypeError"), "{seen:#}");
    let blocked = seen["otherErrors"].to_string();
    assert!(blocked.contains("CORS policy"), "{blocked}");
}
both!(a_spa_on_another_origin_lists_leads_and_follows_handoffs);

/// A customer's landing page on its own origin, with the server's tag filled in.
async fn landing_origin(kit: &std::path::Path, api: &str, site_key: &str) -> String {
    let page = std::fs::read_to_string(kit.join("landing.html"))
        .expect("landing.html")
        .replace("{{API}}", api)
        .replace("{{SITE_KEY}}", site_key);
    let app = Router::new().route("/landing", get(move || async move { Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn a_landing_page_with_the_script_makes_a_scored_lead_of_its_form(app: TestApp) {
    let kit = match tokio::task::spawn_blocking(|| kit(true)).await.unwrap() {
        Ok(kit) => kit,
        Err(why) => return eprintln!("SKIPPED the scenario landing: {why}"),
    };
    let q = "mutation { createScoringModel(input: { name: \"Default\" }) { userErrors { code } } }";
    app.mutate(&app.keys.marketing, "createScoringModel", q, json!({})).await;
    app.campaign(json!({ "name": "Whitepaper hydraulics", "channel": "CONTENT", "kind": "ACQUISITION", "trackingCode": "wp-hydraulics" }))
        .await;
    let site_key = app.data(&app.keys.analyst, "{ trackingSettings { siteKey } }", json!({})).await["trackingSettings"]["siteKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = format!("http://{}", app.addr);
    let origin = landing_origin(&kit, &api, &site_key).await;
    let env = vec![
        (
            "LANDING",
            format!("{origin}/landing?utm_source=linkedin&utm_medium=paid&utm_campaign=wp-hydraulics"),
        ),
        ("API", api),
    ];
    let Some(seen) = scenario("landing", true, env).await else {
        return;
    };
    assert_eq!(seen["failure"], Value::Null, "{seen:#}");
    assert_eq!(seen["outside"], json!([]), "no request left 127.0.0.1");
    assert_eq!(seen["errors"], json!([]), "no page or console errors: {seen:#}");
    assert_eq!(
        (&seen["pageView"], &seen["download"], &seen["identify"]),
        (&json!(202), &json!(202), &json!(202))
    );
    assert_eq!(seen["done"], "sent", "the page's own form handler still ran");
    assert_eq!(
        seen["cookie"],
        json!(["_clv"]),
        "a first-party cookie on the landing page's own origin"
    );

    // Processed: the lead, with its page view and download attributed to the campaign, and a score.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = "{ ingestStatus { acknowledged processed } }";
    loop {
        let s = app.data(&app.keys.analyst, status, json!({})).await["ingestStatus"].clone();
        if s["acknowledged"] == 3 && s["processed"] == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not processed: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let q = "{ leadByEmail(email: \"petra.produzent@example.com\") { firstName jobTitle score { activityScore } touchpoints(first: 10) { nodes { type campaign { name } } } } }";
    let lead = app.data(&app.keys.analyst, q, json!({})).await["leadByEmail"].clone();
    assert_eq!(
        (&lead["firstName"], &lead["jobTitle"]),
        (&json!("Petra"), &json!("Production manager"))
    );
    assert!(lead["score"]["activityScore"].as_f64().unwrap() > 0.0, "{lead}");
    let mut touches: Vec<(String, String)> = lead["touchpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_owned(),
                t["campaign"]["name"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    touches.sort();
    let wp = "Whitepaper hydraulics".to_owned();
    assert_eq!(
        touches,
        vec![
            ("FORM_SUBMIT".to_owned(), wp.clone()),
            ("PAGE_VIEW".to_owned(), wp.clone()),
            ("WHITEPAPER_DOWNLOAD".to_owned(), wp),
        ]
    );
}
both!(a_landing_page_with_the_script_makes_a_scored_lead_of_its_form);
