//! `bursar`: the host binary. Exit codes: 0 after a clean shutdown, 1 on a runtime failure,
//! 2 on an invalid configuration.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's allocator: under load glibc's slow paths (`_int_malloc`,
/// `_int_free`, `unlink_chunk`) took about a tenth of the WAL thread's and the tokio workers'
/// samples (sled's growing buffers, requests' memory freed on another thread than the one
/// that allocated it). jemalloc took about 4 % off the CPU per request (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = switch::cli::Args::parse();
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("bursar: {error}");
            return ExitCode::from(2);
        }
    };
    switch::logging::init(args.log_json);
    // Before the runtime and the ledger start their threads, which inherit it.
    let scheduling = config.host.cpu_scheduling;
    match switch::scheduling::apply_to_this_thread(scheduling) {
        Ok(()) => tracing::info!(?scheduling, "CPU scheduling policy set"),
        Err(error) => {
            tracing::warn!(?scheduling, %error, "cannot set the CPU scheduling policy: keeping the default")
        }
    }
    let workers = config.host.workers();
    tracing::info!(workers, "starting the runtime");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bursar: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(switch::host::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("bursar: {error:#}");
            ExitCode::from(1)
        }
    }
}
