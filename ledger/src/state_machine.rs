//! The contract between the durable engine and the state it keeps.
//!
//! All state that must survive a crash changes only through events: a request runs against
//! the state inside a [`Tx`], which applies each event it emits at once (so later checks in
//! the same group see it) and records it for the write-ahead log. Replay after a crash
//! feeds the logged events through the same [`StateMachine::apply`], so live and recovered
//! state cannot diverge.

use serde::{de::DeserializeOwned, Serialize};

use crate::snapshot::SnapshotLogs;

pub trait StateMachine: Send + 'static {
    /// What the write-ahead log stores. Must be deterministic to apply.
    type Event: Serialize + DeserializeOwned + Send + 'static;
    /// A point-in-time copy of the state, taken on the engine thread and written in the
    /// background: taking it must be cheap (no deep copy of large histories). Its append-only
    /// logs ([`SnapshotLogs`]) go to chunk files written once each.
    type Snapshot: Serialize + DeserializeOwned + SnapshotLogs + Send + 'static;

    /// Applies one logged event. Called live (through [`Tx::emit`]) and on replay.
    /// An event that cannot be applied is a bug or a corrupt log: panic.
    fn apply(&mut self, event: &Self::Event);

    fn snapshot(&self) -> Self::Snapshot;

    fn restore(snapshot: Self::Snapshot) -> Self;

    /// Invariants asserted after recovery, before serving (for example: the book balances).
    fn check(&self) -> Result<(), String>;

    /// Replay is about to apply about `events` events: room may be made for them up front
    /// (no rehashing during replay). A hint; by default nothing.
    fn reserve(&mut self, _events: u64) {}

    /// Replay will apply `event` a few events from now: what it touches at random places may
    /// be fetched into the cache. A hint that must change nothing; by default nothing.
    fn prefetch(&self, _event: &Self::Event) {}
}

/// A request's view of the state: read it, and change it only by emitting events.
pub struct Tx<'a, S: StateMachine> {
    state: &'a mut S,
    events: &'a mut Vec<S::Event>,
}

impl<'a, S: StateMachine> Tx<'a, S> {
    pub fn new(state: &'a mut S, events: &'a mut Vec<S::Event>) -> Self {
        Tx { state, events }
    }

    pub fn state(&self) -> &S {
        self.state
    }

    /// Applies the event now and logs it with the request's group.
    pub fn emit(&mut self, event: S::Event) {
        self.state.apply(&event);
        self.events.push(event);
    }

    /// Events emitted so far by this transaction's group.
    pub fn emitted(&self) -> usize {
        self.events.len()
    }
}
