//! `bursar`: the host binary. Exit codes: 0 after a clean shutdown, 1 on a runtime failure,
//! 2 on an invalid configuration.

use std::process::ExitCode;

use clap::Parser;

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
