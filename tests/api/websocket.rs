//! The WebSocket endpoint speaks graphql-transport-ws and authenticates in `connection_init`.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp) -> Socket {
    connect_to(&app.ws_url()).await
}

pub async fn connect_to(url: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
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

/// The next message: `Ok(json)` for a text frame, `Err(close code)` when the server closes.
pub async fn next(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers within 10 s");
        match msg {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
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

async fn a_bad_key_is_refused(app: TestApp) {
    for payload in [
        json!({ "Authorization": "Bearer clk_0000000000000000000000000000000000000000000000" }),
        json!({ "Authorization": format!("Basic {}", app.keys.admin) }),
        json!({}),
    ] {
        let mut socket = connect(&app).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
        let answer = next(&mut socket).await;
        assert!(
            answer.is_err(),
            "connection_init with {payload} must close the socket, got {answer:?}"
        );
        // graphql-transport-ws asks for 4403; async-graphql closes with 1002 (protocol error).
        if let Err(Some(code)) = answer {
            assert!([1002, 4403].contains(&code), "close code {code} for {payload}");
        }
    }

    // Nothing runs before connection_init.
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    let answer = next(&mut socket).await;
    assert!(
        answer.is_err(),
        "a subscribe before connection_init closes the socket, got {answer:?}"
    );
}
both!(a_bad_key_is_refused);

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
