//! `loadgen`: simulated terminals against a host (`run`), and the echo-host baseline.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load Bursar with simulated terminals, or serve the echo-host baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate terminals against a host and report throughput and latency.
    Run(Box<loadgen::run::RunArgs>),
    /// Offline terminals: sell offline, then all catch up at once with advices, batch close
    /// and batch upload, and check that every sale was posted once.
    Offline(Box<loadgen::offline::OfflineArgs>),
    /// Answer every request with a fixed approval: the baseline.
    EchoHost(loadgen::echo_host::EchoHostArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Run(args) => loadgen::run::main(*args),
        Command::Offline(args) => loadgen::offline::main(*args),
        Command::EchoHost(args) => loadgen::echo_host::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
