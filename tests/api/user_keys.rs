//! SALES keys made for one user (`key create --user`): every path to handoffs and their events
//! shows that user's only, filtered in the query (full pages, right totals); keys without a user
//! and other roles see the whole workspace.
use std::time::Duration;

use closedloop::domain::ids::event_cursor;
use closedloop::domain::vocab::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code, id_of, ids};
use crate::websocket::{Socket, connect, init, next, send};

/// Two sales users' handoffs and their events, and a key bound to Ann.
struct Loop {
    ann: String,
    ben: String,
    ann_key: String,
    /// Ann's handoffs now: A1 (accepted by her key) and A2 (pending).
    a1: String,
    a2: String,
    /// Handed to Ann, reassigned to Ben, rejected: Ben's now.
    a3: String,
    /// Ben's pending one (his other, B1, is accepted).
    b2: String,
    /// The leads of A2 and B2, whose open handoffs differ in owner.
    lead_a2: String,
    lead_b2: String,
}

async fn default_owner(app: &TestApp, user: &str) {
    let q = "mutation($input: SetRoutingRulesInput!) { setRoutingRules(input: $input) { userErrors { field message code } } }";
    app.mutate(
        &app.keys.admin,
        "setRoutingRules",
        q,
        json!({ "input": { "rules": [], "defaultOwnerId": user } }),
    )
    .await;
}

/// Hands a new lead off as MARKETING; the handoff's and the lead's IDs.
async fn hand_off(app: &TestApp, email: &str) -> (String, String) {
    let lead = app.lead(email).await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field message code } } }";
    let made = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": lead } }))
        .await;
    (id_of(&made["handoff"]), lead)
}

async fn step(app: &TestApp, key: &str, field: &str, input: Value) -> Value {
    let input_type = format!("{}{}Input", field[..1].to_uppercase(), &field[1..]);
    let q = format!(
        "mutation($input: {input_type}!) {{ {field}(input: $input) {{ handoff {{ id status }} userErrors {{ field message code }} }} }}"
    );
    app.gql(key, &q, json!({ "input": input })).await
}

/// Events 1-9: CREATED A1 A2 A3 (Ann) B1 B2 (Ben), ACCEPTED B1 (Ben), ACCEPTED A1 (Ann, by her
/// key), REASSIGNED A3 (Ann -> Ben), REJECTED A3 (Ben). Ann's: 1, 2, 3, 7, 8.
async fn two_sales_users(app: &TestApp) -> Loop {
    let ann = app.user("Ann", "ann@acme.test").await;
    let ben = app.user("Ben", "ben@acme.test").await;
    let (ann_key, _) = closedloop::service::workspace::create_key(&app.db, "Acme", Role::Sales, "ann's key", Some("ann@acme.test"))
        .await
        .unwrap();
    default_owner(app, &ann).await;
    let (a1, _) = hand_off(app, "a1@example.com").await;
    let (a2, lead_a2) = hand_off(app, "a2@example.com").await;
    let (a3, _) = hand_off(app, "a3@example.com").await;
    default_owner(app, &ben).await;
    let (b1, _) = hand_off(app, "b1@example.com").await;
    let (b2, lead_b2) = hand_off(app, "b2@example.com").await;
    for (key, field, input) in [
        (&app.keys.admin, "acceptHandoff", json!({ "id": b1 })),
        (&ann_key, "acceptHandoff", json!({ "id": a1 })),
        (&app.keys.admin, "reassignHandoff", json!({ "id": a3, "ownerId": ben })),
        (&app.keys.admin, "rejectHandoff", json!({ "id": a3, "reasonCode": "NO_BUDGET" })),
    ] {
        let payload = &data_of(step(app, key, field, input).await)[field];
        assert_eq!(payload["userErrors"], json!([]), "{field}: {payload:#}");
    }
    Loop {
        ann,
        ben,
        ann_key,
        a1,
        a2,
        a3,
        b2,
        lead_a2,
        lead_b2,
    }
}

const ALL_TIME: &str = "{ from: \"2000-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\" }";

async fn a_sales_key_made_for_a_user_reads_only_that_users_handoffs(app: TestApp) {
    let l = two_sales_users(&app).await;
    let q = format!(
        "query($a2: ID!, $b2: ID!, $leadA2: ID!, $leadB2: ID!) {{
           all: handoffs(first: 100) {{ totalCount nodes {{ id owner {{ name }} }} }}
           page: handoffs(first: 1) {{ totalCount nodes {{ id }} pageInfo {{ hasNextPage }} }}
           pending: handoffs(first: 100, filter: {{ status: [PENDING] }}) {{ totalCount }}
           stats: handoffStats(range: {ALL_TIME}) {{ total pending accepted rejected }}
           mine: handoff(id: $a2) {{ id }}
           bens: handoff(id: $b2) {{ id }}
           node(id: $b2) {{ id }}
           nodes(ids: [$a2, $b2]) {{ id }}
           leadA2: node(id: $leadA2) {{ ... on Lead {{ openHandoff {{ id }} }} }}
           leadB2: node(id: $leadB2) {{ ... on Lead {{ openHandoff {{ id }} }} }}
         }}"
    );
    let vars = json!({ "a2": l.a2, "b2": l.b2, "leadA2": l.lead_a2, "leadB2": l.lead_b2 });

    let ann = app.data(&l.ann_key, &q, vars.clone()).await;
    assert_eq!(ann["all"]["totalCount"], 2);
    assert_eq!(ids(&ann["all"]), [l.a1.clone(), l.a2.clone()]);
    assert!(ann["all"]["nodes"].as_array().unwrap().iter().all(|n| n["owner"]["name"] == "Ann"));
    // A page is full and counts right: filtered in the query, not after it.
    assert_eq!(ann["page"]["totalCount"], 2);
    assert_eq!(ids(&ann["page"]), vec![l.a1.clone()]);
    assert_eq!(ann["page"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(ann["pending"]["totalCount"], 1);
    assert_eq!(ann["stats"], json!({ "total": 2, "pending": 1, "accepted": 1, "rejected": 0 }));
    assert_eq!(ann["mine"]["id"], l.a2);
    assert_eq!(ann["bens"], Value::Null);
    assert_eq!(ann["node"], Value::Null);
    assert_eq!(ann["nodes"], json!([{ "id": l.a2 }, null]));
    assert_eq!(ann["leadA2"]["openHandoff"]["id"], l.a2);
    assert_eq!(ann["leadB2"]["openHandoff"], Value::Null);

    // Her own user as ownerId is fine; another user's is FORBIDDEN.
    let own = "query($o: ID!) { handoffs(first: 100, filter: { ownerId: $o }) { totalCount } }";
    let mine = app.data(&l.ann_key, own, json!({ "o": l.ann })).await;
    assert_eq!(mine["handoffs"]["totalCount"], 2);
    let resp = app.gql(&l.ann_key, own, json!({ "o": l.ben })).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");

    // A SALES key without a user and an ADMIN key see the whole workspace.
    for key in [&app.keys.sales, &app.keys.admin] {
        let all = app.data(key, &q, vars.clone()).await;
        assert_eq!(all["all"]["totalCount"], 5);
        assert_eq!(all["page"]["totalCount"], 5);
        assert_eq!(all["stats"], json!({ "total": 5, "pending": 2, "accepted": 2, "rejected": 1 }));
        assert_eq!(all["bens"]["id"], l.b2);
        assert_eq!(all["node"]["id"], l.b2);
        assert_eq!(all["nodes"], json!([{ "id": l.a2 }, { "id": l.b2 }]));
        assert_eq!(all["leadB2"]["openHandoff"]["id"], l.b2);
        let bens = app.data(key, own, json!({ "o": l.ben })).await;
        assert_eq!(bens["handoffs"]["totalCount"], 3);
    }
}
both!(a_sales_key_made_for_a_user_reads_only_that_users_handoffs);

async fn a_sales_key_made_for_a_user_answers_only_that_users_handoffs_and_others_are_not_found(app: TestApp) {
    let l = two_sales_users(&app).await;
    for (field, input) in [
        ("acceptHandoff", json!({ "id": l.b2 })),
        ("rejectHandoff", json!({ "id": l.b2, "reasonCode": "NO_NEED" })),
        ("recycleHandoff", json!({ "id": l.b2, "feedback": "later" })),
        ("reassignHandoff", json!({ "id": l.b2, "ownerId": l.ann })),
    ] {
        let resp = step(&app, &l.ann_key, field, input).await;
        assert_eq!(error_code(&resp), "NOT_FOUND", "{field}: {resp:#}");
    }
    // Nothing was written: B2 is Ben's and pending, and no event followed the nine.
    let q = "query($id: ID!) { handoff(id: $id) { status owner { name } } handoffEventLog(first: 100) { seq } }";
    let seen = app.data(&app.keys.admin, q, json!({ "id": l.b2 })).await;
    assert_eq!(seen["handoff"], json!({ "status": "PENDING", "owner": { "name": "Ben" } }));
    assert_eq!(seen["handoffEventLog"].as_array().unwrap().len(), 9);
    // Her own pending handoff she answers.
    let resp = step(&app, &l.ann_key, "recycleHandoff", json!({ "id": l.a2, "feedback": "not yet" })).await;
    assert_eq!(data_of(resp)["recycleHandoff"]["handoff"]["status"], "RECYCLED");
}
both!(a_sales_key_made_for_a_user_answers_only_that_users_handoffs_and_others_are_not_found);

fn seqs(events: &Value) -> Vec<i64> {
    events.as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

async fn a_sales_key_made_for_a_user_polls_only_that_users_events(app: TestApp) {
    let l = two_sales_users(&app).await;
    let q = "query($after: String, $first: Int!) { handoffEventLog(after: $after, first: $first) { seq cursor kind handoff { id } } }";
    let log = app.data(&l.ann_key, q, json!({ "first": 100 })).await["handoffEventLog"].clone();
    assert_eq!(seqs(&log), [1, 2, 3, 7, 8]);
    // The REASSIGNED event is hers (she owned the handoff before it); the handoff itself is Ben's
    // now, so it reads as null, as everywhere else.
    assert_eq!(log[4]["kind"], "REASSIGNED");
    assert_eq!(log[4]["handoff"], Value::Null);
    assert_eq!(log[3]["handoff"]["id"], l.a1);
    assert_eq!(log[2]["handoff"], Value::Null);
    // Pages are full: two of hers at a time.
    let first = app.data(&l.ann_key, q, json!({ "first": 2 })).await["handoffEventLog"].clone();
    assert_eq!(seqs(&first), [1, 2]);
    let after = first[1]["cursor"].clone();
    let second = app.data(&l.ann_key, q, json!({ "after": after, "first": 2 })).await["handoffEventLog"].clone();
    assert_eq!(seqs(&second), [3, 7]);
    // The unbound SALES key and ADMIN read all nine.
    for key in [&app.keys.sales, &app.keys.admin] {
        let all = app.data(key, q, json!({ "first": 100 })).await["handoffEventLog"].clone();
        assert_eq!(seqs(&all), (1..=9).collect::<Vec<_>>());
        assert_eq!(all[7]["handoff"]["id"], l.a3);
    }
}
both!(a_sales_key_made_for_a_user_polls_only_that_users_events);

async fn subscribe(app: &TestApp, key: &str, args: &str) -> Socket {
    let mut socket = connect(app).await;
    init(&mut socket, key).await;
    let q = format!("subscription {{ handoffEvents{args} {{ seq kind }} }}");
    send(&mut socket, json!({ "id": "s", "type": "subscribe", "payload": { "query": q } })).await;
    socket
}

async fn event_seq(socket: &mut Socket) -> i64 {
    let msg = next(socket).await.expect("an event");
    assert_eq!(msg["type"], "next", "{msg:#}");
    assert!(msg["payload"]["errors"].is_null(), "{msg:#}");
    msg["payload"]["data"]["handoffEvents"]["seq"].as_i64().unwrap()
}

/// Nothing but pings within `wait`.
async fn quiet(socket: &mut Socket, wait: Duration) {
    use futures_util::StreamExt;
    if let Ok(Some(Ok(msg))) = tokio::time::timeout(wait, socket.next()).await
        && !msg.is_ping()
        && !msg.is_pong()
    {
        panic!("expected nothing, got {msg:?}");
    }
}

async fn a_sales_key_made_for_a_user_follows_only_that_users_events(app: TestApp) {
    let l = two_sales_users(&app).await;
    let start = format!("(after: \"{}\")", event_cursor(0));
    let mut replay = subscribe(&app, &l.ann_key, &start).await;
    let mut live = subscribe(&app, &l.ann_key, "").await;
    let mut own = subscribe(&app, &l.ann_key, &format!("(ownerId: \"{}\")", l.ann)).await;
    let mut everything = subscribe(&app, &app.keys.sales, &start).await;
    let mut replayed = Vec::new();
    for _ in 0..5 {
        replayed.push(event_seq(&mut replay).await);
    }
    assert_eq!(replayed, [1, 2, 3, 7, 8]);
    let mut all = Vec::new();
    for _ in 0..9 {
        all.push(event_seq(&mut everything).await);
    }
    assert_eq!(all, (1..=9).collect::<Vec<_>>());
    // Then live: a handoff to Ben (10) is not hers, one to Ann (11) is.
    tokio::time::sleep(Duration::from_millis(100)).await;
    hand_off(&app, "b3@example.com").await;
    default_owner(&app, &l.ann).await;
    hand_off(&app, "a4@example.com").await;
    assert_eq!(event_seq(&mut replay).await, 11);
    assert_eq!(event_seq(&mut live).await, 11);
    assert_eq!(event_seq(&mut own).await, 11);
    assert_eq!((event_seq(&mut everything).await, event_seq(&mut everything).await), (10, 11));
    for s in [&mut replay, &mut live, &mut own] {
        quiet(s, Duration::from_millis(300)).await;
    }

    // Another user's ownerId is FORBIDDEN, with or without `after`.
    for args in [
        format!("(ownerId: \"{}\")", l.ben),
        format!("(after: \"{}\", ownerId: \"{}\")", event_cursor(0), l.ben),
    ] {
        let mut s = subscribe(&app, &l.ann_key, &args).await;
        let msg = next(&mut s).await.expect("an answer");
        let errors = if msg["type"] == "error" {
            msg["payload"].clone()
        } else {
            msg["payload"]["errors"].clone()
        };
        assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{args}: {msg:#}");
    }
}
both!(a_sales_key_made_for_a_user_follows_only_that_users_events);
