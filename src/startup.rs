//! Building and running the server; tests call the same code on port 0.
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::KeyResolver;
use crate::config::Config;
use crate::db::{Checkpoints, Db};
use crate::events::{self, Bus};
use crate::graphql::build_schema;
use crate::graphql::limits::Guarded;
use crate::http::{AppState, router, serve};
use crate::metrics::Metrics;

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects, migrates, binds. The server runs once `run_until_stopped` is awaited.
    pub async fn build(config: Config) -> Result<Self, crate::BoxError> {
        let db = Db::connect_with(&config.database_url, Checkpoints::Background).await?;
        db.migrate().await?;
        Self::with_db(config, db).await
    }

    /// As `build`, over a database that is connected and migrated already.
    pub async fn with_db(config: Config, db: Db) -> Result<Self, crate::BoxError> {
        db.prepare_for_serving().await?;
        // Won deals closed before the ledger existed, or by an older version, get their credits.
        crate::service::attribution::catch_up_all(&db).await?;
        let listener = TcpListener::bind(config.bind).await?;
        let bus = Bus::with_hub(config.events.bus_capacity, db.conn.clone());
        events::spawn_feeders(db.conn.clone(), bus.clone(), config.events.poll);
        let feed = events::changes::Feed::new(db.commits.clone());
        events::changes::spawn_feeders(db.conn.clone(), feed.clone(), config.events.poll);
        events::changes::spawn_retention(db.clone(), config.events.change_retention);
        let metrics = Arc::new(Metrics::new());
        events::webhook::spawn(db.conn.clone(), &bus, config.events.webhooks.clone(), metrics.clone());
        let inbox = crate::ingest::Inbox::open(&db, config.tracking.ingest.as_ref()).await?;
        inbox.spawn_processor(db.clone(), bus.clone(), config.tracking.poll, metrics.clone());
        let public_url = config
            .tracking
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", listener.local_addr().expect("bound")));
        let capture = Arc::new(crate::ingest::Capture::new(inbox, &config.tracking, public_url));
        let schema = Guarded::new(
            build_schema(
                Some(db.clone()),
                bus.clone(),
                &config.limits,
                &config.events.webhooks.allow,
                config.reads,
                Some(capture.clone()),
                feed,
            ),
            &config.limits,
        );
        let state = AppState {
            schema,
            db,
            bus,
            keys: KeyResolver::default(),
            metrics,
            capture,
            config: Arc::new(config),
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let limits = self.state.config.limits.connections.clone();
        serve(self.listener, router(self.state), limits, shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
