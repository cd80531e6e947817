//! The `closedloop` binary as an operator runs it: JSON log lines, and spans over OTLP (or the
//! refusal of `--otlp-endpoint` by a binary built without the `otlp` feature).
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::{scratch_dir, sqlite_file_url};

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
    let stderr = child.stderr.take().unwrap();
    let mut serving = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if entry["fields"]["message"] == "serving" {
            serving = Some(entry);
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let entry = serving.expect("a \"serving\" line");
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(["serve", "--bind", "127.0.0.1:0", "--otlp-endpoint", &endpoint])
        .env("DATABASE_URL", sqlite_file_url(&dir.join("closedloop.db")))
        .env_remove("LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start closedloop serve");
    let stdout = child.stdout.take().unwrap();
    let graphiql = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("GraphiQL: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the server's address");
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
