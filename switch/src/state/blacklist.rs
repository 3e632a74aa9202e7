//! The blacklist: every block and unblock of a card, in version order. Terminals download
//! the changes since the version they have; offline advices are judged against it.

use serde::{Deserialize, Serialize};

use super::ids::Pan;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistChange {
    pub version: u64,
    pub pan: Pan,
    pub blocked: bool,
    /// Host time of the change, for judging offline sales made before or after it.
    pub at_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Blacklist {
    changes: Vec<BlacklistChange>,
}

impl Blacklist {
    pub fn version(&self) -> u64 {
        self.changes.last().map_or(0, |c| c.version)
    }

    pub fn record(&mut self, pan: Pan, blocked: bool, at_ms: u64) -> u64 {
        let version = self.version() + 1;
        self.changes.push(BlacklistChange {
            version,
            pan,
            blocked,
            at_ms,
        });
        version
    }

    /// Changes after `since`, oldest first.
    pub fn since(&self, since: u64) -> &[BlacklistChange] {
        // Versions are dense from 1, so the index of version v+1 is v.
        let start = (since as usize).min(self.changes.len());
        debug_assert!(self
            .changes
            .get(start)
            .is_none_or(|c| c.version == since + 1));
        &self.changes[start..]
    }

    /// What changed after `since`, as sets: the PANs blocked and the PANs unblocked since
    /// then (each by its latest change), with the version they bring a copy up to. Applying
    /// them to the set at `since` gives the same set as applying [`Blacklist::since`] in order,
    /// which is what the terminal download (PROTOCOL.md 3.1) serves.
    pub fn delta_since(&self, since: u64) -> (u64, Vec<Pan>, Vec<Pan>) {
        let mut latest: std::collections::BTreeMap<Pan, bool> = Default::default();
        for change in self.since(since) {
            latest.insert(change.pan, change.blocked);
        }
        let (added, removed): (Vec<_>, Vec<_>) = latest.into_iter().partition(|(_, b)| *b);
        (
            self.version(),
            added.into_iter().map(|(pan, _)| pan).collect(),
            removed.into_iter().map(|(pan, _)| pan).collect(),
        )
    }

    /// The change that blocked `pan` most recently at or before `version`, if it was still
    /// blocked at that version.
    pub fn block_in_force(&self, pan: &Pan, version: u64) -> Option<&BlacklistChange> {
        let end = (version as usize).min(self.changes.len());
        self.changes[..end]
            .iter()
            .rev()
            .find(|c| &c.pan == pan)
            .filter(|c| c.blocked)
    }
}
