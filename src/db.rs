//! Database connection: SQLite (embedded default) or PostgreSQL (production).
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{Mutex, MutexGuard};

/// The connection pool plus what SQLite needs to take writes safely.
#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// SQLite allows one writer; a deferred transaction that upgrades to a writer can fail with
    /// SQLITE_BUSY without waiting, so write transactions take this lock first (IMMEDIATE in effect).
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction; on SQLite it holds the process-wide write lock until dropped. Its
/// commit bumps the data revision of the workspace it writes in, which is what cached reports
/// are keyed by: any committed write invalidates them, on every replica.
pub struct WriteTxn<'a> {
    pub txn: DatabaseTransaction,
    workspace: Option<i64>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn<'_> {
    /// The workspace this transaction writes in (for a transaction that learns it late, such as
    /// an import that creates its workspace).
    pub fn revises(&mut self, workspace: i64) {
        self.workspace = Some(workspace);
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        if let Some(ws) = self.workspace {
            crate::store::workspace::bump_revision(&self.txn, ws).await?;
        }
        self.txn.commit().await
    }
}

impl Db {
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(if memory {
                1
            } else if sqlite {
                8
            } else {
                16
            })
            .min_connections(if memory { 1 } else { 0 });
        if memory {
            // Every new connection to :memory: would be a new, empty database.
            opts.idle_timeout(None::<Duration>).max_lifetime(None::<Duration>);
        }
        if sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                o.foreign_keys(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("cache_size", "-16384")
                    .pragma("mmap_size", "1073741824")
                    .pragma("temp_store", "memory")
            });
        }
        let conn = Database::connect(opts).await?;
        Ok(Self {
            conn,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.conn, None).await
    }

    /// Begin the one transaction of a use case that writes in workspace `ws`.
    pub async fn begin_write(&self, ws: i64) -> Result<WriteTxn<'_>, DbErr> {
        let mut txn = self.begin_write_unscoped().await?;
        txn.revises(ws);
        Ok(txn)
    }

    /// A write transaction that names its workspace later ([`WriteTxn::revises`]), or writes in
    /// none.
    pub async fn begin_write_unscoped(&self) -> Result<WriteTxn<'_>, DbErr> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let txn = self.conn.begin().await?;
        Ok(WriteTxn {
            txn,
            workspace: None,
            _guard: guard,
        })
    }

    /// Refreshes the planner's statistics. Without them SQLite picks any index that starts with
    /// `workspace_id` (they all do) and a page of leads takes 80 ms instead of 1 ms. Run after
    /// bulk loads; `serve` runs it when SQLite has no statistics yet.
    pub async fn analyze(&self) -> Result<(), DbErr> {
        use sea_orm::ConnectionTrait;
        self.conn.execute_unprepared("ANALYZE").await?;
        Ok(())
    }

    /// Start-up housekeeping: statistics for SQLite if it has none, then `PRAGMA optimize`.
    pub async fn prepare_for_serving(&self) -> Result<(), DbErr> {
        use sea_orm::{ConnectionTrait, Statement};
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let has_stats = self
            .conn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'",
            ))
            .await?
            .is_some();
        if !has_stats {
            self.analyze().await?;
        }
        self.conn.execute_unprepared("PRAGMA optimize").await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}
