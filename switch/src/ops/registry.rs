//! Registering merchants and terminals (PROTOCOL.md 8).

use ledger::account::AccountKind;
use ledger::book::LedgerEvent;
use serde::Deserialize;

use super::OpError;
use crate::authorize::HostTx;
use crate::state::cards::CardKind;
use crate::state::ids::{MerchantId, TerminalId};
use crate::state::registry::{Merchant, Terminal};
use crate::state::HostEvent;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    pub id: String,
    pub name: String,
    pub settlement_account: String,
    pub fee_bps: u32,
    pub accepted_kinds: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTerminal {
    pub id: String,
    pub merchant_id: String,
    pub tpk: String,
    pub tak: Option<String>,
    pub mac_required: bool,
    pub offline_floor_limit: String,
}

pub fn register_merchant(tx: &mut HostTx<'_>, new: &NewMerchant) -> Result<Merchant, OpError> {
    let id = MerchantId::parse(&new.id)
        .ok_or_else(|| OpError::invalid("id must be 15 printable characters"))?;
    if new.name.trim().is_empty() || new.name.len() > 100 || new.name.contains([',', '\n', '\r']) {
        return Err(OpError::invalid(
            "name must be 1 to 100 characters, without commas or line breaks",
        ));
    }
    let account_ok = !new.settlement_account.is_empty()
        && new.settlement_account.len() <= 34
        && new
            .settlement_account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    if !account_ok {
        return Err(OpError::invalid(
            "settlement_account must be 1 to 34 letters or digits",
        ));
    }
    if new.fee_bps > 10_000 {
        return Err(OpError::invalid("fee_bps must be within 0..=10000"));
    }
    let accepted_kinds = match &new.accepted_kinds {
        None => CardKind::ALL.iter().fold(0, |mask, kind| mask | kind.bit()),
        Some(kinds) if kinds.is_empty() => {
            return Err(OpError::invalid(
                "accepted_kinds must name at least one kind",
            ))
        }
        Some(kinds) => kinds.iter().try_fold(0u8, |mask, kind| {
            CardKind::parse(kind)
                .map(|kind| mask | kind.bit())
                .ok_or_else(|| {
                    OpError::invalid(format!(
                        "unknown card kind `{kind}`: student, staff or temporary"
                    ))
                })
        })?,
    };
    if tx.state().merchants.contains_key(&id) {
        return Err(OpError::Conflict(format!(
            "merchant {id} is already registered"
        )));
    }
    let account = tx.state().book.next_account_id();
    tx.emit(HostEvent::Ledger(LedgerEvent::OpenAccount {
        id: account,
        kind: AccountKind::MerchantPayable,
    }));
    let merchant = Merchant {
        id,
        name: new.name.trim().to_owned(),
        settlement_account: new.settlement_account.clone(),
        fee_bps: new.fee_bps,
        accepted_kinds,
        account,
    };
    tx.emit(HostEvent::MerchantRegistered(merchant.clone()));
    Ok(merchant)
}

pub fn register_terminal(tx: &mut HostTx<'_>, new: &NewTerminal) -> Result<Terminal, OpError> {
    let id = TerminalId::parse(&new.id)
        .ok_or_else(|| OpError::invalid("id must be 8 printable characters"))?;
    let merchant = MerchantId::parse(&new.merchant_id)
        .ok_or_else(|| OpError::invalid("merchant_id must be 15 printable characters"))?;
    let tpk = parse_key(&new.tpk).ok_or_else(|| OpError::invalid("tpk must be 32 hex digits"))?;
    let tak = match &new.tak {
        Some(tak) => {
            Some(parse_key(tak).ok_or_else(|| OpError::invalid("tak must be 32 hex digits"))?)
        }
        None => None,
    };
    if new.mac_required && tak.is_none() {
        return Err(OpError::invalid("a terminal with mac_required needs a tak"));
    }
    let offline_floor_limit_minor = crate::money::parse_amount(&new.offline_floor_limit)
        .map_err(|e| OpError::invalid(format!("offline_floor_limit: {e}")))?;
    if !tx.state().merchants.contains_key(&merchant) {
        return Err(OpError::NotFound(format!(
            "merchant {merchant} is not registered: POST /v1/merchants first"
        )));
    }
    if tx.state().terminals.contains_key(&id) {
        return Err(OpError::Conflict(format!(
            "terminal {id} is already registered"
        )));
    }
    let terminal = Terminal {
        id,
        merchant,
        tpk: tpk.into(),
        tak: tak.map(Into::into),
        mac_required: new.mac_required,
        offline_floor_limit_minor,
        signed_on: false,
        blacklist_version_served: 0,
    };
    tx.emit(HostEvent::TerminalRegistered(Box::new(terminal.clone())));
    Ok(terminal)
}

fn parse_key(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}
