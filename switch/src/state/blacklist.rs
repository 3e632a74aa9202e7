//! The blacklist: every block and unblock of a card, in version order. Terminals download
//! the changes since the version they have; offline advices are judged against it.

use std::collections::BTreeMap;

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

#[derive(Clone, Debug, Default)]
pub struct Blacklist {
    changes: Vec<BlacklistChange>,
    /// Positions in `changes` of each card's changes, oldest first, so that judging an offline
    /// advice reads that card's few changes instead of the whole list (a catch-up judges
    /// hundreds of thousands). Derived: not stored, rebuilt when loaded.
    by_pan: BTreeMap<Pan, Vec<usize>>,
}

/// The stored form: the changes only (the same bytes as before the index existed).
#[derive(Serialize)]
#[serde(rename = "Blacklist")]
struct StoredRef<'a> {
    changes: &'a [BlacklistChange],
}

#[derive(Deserialize)]
#[serde(rename = "Blacklist")]
struct Stored {
    changes: Vec<BlacklistChange>,
}

impl Serialize for Blacklist {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            changes: &self.changes,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Blacklist {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        let mut blacklist = Blacklist::default();
        for change in stored.changes {
            blacklist.push(change);
        }
        Ok(blacklist)
    }
}

impl Blacklist {
    pub fn version(&self) -> u64 {
        self.changes.last().map_or(0, |c| c.version)
    }

    pub fn record(&mut self, pan: Pan, blocked: bool, at_ms: u64) -> u64 {
        let version = self.version() + 1;
        self.push(BlacklistChange {
            version,
            pan,
            blocked,
            at_ms,
        });
        version
    }

    fn push(&mut self, change: BlacklistChange) {
        self.by_pan
            .entry(change.pan)
            .or_default()
            .push(self.changes.len());
        self.changes.push(change);
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
        let mut latest: BTreeMap<Pan, bool> = Default::default();
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
        self.by_pan
            .get(pan)?
            .iter()
            .rev()
            .map(|&position| &self.changes[position])
            .find(|c| c.at_ms <= at_ms)
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

    /// Blocks and unblocks of four cards, change `i` made at `i * spacing_ms`.
    fn scripted(spacing_ms: u64) -> Blacklist {
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
        for (i, (serial, blocked)) in script.iter().enumerate() {
            blacklist.record(pan(*serial), *blocked, i as u64 * spacing_ms);
        }
        blacklist
    }

    /// The delta from any version brings the set at that version to the current set, the
    /// same as replaying the changes one by one (what a terminal does with its pages).
    #[test]
    fn delta_since_any_version_equals_replaying_the_changes() {
        let blacklist = scripted(1);
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

    /// The per-card index answers as a scan of every change would, and survives a store and
    /// load (it is rebuilt, not stored).
    #[test]
    fn change_as_of_equals_a_scan_before_and_after_loading() {
        let blacklist = scripted(10);
        let scan = |b: &Blacklist, p: &Pan, at: u64| -> Option<BlacklistChange> {
            b.since(0)
                .iter()
                .rev()
                .filter(|c| c.at_ms <= at)
                .find(|c| &c.pan == p)
                .copied()
        };
        let bytes = postcard::to_stdvec(&blacklist).unwrap();
        let loaded: Blacklist = postcard::from_bytes(&bytes).unwrap();
        // The same bytes as the plain derived struct it used to be.
        #[derive(Serialize)]
        struct Before {
            changes: Vec<BlacklistChange>,
        }
        let before = Before {
            changes: blacklist.since(0).to_vec(),
        };
        assert_eq!(bytes, postcard::to_stdvec(&before).unwrap());
        for b in [&blacklist, &loaded] {
            for serial in 1..=4 {
                for at in 0..90 {
                    let p = pan(serial);
                    assert_eq!(
                        b.change_as_of(&p, at).copied(),
                        scan(b, &p, at),
                        "{serial} {at}"
                    );
                }
            }
        }
        assert_eq!(loaded.version(), 8);
    }
}
