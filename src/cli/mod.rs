//! The `closedloop` command line: serve, migrate, schema, workspaces, keys, seed, import.
pub mod demo;
mod demo_handoffs;
pub mod export;
pub mod import;
pub mod links;
pub mod markov;
pub mod progress;
pub mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::BoxError;
use crate::config::{self, Config, ConnectionLimits, Limits};
use crate::db::{Checkpoints, Db};
use crate::domain::destination::AllowList;
use crate::domain::vocab::Role;
use crate::service;
use crate::startup::Application;
pub use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "closedloop",
    version,
    about = "Closed-loop reporting between marketing and sales: a GraphQL backend"
)]
pub struct Cli {
    /// How log lines are written to stderr: text, or json (one object per line, for log
    /// shippers). Accepted by every subcommand.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Where `serve` exports its spans, if it was asked to.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        match &self.command {
            Command::Serve { otlp_endpoint, .. } => otlp_endpoint.as_deref(),
            _ => None,
        }
    }
}

/// `--database-url`, accepted by every subcommand (before or after its own arguments).
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// sqlite://FILE?mode=rwc, sqlite::memory: or postgres://USER@HOST/DB
    #[arg(long, env = "DATABASE_URL", default_value = config::DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
}

/// What one request and one connection may take of `serve` (SECURITY.md explains each).
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Connections served at once; more wait in the listen queue.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = Limits::default().connections.max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value_t = Limits::default().connections.header_read_timeout.as_secs())]
    pub header_read_timeout: u64,
    /// Seconds a client has to send a whole request body.
    #[arg(long, env = "BODY_READ_TIMEOUT", default_value_t = Limits::default().connections.body_read_timeout.as_secs())]
    pub body_read_timeout: u64,
    /// Bytes per second a request body must arrive at, over every 5 seconds.
    #[arg(long, env = "MIN_BODY_RATE", default_value_t = Limits::default().connections.min_body_bytes_per_second)]
    pub min_body_rate: u64,
    /// Seconds a kept-alive connection may sit idle.
    #[arg(long, env = "IDLE_TIMEOUT", default_value_t = Limits::default().connections.idle_timeout.as_secs())]
    pub idle_timeout: u64,
    /// Seconds one GraphQL request may take, parsing, validation and execution included.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value_t = Limits::default().request_timeout.as_secs())]
    pub request_timeout: u64,
    /// Largest request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
}

impl LimitArgs {
    pub fn into_limits(self) -> Limits {
        let defaults = Limits::default();
        Limits {
            max_body_bytes: self.max_body_bytes,
            // A time of 0 would refuse everything at once: one second is the least.
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            connections: ConnectionLimits {
                max_connections: self.max_connections.max(1),
                header_read_timeout: Duration::from_secs(self.header_read_timeout.max(1)),
                body_read_timeout: Duration::from_secs(self.body_read_timeout.max(1)),
                min_body_bytes_per_second: self.min_body_rate,
                idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
                ..defaults.connections
            },
            ..defaults
        }
    }
}

/// An origin as browsers send it (`scheme://host[:port]`, lower case, no path), or `*`.
fn parse_origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(raw.to_owned());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an origin: {e}"))?;
    let origin = url.origin();
    if !origin.is_tuple() || !matches!(url.scheme(), "http" | "https") || !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(format!(
            "{raw:?} is not an origin: give scheme://host[:port], e.g. https://app.example.com"
        ));
    }
    Ok(origin.ascii_serialization())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate the database and serve the API (GraphiQL on GET /graphql).
    Serve {
        #[arg(long, env = "BIND", default_value = config::DEFAULT_BIND)]
        bind: SocketAddr,
        /// Fill an empty database with the demo company and print an ADMIN key.
        #[arg(long)]
        demo: bool,
        /// The day the demo is loaded as of (YYYY-MM-DD, 2000-01-01 to today; default today, UTC):
        /// its two years of history run up to 00:00 UTC of that day. The same day always gives
        /// the same demo.
        #[arg(long, env = "DEMO_DAY", value_name = "DATE")]
        demo_day: Option<chrono::NaiveDate>,
        /// Do not serve GraphiQL.
        #[arg(long)]
        no_graphiql: bool,
        /// Resolve every field through its resolver: no planned reads (one statement per level
        /// for the hot lists and lookups). The answers are the same; for checking, and to
        /// compare speed.
        #[arg(long)]
        no_planned_reads: bool,
        /// A network webhooks may reach besides public addresses, e.g. 10.0.0.0/8 for an
        /// on-premise receiver (repeatable; the variable takes a comma-separated list).
        #[arg(long = "webhook-allow", env = "WEBHOOK_ALLOW", value_name = "CIDR", value_delimiter = ',', value_parser = crate::domain::destination::parse_net)]
        webhook_allow: Vec<ipnet::IpNet>,
        /// An origin whose pages may call the API from a browser, e.g. https://app.example.com,
        /// or * for any (repeatable; the variable takes a comma-separated list). Without one, only
        /// GraphiQL's own origin; --demo allows any.
        #[arg(long = "cors-origin", env = "CORS_ORIGINS", value_name = "ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
        cors_origin: Vec<String>,
        /// A bearer token that GET /metrics asks of every scraper (at least 16 characters).
        /// Without it, /metrics answers loopback peers only.
        #[arg(long, env = "METRICS_TOKEN", value_name = "TOKEN", value_parser = config::MetricsToken::parse, hide_env_values = true)]
        metrics_token: Option<config::MetricsToken>,
        /// The server's address as browsers and mail clients reach it, e.g.
        /// https://t.example.com: tracking links and pixels start with it (default: the bound
        /// address).
        #[arg(long, env = "PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// Hits a second that one site key (a whole site), or one tracking link for anyone (an
        /// ad), may send to the tracking endpoints.
        #[arg(long, env = "HITS_PER_SITE_KEY", value_name = "N", default_value_t = 50_000)]
        hits_per_site_key: u32,
        /// Hits a second that one visitor, or one personal tracking link, may send.
        #[arg(long, env = "HITS_PER_VISITOR", value_name = "N", default_value_t = 5)]
        hits_per_visitor: u32,
        /// Keep tracking hits in a NATS JetStream stream until they are processed, e.g.
        /// nats://127.0.0.1:4222/closedloop (the stream, made if missing, is the path; default
        /// closedloop), instead of the database's inbox table.
        #[arg(long, env = "INGEST_URL", value_name = "URL", value_parser = crate::ingest::jetstream::Target::parse)]
        ingest: Option<crate::ingest::jetstream::Target>,
        /// Export a span per request (with its GraphQL operation name) over OTLP/HTTP to this
        /// collector, e.g. http://localhost:4318 (binaries built with the `otlp` feature).
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
        otlp_endpoint: Option<String>,
        /// How many days the change feed keeps a change; a cursor older than that answers
        /// CURSOR_EXPIRED (re-sync from an export).
        #[arg(long, env = "CHANGE_RETENTION_DAYS", value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
        change_retention_days: u32,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Apply pending migrations.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the GraphQL SDL.
    Schema,
    /// Manage workspaces.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Fill a workspace with deterministic synthetic data.
    Seed {
        /// Number of leads; accounts, campaigns, touchpoints and deals scale with it.
        #[arg(long)]
        leads: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "seed")]
        workspace: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write MARKOV's journeys of a range as ChannelAttribution's path table (path,
    /// total_conversions, total_null, total_conversion_value) and time the exact solver on them.
    MarkovPaths {
        #[arg(long)]
        workspace: String,
        /// Start of the range (RFC 3339), inclusive.
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// End of the range (RFC 3339), exclusive.
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
        /// CHANNEL or CAMPAIGN.
        #[arg(long, default_value = "CHANNEL")]
        group_by: String,
        #[arg(long, default_value_t = 365)]
        lookback_days: i64,
        #[arg(long)]
        out: PathBuf,
        /// Solve this many times and report the fastest and the median.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export a workspace's tables as Parquet or CSV files (`export DIR --workspace NAME`), or,
    /// with a subcommand, leads of scoring cells or a mailing's links as CSV; progress on stderr.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Export {
        #[command(subcommand)]
        command: Option<ExportCommand>,
        #[command(flatten)]
        tables: TableExportArgs,
    },
    /// Import CSV files (docs/import.md) into a workspace, all or nothing.
    Import {
        dir: PathBuf,
        #[arg(long)]
        workspace: String,
        /// A rejection lists at most this many problems (all are counted).
        #[arg(long, default_value_t = import::MAX_PROBLEMS)]
        max_problems: usize,
        /// A cell may hold at most this many bytes.
        #[arg(long, default_value_t = import::MAX_CELL_BYTES)]
        max_cell_bytes: usize,
        /// Add unknown channels, touchpoint types and cost categories to the workspace's
        /// vocabularies instead of refusing the rows that use them.
        #[arg(long)]
        add_vocabulary: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `closedloop export DIR`: one file per table (docs/export.md), all from one snapshot.
#[derive(clap::Args, Debug)]
pub struct TableExportArgs {
    /// The directory to write `TABLE.parquet` (or `.csv`) into; created if missing. (A directory
    /// named like a subcommand, `leads` or `links`, is given as `./leads`.)
    #[arg(required = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[arg(long, required = true)]
    pub workspace: Option<String>,
    /// parquet or csv.
    #[arg(long, default_value = "parquet", value_parser = parse_format)]
    pub format: crate::export::Format,
    /// The tables to write, comma-separated (default: all): accounts, campaigns, cost_lines,
    /// leads, touchpoints, stage_history, opportunities, contacts, scores, attribution_credits.
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    pub tables: Vec<String>,
    /// Incremental: only the rows that changed after this change cursor (the `cursor` of an
    /// earlier export, in its export.json, or of the change feed); tables the feed does not
    /// follow (scores) come whole.
    #[arg(long, value_name = "CURSOR")]
    pub since: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

fn parse_format(s: &str) -> Result<crate::export::Format, String> {
    crate::export::Format::from_extension(&s.to_ascii_lowercase()).ok_or_else(|| format!("{s:?} is not parquet or csv"))
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// The leads of scoring cells and/or a persona, as `GET /export/leads.csv` gives them
    /// (RFC 4180 CSV, one snapshot; docs/scoring.md).
    Leads {
        #[arg(long)]
        workspace: String,
        /// The conditions, as the HTTP export's query string: `cell=A1,A2`, `grade`, `model`,
        /// `persona`, `minActivityScore`, `asOf` (default: every lead scored now).
        #[arg(long, default_value = "")]
        query: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// A mailing's personal tracking links and open pixels, one row per recipient
    /// (docs/tracking.md): the recipients' CSV with `url` and `pixel_url` appended.
    Links {
        #[arg(long)]
        workspace: String,
        /// The tracking link (its ID, from `createTrackingLink`).
        #[arg(long)]
        link: String,
        /// A CSV with a header and a column `email` or `external_id`.
        #[arg(long)]
        recipients: PathBuf,
        /// The server's address as recipients reach it, e.g. https://t.example.com.
        #[arg(long, env = "PUBLIC_URL")]
        public_url: String,
        /// When the mailing goes out (RFC 3339; default now): a click within a minute of it is
        /// taken for a mail scanner's.
        #[arg(long)]
        sent_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// Create a workspace with the default funnel and vocabularies.
    Create {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; it is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        workspace: String,
        /// ADMIN, MARKETING, SALES or ANALYST
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "cli")]
        name: String,
        /// The user the key acts for (its externalId or e-mail): a SALES key made for a user
        /// answers and follows only that user's handoffs.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not one of ADMIN, MARKETING, SALES, ANALYST"))
}

async fn open(db: &DbArgs) -> Result<Db, BoxError> {
    open_with(db, Checkpoints::OnCommit).await
}

async fn open_with(db: &DbArgs, checkpoints: Checkpoints) -> Result<Db, BoxError> {
    let db = Db::connect_with(&db.database_url, checkpoints)
        .await
        .map_err(|e| format!("cannot open {}: {e}", config::redact_url(&db.database_url)))?;
    db.migrate().await?;
    Ok(db)
}

pub async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Serve {
            bind,
            demo,
            demo_day,
            no_graphiql,
            no_planned_reads,
            webhook_allow,
            cors_origin,
            metrics_token,
            public_url,
            hits_per_site_key,
            hits_per_visitor,
            ingest,
            change_retention_days,
            limits,
            db,
            ..
        } => {
            // As `Application::build` connects: the server checkpoints in the background.
            let database = open_with(&db, Checkpoints::Background).await?;
            if demo {
                let today = chrono::Utc::now().date_naive();
                let day = demo_day.unwrap_or(today);
                let earliest = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
                if day > today || day < earliest {
                    return Err(format!("--demo-day must be a day from {earliest} to today ({today}); the demo holds no future").into());
                }
                match demo::load(&database, day).await? {
                    Some(key) => {
                        database.analyze().await?;
                        println!("Demo workspace {:?} loaded as of {day}.", demo::WORKSPACE);
                        println!("ADMIN key (shown once): {key}");
                    }
                    None => println!("The database has data already; the demo was not loaded."),
                }
            }
            let mut config = Config {
                database_url: db.database_url.clone(),
                bind,
                graphiql: !no_graphiql,
                limits: limits.into_limits(),
                // The demo is for trying things out, from any page.
                cors_origins: if cors_origin.is_empty() && demo {
                    vec!["*".into()]
                } else {
                    cors_origin
                },
                metrics_token,
                reads: if no_planned_reads {
                    crate::graphql::plan::Reads::Generic
                } else {
                    crate::graphql::plan::Reads::Planned
                },
                ..Config::default()
            };
            config.tracking.public_url = public_url;
            config.tracking.hits_per_site_key_per_second = hits_per_site_key;
            config.tracking.hits_per_visitor_per_second = hits_per_visitor;
            config.tracking.ingest = ingest;
            config.events.change_retention = std::time::Duration::from_secs(u64::from(change_retention_days) * 86_400);
            if !webhook_allow.is_empty() {
                let nets: Vec<String> = webhook_allow.iter().map(ToString::to_string).collect();
                tracing::info!(networks = %nets.join(","), "webhooks may reach these networks besides public addresses");
            }
            config.events.webhooks.allow = AllowList::new(webhook_allow);
            if config.metrics_token.is_none() {
                tracing::info!(
                    "/metrics answers loopback peers only; behind a proxy on this host, every client is one: set --metrics-token"
                );
            }
            let app = Application::with_db(config, database).await?;
            let addr = app.local_addr();
            tracing::info!(%addr, database = %config::redact_url(&db.database_url), "serving");
            println!("GraphiQL: http://{addr}/graphql");
            app.run_until_stopped().await?;
        }
        Command::Migrate { db } => {
            open(&db).await?;
            println!("migrated");
        }
        Command::Schema => print!("{}", crate::graphql::sdl()),
        Command::Export { command: None, tables } => {
            let (Some(dir), Some(workspace)) = (tables.dir, tables.workspace) else {
                return Err("export: give DIR and --workspace, or a subcommand (leads, links)".into());
            };
            let database = open(&tables.db).await?;
            let started = std::time::Instant::now();
            let progress = progress::Progress::stderr("export");
            let (written, cursor) = export::tables(
                &database,
                &workspace,
                &dir,
                tables.format,
                &tables.tables,
                tables.since.as_deref(),
                &progress,
            )
            .await?;
            for w in &written {
                println!("{}\t{} rows\t{} bytes", w.path.display(), w.rows, w.bytes);
            }
            println!("cursor\t{cursor}");
            eprintln!(
                "exported {} tables ({} rows) in {:.1} s",
                written.len(),
                written.iter().map(|w| w.rows).sum::<u64>(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Export {
            command: Some(ExportCommand::Leads { workspace, query, out, db }),
            ..
        } => {
            let database = open(&db).await?;
            let started = std::time::Instant::now();
            let progress = progress::Progress::stderr("export");
            let rows = export::leads(&database, &workspace, &query, out.as_deref(), &progress).await?;
            // The CSV may be on standard output: the summary goes to stderr.
            eprintln!("exported {rows} leads in {:.1} s", started.elapsed().as_secs_f64());
        }
        Command::Export {
            command:
                Some(ExportCommand::Links {
                    workspace,
                    link,
                    recipients,
                    public_url,
                    sent_at,
                    out,
                    db,
                }),
            ..
        } => {
            let database = open(&db).await?;
            let sent_at = sent_at.unwrap_or_else(chrono::Utc::now);
            let w = links::links(&database, &workspace, &link, &recipients, out.as_deref(), &public_url, sent_at).await?;
            eprintln!(
                "{} recipients, {} of them no lead of {workspace:?} (empty url)",
                w.rows, w.unmatched
            );
        }
        Command::Workspace {
            command: WorkspaceCommand::Create { name, db },
        } => {
            let database = open(&db).await?;
            let ws = service::workspace::create(&database, &name).await?;
            println!("workspace {:?} created (id {})", ws.name, ws.id);
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    workspace,
                    role,
                    name,
                    user,
                    db,
                },
        } => {
            let database = open(&db).await?;
            let (key, _) = service::workspace::create_key(&database, &workspace, role, &name, user.as_deref()).await?;
            println!("{key}");
        }
        Command::Seed {
            leads,
            seed,
            workspace,
            db,
        } => {
            let database = open(&db).await?;
            let started = std::time::Instant::now();
            let progress = progress::Progress::stderr("seed");
            let report = seed::run(&database, &workspace, leads, seed, &progress).await?;
            progress.start("statistics", None);
            database.analyze().await?;
            println!("{report} in {:.1} s", started.elapsed().as_secs_f64());
            println!("time per step: {}", progress.timings());
        }
        Command::MarkovPaths {
            workspace,
            from,
            to,
            group_by,
            lookback_days,
            out,
            repeat,
            db,
        } => {
            let grouping = match group_by.to_ascii_uppercase().as_str() {
                "CHANNEL" => crate::service::attribution::Grouping::Channel,
                "CAMPAIGN" => crate::service::attribution::Grouping::Campaign,
                other => return Err(format!("--group-by {other:?}: CHANNEL or CAMPAIGN").into()),
            };
            let database = open(&db).await?;
            let args = markov::Args {
                workspace: &workspace,
                from,
                to,
                grouping,
                lookback_days,
                out: &out,
                repeat,
            };
            print!("{}", markov::run(&database, args).await?);
        }
        Command::Import {
            dir,
            workspace,
            max_problems,
            max_cell_bytes,
            add_vocabulary,
            db,
        } => {
            let database = open(&db).await?;
            let started = std::time::Instant::now();
            let options = import::Options {
                max_problems,
                max_cell_bytes,
                add_vocabulary,
            };
            let progress = progress::Progress::stderr("import");
            let report = import::run_showing(&database, &dir, &workspace, &options, &progress).await?;
            progress.start("statistics", None);
            database.analyze().await?;
            println!("{report} in {:.1} s", started.elapsed().as_secs_f64());
            println!("time per table: {}", progress.timings());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn webhook_allow_is_repeatable_and_checked() {
        let cli = Cli::try_parse_from([
            "closedloop",
            "serve",
            "--webhook-allow",
            "127.0.0.0/8",
            "--webhook-allow",
            "fd00::/8,10.1.2.3",
        ])
        .unwrap();
        let Command::Serve { webhook_allow, .. } = cli.command else {
            panic!("serve");
        };
        let nets: Vec<String> = webhook_allow.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["127.0.0.0/8", "fd00::/8", "10.1.2.3/32"]);
        let err = Cli::try_parse_from(["closedloop", "serve", "--webhook-allow", "intranet"]).unwrap_err();
        assert!(err.to_string().contains("\"intranet\" is not a network"), "{err}");
    }

    #[test]
    fn cors_origins_are_origins_or_a_wildcard() {
        let cli = Cli::try_parse_from([
            "closedloop",
            "serve",
            "--cors-origin",
            "https://App.Example.com/",
            "--cors-origin",
            "http://localhost:5173,*",
        ])
        .unwrap();
        let Command::Serve { cors_origin, .. } = cli.command else {
            panic!("serve");
        };
        assert_eq!(cors_origin, ["https://app.example.com", "http://localhost:5173", "*"]);
        for bad in ["app.example.com", "https://app.example.com/path", "ftp://x.example"] {
            assert!(Cli::try_parse_from(["closedloop", "serve", "--cors-origin", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_takes_a_directory_or_a_subcommand() {
        let parse = |args: &[&str]| Cli::try_parse_from(["closedloop", "export"].iter().chain(args));
        let cli = parse(&["out", "--workspace", "w", "--format", "CSV", "--tables", "leads,touchpoints"]).unwrap();
        let Command::Export { command: None, tables } = cli.command else {
            panic!("export DIR");
        };
        assert_eq!(tables.dir.as_deref(), Some(std::path::Path::new("out")));
        assert_eq!(tables.workspace.as_deref(), Some("w"));
        assert_eq!(tables.format, crate::export::Format::Csv);
        assert_eq!(tables.tables, ["leads", "touchpoints"]);
        let cli = parse(&["out", "--workspace", "w", "--database-url", "sqlite::memory:"]).unwrap();
        let Command::Export { command: None, tables } = cli.command else {
            panic!("export DIR");
        };
        assert_eq!(tables.format, crate::export::Format::Parquet);
        assert_eq!(tables.db.database_url, "sqlite::memory:");
        let cli = parse(&[
            "leads",
            "--workspace",
            "w",
            "--query",
            "cell=A1",
            "--database-url",
            "sqlite::memory:",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Export {
                command: Some(super::ExportCommand::Leads { .. }),
                ..
            }
        ));
        let cli = parse(&[
            "links",
            "--workspace",
            "w",
            "--link",
            "x",
            "--recipients",
            "r.csv",
            "--public-url",
            "https://t.example.com",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Export {
                command: Some(super::ExportCommand::Links { .. }),
                ..
            }
        ));
        for bad in [&["--workspace", "w"][..], &["out"], &["out", "--workspace", "w", "--format", "xml"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn connection_limits_come_from_flags_and_keep_their_defaults_otherwise() {
        let cli = Cli::try_parse_from(["closedloop", "serve", "--max-connections", "5", "--idle-timeout", "7"]).unwrap();
        let Command::Serve { limits, .. } = cli.command else {
            panic!("serve");
        };
        let limits = limits.into_limits();
        let defaults = crate::config::Limits::default();
        assert_eq!(limits.connections.max_connections, 5);
        assert_eq!(limits.connections.idle_timeout, std::time::Duration::from_secs(7));
        assert_eq!(limits.connections.header_read_timeout, defaults.connections.header_read_timeout);
        assert_eq!(limits.request_timeout, defaults.request_timeout);
        assert_eq!(limits.max_body_bytes, defaults.max_body_bytes);
    }
}
