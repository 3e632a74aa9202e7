//! The Bursar host: terminal link, authorization against the ledger, admin API and metrics.
//!
//! Not here: message syntax (the `codec` crate) and durability (the `ledger` crate). This
//! crate decides; the ledger remembers.

pub mod admin;
pub mod admin_cli;
pub mod authorize;
pub mod bank;
pub mod cli;
pub mod clock;
pub mod config;
pub mod day;
pub mod demo;
pub mod host;
pub mod link;
pub mod logging;
pub mod metrics;
pub mod money;
pub mod ops;
pub mod pin;
pub mod policy;
pub mod scheduling;
pub mod state;
