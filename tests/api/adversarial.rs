//! What a hostile client may try against the HTTP surface: documents whose expansion explodes
//! (fragment bombs, alias and directive floods, deep nesting, token floods), clients that send
//! slowly or hold connections idle, and more connections than the server serves at once. Each
//! asserts the refusal (its status and `extensions.code`) and that others are still answered.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use crate::helpers::{TestApp, error_code};

/// `query { ...F{n} }` where fragment `F{i}` spreads `F{i-1}` twice: 2^n `viewer` fields.
fn fragment_bomb(n: usize) -> String {
    let mut q = format!("query {{ ...F{n} }} fragment F0 on Query {{ viewer {{ role }} }}");
    for i in 1..=n {
        write!(q, " fragment F{i} on Query {{ ...F{j} ...F{j} }}", j = i - 1).unwrap();
    }
    q
}

/// The message of the first error, for checking which limit refused a query.
fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn a_fragment_bomb_is_refused_at_once_and_others_are_served_meanwhile(app: TestApp) {
    let bomb = fragment_bomb(26);
    assert!(bomb.len() < 2048, "a 2 KB document");
    // Both keys known and connections open, so that what is timed is the refusal.
    for key in [&app.keys.analyst, &app.other.analyst] {
        app.data(key, "{ viewer { role } }", json!({})).await;
    }
    // Four bombs at once from one workspace, while another workspace asks for its viewer.
    let bombs: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, key, bomb) = (app.client.clone(), app.url("/graphql"), app.keys.analyst.clone(), bomb.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let resp: Value = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({ "query": bomb }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (resp, started.elapsed())
            })
        })
        .collect();
    let started = Instant::now();
    let other = app.data(&app.other.analyst, "{ viewer { role } }", json!({})).await;
    let other_took = started.elapsed();
    assert_eq!(other["viewer"]["role"], "ANALYST");
    for bomb in bombs {
        let (resp, took) = bomb.await.unwrap();
        assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
        assert!(message(&resp).contains("fields"), "refused for its expanded size: {resp}");
        assert!(resp.get("data").is_none_or(Value::is_null), "not executed: {resp}");
        assert!(took < Duration::from_millis(50), "refused in {took:?}");
    }
    assert!(other_took < Duration::from_millis(100), "the other workspace waited {other_took:?}");
}
both!(alone: a_fragment_bomb_is_refused_at_once_and_others_are_served_meanwhile);

async fn fragments_used_many_times_within_the_limits_still_run(app: TestApp) {
    // F3 expands to 8 `viewer { role }`, 16 fields; the definitions add 2 + 4 + 8 + 16.
    let data = app.data(&app.keys.analyst, &fragment_bomb(3), json!({})).await;
    assert_eq!(data["viewer"]["role"], "ANALYST");
    // A fragment that spreads itself is refused before anything expands it.
    let resp = app
        .gql(
            &app.keys.analyst,
            "query { ...A } fragment A on Query { viewer { role } ...B } fragment B on Query { ...A }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{resp}");
    assert!(message(&resp).contains("spreads itself"), "{resp}");
}
both!(fragments_used_many_times_within_the_limits_still_run);

async fn alias_directive_and_token_floods_are_refused(app: TestApp) {
    let key = &app.keys.analyst;
    // Aliases multiplied by spreading one fragment: 8 aliases, spread 4 times.
    let aliases: String = (0..8).map(|i| format!("a{i}: role ")).collect();
    let q = format!("{{ viewer {{ ...V ...V ...V ...V }} }} fragment V on Viewer {{ {aliases} }}");
    let resp = app.gql(key, &q, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert!(message(&resp).contains("aliases"), "{resp}");

    // graphql-cop's directive overloading probe: ten unknown directives on one field get one
    // refusal, not ten validation errors.
    let resp = app
        .gql(key, "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }", json!({}))
        .await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert_eq!(resp["errors"].as_array().unwrap().len(), 1, "{resp}");
    // Many directives spread over fields.
    let skips: String = (0..60).map(|i| format!("a{i}: __typename @skip(if: false) ")).collect();
    let resp = app.gql(key, &format!("{{ {skips} }}"), json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    // Two directives on a field are fine.
    let data = app
        .data(key, "{ viewer @include(if: true) @skip(if: false) { role } }", json!({}))
        .await;
    assert_eq!(data["viewer"]["role"], "ANALYST");

    // Tokens are counted before parsing: 30,000 of them in an argument list.
    let ints = "1 ".repeat(30_000);
    let resp = app
        .gql(
            key,
            &format!("{{ leads(first: 1, filter: {{ country: [{ints}] }}) {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert!(message(&resp).contains("tokens"), "{resp}");

    // Brackets nested 10,000 deep in a value never reach the parser's recursion.
    let deep = format!(
        "{{ leads(first: 1, filter: {{ country: {}\"DE\"{} }}) {{ totalCount }} }}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let resp = app.gql(key, &deep, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert!(message(&resp).contains("nest"), "{resp}");

    // The server still answers.
    let data = app.data(key, "{ viewer { role } }", json!({})).await;
    assert_eq!(data["viewer"]["role"], "ANALYST");
}
both!(alias_directive_and_token_floods_are_refused);

async fn the_introspection_query_of_graphiql_runs(app: TestApp) {
    let data = app.data(&app.keys.analyst, INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Lead"), "the schema's types are listed");
}
both!(the_introspection_query_of_graphiql_runs);

/// The introspection query GraphiQL and code generators send (graphql-js's, with descriptions).
const INTROSPECTION: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name } } } } } } }
}";

/// Reads until the text read contains `until`, the server closes the connection, or `within`
/// passes: the text, and when it ended (`None` after `within`).
async fn read_until(stream: &mut OwnedReadHalf, until: &str, within: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), Some(started.elapsed())),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if text.contains(until) {
                    return (text, Some(started.elapsed()));
                }
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
}

/// A raw POST /graphql head for a body of `length` bytes.
fn head(key: &str, length: usize) -> String {
    format!(
        "POST /graphql HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

async fn slow_clients_are_cut_off(app: TestApp) {
    let addr = app
        .serve_with(|c| {
            let conn = &mut c.limits.connections;
            conn.header_read_timeout = Duration::from_millis(500);
            conn.body_read_timeout = Duration::from_secs(3);
            conn.min_body_bytes_per_second = 100;
            conn.body_rate_window = Duration::from_millis(500);
        })
        .await;

    // Headers a byte at a time: the connection is closed after the header timeout.
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let key = app.keys.analyst.clone();
    tokio::spawn(async move {
        for b in head(&key, 10).bytes() {
            if writer.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (_, closed) = read_until(&mut reader, "\r\n\r\n", Duration::from_secs(3)).await;
    let closed = closed.expect("a head sent at 10 bytes a second is cut off");
    assert!(closed < Duration::from_secs(2), "cut off after {closed:?}");

    // A body a byte at a time: 408 with a coded JSON error after the first window.
    let body = r#"{"query": "{ viewer { role } }"}"#;
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    writer.write_all(head(&app.keys.analyst, body.len()).as_bytes()).await.unwrap();
    tokio::spawn(async move {
        for b in body.bytes() {
            if writer.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (answer, at) = read_until(&mut reader, "}]}", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"TIMEOUT""#), "{answer}");
    assert!(
        at.is_some_and(|t| t < Duration::from_secs(2)),
        "refused after the first window: {at:?}"
    );
}
both!(slow_clients_are_cut_off);

async fn idle_connections_are_closed(app: TestApp) {
    let addr = app
        .serve_with(|c| c.limits.connections.idle_timeout = Duration::from_millis(700))
        .await;
    let body = r#"{"query": "{ viewer { role } }"}"#;
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    writer
        .write_all(format!("{}{body}", head(&app.keys.analyst, body.len())).as_bytes())
        .await
        .unwrap();
    let (answer, _) = read_until(&mut reader, "ANALYST", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_, closed) = read_until(&mut reader, "never sent", Duration::from_secs(5)).await;
    let idle = closed.expect("an idle connection is closed");
    assert!(
        idle >= Duration::from_millis(600),
        "closed after {idle:?} idle, not before the idle timeout"
    );
}
both!(idle_connections_are_closed);

async fn connections_over_the_cap_wait_for_a_free_one(app: TestApp) {
    let addr = app.serve_with(|c| c.limits.connections.max_connections = 2).await;
    // Two connections that send nothing hold both slots.
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/graphql");
    let query = client
        .post(&url)
        .bearer_auth(&app.keys.analyst)
        .json(&json!({ "query": "{ viewer { role } }" }))
        .send();
    tokio::pin!(query);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut query).await.is_err(),
        "a third connection is not served while two are open"
    );
    drop(first);
    let resp = tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
both!(connections_over_the_cap_wait_for_a_free_one);

async fn an_oversized_body_gets_a_coded_json_error(app: TestApp) {
    let addr = app.serve_with(|c| c.limits.max_body_bytes = 1024).await;
    let client = reqwest::Client::new();
    let padding = " ".repeat(2048);
    let resp = client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&app.keys.analyst)
        .header("Content-Type", "application/json")
        .body(format!("{{\"query\": \"{{ viewer {{ role }} }}\"{padding}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
}
both!(an_oversized_body_gets_a_coded_json_error);

/// graphql-cop's checks, as it sends them: each is refused or finds nothing to report.
async fn graphql_cop_finds_nothing(app: TestApp) {
    let key = &app.keys.analyst;
    let post = |content_type: &'static str, body: String| {
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(key)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };

    // Alias overloading: 101 aliases of one field.
    let aliases: String = (0..=100).map(|i| format!("alias{i}:__typename ")).collect();
    let resp = app.gql(key, &format!("query cop {{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");

    // Array-based batching.
    let batch = json!([{ "query": "query cop { __typename }" }, { "query": "query cop { __typename }" }]);
    let resp = post("application/json", batch.to_string()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Directive overloading: one error, not ten.
    let resp = app
        .gql(key, "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }", json!({}))
        .await;
    assert_eq!(resp["errors"].as_array().map(Vec::len), Some(1), "{resp}");

    // Mutations over GET.
    let resp = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(key)
        .query(&[("query", "mutation cop { __typename }")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");

    // POST bodies a browser sends cross-site without a preflight (CSRF): form and plain text.
    let resp = post("application/x-www-form-urlencoded", "query=query+cop+%7B__typename%7D".into())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let resp = post("text/plain", json!({ "query": "query cop { __typename }" }).to_string())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // Trace mode: no tracing in the response's extensions.
    let resp = app.gql(key, "query cop { __typename }", json!({})).await;
    assert_eq!(resp["data"]["__typename"], "Query");
    assert!(resp.get("extensions").is_none_or(|e| e.get("tracing").is_none()), "{resp}");
}
both!(graphql_cop_finds_nothing);

async fn a_websocket_message_over_the_body_limit_ends_the_connection(app: TestApp) {
    use crate::websocket::{connect_to, init, next, send};
    let addr = app.serve_with(|c| c.limits.max_body_bytes = 64 * 1024).await;
    let url = format!("ws://{addr}/graphql/ws");
    let mut socket = connect_to(&url).await;
    init(&mut socket, &app.keys.analyst).await;
    // Within the limit: answered.
    let query = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } });
    send(&mut socket, query).await;
    let answer = next(&mut socket).await.expect("an answer");
    assert_eq!(answer["payload"]["data"]["viewer"]["role"], "ANALYST", "{answer}");
    // 128 KiB of padding in one message: the connection ends, nothing is answered.
    let padding = " ".repeat(128 * 1024);
    let big = format!(r#"{{"id": "2", "type": "subscribe", "payload": {{ "query": "{{ viewer {{ role }} }}{padding}" }}}}"#);
    let _ = futures_util::SinkExt::send(&mut socket, tokio_tungstenite::tungstenite::Message::text(big)).await;
    while let Ok(msg) = next(&mut socket).await {
        assert_ne!(msg["id"], "2", "the large message was not run: {msg}");
    }
}
both!(a_websocket_message_over_the_body_limit_ends_the_connection);

async fn a_websocket_runs_at_most_so_many_operations_at_once(app: TestApp) {
    use crate::websocket::{connect_to, init, next, send};
    let addr = app.serve_with(|c| c.events.max_operations_per_connection = 2).await;
    let mut socket = connect_to(&format!("ws://{addr}/graphql/ws")).await;
    init(&mut socket, &app.keys.analyst).await;
    let subscribe = |id: &str, query: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    for id in ["a", "b"] {
        send(&mut socket, subscribe(id, "subscription { handoffEvents { seq } }")).await;
    }
    // A third operation while two subscriptions run: refused, and the socket goes on.
    send(&mut socket, subscribe("c", "{ viewer { role } }")).await;
    let refused = next(&mut socket).await.expect("an answer");
    assert_eq!(
        (refused["id"].as_str(), refused["type"].as_str()),
        (Some("c"), Some("next")),
        "{refused}"
    );
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "c", "type": "complete" })));
    // Once one subscription is completed, the next operation runs.
    send(&mut socket, json!({ "id": "a", "type": "complete" })).await;
    send(&mut socket, subscribe("d", "{ viewer { role } }")).await;
    let answer = next(&mut socket).await.expect("an answer");
    assert_eq!(answer["payload"]["data"]["viewer"]["role"], "ANALYST", "{answer}");
}
both!(a_websocket_runs_at_most_so_many_operations_at_once);

async fn a_websocket_peer_that_stops_answering_is_dropped(app: TestApp) {
    use crate::websocket::{connect_to, init, next, send};
    let addr = app.serve_with(|c| c.events.websocket_keepalive = Duration::from_millis(300)).await;
    let url = format!("ws://{addr}/graphql/ws");
    // A client that reads answers the server's pings (its WebSocket library does) and stays.
    let mut reading = connect_to(&url).await;
    init(&mut reading, &app.keys.analyst).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), next(&mut reading)).await.is_err(),
        "nothing but pings came"
    );
    let query = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { role } }" } });
    send(&mut reading, query).await;
    let answer = next(&mut reading).await.expect("still served");
    assert_eq!(answer["payload"]["data"]["viewer"]["role"], "ANALYST", "{answer}");

    // A client that stops reading sends no pongs: after two intervals of silence it is dropped.
    let mut silent = connect_to(&url).await;
    init(&mut silent, &app.keys.analyst).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(next(&mut silent).await, Err(None), "the server dropped the connection");
}
both!(a_websocket_peer_that_stops_answering_is_dropped);
