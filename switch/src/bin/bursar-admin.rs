//! `bursar-admin`: operator commands over the admin API (see `switch::admin_cli`).

use std::process::ExitCode;

use clap::Parser;
use switch::admin_cli::{run, Args, Outcome};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        Err(error) => {
            eprintln!("bursar-admin: {error:#}");
            ExitCode::from(2)
        }
    }
}
