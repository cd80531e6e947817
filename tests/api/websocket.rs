//! The WebSocket endpoint speaks graphql-transport-ws and authenticates in `connection_init`;
//! each breach of the protocol closes the socket with the code and reason the protocol gives it.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp) -> Socket {
    connect_to(&app.ws_url()).await
}

pub async fn connect_to(url: &str) -> Socket {
    connect_with(url, "graphql-transport-ws").await
}

/// Opens a socket asking for the subprotocol `protocol`.
pub async fn connect_with(url: &str, protocol: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

/// Sends `connection_init` with `key` as a bearer token and waits for the ack.
pub async fn init(socket: &mut Socket, key: &str) {
    send(
        socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } }),
    )
    .await;
    assert_eq!(next(socket).await, Ok(json!({ "type": "connection_ack" })));
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The next message: `Ok(json)` for a text frame, `Err(Some((code, reason)))` when the server
/// closes with a close frame, `Err(None)` when the connection ends without one.
pub async fn next(socket: &mut Socket) -> Result<Value, Option<(u16, String)>> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers within 10 s");
        match msg {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string()))),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn a_valid_key_is_acknowledged_and_can_query(app: TestApp) {
    app.lead("ada@example.com").await;
    let mut socket = connect(&app).await;
    let auth = format!("Bearer {}", app.keys.analyst);
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": auth } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));

    // Queries run over the socket as the key's caller, in its workspace.
    let q = "{ viewer { role workspace { name } } leads(first: 5) { totalCount nodes { email } } }";
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": q } })).await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["type"], "next");
    assert_eq!(reply["id"], "1");
    assert_eq!(
        reply["payload"]["data"],
        json!({ "viewer": { "role": "ANALYST", "workspace": { "name": "Acme" } }, "leads": { "totalCount": 1, "nodes": [{ "email": "ada@example.com" }] } })
    );
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "1", "type": "complete" })));

    // The key may also come as `apiKey`, and the role still holds over the socket.
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "apiKey": app.keys.analyst } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    let m = "mutation { upsertLead(input: { email: \"ws@example.com\" }) { created } }";
    send(&mut socket, json!({ "id": "2", "type": "subscribe", "payload": { "query": m } })).await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{reply}");
}
both!(a_valid_key_is_acknowledged_and_can_query);

async fn the_shape_limits_hold_over_the_socket(app: TestApp) {
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.analyst).await;
    let aliases: String = (0..31).map(|i| format!("a{i}: role ")).collect();
    let q = format!("{{ viewer {{ {aliases} }} }}");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": q } })).await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{reply}");
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "1", "type": "complete" })));

    // A subscription is checked before it starts.
    let roots: String = (0..21).map(|i| format!("h{i}: handoffEvents {{ seq }} ")).collect();
    let q = format!("subscription {{ {roots} }}");
    send(&mut socket, json!({ "id": "2", "type": "subscribe", "payload": { "query": q } })).await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["id"], "2");
    assert_eq!(reply["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{reply}");
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "2", "type": "complete" })));

    // And the connection still serves what is within the limits.
    send(
        &mut socket,
        json!({ "id": "3", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["payload"]["data"], json!({ "viewer": { "role": "ANALYST" } }), "{reply}");
}
both!(the_shape_limits_hold_over_the_socket);

/// The close the server ends the socket with.
fn closed(code: u16, reason: &str) -> Result<Value, Option<(u16, String)>> {
    Err(Some((code, reason.to_owned())))
}

async fn a_refused_key_closes_with_4403(app: TestApp) {
    for (payload, reason) in [
        (
            json!({ "Authorization": "Bearer clk_0000000000000000000000000000000000000000000000" }),
            "Forbidden: the API key is not valid",
        ),
        (json!({ "apiKey": "not a key" }), "Forbidden: the API key is not valid"),
        (
            json!({ "Authorization": format!("Basic {}", app.keys.admin) }),
            "Forbidden: connection_init must carry the API key",
        ),
        (json!({}), "Forbidden: connection_init must carry the API key"),
    ] {
        let mut socket = connect(&app).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(next(&mut socket).await, closed(4403, reason), "connection_init with {payload}");
    }
    // Without a payload at all.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next(&mut socket).await,
        closed(4403, "Forbidden: connection_init must carry the API key")
    );
}
both!(a_refused_key_closes_with_4403);

async fn an_operation_before_the_ack_closes_with_4401(app: TestApp) {
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, closed(4401, "Unauthorized"));

    // A refused connection_init acknowledges nothing either: the socket is closed at once.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(next(&mut socket).await.unwrap_err().unwrap().0, 4403);
}
both!(an_operation_before_the_ack_closes_with_4401);

async fn a_second_connection_init_closes_with_4429(app: TestApp) {
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.analyst).await;
    let auth = format!("Bearer {}", app.keys.analyst);
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": auth } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, closed(4429, "Too many initialisation requests"));
}
both!(a_second_connection_init_closes_with_4429);

async fn a_duplicate_operation_id_closes_with_4409(app: TestApp) {
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.analyst).await;
    // An id whose operation has completed may be used again.
    for _ in 0..2 {
        send(
            &mut socket,
            json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
        )
        .await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "next");
        assert_eq!(next(&mut socket).await, Ok(json!({ "id": "q", "type": "complete" })));
    }
    // A running subscription's may not.
    let sub = json!({ "id": "s-1", "type": "subscribe", "payload": { "query": "subscription { handoffEvents { seq } }" } });
    send(&mut socket, sub.clone()).await;
    send(&mut socket, sub).await;
    assert_eq!(next(&mut socket).await, closed(4409, "Subscriber for s-1 already exists"));
}
both!(a_duplicate_operation_id_closes_with_4409);

async fn an_invalid_message_closes_with_4400(app: TestApp) {
    let query = json!({ "query": "{ viewer { role } }" });
    let cases = [
        (Message::text("hello"), "Invalid message received: not a JSON object"),
        (Message::text("[1, 2]"), "Invalid message received: not a JSON object"),
        (
            Message::text(json!({ "id": "1" }).to_string()),
            "Invalid message received: no `type`",
        ),
        (
            Message::text(json!({ "type": "start", "id": "1", "payload": query }).to_string()),
            "Invalid message received: unknown type `start`",
        ),
        (
            Message::text(json!({ "type": "next", "id": "1", "payload": {} }).to_string()),
            "Invalid message received: unknown type `next`",
        ),
        (
            Message::text(json!({ "type": "subscribe", "payload": query }).to_string()),
            "Invalid message received: `subscribe` needs a non-empty `id` string",
        ),
        (
            Message::text(json!({ "type": "subscribe", "id": "", "payload": query }).to_string()),
            "Invalid message received: `subscribe` needs a non-empty `id` string",
        ),
        (
            Message::text(json!({ "type": "subscribe", "id": "1", "payload": {} }).to_string()),
            "Invalid message received: `subscribe` needs a payload with a `query` string",
        ),
        (
            Message::text(
                json!({ "type": "subscribe", "id": "1", "payload": { "query": "{ viewer { role } }", "variables": [1] } }).to_string(),
            ),
            "Invalid message received: `subscribe` has a malformed payload",
        ),
        (
            Message::text(json!({ "type": "complete", "id": 7 }).to_string()),
            "Invalid message received: `complete` needs a non-empty `id` string",
        ),
        (
            Message::text(json!({ "type": "ping", "payload": "x" }).to_string()),
            "Invalid message received: `ping` payload must be an object",
        ),
    ];
    for (message, reason) in cases {
        let mut socket = connect(&app).await;
        init(&mut socket, &app.keys.analyst).await;
        let sent = format!("{message:?}");
        socket.send(message).await.unwrap();
        assert_eq!(next(&mut socket).await, closed(4400, reason), "after {sent}");
    }
    // Before connection_init too, and a connection_init whose payload is not an object.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({ "type": "connection_init", "payload": "Bearer x" })).await;
    assert_eq!(
        next(&mut socket).await,
        closed(4400, "Invalid message received: `connection_init` payload must be an object")
    );
}
both!(an_invalid_message_closes_with_4400);

async fn a_session_subscribes_receives_and_completes(app: TestApp) {
    let mut socket = connect(&app).await;
    // A ping is answered before and after connection_init.
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "pong" })));
    init(&mut socket, &app.keys.analyst).await;
    send(&mut socket, json!({ "type": "ping", "payload": { "at": 1 } })).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "pong" })));
    let sub = json!({ "id": "s", "type": "subscribe", "payload": { "query": "subscription { handoffEvents { seq kind } }" } });
    send(&mut socket, sub.clone()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    hand_off(&app, "ada@example.com").await;
    assert_eq!(
        next(&mut socket).await,
        Ok(json!({ "id": "s", "type": "next", "payload": { "data": { "handoffEvents": { "seq": 1, "kind": "CREATED" } } } }))
    );

    // The client completes it: nothing more comes for it, and its id is free again.
    send(&mut socket, json!({ "id": "s", "type": "complete" })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    hand_off(&app, "bob@example.com").await;
    send(
        &mut socket,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        Ok(json!({ "id": "q", "type": "next", "payload": { "data": { "viewer": { "role": "ANALYST" } } } }))
    );
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "q", "type": "complete" })));
    send(&mut socket, sub).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    hand_off(&app, "cy@example.com").await;
    assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["handoffEvents"]["seq"], 3);

    // The client closes normally, and the server answers its close frame (no 1006 for the client).
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    socket.close(Some(normal)).await.unwrap();
    assert_eq!(next(&mut socket).await, closed(1000, ""));
}
both!(a_session_subscribes_receives_and_completes);

/// Hands a new lead `email` off as MARKETING.
async fn hand_off(app: &TestApp, email: &str) {
    let lead = app.lead(email).await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { code } } }";
    let payload = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": lead } }))
        .await;
    assert_eq!(payload["userErrors"], json!([]));
}

async fn the_legacy_graphql_ws_protocol_still_works(app: TestApp) {
    let mut socket = connect_with(&app.ws_url(), "graphql-ws").await;
    let auth = format!("Bearer {}", app.keys.analyst);
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": auth } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    send(
        &mut socket,
        json!({ "id": "1", "type": "start", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        Ok(json!({ "id": "1", "type": "data", "payload": { "data": { "viewer": { "role": "ANALYST" } } } }))
    );
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "1", "type": "complete" })));

    // A refused key is a connection_error message, as subscriptions-transport-ws has it.
    let mut socket = connect_with(&app.ws_url(), "graphql-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "apiKey": "clk_0000000000000000000000000000000000000000000000" } }),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(answer["type"], "connection_error", "{answer}");
    assert!(
        answer["payload"]["message"].as_str().unwrap().contains("authentication required"),
        "{answer}"
    );
}
both!(the_legacy_graphql_ws_protocol_still_works);

async fn each_operation_sees_fresh_data(app: TestApp) {
    let account = app.account(json!({ "name": "Initech", "externalId": "acc-1" })).await;
    app.upsert_lead(json!({ "email": "ada@initech.test", "accountId": account })).await;
    let mut socket = connect(&app).await;
    let auth = format!("Bearer {}", app.keys.analyst);
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": auth } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));

    let q = "{ leads(first: 1) { nodes { account { name } } } }";
    let ask = async |socket: &mut Socket, id: &str| {
        send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": q } })).await;
        let reply = next(socket).await.unwrap();
        assert_eq!(next(socket).await, Ok(json!({ "id": id, "type": "complete" })));
        reply["payload"]["data"]["leads"]["nodes"][0]["account"]["name"].clone()
    };
    assert_eq!(ask(&mut socket, "1").await, "Initech");

    // The account is renamed between two operations of the same connection.
    let rename =
        "mutation { upsertAccount(input: { externalId: \"acc-1\", name: \"Initrode\" }) { account { name } userErrors { code } } }";
    let payload = app.mutate(&app.keys.admin, "upsertAccount", rename, json!({})).await;
    assert_eq!(payload["account"]["name"], "Initrode");
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(data["leads"]["nodes"][0]["account"]["name"], "Initrode", "over HTTP");
    assert_eq!(ask(&mut socket, "2").await, "Initrode", "over the same WebSocket");
}
both!(each_operation_sees_fresh_data);

async fn a_client_offering_both_protocols_is_answered_in_graphql_transport_ws(app: TestApp) {
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws, graphql-transport-ws".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    // The messages are those of the protocol the server named.
    init(&mut socket, &app.keys.analyst).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        Ok(json!({ "id": "1", "type": "next", "payload": { "data": { "viewer": { "role": "ANALYST" } } } }))
    );
}
both!(a_client_offering_both_protocols_is_answered_in_graphql_transport_ws);

/// The npm packages of the graphql-ws client run, pinned: the client of most frontends.
const GRAPHQL_WS_CLIENT: [&str; 3] = ["graphql-ws@6.4.2", "ws@8.23.1", "graphql@16.15.0"];

/// A directory with the graphql-ws client installed and its scenario (`client.mjs`), installed
/// by npm once per run under Cargo's temporary directory for tests; `Err` says why there is none.
fn graphql_ws_client() -> Result<std::path::PathBuf, String> {
    static DIR: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use std::process::Command;
        for tool in ["node", "npm"] {
            let found = Command::new(tool).arg("--version").output();
            if !found.is_ok_and(|o| o.status.success()) {
                return Err(format!("`{tool}` is not on the PATH"));
            }
        }
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("npm-{}", GRAPHQL_WS_CLIENT.join("-")));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if !dir.join("node_modules/graphql-ws/package.json").exists() {
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .args(GRAPHQL_WS_CLIENT)
                .output()
                .map_err(|e| format!("npm did not run: {e}"))?;
            if !out.status.success() {
                return Err(format!("npm install failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        std::fs::write(dir.join("client.mjs"), include_str!("graphql_ws_client.mjs"))
            .map_err(|e| format!("cannot write the scenario: {e}"))?;
        Ok(dir)
    })
    .clone()
}

async fn the_graphql_ws_client_queries_subscribes_and_sees_a_refusal(app: TestApp) {
    let dir = match tokio::task::spawn_blocking(graphql_ws_client).await.unwrap() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("SKIPPED the graphql-ws client test: {why}");
            return;
        }
    };
    let lead = app.lead("ada@example.com").await;
    let mut node = std::process::Command::new("node");
    node.arg(dir.join("client.mjs"))
        .env("URL", app.ws_url())
        .env("KEY", &app.keys.admin)
        .env("LEAD", &lead);
    // The scenario ends itself after 20 s at most.
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the scenario failed: {stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(
        seen["query"],
        json!({ "results": [{ "data": { "viewer": { "role": "ADMIN" } } }], "end": "complete" })
    );
    assert_eq!(
        seen["mutation"],
        json!({ "results": [{ "data": { "handOffLead": { "userErrors": [] } } }], "end": "complete" })
    );
    assert_eq!(
        seen["event"],
        json!({ "data": { "handoffEvents": { "seq": 1, "kind": "CREATED" } } })
    );
    // The client hands the close event to the subscriber: 4403, which it does not retry blindly.
    assert_eq!(
        seen["refused"],
        json!({ "results": [], "error": { "code": 4403, "reason": "Forbidden: the API key is not valid" } })
    );
}
both!(the_graphql_ws_client_queries_subscribes_and_sees_a_refusal);
