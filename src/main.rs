use clap::Parser;
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent a fifth of the CPU time of a page of leads in malloc_consolidate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = closedloop::cli::Cli::parse();
    if let Err(e) = closedloop::cli::run(cli).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
