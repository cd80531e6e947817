//! Apollo's automatic persisted queries: a hash instead of the text, PERSISTED_QUERY_NOT_FOUND
//! until hash and text have come together once; over POST, GET and WebSocket; and with Apollo
//! Client's own persisted-query link.
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::scenario;
use crate::helpers::TestApp;
use crate::websocket::{connect, init, next, send};

const TEXT: &str = "query Viewer { viewer { role workspace { name } } }";

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn extension(text: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(text) } })
}

async fn post(app: &TestApp, body: Value) -> Value {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.keys.analyst)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {resp:#}"))
}

async fn a_hash_is_not_found_until_its_text_came_with_it(app: TestApp) {
    let viewer = json!({ "data": { "viewer": { "role": "ANALYST", "workspace": { "name": "Acme" } } } });
    let by_hash = json!({ "operationName": "Viewer", "extensions": extension(TEXT) });
    let resp = post(&app, by_hash.clone()).await;
    assert_eq!(code(&resp), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(resp["data"], Value::Null);

    // A text with another text's hash is refused, and registers nothing.
    let wrong = json!({ "query": "{ viewer { role } }", "extensions": extension(TEXT) });
    let resp = post(&app, wrong).await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
    assert_eq!(code(&post(&app, by_hash.clone()).await), "PERSISTED_QUERY_NOT_FOUND");

    // A text over the limits is refused before it is registered.
    let deep = format!("{{ viewer {} }}", "{ workspace ".repeat(20) + &"}".repeat(20));
    let resp = post(&app, json!({ "query": deep, "extensions": extension(&deep) })).await;
    assert_eq!(code(&resp), "QUERY_TOO_COMPLEX");
    let resp = post(&app, json!({ "extensions": extension(&deep) })).await;
    assert_eq!(code(&resp), "PERSISTED_QUERY_NOT_FOUND");

    // Without a key, hash and text register nothing (so no one without a key evicts texts).
    let anonymous = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": TEXT, "extensions": extension(TEXT) }))
        .send()
        .await
        .unwrap();
    let anonymous: Value = anonymous.json().await.unwrap();
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(code(&post(&app, by_hash.clone()).await), "PERSISTED_QUERY_NOT_FOUND");

    // Hash and text register it: the hash alone then runs it, over POST, GET and WebSocket.
    let resp = post(&app, json!({ "query": TEXT, "extensions": extension(TEXT) })).await;
    assert_eq!(resp, viewer);
    assert_eq!(post(&app, by_hash).await, viewer);
    let resp: Value = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&app.keys.analyst)
        .query(&[("extensions", extension(TEXT).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp, viewer);
    let mut socket = connect(&app).await;
    init(&mut socket, &app.keys.analyst).await;
    // graphql-transport-ws requires a `query` string: an empty one stands for the hash's text.
    let payload = json!({ "query": "", "extensions": extension(TEXT) });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "id": "1", "type": "next", "payload": viewer })));

    // Another version of the protocol, or a malformed hash, is the caller's to fix.
    let v2 = json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash(TEXT) } } });
    assert_eq!(code(&post(&app, v2).await), "BAD_USER_INPUT");
    let short = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } });
    assert_eq!(code(&post(&app, short).await), "BAD_USER_INPUT");
}
both!(a_hash_is_not_found_until_its_text_came_with_it);

async fn apollo_clients_persisted_query_link_works(app: TestApp) {
    let env = vec![("API", format!("http://{}", app.addr)), ("KEY", app.keys.analyst.clone())];
    let Some(seen) = scenario("apollo", false, env).await else { return };
    assert_eq!(seen["failure"], Value::Null, "{seen:#}");
    let sent = |method: &str, with_text: bool, code: Value| json!({ "method": method, "withText": with_text, "withHash": true, "status": 200, "code": code });
    let not_found = json!("PERSISTED_QUERY_NOT_FOUND");
    let viewer = json!({ "__typename": "Viewer", "role": "ANALYST", "workspace": { "__typename": "Workspace", "name": "Acme" } });
    assert_eq!(seen["first"], json!({ "viewer": viewer }));
    assert_eq!(
        seen["firstSent"],
        json!([sent("POST", false, not_found.clone()), sent("POST", true, Value::Null)])
    );
    assert_eq!(seen["again"], seen["first"]);
    assert_eq!(seen["againSent"], json!([sent("POST", false, Value::Null)]));
    assert_eq!(
        seen["leads"],
        json!({ "leads": { "__typename": "LeadConnection", "totalCount": 0 } })
    );
    assert_eq!(
        seen["leadsSent"],
        json!([sent("GET", false, not_found), sent("POST", true, Value::Null)])
    );
    assert_eq!(seen["leadsAgainSent"], json!([sent("GET", false, Value::Null)]));
}
both!(apollo_clients_persisted_query_link_works);
