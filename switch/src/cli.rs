//! Command-line flags of `bursar`: each overrides its key of the configuration file.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "bursar",
    version,
    about = "Bursar: the payment host for closed-loop campus cards"
)]
pub struct Args {
    /// TOML configuration file (see config/bursar.toml); without it, built-in defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the write-ahead log and snapshots live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Terminal link listener, HOST:PORT.
    #[arg(long)]
    pub terminal_addr: Option<String>,
    /// Admin API and /metrics listener, HOST:PORT.
    #[arg(long)]
    pub admin_addr: Option<String>,
    /// The partner bank's host, HOST:PORT.
    #[arg(long)]
    pub bank_addr: Option<String>,
    /// Where clearing files are published.
    #[arg(long)]
    pub outbox_dir: Option<PathBuf>,
    /// Seed demo merchants, terminals and cards on a fresh data directory.
    #[arg(long)]
    pub demo: bool,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

impl Args {
    /// The configuration file with these flags applied, validated.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.host.data_dir = dir.clone();
        }
        if let Some(dir) = &self.outbox_dir {
            config.host.outbox_dir = dir.clone();
        }
        if let Some(addr) = &self.terminal_addr {
            config.terminal_link.addr = addr.parse().map_err(|_| ConfigError::Invalid {
                key: "terminal_link.addr",
                message: format!("`{addr}` is not HOST:PORT"),
            })?;
        }
        if let Some(addr) = &self.admin_addr {
            config.admin.addr = addr.parse().map_err(|_| ConfigError::Invalid {
                key: "admin.addr",
                message: format!("`{addr}` is not HOST:PORT"),
            })?;
        }
        if let Some(addr) = &self.bank_addr {
            config.bank.addr = Some(addr.clone());
        }
        if self.demo {
            config.demo.seed = true;
        }
        if let Ok(token) = std::env::var("BURSAR_ADMIN_TOKEN") {
            config.admin.tokens.insert("env".to_owned(), token);
        }
        config.validate()?;
        Ok(config)
    }
}
