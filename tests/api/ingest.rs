//! The inbox is durable: a server killed with SIGKILL in the middle of a burst of hits
//! processes, after its restart, every hit it acknowledged, and none twice; with the
//! database's table and with a JetStream stream, which two replicas can share.
use std::collections::HashSet;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use closedloop::auth::Principal;
use closedloop::db::Db;
use closedloop::domain::vocab::Role;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use closedloop::ingest::jetstream::Target;

use crate::helpers::{
    Backend, PgDatabase, TestApp, delete_stream, jetstream_target, run_on_jetstream, scalar, scratch_dir, serve_process, sqlite_file_url,
    stream_messages, workspace_with_keys,
};

/// `closedloop serve` on `url` (with the JetStream inbox `ingest`, if any), with no limit per
/// visitor, and the address it serves at.
async fn serve(url: &str, ingest: Option<&Target>) -> (Child, String) {
    let mut args = vec!["--hits-per-visitor".to_owned(), "100000".to_owned()];
    if let Some(t) = ingest {
        args.extend(["--ingest".to_owned(), format!("nats://{}/{}", t.address, t.stream)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (child, graphiql) = serve_process(url, &args).await;
    (child, graphiql.trim_end_matches("/graphql").to_owned())
}

async fn acknowledged_hits_survive_a_kill(url: &str, ingest: Option<&Target>) {
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = workspace_with_keys(&db, "Acme").await;
    let ws = scalar(&db, "SELECT id FROM workspaces WHERE name = 'Acme'").await;
    let p = Principal {
        workspace_id: ws,
        role: Role::Admin,
        key_id: 0,
        user_id: None,
        source: None,
    };
    let site_key = closedloop::service::tracking::keys(&db, p).await.unwrap().site_key;

    let (mut child, base) = serve(url, ingest).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut senders = Vec::new();
    for worker in 0..16 {
        let (client, base, site_key, acked) = (client.clone(), base.clone(), site_key.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("w{worker}-{i}");
                let body = json!({
                    "k": site_key, "v": format!("v1_crash-visitor-{worker:04}-0000"),
                    "e": [{ "n": "page_view", "id": id, "u": "https://example.com/?utm_campaign=x" }]
                });
                let sent = client
                    .post(format!("{base}/t/e"))
                    .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 202 => acked.lock().unwrap().push(id),
                    // The server is gone: what was not answered was not acknowledged.
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the burst was acknowledged in part before the kill: {}",
        acked.len()
    );

    // Restarted, the server processes what the inbox holds.
    let (mut child, base) = serve(url, ingest).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let r: Value = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&keys.analyst)
            .json(&json!({ "query": "{ ingestStatus { acknowledged processed rejected } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let s = r["data"]["ingestStatus"].clone();
        assert!(
            s["acknowledged"].as_i64().unwrap() >= acked.len() as i64,
            "every hit answered before the kill counts as acknowledged: {s}"
        );
        let inbox_empty = match ingest {
            None => scalar(&db, "SELECT COUNT(*) FROM ingest_inbox").await == 0,
            // Processed hits are purged from the stream after their commit.
            Some(t) => stream_messages(t).await == 0,
        };
        if s["processed"] == s["acknowledged"] && inbox_empty {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "not processed after the restart: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(status["rejected"], 0);
    let processed = status["processed"].as_i64().unwrap();
    assert!(
        processed >= acked.len() as i64,
        "{processed} processed, {} acknowledged",
        acked.len()
    );
    let twice = scalar(
        &db,
        "SELECT COUNT(*) FROM (SELECT event_id FROM tracked_hits GROUP BY event_id HAVING COUNT(*) > 1) d",
    )
    .await;
    assert_eq!(twice, 0, "no hit is processed twice");
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(db.backend(), "SELECT event_id FROM tracked_hits".to_owned()))
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged hits lost, e.g. {:?}", lost.len(), lost.first());
    assert_eq!(stored.len() as i64, processed, "every processed hit is one row");
}

#[tokio::test]
async fn acknowledged_hits_survive_a_kill_on_sqlite() {
    let dir = scratch_dir("ingest-crash");
    std::fs::create_dir_all(&dir).unwrap();
    acknowledged_hits_survive_a_kill(&sqlite_file_url(&dir.join("closedloop.db")), None).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn acknowledged_hits_survive_a_kill_with_jetstream_on_sqlite() {
    let Some(target) = jetstream_target() else {
        return;
    };
    let dir = scratch_dir("ingest-crash-js");
    std::fs::create_dir_all(&dir).unwrap();
    acknowledged_hits_survive_a_kill(&sqlite_file_url(&dir.join("closedloop.db")), Some(&target)).await;
    delete_stream(&target).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn acknowledged_hits_survive_a_kill_with_jetstream_on_postgres() {
    let (Ok(admin), Some(target)) = (std::env::var("TEST_DATABASE_URL"), jetstream_target()) else {
        return;
    };
    let (pg, url) = PgDatabase::create(&admin).await;
    acknowledged_hits_survive_a_kill(&url, Some(&target)).await;
    delete_stream(&target).await;
    pg.drop_database().await;
}

#[tokio::test]
async fn acknowledged_hits_survive_a_kill_on_postgres() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let (pg, url) = PgDatabase::create(&admin).await;
    acknowledged_hits_survive_a_kill(&url, None).await;
    pg.drop_database().await;
}

/// Two servers over one database append to one JetStream stream and both process it: every
/// hit is processed once, by one of them, and the stream is emptied.
async fn two_replicas_share_one_stream(app: TestApp) {
    let target = app.ingest.clone().expect("a JetStream inbox");
    let second = app
        .serve_with(|c| {
            c.tracking.ingest = Some(target.clone());
            c.tracking.hits_per_visitor_per_second = 100_000;
        })
        .await;
    let d = app.data(&app.keys.analyst, "{ trackingSettings { siteKey } }", json!({})).await;
    let site_key = d["trackingSettings"]["siteKey"].as_str().unwrap().to_owned();
    let bases = [app.url(""), format!("http://{second}")];
    let mut senders = Vec::new();
    for visitor in 0..40 {
        let (client, base, site_key) = (app.client.clone(), bases[visitor % 2].clone(), site_key.clone());
        senders.push(tokio::spawn(async move {
            let events: Vec<Value> = (0..5)
                .map(|i| json!({ "n": "page_view", "id": format!("r{visitor}-{i}"), "u": "https://example.com/" }))
                .collect();
            let body = json!({ "k": site_key, "v": format!("v1_replica-visitor-{visitor:04}-00"), "e": events });
            let r = client
                .post(format!("{base}/t/e"))
                .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let q = "{ ingestStatus { acknowledged processed rejected } }";
        let s = app.data(&app.keys.analyst, q, json!({})).await["ingestStatus"].clone();
        assert!(s["acknowledged"].as_i64().unwrap() >= 200, "every answered hit counts: {s}");
        if s["processed"] == 200 && stream_messages(&target).await == 0 {
            // Read once more with nothing left to process: a status read while the last batch
            // committed counts it as waiting and as processed (the status errs high, never low).
            break app.data(&app.keys.analyst, q, json!({})).await["ingestStatus"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "not processed in time: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, json!({ "acknowledged": 200, "processed": 200, "rejected": 0 }));
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM tracked_hits").await, 200);
    assert_eq!(scalar(&app.db, "SELECT COUNT(DISTINCT event_id) FROM tracked_hits").await, 200);
    let cursor = scalar(&app.db, "SELECT position FROM ingest_cursors").await;
    assert!(cursor >= 200, "the cursor stands after the last hit: {cursor}");
}

#[tokio::test]
async fn two_replicas_share_one_stream_on_sqlite() {
    run_on_jetstream(Backend::Sqlite, two_replicas_share_one_stream).await;
}

#[tokio::test]
async fn two_replicas_share_one_stream_on_postgres() {
    run_on_jetstream(Backend::Postgres, two_replicas_share_one_stream).await;
}
