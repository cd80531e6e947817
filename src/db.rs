//! Database connection: SQLite (embedded default) or PostgreSQL (production).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::{Mutex, MutexGuard, Notify};

/// The connection pool plus what SQLite needs to take writes safely.
#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// SQLite allows one writer: write transactions of this process take this lock first, then
    /// begin IMMEDIATE (see [`Db::begin_write_unscoped`]).
    write_lock: Option<Arc<Mutex<()>>>,
    /// Set when a background task checkpoints SQLite's write-ahead log ([`Checkpoints::Background`]).
    checkpointer: Option<Arc<Checkpointer>>,
    /// SQLite in a file (with a write-ahead log), not in memory.
    sqlite_file: bool,
    /// "Workspace N committed a write", sent after every commit of [`Db::begin_write`]: what
    /// wakes this process's change streams (`events::changes`).
    pub commits: tokio::sync::broadcast::Sender<i64>,
}

/// Who copies SQLite's write-ahead log back into the database file (a checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// The connection that commits, once the log has grown past 1,000 pages (SQLite's default).
    /// Fine for one-shot commands.
    OnCommit,
    /// A background task, woken after every write transaction; commits never wait for it. The
    /// server's choice: a commit that ran the checkpoint itself took 0.15-0.2 s longer after a
    /// batch of 10,000 touchpoints. PostgreSQL and in-memory SQLite ignore it.
    Background,
}

/// How long a pooled connection may sit idle before its next checkout checks it first.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// The longest the background checkpointer waits without a write transaction.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// The background checkpointer's doorbell and its tally.
#[derive(Default)]
struct Checkpointer {
    wrote: Notify,
    done: AtomicU64,
}

/// A write transaction; on SQLite it holds the process-wide write lock until dropped. Its
/// commit bumps the data revision of the workspace it writes in, which is what cached reports
/// are keyed by: any committed write invalidates them, on every replica.
pub struct WriteTxn<'a> {
    pub txn: DatabaseTransaction,
    workspace: Option<i64>,
    checkpointer: Option<&'a Checkpointer>,
    commits: &'a tokio::sync::broadcast::Sender<i64>,
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
        self.txn.commit().await?;
        if let Some(c) = self.checkpointer {
            c.wrote.notify_one();
        }
        if let Some(ws) = self.workspace {
            // Nobody listening is not an error.
            let _ = self.commits.send(ws);
        }
        Ok(())
    }
}

impl Db {
    /// Connects for a one-shot command: SQLite checkpoints on commit.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        Self::connect_with(url, Checkpoints::OnCommit).await
    }

    pub async fn connect_with(url: &str, checkpoints: Checkpoints) -> Result<Self, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut opts = ConnectOptions::new(url.to_owned());
        // CLOSEDLOOP_LOG_SQL=1 logs every statement with its time (target `sqlx::query`, level
        // INFO; e.g. RUST_LOG=warn,sqlx=info), for finding where a request's time goes.
        let log_sql = std::env::var_os("CLOSEDLOOP_LOG_SQL").is_some_and(|v| v != "0");
        // A pooled connection is checked (a round trip to PostgreSQL, a hop to SQLite's worker
        // thread) only when it has been idle for a while, not on every checkout: a request that
        // runs three statements would otherwise pay six round trips.
        opts.sqlx_logging(log_sql)
            .sqlx_logging_level(tracing::log::LevelFilter::Info)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
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
        let background = sqlite && !memory && checkpoints == Checkpoints::Background;
        if sqlite {
            // `cache_spill = off`: a write transaction keeps the pages it changes in memory until
            // its commit writes each of them once to the write-ahead log. With spilling on, a
            // transaction that changes more pages than the cache holds (a batch of 10,000
            // touchpoints changes some 5,000 index pages) writes pages to the log mid-way, changes
            // them again and writes them again: 60 MB of log per such batch instead of about 20,
            // and a commit of 350 ms. The cache still keeps at most `cache_size` clean pages.
            //
            // One closure sets every pragma: a second `map_sqlx_sqlite_opts` replaces the first.
            opts.map_sqlx_sqlite_opts(move |o| {
                let o = o
                    .foreign_keys(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("cache_size", "-16384")
                    .pragma("cache_spill", "off")
                    .pragma("mmap_size", "1073741824")
                    .pragma("temp_store", "memory")
                    // Deleted and overwritten content is zeroed, so an erased e-mail does not
                    // linger in free space of the file's pages.
                    .pragma("secure_delete", "on");
                if background { o.pragma("wal_autocheckpoint", "0") } else { o }
            });
        }
        let mut conn = Database::connect(opts).await?;
        // Statements per request for `/metrics`; a callback set later (the tests' statement
        // log) replaces this one and must call `count_statement` itself.
        conn.set_metric_callback(|_| crate::metrics::count_statement());
        let checkpointer = background.then(|| {
            let c = Arc::new(Checkpointer::default());
            tokio::spawn(checkpoint_after_writes(conn.clone(), c.clone()));
            c
        });
        Ok(Self {
            conn,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
            checkpointer,
            sqlite_file: sqlite && !memory,
            commits: tokio::sync::broadcast::channel(1024).0,
        })
    }

    /// After an erasure: SQLite copies its write-ahead log into the database file and truncates
    /// the log to zero bytes, since older versions of the erased rows' pages live on in the log
    /// until then (`secure_delete` has already zeroed them in the file's pages). Holds the write
    /// lock, so no writer of this process adds frames meanwhile; waits (busy timeout) for readers
    /// of older snapshots. Returns whether the log was emptied. PostgreSQL keeps dead row
    /// versions until VACUUM (docs/erasure.md); in-memory SQLite has no file.
    pub async fn truncate_wal(&self) -> Result<bool, DbErr> {
        use sea_orm::{ConnectionTrait, Statement};
        if !self.sqlite_file {
            return Ok(true);
        }
        let _guard = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let mut last = Ok(false);
        for attempt in 0..3u64 {
            let row = self
                .conn
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(TRUNCATE)"))
                .await;
            // (busy, log frames, checkpointed frames): busy = 1 when a reader held it back; an
            // error when the background checkpointer was running at that moment.
            last = row.and_then(|r| Ok(r.map(|r| r.try_get_by_index::<i64>(0)).transpose()? == Some(0)));
            if matches!(last, Ok(true)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
        }
        last
    }

    /// How many background checkpoints have run (none without [`Checkpoints::Background`]).
    pub fn checkpoints_done(&self) -> u64 {
        self.checkpointer.as_ref().map_or(0, |c| c.done.load(Ordering::Relaxed))
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
        // PostgreSQL: the workspace's writes take their turns from here on, so that the change
        // counter, locked later by whichever records changes, completes no cycle of locks
        // (`store::raw::LOCK_CHANGES`).
        crate::store::raw::lock_workspace(&txn.txn, crate::store::raw::LOCK_CHANGES, ws).await?;
        Ok(txn)
    }

    /// A write transaction that names its workspace later ([`WriteTxn::revises`]), or writes in
    /// none.
    pub async fn begin_write_unscoped(&self) -> Result<WriteTxn<'_>, DbErr> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        // IMMEDIATE on SQLite: the transaction takes the database's write lock at BEGIN, waiting
        // (busy timeout) for a writer outside this lock (webhook bookkeeping, another process).
        // A deferred one would read a snapshot first and fail its first write with
        // SQLITE_BUSY_SNAPSHOT (517) if such a writer committed in between; no wait helps then.
        let txn = if self.write_lock.is_some() {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            };
            self.conn.begin_with_options(options).await?
        } else {
            self.conn.begin().await?
        };
        Ok(WriteTxn {
            txn,
            workspace: None,
            checkpointer: self.checkpointer.as_deref(),
            commits: &self.commits,
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

/// Checkpoints the write-ahead log after every write transaction, and every few seconds for
/// writes made outside one (migrations, webhook bookkeeping), for the life of the process.
/// PASSIVE, as SQLite's own automatic checkpoint is: it copies what no reader still needs and
/// blocks neither readers nor writers. Commits that arrive while it runs leave one wake-up for
/// the next round.
async fn checkpoint_after_writes(conn: DatabaseConnection, c: Arc<Checkpointer>) {
    use sea_orm::ConnectionTrait;
    loop {
        let _ = tokio::time::timeout(CHECKPOINT_EVERY, c.wrote.notified()).await;
        match conn.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok(_) => {
                c.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next write retries"),
        }
    }
}
