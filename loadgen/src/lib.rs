//! Load generation and simulators for Bursar: `loadgen run` (simulated terminals that load a
//! host and report throughput and latency), `loadgen offline` (terminals that sell offline
//! and then catch up), `loadgen echo-host` (the do-nothing baseline).
//!
//! Not for production traffic: the terminals share one test TPK and TAK, and the echo host
//! approves anyone.

pub mod banksim;
pub mod clock;
pub mod echo_host;
pub mod fleet;
pub mod fleet_args;
pub mod mix;
pub mod offline;
pub mod report;
pub mod requests;
pub mod run;
pub mod session;
pub mod stats;

/// A tokio runtime with `threads` workers (default: one per CPU).
pub fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        anyhow::ensure!(threads > 0, "--threads must be at least 1");
        builder.worker_threads(threads);
    }
    Ok(builder.enable_all().build()?)
}
