//! `banksim`: the partner bank's host, simulated (see `loadgen::banksim`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = loadgen::banksim::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("banksim: cannot start the runtime: {error}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(loadgen::banksim::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("banksim: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}
