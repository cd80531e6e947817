//! The `closedloop` binary as an operator runs it: progress lines of `import`, `seed` and
//! `export` when stderr is not a terminal, the import's time per table, JSON log lines, and the refusal of
//! `--otlp-endpoint` by a binary built without the `otlp` feature.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::{TestApp, scratch_dir, sqlite_file_url};

fn closedloop(args: &[&str], database_url: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("run closedloop");
    assert!(
        out.status.success(),
        "closedloop {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A line `{command}: {table} {rows} rows in {s} s ({rate} rows/s)` is in `stderr`.
fn has_step(stderr: &str, command: &str, table: &str, rows: u64) -> bool {
    let prefix = format!("{command}: {table} {rows} rows in ");
    stderr
        .lines()
        .any(|l| l.starts_with(&prefix) && l.ends_with(" rows/s)") && l.contains(" s ("))
}

#[test]
fn import_and_seed_print_plain_progress_lines_and_times_per_table() {
    let dir = scratch_dir("progress");
    std::fs::create_dir_all(&dir).unwrap();
    let url = sqlite_file_url(&dir.join("closedloop.db"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");

    let out = closedloop(&["import", fixture.to_str().unwrap(), "--workspace", "Imported"], &url);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    // Not a terminal: whole lines, no carriage returns or escape sequences.
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "{stderr:?}");
    // The fixture: 1 user, 2 accounts, 2 campaigns, 3 leads, 4 touchpoints.
    for (table, rows) in [("users", 1), ("accounts", 2), ("campaigns", 2), ("leads", 3), ("touchpoints", 4)] {
        assert!(has_step(&stderr, "import", table, rows), "no line for {table} in:\n{stderr}");
    }
    let times = stdout
        .lines()
        .find_map(|l| l.strip_prefix("time per table: "))
        .unwrap_or_else(|| panic!("no time per table in:\n{stdout}"));
    for table in ["users 1 rows ", "leads 3 rows ", "touchpoints 4 rows ", "statistics 0 rows "] {
        assert!(times.contains(table), "{table:?} not in {times:?}");
    }
    assert!(stdout.contains("imported "), "{stdout}");

    let out = closedloop(&["seed", "--leads", "40", "--workspace", "Seeded"], &url);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    // About 40 leads: the generator rounds to whole accounts.
    for step in ["generating leads", "leads", "touchpoints", "scores"] {
        let prefix = format!("seed: {step} ");
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix) && l.ends_with(" rows/s)")),
            "no {step} in:\n{stderr}"
        );
    }
    assert!(stdout.contains("time per step: generating leads "), "{stdout}");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_logs_json_lines_when_asked() {
    let dir = scratch_dir("jsonlog");
    std::fs::create_dir_all(&dir).unwrap();
    let url = sqlite_file_url(&dir.join("closedloop.db"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start closedloop serve");
    // The lines are read on a thread of their own, so that a server that never says it serves
    // fails the test after a minute instead of hanging it.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut serving = None;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if entry["fields"]["message"] == "serving" {
            serving = Some(entry);
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let entry = serving.expect("a \"serving\" line within a minute");
    assert_eq!(entry["level"], "INFO");
    assert!(entry["fields"]["addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{entry}");
    assert!(entry["timestamp"].is_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(not(feature = "otlp"))]
#[test]
fn an_otlp_endpoint_needs_the_otlp_feature() {
    let out = Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(["serve", "--otlp-endpoint", "http://127.0.0.1:4318"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("built with the `otlp` feature"), "{stderr}");
}

/// A span per request reaches an OTLP/HTTP receiver (a tiny one here, counting POSTs to
/// `/v1/traces`), with the operation's name in it; the last spans are sent when the server stops.
#[cfg(feature = "otlp")]
#[tokio::test]
async fn spans_reach_an_otlp_receiver() {
    use std::sync::{Arc, Mutex};

    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = bodies.clone();
    let receiver = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let dir = scratch_dir("otlp");
    std::fs::create_dir_all(&dir).unwrap();
    let (mut child, graphiql) =
        crate::helpers::serve_process(&sqlite_file_url(&dir.join("closedloop.db")), &["--otlp-endpoint", &endpoint]).await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(&graphiql)
        .json(&serde_json::json!({ "query": "query TracedOperation { __typename }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    // SIGTERM: the server stops, and the exporter sends what it holds.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let received = bodies.lock().unwrap().clone();
    assert!(!received.is_empty(), "no POST /v1/traces");
    let contains = |needle: &[u8]| received.iter().any(|b| b.windows(needle.len()).any(|w| w == needle));
    assert!(contains(b"graphql"), "no graphql span");
    assert!(contains(b"TracedOperation"), "the span lacks the operation name");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn export_writes_the_csv_to_stdout_and_its_progress_to_stderr() {
    let dir = scratch_dir("export-cli");
    let app = TestApp::spawn_sqlite_file(&dir).await;
    for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        app.lead(email).await;
    }
    let q = "mutation { createScoringModel(input: { name: \"Default\" }) { userErrors { code } } }";
    app.mutate(&app.keys.marketing, "createScoringModel", q, json!({})).await;
    let url = sqlite_file_url(&dir.join("closedloop.db"));
    let out = tokio::task::spawn_blocking(move || closedloop(&["export", "leads", "--workspace", "Acme"], &url))
        .await
        .unwrap();
    let (csv, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    let mut emails: Vec<&str> = csv.lines().skip(1).filter_map(|l| l.split(',').nth(2)).collect();
    emails.sort_unstable();
    assert_eq!(emails, ["ada@example.com", "bob@example.com", "cy@example.com"], "{csv}");
    assert!(csv.starts_with("id,externalId,email,"), "{csv}");
    assert!(has_step(&stderr, "export", "leads", 3), "no line for the leads in:\n{stderr}");
    assert!(stderr.contains("exported 3 leads in "), "{stderr}");
}

#[tokio::test]
async fn export_links_gives_each_recipient_a_personal_link_and_pixel() {
    let dir = scratch_dir("export-links");
    let app = TestApp::spawn_sqlite_file(&dir).await;
    app.lead("ada@example.com").await;
    app.upsert_lead(json!({ "email": "bob@example.com", "externalId": "crm-bob" }))
        .await;
    let campaign = app.simple_campaign("Newsletter").await;
    let m = "mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { trackingLink { id } userErrors { code } } }";
    let link = app
        .mutate(
            &app.keys.marketing,
            "createTrackingLink",
            m,
            json!({ "i": { "campaignId": campaign, "destination": "https://example.com/offer" } }),
        )
        .await["trackingLink"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recipients = dir.join("recipients.csv");
    std::fs::write(
        &recipients,
        "email,first_name\nADA@example.com,Ada\nnobody@example.com,=cmd\nbob@example.com,Bob\n",
    )
    .unwrap();
    let url = sqlite_file_url(&dir.join("closedloop.db"));
    let public = format!("http://{}", app.addr);
    let args: Vec<String> = [
        "export",
        "links",
        "--workspace",
        "Acme",
        "--link",
        &link,
        "--recipients",
        recipients.to_str().unwrap(),
        "--public-url",
        &public,
        "--sent-at",
        "2026-01-01T09:00:00Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        closedloop(&args, &url)
    })
    .await
    .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], vec!["email", "first_name", "url", "pixel_url"]);
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows[1][2].starts_with(&format!("{public}/t/c/")) && rows[1][3].ends_with(".gif"),
        "{csv}"
    );
    assert_eq!(
        (rows[2][1], rows[2][2], rows[2][3]),
        ("'=cmd", "", ""),
        "no lead: empty cells; a formula is quoted"
    );
    assert_ne!(rows[1][2], rows[3][2], "each recipient has a link of their own");
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 recipients, 1 of them no lead"));
    // The link works: a person's click is redirected to the destination.
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = web
        .get(rows[1][2])
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0")
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://example.com/offer?cl_t=")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
