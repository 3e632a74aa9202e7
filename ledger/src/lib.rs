//! The book of every card's stored value and every merchant's takings, and the machinery
//! that makes it durable.
//!
//! What it is for:
//! - [`book::Book`]: the double-entry book. Accounts with a kind and running debit/credit
//!   totals, balanced multi-leg transfers that apply whole or not at all, idempotent by id,
//!   reversals applied at most once, card balances that never go below zero unless the
//!   transfer is an offline overdraft, and the queries the switch needs (by id, by RRN,
//!   merchant totals per business day, terminal totals per batch, card statements).
//! - [`engine::Engine`]: a single-writer group-commit engine that runs requests against any
//!   [`state_machine::StateMachine`] (the book, or the switch's state embedding it), logs
//!   the events in a write-ahead log with one real fsync per group, answers a request only
//!   when its events are durable, snapshots in the background and recovers at start.
//! - [`wal::Wal`]: the log behind a small trait: [`sled_wal::SledWal`] in production,
//!   [`sim_disk::SimDisk`] in crash tests.
//!
//! What it is not for: it knows nothing of ISO 8583, terminals, sockets or tokio runtimes
//! (a [`engine::Pending`] is a plain future), of fees or limits (business rules the switch
//! encodes in the legs it builds), or of clearing files. It never uses floats for money:
//! amounts are `u64` minor units, balances `i64`.

pub mod account;
pub mod book;
pub mod cow_map;
pub mod cow_ord_map;
pub mod cow_vec;
pub mod engine;
pub mod gradual_delete;
pub mod hash;
pub mod history;
mod id_index;
#[cfg(target_os = "linux")]
pub mod page_cache;
pub mod position_slot;
pub mod record;
mod rrn_index;
pub mod sim_disk;
pub mod sled_wal;
pub mod snapshot;
pub mod state_machine;
pub mod transfer;
pub mod wal;
pub mod warm_chunks;

pub use account::{Account, AccountId, AccountKind, Side};
pub use book::{Book, BookCheck, BookSnapshot, LedgerEvent, Prepared, Totals, TransferError};
pub use engine::{
    Engine, EngineConfig, EngineError, EngineStats, Pending, RecoveryError, RecoveryReport,
    StageTimes, ThreadStart, Timed, WalFailure,
};
pub use history::AppliedTransfer;
pub use sim_disk::SimDisk;
pub use sled_wal::SledWal;
pub use snapshot::{SnapshotInfo, SnapshotStore};
pub use state_machine::{StateMachine, Tx};
pub use transfer::{
    BusinessDay, Channel, Leg, References, Transfer, TransferId, TransferKind, LEGS_MAX,
};
pub use wal::{RecordGroup, Wal, WalError};
