//! Recording touchpoints (batches, idempotency, all or nothing) and the touchpoints filters.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, ids, user_errors};

/// The elements of `all` at `at`, in that order.
fn pick(all: &[String], at: &[usize]) -> Vec<String> {
    at.iter().map(|&i| all[i].clone()).collect()
}

async fn campaign_counts(app: &TestApp, campaign: &str) -> (i64, i64) {
    let q = "query($c: ID!) { campaign(id: $c) { touchpointCount touchpoints(first: 1) { totalCount } } touchpoints(first: 1, filter: { campaignId: $c }) { totalCount } }";
    let data = app.data(&app.keys.analyst, q, json!({ "c": campaign })).await;
    assert_eq!(
        data["campaign"]["touchpoints"]["totalCount"], data["campaign"]["touchpointCount"],
        "a campaign's touchpoint totalCount is its touchpointCount"
    );
    (
        data["campaign"]["touchpointCount"].as_i64().unwrap(),
        data["touchpoints"]["totalCount"].as_i64().unwrap(),
    )
}

async fn retried_batch_counts_once(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let campaign = app.simple_campaign("Newsletter").await;
    let batch = json!([
        { "leadId": ada, "campaignId": campaign, "type": "EMAIL_SENT", "occurredAt": "2026-03-01T09:00:00Z", "idempotencyKey": "k1" },
        { "leadEmail": "ADA@example.com", "campaignId": campaign, "type": "email_open", "occurredAt": "2026-03-01T09:05:00Z", "idempotencyKey": "k2" },
        { "leadId": ada, "campaignId": campaign, "type": "EMAIL_CLICK", "occurredAt": "2026-03-01T09:06:00Z", "idempotencyKey": "k3" },
    ]);
    let first = app.record(batch.clone()).await;
    assert_eq!(first["userErrors"], json!([]));
    assert_eq!((&first["recordedCount"], &first["duplicateCount"]), (&json!(3), &json!(0)));
    assert_eq!(campaign_counts(&app, &campaign).await, (3, 3));

    // The retry writes nothing and returns the same touchpoints, in input order.
    let retry = app.record(batch.clone()).await;
    assert_eq!((&retry["recordedCount"], &retry["duplicateCount"]), (&json!(0), &json!(3)));
    assert_eq!(retry["touchpoints"], first["touchpoints"]);
    assert_eq!(campaign_counts(&app, &campaign).await, (3, 3));

    // A partly new batch writes only what is new; a key repeated within a batch counts once.
    let mixed = json!([
        batch[2],
        { "leadId": ada, "campaignId": campaign, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:07:00Z", "idempotencyKey": "k4" },
        { "leadId": ada, "campaignId": campaign, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:07:00Z", "idempotencyKey": "k4" },
    ]);
    let third = app.record(mixed).await;
    assert_eq!((&third["recordedCount"], &third["duplicateCount"]), (&json!(1), &json!(2)));
    let t = ids(&json!({ "nodes": third["touchpoints"] }));
    assert_eq!(t[0], id_of(&first["touchpoints"][2]));
    assert_eq!(t[1], t[2]);
    assert_eq!(campaign_counts(&app, &campaign).await, (4, 4));

    // External IDs deduplicate like keys.
    let ext = json!([{ "leadId": ada, "type": "MEETING", "occurredAt": "2026-03-02T10:00:00Z", "externalId": "crm-m-1" }]);
    assert_eq!(app.record(ext.clone()).await["recordedCount"], 1);
    let again = app.record(ext).await;
    assert_eq!((&again["recordedCount"], &again["duplicateCount"]), (&json!(0), &json!(1)));

    // Without a key, a retry is a new touchpoint (no key, no deduplication).
    let plain = json!([{ "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-03T10:00:00Z" }]);
    assert_eq!(app.record(plain.clone()).await["recordedCount"], 1);
    assert_eq!(app.record(plain).await["recordedCount"], 1);

    let q = "query($id: ID!) { lead(id: $id) { touchpoints(first: 100) { totalCount nodes { idempotencyKey externalId } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": ada })).await;
    assert_eq!(data["lead"]["touchpoints"]["totalCount"], 7);
}
both!(retried_batch_counts_once);

/// One batch naming several campaigns adds to each campaign's stored count what it gave it.
async fn a_batch_counts_per_campaign(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let (news, fair) = (app.simple_campaign("Newsletter").await, app.simple_campaign("Trade fair").await);
    let item = |campaign: Option<&str>, minute: u32| json!({ "leadId": ada, "campaignId": campaign, "type": "PAGE_VIEW", "occurredAt": format!("2026-03-01T09:{minute:02}:00Z") });
    let batch = json!([
        item(Some(&news), 1),
        item(Some(&fair), 2),
        item(None, 3),
        item(Some(&news), 4),
        item(Some(&fair), 5),
        item(Some(&fair), 6)
    ]);
    assert_eq!(app.record(batch).await["recordedCount"], 6);
    assert_eq!(campaign_counts(&app, &news).await, (2, 2));
    assert_eq!(campaign_counts(&app, &fair).await, (3, 3));
    assert_eq!(app.record(json!([item(Some(&fair), 7)])).await["recordedCount"], 1);
    assert_eq!(campaign_counts(&app, &news).await, (2, 2));
    assert_eq!(campaign_counts(&app, &fair).await, (4, 4));
}
both!(a_batch_counts_per_campaign);

async fn a_bad_item_fails_the_whole_batch(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let campaign = app.simple_campaign("Newsletter").await;
    let good = |key: &str| json!({ "leadId": ada, "campaignId": campaign, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z", "idempotencyKey": key });
    let batch = json!([
        good("a"),
        good("b"),
        { "leadId": ada, "campaignId": campaign, "type": "TELEPATHY", "occurredAt": "2026-03-01T09:00:00Z" },
        good("c"),
        { "leadEmail": "nobody@example.com", "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
        { "leadId": ada, "campaignId": crate::helpers::global_id("Campaign", 999_999), "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
        { "leadId": "garbage", "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
        { "leadId": ada, "leadEmail": "ada@example.com", "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
        { "leadExternalId": "crm-404", "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
    ]);
    let payload = app.record(batch).await;
    assert_eq!(
        user_errors(&payload),
        [
            ("input.items.2.type".to_owned(), "INVALID".to_owned()),
            ("input.items.4.leadEmail".to_owned(), "NOT_FOUND".to_owned()),
            ("input.items.5.campaignId".to_owned(), "NOT_FOUND".to_owned()),
            ("input.items.6.leadId".to_owned(), "NOT_FOUND".to_owned()),
            ("input.items.7.leadId".to_owned(), "INVALID".to_owned()),
            ("input.items.8.leadExternalId".to_owned(), "NOT_FOUND".to_owned()),
        ]
    );
    assert_eq!(payload["userErrors"][0]["field"], json!(["input", "items", "2", "type"]));
    assert_eq!((&payload["recordedCount"], &payload["touchpoints"]), (&json!(0), &json!([])));
    assert_eq!(campaign_counts(&app, &campaign).await, (0, 0), "nothing was written");

    // The good items alone go through, and their keys were not used up by the failed batch.
    let payload = app.record(json!([good("a"), good("b"), good("c")])).await;
    assert_eq!((&payload["recordedCount"], &payload["duplicateCount"]), (&json!(3), &json!(0)));
    assert_eq!(campaign_counts(&app, &campaign).await, (3, 3));
}
both!(a_bad_item_fails_the_whole_batch);

async fn batches_hold_at_most_10000(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let item = json!({ "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" });
    let q = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount userErrors { code } } }";
    let too_many = vec![item.clone(); 10_001];
    let resp = app.gql(&app.keys.marketing, q, json!({ "input": { "items": too_many } })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    let count = "query($id: ID!) { lead(id: $id) { touchpoints(first: 1) { totalCount } } }";
    let data = app.data(&app.keys.analyst, count, json!({ "id": ada })).await;
    assert_eq!(data["lead"]["touchpoints"]["totalCount"], 0);

    let full = vec![item; 10_000];
    let data = app.data(&app.keys.marketing, q, json!({ "input": { "items": full } })).await;
    assert_eq!(data["recordTouchpoints"]["recordedCount"], 10_000);
    let data = app.data(&app.keys.analyst, count, json!({ "id": ada })).await;
    assert_eq!(data["lead"]["touchpoints"]["totalCount"], 10_000);

    let resp = app.gql(&app.keys.marketing, q, json!({ "input": { "items": [] } })).await;
    assert_eq!(
        resp["data"]["recordTouchpoints"]["recordedCount"], 0,
        "an empty batch is fine: {resp}"
    );
}
both!(batches_hold_at_most_10000);

async fn touchpoint_filters(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let bob = app.lead("bob@example.com").await;
    let mail = app.simple_campaign("Newsletter").await;
    let fair = app
        .campaign(json!({ "name": "Hannover Messe", "channel": "TRADE_FAIR", "kind": "ACQUISITION", "externalId": "fair-26" }))
        .await;
    let items = json!([
        { "leadId": ada, "campaignId": mail, "type": "EMAIL_OPEN", "occurredAt": "2026-04-01T08:00:00Z" },
        { "leadId": ada, "campaignId": mail, "type": "EMAIL_CLICK", "occurredAt": "2026-04-02T08:00:00Z" },
        { "leadId": ada, "campaignExternalId": "fair-26", "type": "TRADE_FAIR_SCAN", "occurredAt": "2026-04-20T08:00:00Z" },
        { "leadId": bob, "campaignId": mail, "type": "EMAIL_OPEN", "occurredAt": "2026-04-03T08:00:00Z" },
        { "leadId": bob, "type": "PAGE_VIEW", "occurredAt": "2026-05-01T08:00:00Z" },
    ]);
    let recorded = app.record(items).await;
    assert_eq!(recorded["recordedCount"], 5);
    let tp: Vec<String> = recorded["touchpoints"].as_array().unwrap().iter().map(id_of).collect();

    let q = "query($f: TouchpointFilterInput) { touchpoints(filter: $f, first: 50) { totalCount nodes { id type lead { email } campaign { name } } } }";
    let run = |filter: Value| {
        let app = &app;
        async move {
            let data = app.data(&app.keys.analyst, q, json!({ "f": filter })).await;
            let conn = &data["touchpoints"];
            assert_eq!(conn["totalCount"], conn["nodes"].as_array().unwrap().len(), "{filter}");
            ids(conn)
        }
    };
    // Newest first by default.
    assert_eq!(run(json!(null)).await, pick(&tp, &[4, 2, 3, 1, 0]));
    assert_eq!(run(json!({ "leadId": ada })).await, pick(&tp, &[2, 1, 0]));
    assert_eq!(run(json!({ "leadId": bob })).await, pick(&tp, &[4, 3]));
    assert_eq!(run(json!({ "campaignId": mail })).await, pick(&tp, &[3, 1, 0]));
    assert_eq!(run(json!({ "campaignId": fair })).await, pick(&tp, &[2]));
    assert_eq!(run(json!({ "type": ["EMAIL_OPEN"] })).await, pick(&tp, &[3, 0]));
    assert_eq!(run(json!({ "type": ["email_click", "PAGE_VIEW"] })).await, pick(&tp, &[4, 1]));
    assert_eq!(
        run(json!({ "occurredAt": { "from": "2026-04-02T08:00:00Z", "to": "2026-04-20T08:00:00Z" } })).await,
        pick(&tp, &[3, 1])
    );
    assert_eq!(
        run(json!({ "occurredAt": { "from": "2026-04-20T08:00:00Z" } })).await,
        pick(&tp, &[4, 2])
    );
    assert_eq!(
        run(json!({ "occurredAt": { "to": "2026-04-02T08:00:00Z" } })).await,
        pick(&tp, &[0])
    );
    assert_eq!(
        run(json!({ "leadId": ada, "campaignId": mail, "type": ["EMAIL_OPEN"] })).await,
        pick(&tp, &[0])
    );
    assert!(run(json!({ "leadId": mail })).await.is_empty(), "a campaign ID is no lead ID");

    let data = app.data(&app.keys.analyst, q, json!({ "f": { "campaignId": fair } })).await;
    assert_eq!(
        data["touchpoints"]["nodes"][0],
        json!({ "id": tp[2], "type": "TRADE_FAIR_SCAN", "lead": { "email": "ada@example.com" }, "campaign": { "name": "Hannover Messe" } })
    );
    // Oldest first on request.
    let q = "{ touchpoints(first: 2, orderBy: { field: OCCURRED_AT, direction: ASC }) { nodes { id } } }";
    let data = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(ids(&data["touchpoints"]), pick(&tp, &[0, 1]));
}
both!(touchpoint_filters);

async fn bounces_and_unsubscribes_mark_the_lead(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let items = json!([
        { "leadId": ada, "type": "EMAIL_BOUNCED", "occurredAt": "2026-04-01T08:00:00Z" },
        { "leadId": ada, "type": "EMAIL_BOUNCED", "occurredAt": "2026-04-03T08:00:00Z" },
        { "leadId": ada, "type": "UNSUBSCRIBED", "occurredAt": "2026-04-02T08:00:00Z" },
    ]);
    assert_eq!(app.record(items).await["recordedCount"], 3);
    // An older bounce recorded later does not move the time back.
    let older = json!([{ "leadId": ada, "type": "EMAIL_BOUNCED", "occurredAt": "2026-03-01T08:00:00Z" }]);
    assert_eq!(app.record(older).await["recordedCount"], 1);
    let q = "query($id: ID!) { lead(id: $id) { emailBouncedAt unsubscribedAt } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": ada })).await;
    assert_eq!(
        data["lead"],
        json!({ "emailBouncedAt": "2026-04-03T08:00:00Z", "unsubscribedAt": "2026-04-02T08:00:00Z" })
    );
}
both!(bounces_and_unsubscribes_mark_the_lead);

async fn concurrent_retries_count_once(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let campaign = app.simple_campaign("Newsletter").await;
    let batch = json!([
        { "leadId": ada, "campaignId": campaign, "type": "EMAIL_SENT", "occurredAt": "2026-03-01T09:00:00Z", "idempotencyKey": "c1" },
        { "leadId": ada, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-03-01T09:05:00Z", "idempotencyKey": "c2" },
        { "leadId": ada, "campaignId": campaign, "type": "EMAIL_CLICK", "occurredAt": "2026-03-01T09:06:00Z", "idempotencyKey": "c3" },
    ]);
    let q = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount duplicateCount } }";
    let vars = json!({ "input": { "items": batch } });
    let attempts = futures_util::future::join_all((0..6).map(|_| app.gql(&app.keys.marketing, q, vars.clone()))).await;
    let mut recorded = 0;
    for resp in &attempts {
        match resp["data"]["recordTouchpoints"]["recordedCount"].as_i64() {
            Some(n) => {
                assert_eq!(n + resp["data"]["recordTouchpoints"]["duplicateCount"].as_i64().unwrap(), 3);
                recorded += n;
            }
            // A request that raced another may be told to retry; it wrote nothing.
            None => assert_eq!(error_code(resp), "CONFLICT", "{resp}"),
        }
    }
    assert_eq!(recorded, 3, "six concurrent copies of a batch of three record three: {attempts:#?}");
    assert_eq!(campaign_counts(&app, &campaign).await, (3, 3));
}
both!(concurrent_retries_count_once);

async fn contact_state_changes_show_in_incremental_sync(app: TestApp) {
    let ada = app.upsert_lead(json!({ "email": "ada@example.com" })).await;
    let before = ada["updatedAt"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let items = json!([{ "leadId": id_of(&ada), "type": "UNSUBSCRIBED", "occurredAt": "2026-04-02T08:00:00Z" }]);
    assert_eq!(app.record(items).await["recordedCount"], 1);

    // A CRM connector that pulls what changed since its last sync must see the unsubscribe.
    let q = "query($since: DateTime!) { leads(first: 10, filter: { updatedSince: $since }) { nodes { email unsubscribedAt updatedAt } } }";
    let since = chrono::DateTime::parse_from_rfc3339(&before).unwrap() + chrono::Duration::microseconds(1);
    let data = app.data(&app.keys.analyst, q, json!({ "since": since.to_rfc3339() })).await;
    assert_eq!(
        data["leads"]["nodes"][0]["unsubscribedAt"], "2026-04-02T08:00:00Z",
        "the unsubscribed lead is among the leads changed since {before}: {data}"
    );
}
both!(contact_state_changes_show_in_incremental_sync);

async fn the_first_touch_is_the_earliest_touchpoint(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let bob = app.lead("bob@example.com").await;
    let q = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Lead { firstTouchAt updatedAt } } }";
    let vars = json!({ "ids": [ada, bob] });
    let first_touches = |data: &Value| -> Vec<Value> {
        data["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["firstTouchAt"].clone())
            .collect()
    };
    let data = app.data(&app.keys.analyst, q, vars.clone()).await;
    assert_eq!(
        first_touches(&data),
        vec![Value::Null, Value::Null],
        "no touchpoint, no first touch"
    );

    // The earliest of a batch, per lead.
    let batch = json!([
        { "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-02T09:00:00Z" },
        { "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" },
        { "leadId": bob, "type": "PAGE_VIEW", "occurredAt": "2026-03-05T09:00:00Z" },
    ]);
    assert_eq!(app.record(batch).await["recordedCount"], 3);
    let data = app.data(&app.keys.analyst, q, vars.clone()).await;
    assert_eq!(
        first_touches(&data),
        vec![json!("2026-03-01T09:00:00Z"), json!("2026-03-05T09:00:00Z")]
    );
    let ada_updated = data["nodes"][0]["updatedAt"].clone();

    // A later touchpoint leaves it (and the lead) alone; an earlier one recorded later lowers it.
    let later = json!([{ "leadId": ada, "type": "MEETING", "occurredAt": "2026-04-01T09:00:00Z" }]);
    assert_eq!(app.record(later).await["recordedCount"], 1);
    let data = app.data(&app.keys.analyst, q, vars.clone()).await;
    assert_eq!(
        first_touches(&data),
        vec![json!("2026-03-01T09:00:00Z"), json!("2026-03-05T09:00:00Z")]
    );
    assert_eq!(data["nodes"][0]["updatedAt"], ada_updated, "nothing of the lead changed");
    let earlier = json!([{ "leadId": bob, "type": "EMAIL_OPEN", "occurredAt": "2026-02-01T09:00:00.250Z" }]);
    assert_eq!(app.record(earlier).await["recordedCount"], 1);
    let data = app.data(&app.keys.analyst, q, vars.clone()).await;
    assert_eq!(
        first_touches(&data),
        vec![json!("2026-03-01T09:00:00Z"), json!("2026-02-01T09:00:00.250Z")]
    );

    // An update of the lead keeps it.
    let upsert = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { firstName firstTouchAt } userErrors { code } } }";
    let input = json!({ "input": { "email": "ada@example.com", "firstName": "Ada" } });
    let updated = app.mutate(&app.keys.admin, "upsertLead", upsert, input).await;
    assert_eq!(
        updated["lead"],
        json!({ "firstName": "Ada", "firstTouchAt": "2026-03-01T09:00:00Z" })
    );
}
both!(the_first_touch_is_the_earliest_touchpoint);

/// On the demo company: every lead's first touch is its earliest touchpoint, and its first-touch
/// campaign is the campaign of its first touchpoint in path order, computed here from all of
/// the workspace's touchpoints.
async fn first_touches_agree_with_the_touchpoints(app: TestApp) {
    use chrono::{DateTime, Utc};
    use closedloop::store::raw::statement;
    use sea_orm::ConnectionTrait;
    use std::collections::HashMap;
    app.demo().await;
    let db = &app.db.conn;
    let backend = db.get_database_backend();
    let ws = closedloop::store::workspace::by_name(db, closedloop::cli::demo::WORKSPACE)
        .await
        .unwrap()
        .unwrap()
        .id;
    let stale = "SELECT COUNT(*) FROM leads l WHERE l.workspace_id = ? AND l.first_touch_at IS DISTINCT FROM \
                 (SELECT MIN(t.occurred_at) FROM touchpoints t WHERE t.workspace_id = l.workspace_id AND t.lead_id = l.id)";
    let row = db.query_one_raw(statement(backend, stale, vec![ws.into()])).await.unwrap().unwrap();
    assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0);

    type Key = (DateTime<Utc>, Option<String>, i64);
    let mut first: HashMap<i64, (Key, Option<i64>)> = HashMap::new();
    let all = "SELECT lead_id, occurred_at, external_id, id, campaign_id FROM touchpoints WHERE workspace_id = ?";
    for r in db.query_all_raw(statement(backend, all, vec![ws.into()])).await.unwrap() {
        let lead: i64 = r.try_get_by_index(0).unwrap();
        let key: Key = (
            r.try_get_by_index(1).unwrap(),
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
        );
        let campaign: Option<i64> = r.try_get_by_index(4).unwrap();
        let e = first.entry(lead).or_insert_with(|| (key.clone(), campaign));
        if key < e.0 {
            *e = (key, campaign);
        }
    }
    let leads = "SELECT id, first_touch_campaign_id FROM leads WHERE workspace_id = ?";
    let mut with_campaign = 0;
    for r in db.query_all_raw(statement(backend, leads, vec![ws.into()])).await.unwrap() {
        let id: i64 = r.try_get_by_index(0).unwrap();
        let stored: Option<i64> = r.try_get_by_index(1).unwrap();
        assert_eq!(stored, first.get(&id).and_then(|f| f.1), "lead {id}");
        with_campaign += usize::from(stored.is_some());
    }
    assert!(with_campaign > 10, "the demo's leads were sourced by campaigns: {with_campaign}");
}
both!(first_touches_agree_with_the_touchpoints);

/// The campaign that sourced a lead is that of its first touchpoint in path order: at the same
/// instant, by external ID (none first), whatever order the touches were recorded in.
async fn the_sourcing_campaign_follows_path_order(app: TestApp) {
    let ada = app.lead("ada@example.com").await;
    let webinar = app.simple_campaign("Webinar").await;
    let newsletter = app.simple_campaign("Newsletter").await;
    let q = "query { campaignRoi(range: { from: \"2026-01-01T00:00:00Z\", to: \"2027-01-01T00:00:00Z\" }) {
        campaigns { campaign { name } leadsSourced } } }";
    let sourced = || async {
        let data = app.data(&app.keys.analyst, q, json!({})).await;
        let mut rows: Vec<(String, i64)> = data["campaignRoi"]["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["campaign"]["name"].as_str().unwrap().to_owned(),
                    c["leadsSourced"].as_i64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let at = "2026-03-01T09:00:00Z";
    let touch = |campaign: &str, ext: Option<&str>| {
        let mut t = json!({ "leadId": ada, "type": "PAGE_VIEW", "occurredAt": at });
        if !campaign.is_empty() {
            t["campaignId"] = json!(campaign);
        }
        if let Some(x) = ext {
            t["externalId"] = json!(x);
        }
        json!([t])
    };
    app.record(touch(&newsletter, Some("t-b"))).await;
    assert_eq!(sourced().await, vec![("Newsletter".into(), 1), ("Webinar".into(), 0)]);
    // "t-a" comes before "t-b".
    app.record(touch(&webinar, Some("t-a"))).await;
    assert_eq!(sourced().await, vec![("Newsletter".into(), 0), ("Webinar".into(), 1)]);
    // A touch without an external ID comes before both.
    app.record(touch(&newsletter, None)).await;
    assert_eq!(sourced().await, vec![("Newsletter".into(), 1), ("Webinar".into(), 0)]);
    // An earlier touch without a campaign: no campaign sourced the lead.
    let earlier = json!([{ "leadId": ada, "type": "PAGE_VIEW", "occurredAt": "2026-02-01T09:00:00Z" }]);
    app.record(earlier).await;
    assert_eq!(sourced().await, vec![("Newsletter".into(), 0), ("Webinar".into(), 0)]);
}
both!(the_sourcing_campaign_follows_path_order);

/// The touchpoints a batch returns are the rows stored, in input order, whichever way each item
/// names its lead and campaign, with text that needs escaping and times to the nanosecond (kept
/// as given on SQLite, to the microsecond on PostgreSQL).
async fn a_batch_returns_the_rows_it_stored(app: TestApp) {
    let ada = app
        .upsert_lead(json!({ "email": "ada@example.com", "externalId": "crm-ada" }))
        .await;
    let bob = app.lead("bob@example.com").await;
    let campaign = app
        .campaign(json!({ "name": "Fair", "channel": "EVENT", "kind": "ACQUISITION", "externalId": "crm-fair" }))
        .await;
    let items = json!([
        { "leadExternalId": "crm-ada", "campaignExternalId": "crm-fair", "type": "TRADE_FAIR_SCAN", "occurredAt": "2026-03-01T09:00:00.123456789Z", "idempotencyKey": "k \"quoted\" ß ✓", "externalId": "x\\1" },
        { "leadEmail": "BOB@example.com", "type": "page_view", "occurredAt": "2026-03-01T09:00:01Z", "externalId": "line\nbreak" },
        { "leadId": bob, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-02-28T23:59:59.5Z" },
    ]);
    let q = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount userErrors { field message code }
        touchpoints { id type occurredAt createdAt idempotencyKey externalId lead { id } campaign { id } } } }";
    let payload = app.data(&app.keys.admin, q, json!({ "input": { "items": items } })).await["recordTouchpoints"].clone();
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["recordedCount"], 3);
    let returned = payload["touchpoints"].as_array().unwrap().clone();
    let fields = |t: &Value| {
        (
            t["type"].clone(),
            t["idempotencyKey"].clone(),
            t["externalId"].clone(),
            t["lead"]["id"].clone(),
            t["campaign"]["id"].clone(),
        )
    };
    let expected = [
        (
            json!("TRADE_FAIR_SCAN"),
            json!("k \"quoted\" ß ✓"),
            json!("x\\1"),
            json!(id_of(&ada)),
            json!(campaign),
        ),
        (json!("PAGE_VIEW"), Value::Null, json!("line\nbreak"), json!(bob), Value::Null),
        (json!("EMAIL_OPEN"), Value::Null, Value::Null, json!(bob), json!(campaign)),
    ];
    for (t, want) in returned.iter().zip(&expected) {
        assert_eq!(&fields(t), want);
    }
    let ids: Vec<i64> = returned
        .iter()
        .map(|t| crate::helpers::decode_id(t["id"].as_str().unwrap()))
        .collect();
    // IDs are given in the order of the lead index: by lead (Ada's is older), then by time.
    assert!(ids[0] < ids[2] && ids[2] < ids[1], "IDs grow by lead, then time: {ids:?}");
    let first_at = returned[0]["occurredAt"].as_str().unwrap();
    assert!(
        first_at == "2026-03-01T09:00:00.123456789Z" || first_at == "2026-03-01T09:00:00.123456Z",
        "{first_at}"
    );
    // Read back one by one: the same values.
    let read = "query($id: ID!) { node(id: $id) { ... on Touchpoint { id type occurredAt createdAt idempotencyKey externalId lead { id } campaign { id } } } }";
    for t in &returned {
        let data = app.data(&app.keys.analyst, read, json!({ "id": t["id"] })).await;
        assert_eq!(&data["node"], t);
    }
}
both!(a_batch_returns_the_rows_it_stored);
