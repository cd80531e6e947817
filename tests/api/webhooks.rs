//! Webhooks: signed POSTs of handoff events, retried after failures, in order, with a log;
//! only to public addresses and allow-listed networks, and never through a redirect.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use closedloop::domain::destination::{AllowList, parse_net};

use crate::helpers::{TestApp, error_code, global_id, id_of, user_errors};

const SECRET: &str = "whsec_0123456789abcdef";

/// A local receiver that answers 500 to the first `fail` requests and records every request.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String, u16)>>>,
    fail: Arc<Mutex<usize>>,
}

impl Receiver {
    pub(crate) async fn start(fail: usize) -> (Self, String) {
        let r = Receiver::default();
        *r.fail.lock().unwrap() = fail;
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let mut fail = state.fail.lock().unwrap();
                    let status = if *fail > 0 {
                        *fail -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    state.seen.lock().unwrap().push((headers, body, status.as_u16()));
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    /// Waits until `n` requests have come in.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, String, u16)> {
        for _ in 0..200 {
            if self.seen.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.seen.lock().unwrap().clone()
    }
}

/// Checks `X-Closedloop-Signature: t=..,v1=..` against HMAC-SHA256(secret, "t.body").
fn verify(headers: &HeaderMap, body: &str, secret: &str) -> bool {
    let header = headers["x-closedloop-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == v1
}

pub(crate) async fn create_webhook(app: &TestApp, url: &str, kinds: Value) -> String {
    let q = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id url active secretHint } userErrors { field message code } } }";
    let made = app
        .mutate(
            &app.keys.admin,
            "createWebhook",
            q,
            json!({ "input": { "url": url, "kinds": kinds, "secret": SECRET } }),
        )
        .await;
    assert_eq!(made["webhook"]["secretHint"], "cdef");
    id_of(&made["webhook"])
}

async fn hand_off(app: &TestApp, email: &str) -> String {
    let lead = app.lead(email).await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field message code } } }";
    id_of(
        &app.mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": lead } }))
            .await["handoff"],
    )
}

async fn events_are_signed_retried_and_delivered_in_order(app: TestApp) {
    // The receiver fails twice: the first event is retried, the second waits for it.
    let (receiver, url) = Receiver::start(2).await;
    let hook = create_webhook(&app, &url, json!([])).await;
    let first = hand_off(&app, "hook1@example.com").await;
    let q = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { userErrors { field message code } } }";
    app.mutate(&app.keys.sales, "acceptHandoff", q, json!({ "input": { "id": first } }))
        .await;

    let seen = receiver.wait_for(4).await;
    assert_eq!(seen.len(), 4, "two failures and two deliveries");
    let statuses: Vec<u16> = seen.iter().map(|s| s.2).collect();
    assert_eq!(statuses, [500, 500, 204, 204]);
    let bodies: Vec<Value> = seen.iter().map(|s| serde_json::from_str(&s.1).unwrap()).collect();
    let seqs: Vec<i64> = bodies.iter().map(|b| b["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 1, 1, 2], "in order: the second event waits for the first");
    assert_eq!(bodies[2]["kind"], "CREATED");
    assert_eq!(bodies[2]["handoffId"], first);
    assert_eq!(bodies[2]["toStage"]["key"], "MQL");
    assert_eq!(bodies[3]["kind"], "ACCEPTED");
    for (headers, body, _) in &seen {
        assert!(verify(headers, body, SECRET), "signature of {body}");
        assert!(!verify(headers, body, "another secret entirely"));
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["x-closedloop-event-id"], body["cursor"].as_str().unwrap());
    }
    assert_eq!(seen[0].0["x-closedloop-delivery"], "1");
    assert_eq!(seen[2].0["x-closedloop-delivery"], "3");

    // The log shows each delivery with its attempts; nothing is sent twice afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.seen.lock().unwrap().len(), 4);
    let q = "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 10) { totalCount nodes { seq status attempts lastStatusCode deliveredAt } } } } }";
    let log = app.data(&app.keys.admin, q, json!({ "id": hook })).await;
    let nodes = &log["node"]["deliveries"]["nodes"];
    assert_eq!(log["node"]["deliveries"]["totalCount"], 2);
    assert_eq!(nodes[0]["seq"], 2);
    assert_eq!(
        (nodes[0]["status"].as_str(), nodes[0]["attempts"].as_i64()),
        (Some("DELIVERED"), Some(1))
    );
    assert_eq!(
        (nodes[1]["status"].as_str(), nodes[1]["attempts"].as_i64()),
        (Some("DELIVERED"), Some(3))
    );
    assert_eq!(nodes[1]["lastStatusCode"], 204);
    // Webhooks are ADMIN data.
    let hidden = app
        .data(&app.keys.sales, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": hook }))
        .await;
    assert_eq!(hidden["node"], Value::Null);
    let resp = app.gql(&app.keys.sales, "{ webhooks(first: 5) { totalCount } }", json!({})).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
}
both!(events_are_signed_retried_and_delivered_in_order);

async fn a_webhook_gets_the_kinds_it_asked_for_and_gives_up_in_the_end(app: TestApp) {
    // Always failing: the test server gives up after 5 attempts.
    let (receiver, url) = Receiver::start(usize::MAX).await;
    let hook = create_webhook(&app, &url, json!(["ACCEPTED"])).await;
    let h = hand_off(&app, "kinds@example.com").await;
    let q = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { userErrors { field message code } } }";
    app.mutate(&app.keys.sales, "acceptHandoff", q, json!({ "input": { "id": h } }))
        .await;
    let seen = receiver.wait_for(5).await;
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|(_, body, _)| body.contains("\"ACCEPTED\"")));
    let q = "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 10) { nodes { status attempts lastError } } } } }";
    let mut status = Value::Null;
    for _ in 0..40 {
        let log = app.data(&app.keys.admin, q, json!({ "id": hook })).await;
        status = log["node"]["deliveries"]["nodes"][0].clone();
        if status["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "FAILED", "{status:#}");
    assert_eq!(status["attempts"], 5);
    assert_eq!(status["lastError"], "the receiver answered 500");
}
both!(a_webhook_gets_the_kinds_it_asked_for_and_gives_up_in_the_end);

async fn webhook_input_is_checked(app: TestApp) {
    let q = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } userErrors { field message code } } }";
    let bad = app
        .data(
            &app.keys.admin,
            q,
            json!({ "input": { "url": "ftp://example.com/x", "secret": "short" } }),
        )
        .await;
    assert_eq!(
        user_errors(&bad["createWebhook"]),
        vec![("input.url".into(), "INVALID".into()), ("input.secret".into(), "INVALID".into())]
    );
    let resp = app
        .gql(
            &app.keys.marketing,
            q,
            json!({ "input": { "url": "https://example.com/x", "secret": SECRET } }),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
    let made = app
        .data(
            &app.keys.admin,
            q,
            json!({ "input": { "url": "https://example.com/x", "secret": SECRET } }),
        )
        .await;
    let id = id_of(&made["createWebhook"]["webhook"]);
    let update = "mutation($input: UpdateWebhookInput!) { updateWebhook(input: $input) { webhook { active kinds } userErrors { field message code } } }";
    let paused = app
        .mutate(
            &app.keys.admin,
            "updateWebhook",
            update,
            json!({ "input": { "id": id, "active": false, "kinds": ["CREATED"] } }),
        )
        .await;
    assert_eq!(paused["webhook"], json!({ "active": false, "kinds": ["CREATED"] }));
    let resp = app
        .gql(&app.other.admin, update, json!({ "input": { "id": id, "active": true } }))
        .await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
}
both!(webhook_input_is_checked);

async fn a_paused_webhook_keeps_its_deliveries_until_resumed(app: TestApp) {
    let (receiver, url) = Receiver::start(0).await;
    let hook = create_webhook(&app, &url, json!([])).await;
    let update =
        "mutation($input: UpdateWebhookInput!) { updateWebhook(input: $input) { webhook { active } userErrors { field message code } } }";
    app.mutate(
        &app.keys.admin,
        "updateWebhook",
        update,
        json!({ "input": { "id": hook, "active": false } }),
    )
    .await;
    hand_off(&app, "paused1@example.com").await;
    hand_off(&app, "paused2@example.com").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.seen.lock().unwrap().len(), 0, "nothing goes out while paused");
    app.mutate(
        &app.keys.admin,
        "updateWebhook",
        update,
        json!({ "input": { "id": hook, "active": true } }),
    )
    .await;
    let seen = receiver.wait_for(2).await;
    let seqs: Vec<i64> = seen
        .iter()
        .map(|(_, body, _)| serde_json::from_str::<Value>(body).unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
}
both!(a_paused_webhook_keeps_its_deliveries_until_resumed);

const CREATE: &str =
    "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id url } userErrors { field message code } } }";
const UPDATE: &str =
    "mutation($input: UpdateWebhookInput!) { updateWebhook(input: $input) { webhook { id url } userErrors { field message code } } }";

/// The URLs users registered to probe the server's network, with the code each is refused with.
const PROBES: [(&str, &str); 10] = [
    ("http://127.0.0.1:8080/hook", "DESTINATION_NOT_ALLOWED"),
    ("http://localhost:8080/hook", "DESTINATION_NOT_ALLOWED"),
    ("http://[::1]:8080/hook", "DESTINATION_NOT_ALLOWED"),
    ("http://169.254.169.254/latest/meta-data/", "DESTINATION_NOT_ALLOWED"),
    ("http://10.0.0.1/hook", "DESTINATION_NOT_ALLOWED"),
    ("http://0.0.0.0:5432/", "DESTINATION_NOT_ALLOWED"),
    ("http://2130706433/hook", "DESTINATION_NOT_ALLOWED"),
    ("http://[::ffff:127.0.0.1]/hook", "DESTINATION_NOT_ALLOWED"),
    ("https://user:pw@hooks.example.com/hook", "CREDENTIALS_NOT_ALLOWED"),
    ("https://user@hooks.example.com/hook", "CREDENTIALS_NOT_ALLOWED"),
];

/// The workspace's webhook URLs, from the API.
async fn webhook_urls(app: &TestApp) -> Vec<String> {
    let list = app
        .data(&app.keys.admin, "{ webhooks(first: 50) { nodes { url } } }", json!({}))
        .await;
    list["webhooks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["url"].as_str().unwrap().to_owned())
        .collect()
}

async fn network_probes_are_refused_at_registration(app: TestApp) {
    let public = app
        .mutate(
            &app.keys.admin,
            "createWebhook",
            CREATE,
            json!({ "input": { "url": "https://hooks.example.com/closedloop", "secret": SECRET } }),
        )
        .await;
    let id = id_of(&public["webhook"]);
    for (url, code) in PROBES {
        let made = app
            .data(&app.keys.admin, CREATE, json!({ "input": { "url": url, "secret": SECRET } }))
            .await;
        assert_eq!(made["createWebhook"]["webhook"], Value::Null, "{url}");
        assert_eq!(
            user_errors(&made["createWebhook"]),
            vec![("input.url".into(), code.into())],
            "{url}"
        );
        let message = made["createWebhook"]["userErrors"][0]["message"].as_str().unwrap();
        assert!(!message.contains("pw"), "the message does not repeat a password: {message}");
        let changed = app
            .data(&app.keys.admin, UPDATE, json!({ "input": { "id": id, "url": url } }))
            .await;
        assert_eq!(changed["updateWebhook"]["webhook"], Value::Null, "{url}");
        assert_eq!(
            user_errors(&changed["updateWebhook"]),
            vec![("input.url".into(), code.into())],
            "{url}"
        );
    }
    let made = app
        .data(
            &app.keys.admin,
            CREATE,
            json!({ "input": { "url": "http://169.254.169.254/", "secret": SECRET } }),
        )
        .await;
    assert_eq!(
        made["createWebhook"]["userErrors"][0]["message"],
        "169.254.169.254 is a link-local address; webhooks reach public addresses only, unless the server allow-lists the network (--webhook-allow)"
    );
    // Nothing was written: the one public webhook, unchanged.
    assert_eq!(webhook_urls(&app).await, ["https://hooks.example.com/closedloop"]);
}
both!(public_only: network_probes_are_refused_at_registration);

async fn the_allow_list_opens_its_networks_and_no_others(app: TestApp) {
    // The test server allow-lists 127.0.0.0/8 and ::1, as `--webhook-allow` would.
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://127.9.9.9/hook",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",
    ] {
        let made = app
            .mutate(
                &app.keys.admin,
                "createWebhook",
                CREATE,
                json!({ "input": { "url": url, "secret": SECRET } }),
            )
            .await;
        assert_eq!(made["webhook"]["url"], url);
    }
    for (url, code) in [
        ("http://169.254.169.254/latest/meta-data/", "DESTINATION_NOT_ALLOWED"),
        ("http://10.0.0.1/hook", "DESTINATION_NOT_ALLOWED"),
        ("http://0.0.0.0:5432/", "DESTINATION_NOT_ALLOWED"),
        ("http://user:pw@127.0.0.1:8080/hook", "CREDENTIALS_NOT_ALLOWED"),
    ] {
        let made = app
            .data(&app.keys.admin, CREATE, json!({ "input": { "url": url, "secret": SECRET } }))
            .await;
        assert_eq!(
            user_errors(&made["createWebhook"]),
            vec![("input.url".into(), code.into())],
            "{url}"
        );
    }
    assert_eq!(webhook_urls(&app).await.len(), 4);
}
both!(the_allow_list_opens_its_networks_and_no_others);

/// A receiver that answers every POST with `307` to `location` and counts them.
async fn redirecting_receiver(location: String) -> (Arc<Mutex<usize>>, String) {
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            let location = location.clone();
            async move {
                *seen.lock().unwrap() += 1;
                (StatusCode::TEMPORARY_REDIRECT, [("location", location)])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (count, url)
}

async fn a_redirect_is_not_followed(app: TestApp) {
    let (target, target_url) = Receiver::start(0).await;
    let (redirects, url) = redirecting_receiver(target_url).await;
    let hook = create_webhook(&app, &url, json!([])).await;
    hand_off(&app, "redirect@example.com").await;

    let q = "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 10) { nodes { status attempts lastStatusCode lastError } } } } }";
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let log = app.data(&app.keys.admin, q, json!({ "id": hook })).await;
        delivery = log["node"]["deliveries"]["nodes"][0].clone();
        if delivery["attempts"].as_i64() >= Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery["status"], "PENDING", "{delivery:#}");
    assert!(delivery["attempts"].as_i64() >= Some(2), "{delivery:#}");
    assert_eq!(delivery["lastStatusCode"], 307);
    assert_eq!(delivery["lastError"], "the receiver answered 307; redirects are not followed");
    assert!(*redirects.lock().unwrap() >= 2);
    assert_eq!(target.seen.lock().unwrap().len(), 0, "the redirect's target got nothing");
}
both!(a_redirect_is_not_followed);

async fn a_webhook_no_longer_allowed_is_not_sent(app: TestApp) {
    // Registered while the server allow-listed loopback; this server was started without it.
    let (receiver, url) = Receiver::start(0).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    let admin = closedloop::auth::KeyResolver::default()
        .resolve(&app.db.conn, &app.keys.admin)
        .await
        .unwrap();
    let loopback = AllowList::new([parse_net("127.0.0.0/8").unwrap()]);
    let mut hooks = Vec::new();
    for u in [&url, &by_name] {
        let hook = closedloop::service::webhook::create(&app.db, admin, &loopback, u, &[], SECRET)
            .await
            .unwrap();
        hooks.push(global_id("Webhook", hook.id));
    }
    // Today's API refuses them.
    for u in [&url, &by_name] {
        let made = app
            .data(&app.keys.admin, CREATE, json!({ "input": { "url": u, "secret": SECRET } }))
            .await;
        assert_eq!(
            user_errors(&made["createWebhook"]),
            vec![("input.url".into(), "DESTINATION_NOT_ALLOWED".into())]
        );
    }
    hand_off(&app, "no-longer@example.com").await;

    let q = "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 10) { nodes { status attempts lastStatusCode lastError deliveredAt } } } } }";
    for (hook, refused) in hooks
        .iter()
        .zip(["127.0.0.1 is a loopback address", "localhost is a loopback name"])
    {
        let mut delivery = Value::Null;
        for _ in 0..100 {
            let log = app.data(&app.keys.admin, q, json!({ "id": hook })).await;
            delivery = log["node"]["deliveries"]["nodes"][0].clone();
            if delivery["attempts"].as_i64() >= Some(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(delivery["attempts"].as_i64() >= Some(2), "{delivery:#}");
        assert_eq!(delivery["status"], "PENDING");
        assert_eq!(delivery["lastStatusCode"], Value::Null);
        assert_eq!(delivery["deliveredAt"], Value::Null);
        assert_eq!(
            delivery["lastError"],
            format!(
                "not sent: {refused}; webhooks reach public addresses only, unless the server allow-lists the network (--webhook-allow)"
            )
        );
    }
    assert_eq!(receiver.seen.lock().unwrap().len(), 0, "nothing was sent");
}
both!(public_only: a_webhook_no_longer_allowed_is_not_sent);
