//! The operator audit trail: every change made through the admin API, who made it (the
//! token's name), when, and what changed. Kept as engine events, so it is exactly as durable
//! as the change it records (both are in the same WAL group).

use ledger::cow_vec::CowVec;
use serde::{Deserialize, Serialize};

/// One recorded change. Card numbers appear masked (first 6, last 4), as in any log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Dense from 1, in the order the changes were made.
    pub id: u64,
    pub at_ms: u64,
    /// The name of the bearer token the request carried (`[admin.tokens]`).
    pub operator: String,
    /// What was done, e.g. `card.lost` or `subsidy.paid`.
    pub action: String,
    /// What it was done to: a masked PAN, a merchant or terminal id, a reference.
    pub subject: String,
    /// What changed, in words an auditor reads.
    pub detail: String,
}

/// Longest `detail` kept: an entry must fit one WAL record with room to spare.
pub const DETAIL_MAX: usize = 1024;

/// Kept in copy-on-write chunks: a snapshot shares them instead of copying every entry's
/// strings on the engine thread (a bulk issue adds an entry per card).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditTrail {
    entries: CowVec<AuditEntry>,
}

impl AuditTrail {
    pub fn last_id(&self) -> u64 {
        // Ids are dense from 1.
        self.entries.len() as u64
    }

    pub fn record(&mut self, entry: AuditEntry) {
        assert_eq!(entry.id, self.last_id() + 1, "audit ids are dense");
        self.entries.push(entry);
    }

    /// Entries after `since`, oldest first, at most `limit`; and whether more follow.
    pub fn page_since(&self, since: u64, limit: usize) -> (Vec<&AuditEntry>, bool) {
        // Ids are dense from 1, so the entry with id `since + 1` is at index `since`.
        let start = since.min(self.last_id()) as usize;
        let page: Vec<&AuditEntry> = (start..self.entries.len())
            .take(limit)
            .map(|index| self.entries.get(index).expect("in range"))
            .collect();
        let more = start + page.len() < self.entries.len();
        (page, more)
    }
}
