//! Recording operator changes in the audit trail.

use crate::authorize::HostTx;
use crate::state::audit::{AuditEntry, DETAIL_MAX};
use crate::state::HostEvent;

/// What an operator action reports for the audit trail, beside its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub subject: String,
    pub detail: String,
}

impl Change {
    pub fn new(subject: impl Into<String>, detail: impl Into<String>) -> Change {
        Change {
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// Emits the audit entry of a change, in the same transaction as the change.
pub fn record(tx: &mut HostTx<'_>, operator: &str, at_ms: u64, action: &str, change: Change) {
    let mut detail = change.detail;
    if detail.len() > DETAIL_MAX {
        let mut end = DETAIL_MAX;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
    }
    let entry = AuditEntry {
        id: tx.state().audit.last_id() + 1,
        at_ms,
        operator: operator.to_owned(),
        action: action.to_owned(),
        subject: change.subject,
        detail,
    };
    tx.emit(HostEvent::Audited(Box::new(entry)));
}
