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

impl Blacklist {
    /// The latest change to `pan` made at or before host time `at_ms`: whether the card was
    /// blocked then, and in which version that became known.
    pub fn change_as_of(&self, pan: &Pan, at_ms: u64) -> Option<&BlacklistChange> {
        self.changes
            .iter()
            .rev()
            .filter(|c| c.at_ms <= at_ms)
            .find(|c| &c.pan == pan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn pan(serial: u64) -> Pan {
        let body = format!("629999{serial:09}");
        let check = crate::state::ids::luhn_check_digit(&body) as char;
        Pan::parse(&format!("{body}{check}")).unwrap()
    }

    /// The delta from any version brings the set at that version to the current set, the
    /// same as replaying the changes one by one (what a terminal does with its pages).
    #[test]
    fn delta_since_any_version_equals_replaying_the_changes() {
        let mut blacklist = Blacklist::default();
        let script = [
            (1, true),
            (2, true),
            (1, false),
            (3, true),
            (2, false),
            (1, true),
            (4, true),
            (4, false),
        ];
        for (at, (serial, blocked)) in script.iter().enumerate() {
            blacklist.record(pan(*serial), *blocked, at as u64);
        }
        let set_at = |version: u64| -> BTreeSet<Pan> {
            let mut set = BTreeSet::new();
            for change in &blacklist.since(0)[..version as usize] {
                if change.blocked {
                    set.insert(change.pan);
                } else {
                    set.remove(&change.pan);
                }
            }
            set
        };
        let current = set_at(blacklist.version());
        for since in 0..=blacklist.version() + 2 {
            let (version, added, removed) = blacklist.delta_since(since);
            assert_eq!(version, 8);
            let mut set = set_at(since.min(8));
            for p in &removed {
                set.remove(p);
            }
            set.extend(added.iter().copied());
            assert_eq!(set, current, "since {since}");
            assert!(added.iter().all(|p| !removed.contains(p)));
        }
        assert_eq!(blacklist.delta_since(5), (8, vec![pan(1)], vec![pan(4)]));
    }
}
