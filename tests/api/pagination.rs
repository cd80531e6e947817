//! Relay connections: keyset cursors, both directions, orderings, clamping, bad arguments.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, ids};

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $f: LeadFilterInput, $o: LeadOrderInput) {
  leads(first: $first, after: $after, last: $last, before: $before, filter: $f, orderBy: $o) {
    totalCount
    edges { cursor node { id } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

async fn page(app: &TestApp, vars: Value) -> Value {
    let conn = app.data(&app.keys.analyst, PAGE, vars).await["leads"].clone();
    // Edges and nodes agree, and the page's cursors are its first and last edge's.
    let edge_ids: Vec<String> = conn["edges"].as_array().unwrap().iter().map(|e| id_of(&e["node"])).collect();
    assert_eq!(edge_ids, ids(&conn));
    if let Some(first) = conn["edges"].as_array().unwrap().first() {
        assert_eq!(conn["pageInfo"]["startCursor"], first["cursor"]);
        assert_eq!(
            conn["pageInfo"]["endCursor"],
            conn["edges"].as_array().unwrap().last().unwrap()["cursor"]
        );
    }
    conn
}

fn flags(conn: &Value) -> (bool, bool) {
    (
        conn["pageInfo"]["hasPreviousPage"].as_bool().unwrap(),
        conn["pageInfo"]["hasNextPage"].as_bool().unwrap(),
    )
}

/// `n` leads with plain e-mails; their IDs in creation order.
async fn leads(app: &TestApp, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(app.lead(&format!("lead{i:02}@example.com")).await);
    }
    out
}

async fn pages_forward_and_backward_with_cursors(app: TestApp) {
    let all = leads(&app, 25).await;

    // Forward: 10 + 10 + 5, every lead exactly once, in id order.
    let p1 = page(&app, json!({ "first": 10 })).await;
    assert_eq!(ids(&p1), all[0..10]);
    assert_eq!(flags(&p1), (false, true));
    assert_eq!(p1["totalCount"], 25);
    let p2 = page(&app, json!({ "first": 10, "after": p1["pageInfo"]["endCursor"] })).await;
    assert_eq!(ids(&p2), all[10..20]);
    assert_eq!(flags(&p2), (true, true));
    assert_eq!(p2["totalCount"], 25);
    let p3 = page(&app, json!({ "first": 10, "after": p2["pageInfo"]["endCursor"] })).await;
    assert_eq!(ids(&p3), all[20..25]);
    assert_eq!(flags(&p3), (true, false));
    let p4 = page(&app, json!({ "first": 10, "after": p3["pageInfo"]["endCursor"] })).await;
    assert!(ids(&p4).is_empty());
    assert!(!flags(&p4).1);
    assert_eq!(p4["pageInfo"]["endCursor"], Value::Null);

    // Backward from the end: 10 + 10 + 5, in display order within each page.
    let b1 = page(&app, json!({ "last": 10 })).await;
    assert_eq!(ids(&b1), all[15..25]);
    assert_eq!(flags(&b1), (true, false));
    let b2 = page(&app, json!({ "last": 10, "before": b1["pageInfo"]["startCursor"] })).await;
    assert_eq!(ids(&b2), all[5..15]);
    assert_eq!(flags(&b2), (true, true));
    let b3 = page(&app, json!({ "last": 10, "before": b2["pageInfo"]["startCursor"] })).await;
    assert_eq!(ids(&b3), all[0..5]);
    assert_eq!(flags(&b3), (false, true));

    // A cursor from a forward page works backward and the other way round.
    let back = page(&app, json!({ "last": 3, "before": p2["edges"][0]["cursor"] })).await;
    assert_eq!(ids(&back), all[7..10]);
    let fwd = page(&app, json!({ "first": 2, "after": b2["edges"][9]["cursor"] })).await;
    assert_eq!(ids(&fwd), all[15..17]);

    // A new lead appears on the next page; the pages already read do not shift.
    let late = app.lead("late@example.com").await;
    let p3 = page(&app, json!({ "first": 10, "after": p2["pageInfo"]["endCursor"] })).await;
    let mut expected = all[20..25].to_vec();
    expected.push(late);
    assert_eq!(ids(&p3), expected);
    assert_eq!(p3["totalCount"], 26);
}
both!(pages_forward_and_backward_with_cursors);

async fn orders_by_created_at_both_ways_with_ties(app: TestApp) {
    // 12 leads on 4 days, 3 per day, created out of order: ties are broken by id.
    let mut rows: Vec<(String, String)> = Vec::new();
    for i in 0..12 {
        let day = [3, 1, 4, 2][i % 4];
        let created = format!("2026-01-0{day}T08:00:00Z");
        let lead = app
            .upsert_lead(json!({ "email": format!("c{i:02}@example.com"), "createdAt": created }))
            .await;
        assert_eq!(lead["createdAt"], created);
        rows.push((created, id_of(&lead)));
    }
    // Ids grow with creation order, so (createdAt, creation index) is the expected key.
    let mut asc: Vec<(String, usize)> = rows.iter().enumerate().map(|(i, (t, _))| (t.clone(), i)).collect();
    asc.sort();
    let asc: Vec<String> = asc.into_iter().map(|(_, i)| rows[i].1.clone()).collect();
    let desc: Vec<String> = asc.iter().rev().cloned().collect();

    for (direction, expected) in [("ASC", &asc), ("DESC", &desc)] {
        let order = json!({ "field": "CREATED_AT", "direction": direction });
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let p = page(&app, json!({ "first": 5, "after": after, "o": order })).await;
            seen.extend(ids(&p));
            assert_eq!(p["totalCount"], 12);
            if !flags(&p).1 {
                break;
            }
            after = p["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(&seen, expected, "CREATED_AT {direction}, forward");

        let mut seen = Vec::new();
        let mut before = Value::Null;
        loop {
            let p = page(&app, json!({ "last": 5, "before": before, "o": order })).await;
            let mut chunk = ids(&p);
            chunk.extend(seen);
            seen = chunk;
            if !flags(&p).0 {
                break;
            }
            before = p["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(&seen, expected, "CREATED_AT {direction}, backward");
    }

    // Id order, descending.
    let p = page(&app, json!({ "first": 3, "o": { "field": "ID", "direction": "DESC" } })).await;
    let newest: Vec<String> = rows.iter().rev().take(3).map(|(_, id)| id.clone()).collect();
    assert_eq!(ids(&p), newest);

    // UPDATED_AT follows the order of writes here.
    let p = page(&app, json!({ "first": 12, "o": { "field": "UPDATED_AT" } })).await;
    let written: Vec<String> = rows.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids(&p), written);

    // A cursor belongs to its ordering.
    let by_time = page(&app, json!({ "first": 2, "o": { "field": "CREATED_AT" } })).await;
    let resp = app
        .gql(
            &app.keys.analyst,
            PAGE,
            json!({ "first": 2, "after": by_time["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    let by_id = page(&app, json!({ "first": 2 })).await;
    let resp = app
        .gql(
            &app.keys.analyst,
            PAGE,
            json!({ "first": 2, "after": by_id["pageInfo"]["endCursor"], "o": { "field": "CREATED_AT" } }),
        )
        .await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
}
both!(orders_by_created_at_both_ways_with_ties);

async fn total_count_follows_the_filter(app: TestApp) {
    let mut german = Vec::new();
    for i in 0..25 {
        let country = if i % 3 == 0 { "DE" } else { "FR" };
        let lead = app
            .upsert_lead(json!({ "email": format!("l{i:02}@example.com"), "country": country }))
            .await;
        if country == "DE" {
            german.push(id_of(&lead));
        }
    }
    assert_eq!(german.len(), 9);
    let filter = json!({ "country": ["DE"] });
    let p1 = page(&app, json!({ "first": 4, "f": filter })).await;
    let p2 = page(&app, json!({ "first": 4, "f": filter, "after": p1["pageInfo"]["endCursor"] })).await;
    let p3 = page(&app, json!({ "first": 4, "f": filter, "after": p2["pageInfo"]["endCursor"] })).await;
    for p in [&p1, &p2, &p3] {
        assert_eq!(p["totalCount"], 9);
    }
    assert_eq!(flags(&p3), (true, false));
    let seen: Vec<String> = [&p1, &p2, &p3].iter().flat_map(|p| ids(p)).collect();
    assert_eq!(seen, german);
    let p = page(&app, json!({ "first": 1, "f": { "country": ["FR"] } })).await;
    assert_eq!(p["totalCount"], 16);
    let p = page(&app, json!({ "first": 1, "f": { "country": ["IT"] } })).await;
    assert_eq!((p["totalCount"].as_i64(), flags(&p)), (Some(0), (false, false)));
}
both!(total_count_follows_the_filter);

async fn page_size_is_clamped_to_100(app: TestApp) {
    let lead = app.lead("busy@example.com").await;
    let items: Vec<Value> = (0..120)
        .map(|i| json!({ "leadId": lead, "type": "PAGE_VIEW", "occurredAt": format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60) }))
        .collect();
    assert_eq!(app.record(json!(items)).await["recordedCount"], 120);

    let q = "query($first: Int, $last: Int, $after: String, $lead: ID!) {
      touchpoints(first: $first, last: $last, after: $after) { totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor } }
      lead(id: $lead) { touchpoints(first: 500) { totalCount nodes { id } pageInfo { hasNextPage } } }
    }";
    let data = app.data(&app.keys.analyst, q, json!({ "first": 500, "lead": lead })).await;
    let top = &data["touchpoints"];
    assert_eq!(top["nodes"].as_array().unwrap().len(), 100);
    assert_eq!(top["totalCount"], 120);
    assert_eq!(top["pageInfo"]["hasNextPage"], true);
    let nested = &data["lead"]["touchpoints"];
    assert_eq!(nested["nodes"].as_array().unwrap().len(), 100);
    assert_eq!(nested["totalCount"], 120);
    assert_eq!(nested["pageInfo"]["hasNextPage"], true);
    assert_eq!(nested["nodes"], top["nodes"], "both newest first");

    let rest = app
        .data(
            &app.keys.analyst,
            q,
            json!({ "first": 1000, "after": top["pageInfo"]["endCursor"], "lead": lead }),
        )
        .await;
    assert_eq!(rest["touchpoints"]["nodes"].as_array().unwrap().len(), 20);
    assert_eq!(rest["touchpoints"]["pageInfo"]["hasNextPage"], false);

    let data = app.data(&app.keys.analyst, q, json!({ "last": 101, "lead": lead })).await;
    assert_eq!(data["touchpoints"]["nodes"].as_array().unwrap().len(), 100);
    assert_eq!(data["touchpoints"]["pageInfo"]["hasPreviousPage"], true);
}
both!(page_size_is_clamped_to_100);

async fn bad_page_arguments_are_refused(app: TestApp) {
    let lead = app.lead("ada@example.com").await;
    let p = page(&app, json!({ "first": 1 })).await;
    let cursor = p["pageInfo"]["endCursor"].clone();
    use base64::Engine;
    let empty_json = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{}");
    let cases = [
        json!({}),
        json!({ "first": 1, "last": 1 }),
        json!({ "first": -1 }),
        json!({ "last": -5 }),
        json!({ "first": 1, "after": "not a cursor!" }),
        json!({ "first": 1, "after": "" }),
        json!({ "first": 1, "after": empty_json }),
        json!({ "last": 1, "after": cursor }),
        json!({ "first": 1, "before": cursor }),
    ];
    for vars in cases {
        let resp = app.gql(&app.keys.analyst, PAGE, vars.clone()).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{vars}: {resp}");
    }
    // The same rules hold for nested connections.
    for args in ["", "(first: 1, after: \"garbage\")", "(first: 1, last: 1)"] {
        let q = format!("query($id: ID!) {{ lead(id: $id) {{ touchpoints{args} {{ totalCount }} }} }}");
        let resp = app.gql(&app.keys.analyst, &q, json!({ "id": lead })).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "touchpoints{args}: {resp}");
        assert_eq!(resp["errors"][0]["path"], json!(["lead", "touchpoints"]));
    }
    let resp = app.gql(&app.keys.analyst, "{ campaigns { totalCount } }", json!({})).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
}
both!(bad_page_arguments_are_refused);

async fn nested_connections_page_with_cursors(app: TestApp) {
    let account = app.account(json!({ "name": "Initech" })).await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(id_of(
            &app.upsert_lead(json!({ "email": format!("m{i}@initech.test"), "accountId": account }))
                .await,
        ));
    }
    let lead = members[0].clone();
    // Seven touchpoints; two share a time, so the id breaks the tie.
    let times = ["01", "05", "03", "05", "02", "07", "06"];
    let items: Vec<Value> = times
        .iter()
        .map(|d| json!({ "leadId": lead, "type": "EMAIL_OPEN", "occurredAt": format!("2026-02-{d}T12:00:00Z") }))
        .collect();
    let recorded = app.record(json!(items)).await;
    let tp: Vec<String> = recorded["touchpoints"].as_array().unwrap().iter().map(id_of).collect();
    // Newest first: 07, 06, 05 (the later id first), 05, 03, 02, 01.
    let newest_first = [&tp[5], &tp[6], &tp[3], &tp[1], &tp[2], &tp[4], &tp[0]];

    let q = "query($id: ID!, $first: Int, $after: String, $order: TouchpointOrderInput) {
      lead(id: $id) { touchpoints(first: $first, after: $after, orderBy: $order) { totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor } } }
    }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = app
            .data(&app.keys.analyst, q, json!({ "id": lead, "first": 3, "after": after }))
            .await;
        let conn = &data["lead"]["touchpoints"];
        assert_eq!(conn["totalCount"], 7);
        seen.extend(ids(conn));
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().collect::<Vec<_>>(), newest_first);

    // Oldest first, through the same nested field.
    let data = app
        .data(
            &app.keys.analyst,
            q,
            json!({ "id": lead, "first": 7, "order": { "field": "OCCURRED_AT", "direction": "ASC" } }),
        )
        .await;
    let oldest_first: Vec<&String> = newest_first.iter().rev().copied().collect();
    assert_eq!(ids(&data["lead"]["touchpoints"]).iter().collect::<Vec<_>>(), oldest_first);

    // Backward from the oldest end, and from a cursor.
    let q_back = "query($id: ID!, $before: String) { lead(id: $id) { touchpoints(last: 2, before: $before) { nodes { id } pageInfo { hasPreviousPage startCursor } } } }";
    let data = app.data(&app.keys.analyst, q_back, json!({ "id": lead })).await;
    let conn = &data["lead"]["touchpoints"];
    assert_eq!(ids(conn).iter().collect::<Vec<_>>(), newest_first[5..7]);
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
    let data = app
        .data(
            &app.keys.analyst,
            q_back,
            json!({ "id": lead, "before": conn["pageInfo"]["startCursor"] }),
        )
        .await;
    assert_eq!(ids(&data["lead"]["touchpoints"]).iter().collect::<Vec<_>>(), newest_first[3..5]);

    // An account's leads, by id, two at a time.
    let q = "query($id: ID!, $after: String) { account(id: $id) { leads(first: 2, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(&app.keys.analyst, q, json!({ "id": account, "after": after })).await;
        let conn = &data["account"]["leads"];
        assert_eq!(conn["totalCount"], 5);
        seen.extend(ids(conn));
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, members);
    let q = "query($id: ID!) { account(id: $id) { leads(last: 2) { nodes { id } pageInfo { hasPreviousPage hasNextPage } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": account })).await;
    assert_eq!(ids(&data["account"]["leads"]), members[3..5]);
    assert_eq!(
        data["account"]["leads"]["pageInfo"],
        json!({ "hasPreviousPage": true, "hasNextPage": false })
    );
}
both!(nested_connections_page_with_cursors);
