use clap::Parser;

/// glibc's allocator spent a fifth of the CPU time of a page of leads in malloc_consolidate.
///
/// mimalloc is built with `no_thp`: it would otherwise ask for transparent huge pages, and each
/// region it purged and touched again cost the kernel 2 MiB of zeroing. A batch of 10,000
/// touchpoints grows SQLite's page cache by some 40 MB and frees it at the commit, so that
/// zeroing was 15 % of the server's CPU in `bench/scoring.sh` (BENCHMARKS.md, session 12).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = closedloop::cli::Cli::parse();
    // Before the runtime: the trace exporter runs on threads of its own, with a blocking client.
    let telemetry = match closedloop::telemetry::init(cli.log_format, cli.otlp_endpoint()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let result = runtime.block_on(closedloop::cli::run(cli));
    drop(runtime);
    // Sends the spans still buffered before the process ends.
    drop(telemetry);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
