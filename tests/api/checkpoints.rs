//! The server checkpoints SQLite's write-ahead log in a background task, so that no commit
//! waits for pages to be copied into the database file; one-shot commands keep SQLite's own
//! checkpoint on commit.
use std::time::{Duration, Instant};

use closedloop::db::{Checkpoints, Db};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

async fn autocheckpoint(db: &Db) -> i64 {
    pragma(db, "wal_autocheckpoint").await
}

async fn pragma(db: &Db, name: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}")))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test]
async fn the_server_checkpoints_sqlite_after_writes_in_the_background() {
    let dir = crate::helpers::scratch_dir("checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    let url = |name: &str| crate::helpers::sqlite_file_url(&dir.join(name));

    let oneshot = Db::connect(&url("oneshot.db")).await.unwrap();
    assert_eq!(autocheckpoint(&oneshot).await, 1000, "one-shot commands keep SQLite's default");
    assert_eq!(oneshot.checkpoints_done(), 0);

    let db = Db::connect_with(&url("serve.db"), Checkpoints::Background).await.unwrap();
    assert_eq!(autocheckpoint(&db).await, 0, "no commit runs a checkpoint");
    // ... and the connection keeps the rest of its settings (sea-orm keeps one options closure).
    for db in [&oneshot, &db] {
        assert_eq!(pragma(db, "foreign_keys").await, 1);
        assert_eq!(pragma(db, "cache_spill").await, 0);
        assert_eq!(pragma(db, "cache_size").await, -16384);
    }
    let before = db.checkpoints_done();
    let txn = db.begin_write_unscoped().await.unwrap();
    txn.execute_unprepared("CREATE TABLE t (x INTEGER)").await.unwrap();
    txn.execute_unprepared("INSERT INTO t VALUES (1), (2), (3)").await.unwrap();
    txn.commit().await.unwrap();

    // Well before the checkpointer's own 5-second round: the commit woke it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while db.checkpoints_done() == before {
        assert!(Instant::now() < deadline, "no checkpoint followed the commit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
