//! The inbox is durable: a server killed with SIGKILL in the middle of a burst of hits
//! processes, after its restart, every hit it acknowledged, and none twice.
use std::collections::HashSet;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use closedloop::auth::Principal;
use closedloop::db::Db;
use closedloop::domain::vocab::Role;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{PgDatabase, scalar, scratch_dir, serve_process, sqlite_file_url, workspace_with_keys};

/// `closedloop serve` on `url`, with no limit per visitor, and the address it serves at.
async fn serve(url: &str) -> (Child, String) {
    let (child, graphiql) = serve_process(url, &["--hits-per-visitor", "100000"]).await;
    (child, graphiql.trim_end_matches("/graphql").to_owned())
}

async fn acknowledged_hits_survive_a_kill(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = workspace_with_keys(&db, "Acme").await;
    let ws = scalar(&db, "SELECT id FROM workspaces WHERE name = 'Acme'").await;
    let p = Principal {
        workspace_id: ws,
        role: Role::Admin,
        key_id: 0,
        user_id: None,
    };
    let site_key = closedloop::service::tracking::keys(&db, p).await.unwrap().site_key;

    let (mut child, base) = serve(url).await;
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
    let (mut child, base) = serve(url).await;
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
        if s["processed"] == s["acknowledged"] && scalar(&db, "SELECT COUNT(*) FROM ingest_inbox").await == 0 {
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
    acknowledged_hits_survive_a_kill(&sqlite_file_url(&dir.join("closedloop.db"))).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn acknowledged_hits_survive_a_kill_on_postgres() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let (pg, url) = PgDatabase::create(&admin).await;
    acknowledged_hits_survive_a_kill(&url).await;
    pg.drop_database().await;
}
