//! Network management, 0800 (PROTOCOL.md 3.1): sign-on, sign-off, echo, blacklist download.

use codec::{Message, ResponseCode};

use super::{code_bytes, Decision, HostTx};
use crate::policy::Policy;
use crate::state::answers::Reply;
use crate::state::registry::Terminal;
use crate::state::HostEvent;

pub const SIGN_ON: u16 = 1;
pub const SIGN_OFF: u16 = 2;
pub const ECHO: u16 = 301;
pub const BLACKLIST_DOWNLOAD: u16 = 901;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    policy: &Policy,
) -> Decision {
    let day = tx.state().business_day;
    let answer = |code, private_data, reason| Decision {
        reply: Reply {
            code: code_bytes(code),
            settlement_day: day,
            rrn: None,
            approval: None,
            balance_minor: None,
        },
        private_data,
        mac_key: None,
        reason,
    };
    match msg.network_code() {
        Some(SIGN_ON) => {
            if !terminal.signed_on {
                tx.emit(HostEvent::TerminalSession {
                    terminal: terminal.id,
                    signed_on: true,
                });
            }
            answer(ResponseCode::Approved, None, None)
        }
        Some(SIGN_OFF) => {
            if terminal.signed_on {
                tx.emit(HostEvent::TerminalSession {
                    terminal: terminal.id,
                    signed_on: false,
                });
            }
            answer(ResponseCode::Approved, None, None)
        }
        Some(ECHO) => answer(ResponseCode::Approved, None, None),
        Some(BLACKLIST_DOWNLOAD) => match blacklist_page(tx, msg, terminal, policy) {
            Some(page) => answer(ResponseCode::Approved, Some(page), None),
            None => answer(
                ResponseCode::FormatError,
                None,
                Some("F48 must be a 12-digit blacklist version"),
            ),
        },
        _ => answer(
            ResponseCode::InvalidTransaction,
            None,
            Some("unknown network management code"),
        ),
    }
}

/// One page of blacklist changes after the terminal's version: new version (12 digits), `1`
/// if more pages follow else `0`, then `+PAN` / `-PAN` separated by `;`.
fn blacklist_page(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    policy: &Policy,
) -> Option<String> {
    let since = msg.get_str(codec::Field::PrivateData)?;
    if since.len() != 12 || !since.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let since: u64 = since.parse().ok()?;
    let changes = tx.state().blacklist.since(since);
    let page = &changes[..changes.len().min(policy.blacklist_page_entries)];
    let more = page.len() < changes.len();
    let version = page
        .last()
        .map_or(since.min(tx.state().blacklist.version()), |c| c.version);
    let mut data = format!("{version:012}{}", u8::from(more));
    for (i, change) in page.iter().enumerate() {
        if i > 0 {
            data.push(';');
        }
        data.push(if change.blocked { '+' } else { '-' });
        data.push_str(change.pan.as_str());
    }
    debug_assert!(data.len() <= 999, "a page fits F48");
    if version > terminal.blacklist_version_served {
        tx.emit(HostEvent::BlacklistServed {
            terminal: terminal.id,
            version,
        });
    }
    Some(data)
}
