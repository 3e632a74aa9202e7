//! Responses to terminal requests: which request fields each response echoes, what the host
//! sets, and the MAC for MAC-enabled terminals (PROTOCOL.md 3 and 7).

use bytes::Bytes;
use codec::security::retail_mac;
use codec::{BuildError, Field, Message, MessageBuilder, Mti, ParseError};

use crate::authorize::Decision;
use crate::clock::mmdd;
use crate::state::registry::TerminalKey;

pub fn build(
    request: &Message,
    decision: &Decision,
    currency: &[u8; 3],
) -> Result<Bytes, BuildError> {
    let reply = &decision.reply;
    let mut response = MessageBuilder::response_to(request, request.mti().echoed_fields());
    response.set(Field::ResponseCode, &reply.code)?;
    let is_network = request.mti() == Mti::NETWORK_REQUEST;
    let signs_on = is_network && request.network_code() == Some(crate::authorize::network::SIGN_ON);
    if !is_network && request.mti() != Mti::AUTHORIZATION_REQUEST || signs_on {
        response.set(Field::SettlementDate, mmdd(reply.settlement_day).as_bytes())?;
    }
    if let Some(rrn) = reply.rrn {
        response.set(Field::Rrn, format!("{rrn:012}").as_bytes())?;
    }
    if let Some(approval) = reply.approval {
        response.set(Field::ApprovalCode, &approval)?;
    }
    if let Some(balance_minor) = reply.balance_minor {
        response.set(
            Field::AdditionalAmounts,
            additional_amount(balance_minor, currency).as_bytes(),
        )?;
    }
    if let Some(data) = &decision.private_data {
        response.set(Field::PrivateData, data.as_bytes())?;
    }
    finish(response, decision.mac_key.as_ref())
}

/// The `30` answer to a message the codec could not parse but whose MTI, F11 and F41 it read.
pub fn format_error(
    error: &ParseError,
    mac_key: Option<&TerminalKey>,
) -> Option<Result<Bytes, BuildError>> {
    let salvage = &error.salvage;
    let (mti, stan, terminal) = (salvage.mti?, salvage.stan?, salvage.terminal_id?);
    let mut response = MessageBuilder::new(mti.response()?);
    let built = (|| {
        response.set(Field::Stan, &stan)?;
        response.set(Field::ResponseCode, b"30")?;
        response.set(Field::TerminalId, &terminal)?;
        finish(response, mac_key)
    })();
    Some(built)
}

fn finish(response: MessageBuilder, mac_key: Option<&TerminalKey>) -> Result<Bytes, BuildError> {
    match mac_key {
        Some(tak) => response.build_with_mac(|data| retail_mac(tak.schedule(), data)),
        None => response.build(),
    }
}

/// F54: account type `00`, amount type `02` (available balance), currency, `C`/`D`, 12 digits.
pub fn additional_amount(balance_minor: i64, currency: &[u8; 3]) -> String {
    let sign = if balance_minor < 0 { 'D' } else { 'C' };
    let currency = std::str::from_utf8(currency).expect("currency is digits");
    format!("0002{currency}{sign}{:012}", balance_minor.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_field_matches_the_vector() {
        assert_eq!(additional_amount(8766, b"156"), "0002156C000000008766");
        assert_eq!(additional_amount(-5, b"156"), "0002156D000000000005");
    }
}
