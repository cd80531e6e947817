use clap::Parser;
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent a fifth of the CPU time of a page of leads in malloc_consolidate.
///
/// mimalloc is built with `no_thp`: it would otherwise ask for transparent huge pages, and each
/// region it purged and touched again cost the kernel 2 MiB of zeroing. A batch of 10,000
/// touchpoints grows SQLite's page cache by some 40 MB and frees it at the commit, so that
/// zeroing was 15 % of the server's CPU in `bench/scoring.sh` (BENCHMARKS.md, session 12).
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
