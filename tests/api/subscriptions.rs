//! `handoffEvents`: replay after a cursor, then live, without gaps or duplicates; scoping,
//! limits, slow subscribers, and replicas that share events through PostgreSQL.
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Sharing, TestApp, id_of};
use crate::websocket::{Socket, connect, connect_to, connect_with, init, next, send};

const EVENT: &str = "cursor seq kind leadId owner { name }";

/// Opens a socket on `url`, authenticates and subscribes with `args` (e.g. `(after: "...")`).
async fn subscribe(url: &str, key: &str, args: &str) -> Socket {
    let mut socket = connect_to(url).await;
    init(&mut socket, key).await;
    let q = format!("subscription {{ handoffEvents{args} {{ {EVENT} }} }}");
    send(&mut socket, json!({ "id": "s", "type": "subscribe", "payload": { "query": q } })).await;
    socket
}

/// The next event of subscription "s".
async fn event(socket: &mut Socket) -> Value {
    let msg = next(socket).await.expect("an event");
    assert_eq!(msg["type"], "next", "{msg:#}");
    assert!(msg["payload"]["errors"].is_null(), "{msg:#}");
    msg["payload"]["data"]["handoffEvents"].clone()
}

/// Nothing arrives within `wait`.
async fn quiet(socket: &mut Socket, wait: Duration) {
    use futures_util::StreamExt;
    if let Ok(Some(Ok(msg))) = tokio::time::timeout(wait, socket.next()).await
        && !msg.is_ping()
        && !msg.is_pong()
    {
        panic!("expected nothing, got {msg:?}");
    }
}

async fn hand_off(app: &TestApp, key: &str, email: &str) -> Value {
    let lead = app.lead(email).await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } event { cursor seq } userErrors { field message code } } }";
    app.mutate(key, "handOffLead", q, json!({ "input": { "leadId": lead } })).await
}

async fn a_subscriber_that_reconnects_gets_exactly_what_it_missed_then_live_events(app: TestApp) {
    let url = app.ws_url();
    let mut first = subscribe(&url, &app.keys.analyst, "").await;
    // Subscribed from now on: the stream is open before the first handoff.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let made = hand_off(&app, &app.keys.marketing, "one@example.com").await;
    let e1 = event(&mut first).await;
    assert_eq!((e1["seq"].as_i64(), e1["kind"].as_str()), (Some(1), Some("CREATED")));
    assert_eq!(e1["cursor"], made["event"]["cursor"]);
    drop(first);

    // Offline: three handoffs.
    for email in ["two@example.com", "three@example.com", "four@example.com"] {
        hand_off(&app, &app.keys.marketing, email).await;
    }
    let args = format!("(after: {})", e1["cursor"]);
    let mut back = subscribe(&url, &app.keys.analyst, &args).await;
    let missed: Vec<i64> = [event(&mut back).await, event(&mut back).await, event(&mut back).await]
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(missed, [2, 3, 4]);
    // Then live, and nothing twice.
    hand_off(&app, &app.keys.marketing, "five@example.com").await;
    assert_eq!(event(&mut back).await["seq"], 5);
    quiet(&mut back, Duration::from_millis(400)).await;

    // A burst while subscribed arrives complete and in order.
    let burst: Vec<_> = (0..20).map(|i| format!("burst{i}@example.com")).collect();
    futures_util::future::join_all(burst.iter().map(|e| hand_off(&app, &app.keys.marketing, e))).await;
    let mut seqs = Vec::new();
    for _ in 0..20 {
        seqs.push(event(&mut back).await["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, (6..=25).collect::<Vec<_>>());
    quiet(&mut back, Duration::from_millis(300)).await;
}
both!(a_subscriber_that_reconnects_gets_exactly_what_it_missed_then_live_events);

async fn subscriptions_see_their_workspace_and_their_filter_only(app: TestApp) {
    let url = app.ws_url();
    let mut accepted_only = subscribe(&url, &app.keys.analyst, "(kinds: [ACCEPTED])").await;
    let mut globex = subscribe(&url, &app.other.analyst, "").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let made = hand_off(&app, &app.keys.marketing, "acme@example.com").await;
    let q = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { userErrors { field message code } } }";
    app.mutate(
        &app.keys.sales,
        "acceptHandoff",
        q,
        json!({ "input": { "id": id_of(&made["handoff"]) } }),
    )
    .await;
    let e = event(&mut accepted_only).await;
    assert_eq!((e["kind"].as_str(), e["seq"].as_i64()), (Some("ACCEPTED"), Some(2)));
    // Globex hears of its own handoff only; its sequence starts at 1.
    let q = "mutation { upsertLead(input: { email: \"globex@example.com\" }) { lead { id } } }";
    let lead = app.data(&app.other.admin, q, json!({})).await["upsertLead"]["lead"]["id"].clone();
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { field message code } } }";
    app.mutate(&app.other.marketing, "handOffLead", q, json!({ "input": { "leadId": lead } }))
        .await;
    let g = event(&mut globex).await;
    assert_eq!(g["seq"], 1);
    quiet(&mut globex, Duration::from_millis(300)).await;

    // A cursor that is not one, or one ahead of the workspace's events, is refused.
    for (after, code) in [("\"garbage\"", "BAD_USER_INPUT"), ("\"ZXZ0Ojk5\"", "BAD_USER_INPUT")] {
        let mut s = subscribe(&url, &app.keys.analyst, &format!("(after: {after})")).await;
        let msg = next(&mut s).await.expect("an answer");
        let errors = if msg["type"] == "error" {
            msg["payload"].clone()
        } else {
            msg["payload"]["errors"].clone()
        };
        assert_eq!(errors[0]["extensions"]["code"], code, "{msg:#}");
    }
}
both!(subscriptions_see_their_workspace_and_their_filter_only);

async fn a_connection_holds_a_bounded_number_of_subscriptions(app: TestApp) {
    // The test server allows 3 per connection. The four start concurrently: any one may lose.
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.analyst).await;
    let q = "subscription { handoffEvents { seq } }";
    for id in ["1", "2", "3", "4"] {
        send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": { "query": q } })).await;
    }
    let refused = loop {
        let msg = next(&mut socket).await.expect("an answer");
        if msg["type"] == "complete" {
            continue;
        }
        let errors = if msg["type"] == "error" {
            msg["payload"].clone()
        } else {
            msg["payload"]["errors"].clone()
        };
        assert!(errors[0]["message"].as_str().unwrap().contains("at most 3"), "{msg:#}");
        break msg["id"].as_str().unwrap().to_owned();
    };
    let mut live: Vec<String> = ["1", "2", "3", "4"]
        .iter()
        .map(|s| s.to_string())
        .filter(|id| *id != refused)
        .collect();
    // Ending one frees its slot.
    let ended = live.remove(0);
    send(&mut socket, json!({ "id": ended, "type": "complete" })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut socket, json!({ "id": "5", "type": "subscribe", "payload": { "query": q } })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    live.push("5".into());
    hand_off(&app, &app.keys.marketing, "slots@example.com").await;
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let msg = next(&mut socket).await.expect("an event");
        if msg["type"] == "complete" {
            continue;
        }
        assert_eq!(msg["type"], "next", "{msg:#}");
        assert_eq!(msg["payload"]["data"]["handoffEvents"]["seq"], 1, "{msg:#}");
        ids.push(msg["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, live);
}
both!(a_connection_holds_a_bounded_number_of_subscriptions);

async fn a_socket_without_connection_init_is_closed(app: TestApp) {
    // The test server waits 1 s for connection_init.
    let mut socket = connect(&app).await;
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), next(&mut socket)).await;
    assert_eq!(
        answer,
        Ok(Err(Some((4408, "Connection initialisation timeout".to_owned())))),
        "graphql-transport-ws closes with 4408"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // The legacy graphql-ws protocol has no such code: the connection just ends.
    let mut socket = connect_with(&app.ws_url(), "graphql-ws").await;
    let answer = tokio::time::timeout(Duration::from_secs(5), next(&mut socket)).await;
    assert!(matches!(answer, Ok(Err(_))), "the server closes the socket, got {answer:?}");
}
both!(a_socket_without_connection_init_is_closed);

async fn a_subscriber_that_falls_behind_is_told_where_to_resume(app: TestApp) {
    use closedloop::events::stream::{Filter, StreamError, events};
    use closedloop::events::{Bus, Notice};
    use futures_util::StreamExt;
    hand_off(&app, &app.keys.marketing, "behind@example.com").await;
    let ws = closedloop::store::workspace::by_name(&app.db.conn, "Acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    // A small bus, and a subscriber that does not read while 40 hints pass.
    let bus = Bus::new(16);
    let mut stream = Box::pin(events(app.db.conn.clone(), &bus, ws, Some(0), Filter::default()));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    for _ in 0..40 {
        bus.publish(Notice::Resync);
    }
    match stream.next().await {
        Some(Err(StreamError::TooSlow { resume_after })) => assert_eq!(resume_after, 1),
        other => panic!("expected TooSlow, got {other:?}"),
    }
    assert!(stream.next().await.is_none(), "the stream ends after the error");
}
both!(a_subscriber_that_falls_behind_is_told_where_to_resume);

/// A second `closedloop serve` process on the same PostgreSQL database.
struct Replica {
    child: std::process::Child,
    addr: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_replica(database_url: &str) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(["serve", "--database-url", database_url, "--bind", &addr])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start a second server process");
    let replica = Replica { child, addr };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("http://{}/healthz", replica.addr)).send().await
            && r.status().is_success()
        {
            return replica;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the second server did not come up");
}

async fn two_replicas(app: TestApp) {
    let replica = start_replica(&app.database_url).await;
    let mut socket = subscribe(&format!("ws://{}/graphql/ws", replica.addr), &app.keys.analyst, "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Made on the first server, heard on the second.
    let made = hand_off(&app, &app.keys.marketing, "replica@example.com").await;
    let e = event(&mut socket).await;
    assert_eq!(e["cursor"], made["event"]["cursor"]);
    assert_eq!(e["kind"], "CREATED");
    quiet(&mut socket, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn replicas_on_one_postgres_database_share_events() {
    crate::helpers::run(Backend::Postgres, Sharing::Shared, two_replicas).await
}
