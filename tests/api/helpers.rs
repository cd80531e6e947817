//! The real server on an ephemeral port with a fresh database, and typed ways to talk to it.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use closedloop::config::{Config, EventSettings};
use closedloop::db::{Checkpoints, Db};
use closedloop::domain::destination::{AllowList, parse_net};
use closedloop::domain::vocab::Role;
use closedloop::ingest::jetstream::Target;
use closedloop::service::workspace;
use closedloop::startup::Application;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Runs one test body on one backend: `both!(name)` makes a SQLite and a PostgreSQL test of
/// `async fn name(app: TestApp)`. The PostgreSQL one passes without running when
/// `TEST_DATABASE_URL` is not set. Attributes before the name go on both tests;
/// `both!(name, sqlite: #[ignore = "..."])` puts one on the SQLite test only;
/// `both!(alone: name)` runs while no other test runs; `both!(name, jetstream)` adds the
/// two tests `name::jetstream::{sqlite, postgres}` with a NATS JetStream inbox, which pass
/// without running when `TEST_NATS_URL` is not set. The server lets webhooks reach loopback
/// (the tests' receivers); `both!(public_only: name)` starts it without that, as in production.
macro_rules! both {
    ($(#[$m:meta])* $name:ident, jetstream) => {
        both!(@tests Shared, test_event_settings, [$(#[$m])*], [], $name, jetstream);
    };
    ($(#[$m:meta])* $name:ident $(, sqlite: #[$s:meta])?) => {
        both!(@tests Shared, test_event_settings, [$(#[$m])*], [$(#[$s])?], $name);
    };
    (alone: $(#[$m:meta])* $name:ident) => {
        both!(@tests Alone, test_event_settings, [$(#[$m])*], [], $name);
    };
    (public_only: $(#[$m:meta])* $name:ident) => {
        both!(@tests Shared, public_only_event_settings, [$(#[$m])*], [], $name);
    };
    (@tests $sharing:ident, $events:ident, [$(#[$m:meta])*], [$(#[$s:meta])*], $name:ident, jetstream) => {
        both!(@tests $sharing, $events, [$(#[$m])*], [$(#[$s])*], $name, {
            /// The same test with a NATS JetStream inbox (when `TEST_NATS_URL` is set).
            mod jetstream {
                #[tokio::test]
                $(#[$m])*
                async fn sqlite() {
                    $crate::helpers::run_on_jetstream($crate::helpers::Backend::Sqlite, super::super::$name).await
                }

                #[tokio::test]
                $(#[$m])*
                async fn postgres() {
                    $crate::helpers::run_on_jetstream($crate::helpers::Backend::Postgres, super::super::$name).await
                }
            }
        });
    };
    (@tests $sharing:ident, $events:ident, [$(#[$m:meta])*], [$(#[$s:meta])*], $name:ident) => {
        both!(@tests $sharing, $events, [$(#[$m])*], [$(#[$s])*], $name, {});
    };
    (@tests $sharing:ident, $events:ident, [$(#[$m:meta])*], [$(#[$s:meta])*], $name:ident, { $($more:tt)* }) => {
        mod $name {
            $($more)*

            #[tokio::test]
            $(#[$m])*
            $(#[$s])*
            async fn sqlite() {
                $crate::helpers::run_with(
                    $crate::helpers::Backend::Sqlite,
                    $crate::helpers::Sharing::$sharing,
                    $crate::helpers::$events(),
                    super::$name,
                )
                .await
            }

            #[tokio::test]
            $(#[$m])*
            async fn postgres() {
                $crate::helpers::run_with(
                    $crate::helpers::Backend::Postgres,
                    $crate::helpers::Sharing::$sharing,
                    $crate::helpers::$events(),
                    super::$name,
                )
                .await
            }
        }
    };
}

/// Whether a test may run beside others. Tests that measure (statement counts under the
/// DataLoader's 1 ms batching window) run alone, so that other tests do not slow them down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Alone,
}

static RUNNING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One API key of each role, all of one workspace.
#[derive(Debug, Clone)]
pub struct Keys {
    pub admin: String,
    pub marketing: String,
    pub sales: String,
    pub analyst: String,
}

/// The SQL statements the server ran, counted through sea-orm's metric callback.
#[derive(Default)]
pub struct StatementLog {
    statements: Mutex<Vec<String>>,
}

impl StatementLog {
    pub fn clear(&self) {
        self.statements.lock().unwrap().clear();
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.statements.lock().unwrap())
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The database the server uses (for a second server process on PostgreSQL).
    pub database_url: String,
    pub client: reqwest::Client,
    /// The server's database (same pool), for set-up that the API does not offer.
    pub db: Db,
    /// Keys of workspace "Acme", the workspace most tests work in.
    pub keys: Keys,
    /// Keys of workspace "Globex", for isolation tests.
    pub other: Keys,
    pub statements: Arc<StatementLog>,
    server: JoinHandle<()>,
    pg: Option<PgDatabase>,
    /// The JetStream inbox the server uses, if not the database's table; its stream is
    /// deleted after the test.
    pub ingest: Option<Target>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh PostgreSQL database in the server of `TEST_DATABASE_URL`; dropped after the test.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

fn random_name(prefix: &str) -> String {
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes).expect("random source");
    format!("{prefix}{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let scheme_end = admin_url.find("://").map_or(0, |i| i + 3);
    let path = admin_url[scheme_end..].find('/').map(|i| scheme_end + i);
    let query = admin_url.find('?');
    match (path, query) {
        (Some(p), Some(q)) if p < q => format!("{}/{name}{}", &admin_url[..p], &admin_url[q..]),
        (Some(p), None) => format!("{}/{name}", &admin_url[..p]),
        (_, Some(q)) => format!("{}/{name}{}", &admin_url[..q], &admin_url[q..]),
        (None, None) => format!("{admin_url}/{name}"),
    }
}

/// A migrated database to copy test databases from: `CREATE DATABASE ... TEMPLATE` takes a
/// fraction of the time the migrations take. Its name holds a hash of `migration/src`, so a
/// changed migration gets a new template; it is built once and kept for later runs.
async fn template(admin_url: &str) -> Option<String> {
    static TEMPLATE: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();
    TEMPLATE.get_or_init(|| build_template(admin_url.to_owned())).await.clone()
}

async fn build_template(admin_url: String) -> Option<String> {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir).ok()?.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        hash.update(file.file_name()?.as_encoded_bytes());
        hash.update(std::fs::read(file).ok()?);
    }
    let name = format!("t_tmpl_{}", hex(&hash.finalize()[..8]));

    let admin = Database::connect(&admin_url).await.ok()?;
    let exists = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ))
        .await
        .ok()?
        .is_some();
    if !exists {
        // Built under a temporary name and renamed, so no run copies a half-migrated template.
        let building = random_name("t_build_");
        admin.execute_unprepared(&format!("CREATE DATABASE {building}")).await.ok()?;
        let migrated = match Db::connect(&database_url(&admin_url, &building)).await {
            Ok(db) => {
                let result = db.migrate().await;
                db.conn.close().await.ok();
                result.is_ok()
            }
            Err(_) => false,
        };
        let renamed = migrated
            && admin
                .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .await
                .is_ok();
        if !renamed {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .await;
        }
        if !migrated {
            return None;
        }
    }
    admin.close().await.ok();
    Some(name)
}

impl PgDatabase {
    /// A new database (a copy of the migrated template when there is one) and its URL.
    pub async fn create(admin_url: &str) -> (Self, String) {
        let name = random_name("t_");
        let template = template(admin_url).await;
        let admin = Database::connect(admin_url).await.expect("TEST_DATABASE_URL is reachable");
        let copied = match &template {
            Some(t) => admin
                .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {t}"))
                .await
                .is_ok(),
            None => false,
        };
        if !copied {
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create a test database");
        }
        admin.close().await.ok();
        let url = database_url(admin_url, &name);
        (
            Self {
                admin_url: admin_url.to_owned(),
                name,
            },
            url,
        )
    }

    pub async fn drop_database(self) {
        if let Ok(admin) = Database::connect(&self.admin_url).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .await;
            admin.close().await.ok();
        }
    }
}

/// Starts a fresh app on `backend`, runs `test` on it, and drops its PostgreSQL database
/// afterwards, also when the test panics.
pub async fn run<F, Fut>(backend: Backend, sharing: Sharing, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(backend, sharing, test_event_settings(), test).await
}

/// As `run`, with the server's event settings given.
pub async fn run_with<F, Fut>(backend: Backend, sharing: Sharing, events: EventSettings, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if backend == Backend::Postgres && std::env::var_os("TEST_DATABASE_URL").is_none() {
        return;
    }
    let (_shared, _alone) = match sharing {
        Sharing::Shared => (Some(RUNNING.read().await), None),
        Sharing::Alone => (None, Some(RUNNING.write().await)),
    };
    let Some(app) = TestApp::spawn(backend, events).await else {
        return;
    };
    run_on(app, test).await;
}

/// Runs `test` on `app`, then drops its PostgreSQL database, if any; a panic of the test
/// is passed on.
async fn run_on<F, Fut>(mut app: TestApp, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let pg = app.pg.take();
    let stream = app.ingest.clone();
    let outcome = tokio::spawn(test(app)).await;
    if let Some(pg) = pg {
        pg.drop_database().await;
    }
    if let Some(target) = stream {
        delete_stream(&target).await;
    }
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// A fresh database on `backend`: SQLite in memory, or a new database in the PostgreSQL server
/// of `TEST_DATABASE_URL` (the caller checked it is set), to be dropped after the test.
async fn fresh_database(backend: Backend) -> (String, Option<PgDatabase>) {
    match backend {
        Backend::Sqlite => ("sqlite::memory:".to_owned(), None),
        Backend::Postgres => {
            let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
            let (pg, url) = PgDatabase::create(&admin_url).await;
            (url, Some(pg))
        }
    }
}

/// Runs `test` on a fresh app on `backend` whose database holds the demo alone, as a fresh
/// `serve --demo` on `day` leaves it: `keys` (and `other`) are keys of the demo's workspace.
pub async fn run_demo<F, Fut>(backend: Backend, day: chrono::NaiveDate, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if backend == Backend::Postgres && std::env::var_os("TEST_DATABASE_URL").is_none() {
        return;
    }
    let _shared = RUNNING.read().await;
    let (url, pg) = fresh_database(backend).await;
    let app = TestApp::spawn_full(&url, pg, Checkpoints::OnCommit, test_event_settings(), Fill::Demo(day), None).await;
    run_on(app, test).await;
}

/// Runs `test` on a fresh app on `backend` whose hits go through a NATS JetStream inbox: a new
/// stream in the server of `TEST_NATS_URL`, deleted afterwards. Passes without running when
/// that (or, on PostgreSQL, `TEST_DATABASE_URL`) is not set.
pub async fn run_on_jetstream<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(ingest) = jetstream_target() else {
        return;
    };
    if backend == Backend::Postgres && std::env::var_os("TEST_DATABASE_URL").is_none() {
        return;
    }
    let _shared = RUNNING.read().await;
    let (url, pg) = fresh_database(backend).await;
    let app = TestApp::spawn_full(
        &url,
        pg,
        Checkpoints::OnCommit,
        test_event_settings(),
        Fill::Workspaces,
        Some(ingest),
    )
    .await;
    run_on(app, test).await;
}

/// A JetStream inbox on a stream of its own in the server of `TEST_NATS_URL`, if set.
pub fn jetstream_target() -> Option<Target> {
    let server = std::env::var("TEST_NATS_URL").ok()?;
    let url = format!("{}/{}", server.trim_end_matches('/'), random_name("cltest_"));
    Some(Target::parse(&url).expect("TEST_NATS_URL is a nats:// URL"))
}

/// Deletes a test's JetStream stream.
pub async fn delete_stream(target: &Target) {
    let client = async_nats::connect(target.address.as_str()).await.expect("connect to NATS");
    let _ = async_nats::jetstream::new(client).delete_stream(&target.stream).await;
}

/// Messages a test's JetStream stream holds.
pub async fn stream_messages(target: &Target) -> u64 {
    let client = async_nats::connect(target.address.as_str()).await.expect("connect to NATS");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(&target.stream)
        .await
        .expect("the stream");
    stream.info().await.expect("stream info").state.messages
}

/// What a test database holds before the test: the workspaces Acme and Globex, or the demo.
enum Fill {
    Workspaces,
    Demo(chrono::NaiveDate),
}

impl TestApp {
    /// A fresh app on `backend`: SQLite in memory, or a new database in the PostgreSQL server of
    /// `TEST_DATABASE_URL` (`None` when that is not set; [`run`] drops the database afterwards).
    pub async fn spawn(backend: Backend, events: EventSettings) -> Option<TestApp> {
        match backend {
            Backend::Sqlite => Some(Self::spawn_on("sqlite::memory:", None, events).await),
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
                let (pg, url) = PgDatabase::create(&admin_url).await;
                Some(Self::spawn_on(&url, Some(pg), events).await)
            }
        }
    }

    /// A fresh app on a SQLite file in `dir` (created if missing), connected as `serve` connects
    /// (background checkpoints); the caller removes `dir`.
    pub async fn spawn_sqlite_file(dir: &std::path::Path) -> TestApp {
        std::fs::create_dir_all(dir).expect("create the test directory");
        let url = sqlite_file_url(&dir.join("closedloop.db"));
        Self::spawn_with(&url, None, Checkpoints::Background, test_event_settings()).await
    }

    async fn spawn_on(url: &str, pg: Option<PgDatabase>, events: EventSettings) -> TestApp {
        Self::spawn_with(url, pg, Checkpoints::OnCommit, events).await
    }

    async fn spawn_with(url: &str, pg: Option<PgDatabase>, checkpoints: Checkpoints, events: EventSettings) -> TestApp {
        Self::spawn_full(url, pg, checkpoints, events, Fill::Workspaces, None).await
    }

    async fn spawn_full(
        url: &str,
        pg: Option<PgDatabase>,
        checkpoints: Checkpoints,
        events: EventSettings,
        fill: Fill,
        ingest: Option<Target>,
    ) -> TestApp {
        init_logging();
        let mut db = Db::connect_with(url, checkpoints).await.expect("connect to the test database");
        db.migrate().await.expect("migrate");
        let (keys, other) = match fill {
            Fill::Workspaces => (workspace_with_keys(&db, "Acme").await, workspace_with_keys(&db, "Globex").await),
            Fill::Demo(day) => {
                use closedloop::cli::demo;
                let admin = demo::load(&db, day).await.expect("load the demo").expect("an empty database");
                let key = |role: Role| {
                    let db = &db;
                    async move {
                        workspace::create_key(db, demo::WORKSPACE, role, "demo", None)
                            .await
                            .expect("create key")
                            .0
                    }
                };
                let keys = Keys {
                    admin,
                    marketing: key(Role::Marketing).await,
                    sales: key(Role::Sales).await,
                    analyst: key(Role::Analyst).await,
                };
                (keys.clone(), keys)
            }
        };

        // The callback lives in the pool handle, which every clone (the server's too) shares.
        let statements = Arc::new(StatementLog::default());
        let log = statements.clone();
        // The webhook dispatcher and the event-head poll run in the background; they are not
        // part of any request.
        db.conn.set_metric_callback(move |info| {
            // This callback replaces the server's own, which counts statements for /metrics.
            closedloop::metrics::count_statement();
            let sql = &info.statement.sql;
            if !sql.contains("webhook_deliveries") && !sql.contains("event_counters") && !sql.contains("ingest_inbox") {
                log.statements.lock().unwrap().push(sql.clone());
            }
        });

        let mut config = Config {
            database_url: url.to_owned(),
            bind: "127.0.0.1:0".parse().unwrap(),
            events,
            ..Config::default()
        };
        config.tracking.ingest = ingest.clone();
        let app = Application::with_db(config, db.clone()).await.expect("build the application");
        let addr = app.local_addr();
        let server = tokio::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        TestApp {
            addr,
            database_url: url.to_owned(),
            client: reqwest::Client::new(),
            db,
            keys,
            other,
            statements,
            server,
            pg,
            ingest,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A second server over this test's database, configured as the defaults changed by
    /// `change`: its address.
    pub async fn serve_with(&self, change: impl FnOnce(&mut Config)) -> SocketAddr {
        let mut config = Config {
            database_url: self.database_url.clone(),
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        change(&mut config);
        let server = Application::with_db(config, self.db.clone()).await.expect("build a second server");
        let addr = server.local_addr();
        tokio::spawn(server.run_until_stopped());
        addr
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// POST /graphql with `key` (none when empty); the whole response body.
    pub async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if !key.is_empty() {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("POST /graphql");
        resp.json().await.expect("a JSON response")
    }

    /// As `gql`, and the `data`, panicking with the errors if there are any.
    pub async fn data(&self, key: &str, query: &str, variables: Value) -> Value {
        let resp = self.gql(key, query, variables).await;
        data_of(resp)
    }

    /// As `data`, for a mutation field: its payload, panicking if it has `userErrors`.
    pub async fn mutate(&self, key: &str, field: &str, query: &str, variables: Value) -> Value {
        let data = self.data(key, query, variables).await;
        let payload = data[field].clone();
        assert_eq!(payload["userErrors"], json!([]), "{field} has user errors: {payload:#}");
        payload
    }

    // Set-up through the API. Each returns the created object and asserts that it worked.

    pub async fn upsert_lead(&self, input: Value) -> Value {
        let q = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id email createdAt updatedAt } created userErrors { field message code } } }";
        self.mutate(&self.keys.admin, "upsertLead", q, json!({ "input": input })).await["lead"].clone()
    }

    /// A lead with just an e-mail; its ID.
    pub async fn lead(&self, email: &str) -> String {
        id_of(&self.upsert_lead(json!({ "email": email })).await)
    }

    pub async fn account(&self, input: Value) -> String {
        let q = "mutation($input: UpsertAccountInput!) { upsertAccount(input: $input) { account { id } created userErrors { field message code } } }";
        id_of(&self.mutate(&self.keys.admin, "upsertAccount", q, json!({ "input": input })).await["account"])
    }

    pub async fn campaign(&self, input: Value) -> String {
        let q = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { field message code } } }";
        id_of(&self.mutate(&self.keys.admin, "createCampaign", q, json!({ "input": input })).await["campaign"])
    }

    /// A campaign with a name and a default channel and kind.
    pub async fn simple_campaign(&self, name: &str) -> String {
        self.campaign(json!({ "name": name, "channel": "EMAIL", "kind": "ACQUISITION" }))
            .await
    }

    /// Records touchpoints (as ADMIN); the payload.
    pub async fn record(&self, items: Value) -> Value {
        self.record_as(&self.keys.admin, items).await
    }

    pub async fn record_as(&self, key: &str, items: Value) -> Value {
        let q = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount duplicateCount touchpoints { id } userErrors { field message code } } }";
        self.data(key, q, json!({ "input": { "items": items } })).await["recordTouchpoints"].clone()
    }

    pub async fn opportunity(&self, input: Value) -> String {
        let q = "mutation($input: UpsertOpportunityInput!) { upsertOpportunity(input: $input) { opportunity { id } created userErrors { field message code } } }";
        id_of(
            &self
                .mutate(&self.keys.sales, "upsertOpportunity", q, json!({ "input": input }))
                .await["opportunity"],
        )
    }

    /// Sets a deal's buying center (as SALES); asserts that it worked.
    pub async fn buying_center(&self, opportunity: &str, contacts: Value) {
        let q = "mutation($input: SetBuyingCenterInput!) { setBuyingCenter(input: $input) { userErrors { field message code } } }";
        let input = json!({ "input": { "opportunityId": opportunity, "contacts": contacts } });
        self.mutate(&self.keys.sales, "setBuyingCenter", q, input).await;
    }

    /// Closes a deal WON at `closed_at` (as SALES); asserts that it worked.
    pub async fn close_won(&self, opportunity: &str, closed_at: &str) {
        let q = "mutation($input: CloseOpportunityInput!) { closeOpportunity(input: $input) { userErrors { field message code } } }";
        let input = json!({ "input": { "id": opportunity, "outcome": "WON", "closedAt": closed_at } });
        self.mutate(&self.keys.sales, "closeOpportunity", q, input).await;
    }

    /// Writes the demo company's workspace beside Acme and Globex; an ADMIN key of it. Its story
    /// is on the calendar it is told on (2024 and 2025, "now" 2026-01-01), which the tests'
    /// fixed ranges name.
    pub async fn demo(&self) -> String {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a day");
        closedloop::cli::demo::load_beside(&self.db, day).await.expect("load the demo")
    }

    pub async fn user(&self, name: &str, email: &str) -> String {
        let q =
            "mutation($input: UpsertUserInput!) { upsertUser(input: $input) { user { id } created userErrors { field message code } } }";
        let input = json!({ "name": name, "email": email });
        id_of(&self.mutate(&self.keys.admin, "upsertUser", q, json!({ "input": input })).await["user"])
    }
}

/// A new directory under the system's temporary directory, named `prefix` and a random part.
/// `closedloop serve --bind 127.0.0.1:0 ARGS` as a process of its own on `database_url`: the
/// child and the GraphiQL URL it prints (`http://ADDR/graphql`). Its output is read to the end,
/// so that it never blocks on a full pipe.
pub async fn serve_process(database_url: &str, args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_closedloop"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start closedloop serve");
    let stdout = child.stdout.take().unwrap();
    let graphiql = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let found = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("GraphiQL: ").map(str::to_owned));
        std::thread::spawn(move || lines.for_each(drop));
        found
    })
    .await
    .unwrap()
    .expect("the server's address");
    (child, graphiql)
}

/// The one integer that `sql` answers (a count, an ID), read straight from the database.
pub async fn scalar(db: &Db, sql: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no row: {sql}"));
    row.try_get_by_index::<i64>(0).unwrap()
}

pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(random_name(&format!("closedloop-{prefix}-")))
}

/// The URL of a SQLite file (created if missing) at `path`, whatever characters the path holds:
/// sqlx reads the part before `?` percent-decoded.
pub fn sqlite_file_url(path: &std::path::Path) -> String {
    let mut encoded = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => encoded.push_str(&format!("%{:02X}", c as u32)),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// Event settings for tests: quick webhook retries and polls, and webhooks may reach loopback
/// (127.0.0.0/8 and ::1), where the tests' receivers listen.
pub fn test_event_settings() -> EventSettings {
    EventSettings {
        poll: Duration::from_millis(200),
        max_subscriptions_per_connection: 3,
        connection_init_timeout: Duration::from_secs(1),
        webhooks: closedloop::events::webhook::Settings {
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(2),
            max_attempts: 5,
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(100),
            allow: AllowList::new(["127.0.0.0/8", "::1/128"].map(|n| parse_net(n).expect("a network"))),
        },
        ..EventSettings::default()
    }
}

/// As `test_event_settings`, with webhooks to public addresses only, as a server started without
/// `--webhook-allow`.
pub fn public_only_event_settings() -> EventSettings {
    let mut events = test_event_settings();
    events.webhooks.allow = AllowList::default();
    events
}

/// Server logs stay quiet unless `TEST_LOG` is set: `TEST_LOG=1` for info, or a filter such as
/// `TEST_LOG=closedloop=debug`.
fn init_logging() {
    let Ok(filter) = std::env::var("TEST_LOG") else {
        return;
    };
    let filter = match filter.as_str() {
        "" | "1" | "true" => "info".to_owned(),
        other => other.to_owned(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

pub async fn workspace_with_keys(db: &Db, name: &str) -> Keys {
    workspace::create(db, name).await.expect("create workspace");
    let key = |role: Role| async move {
        let (key, _row) = workspace::create_key(db, name, role, &format!("{name} {role}"), None)
            .await
            .expect("create key");
        key
    };
    Keys {
        admin: key(Role::Admin).await,
        marketing: key(Role::Marketing).await,
        sales: key(Role::Sales).await,
        analyst: key(Role::Analyst).await,
    }
}

/// The `data` of a response, panicking with the errors if there are any.
pub fn data_of(resp: Value) -> Value {
    assert!(
        resp.get("errors").is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty())),
        "unexpected errors: {:#}",
        resp["errors"]
    );
    resp["data"].clone()
}

/// `errors[0].extensions.code`, panicking when the response has no error.
pub fn error_code(resp: &Value) -> String {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with extensions.code, got {resp:#}"))
        .to_owned()
}

/// The `id` of an object, as a string.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an object with an id, got {v:#}"))
        .to_owned()
}

/// The ids of a connection's nodes, in order.
pub fn ids(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a connection with nodes, got {connection:#}"))
        .iter()
        .map(id_of)
        .collect()
}

/// The `userErrors` of a payload as (field path joined with '.', code) pairs.
pub fn user_errors(payload: &Value) -> Vec<(String, String)> {
    payload["userErrors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a payload with userErrors, got {payload:#}"))
        .iter()
        .map(|e| {
            let path: Vec<&str> = e["field"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            (path.join("."), e["code"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// A global ID of our format for `type_name` and a database id (`base64("Lead:42")`).
pub fn global_id(type_name: &str, id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{type_name}:{id}"))
}

/// The database ID inside a global ID.
pub fn decode_id(global: &str) -> i64 {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(global)
        .expect("a global ID is base64");
    let text = String::from_utf8(raw).expect("a global ID is UTF-8");
    text.rsplit_once(':').and_then(|(_, id)| id.parse().ok()).expect("Type:id")
}

/// The monthly campaign sums (`attribution_campaign_months`) equal the ledger summed again by
/// model version, currency, month of close, campaign and attributed, in every workspace.
pub async fn assert_month_sums_match_ledger(db: &Db) {
    use chrono::Datelike;
    use sea_orm::EntityTrait;
    use std::collections::{BTreeMap, BTreeSet};
    type Key = (i64, i64, String, String, Option<i64>, bool);
    let mut summed: BTreeMap<Key, (i64, i64, i64, BTreeSet<i64>)> = BTreeMap::new();
    for c in entity::attribution_credit::Entity::find().all(&db.conn).await.unwrap() {
        let month = format!("{:04}-{:02}", c.closed_at.year(), c.closed_at.month());
        let key = (c.workspace_id, c.model_id, c.currency, month, c.campaign_id, c.lead_id.is_some());
        let s = summed.entry(key).or_default();
        s.0 += c.amount_minor;
        s.1 += c.conversion_micros;
        s.2 += c.touches;
        s.3.insert(c.opportunity_id);
    }
    let summed: BTreeMap<Key, (i64, i64, i64, i64)> = summed.into_iter().map(|(k, (a, c, t, d))| (k, (a, c, t, d.len() as i64))).collect();
    let kept: BTreeMap<Key, (i64, i64, i64, i64)> = entity::attribution_campaign_month::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let month = format!("{:04}-{:02}", m.month_start.year(), m.month_start.month());
            (
                (m.workspace_id, m.model_id, m.currency, month, m.campaign_id, m.attributed),
                (m.amount_minor, m.conversion_micros, m.touchpoints, m.deals),
            )
        })
        .collect();
    assert_eq!(kept, summed, "the monthly sums are the ledger's");
}
