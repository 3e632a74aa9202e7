//! Responses to terminal requests: which request fields each response echoes, what the host
//! sets, and the MAC for MAC-enabled terminals (PROTOCOL.md 3 and 7).

use bytes::Bytes;
use codec::security::{retail_mac, retail_macs};
use codec::{BuildError, Field, Message, MessageBuilder, Mti, ParseError};

use crate::authorize::Decision;
use crate::clock::mmdd;
use crate::state::registry::TerminalKey;

/// A response as the connection's writer gets it: built, or, for a MAC terminal, built up to
/// its MAC with the key to MAC it. The writer MACs the responses it writes together up to four
/// at a time ([`mac_waiting`]): a retail MAC is a chain of dependent DES rounds, and chains
/// interleaved take 0.5-0.6 of the time of the same chains in turn (docs/CODEC.md).
pub enum Response {
    Built(Bytes),
    WaitingForMac {
        up_to_mac: Vec<u8>,
        tak: TerminalKey,
    },
}

impl Response {
    /// The bytes to send; `None` while the MAC is missing.
    pub fn built(self) -> Option<Bytes> {
        match self {
            Response::Built(bytes) => Some(bytes),
            Response::WaitingForMac { .. } => None,
        }
    }

    /// What the MAC is computed over, and the key, while it is missing.
    fn waiting(&self) -> Option<(&[u8], &TerminalKey)> {
        match self {
            Response::WaitingForMac { up_to_mac, tak } => Some((up_to_mac, tak)),
            Response::Built(_) => None,
        }
    }

    fn append_mac(&mut self, mac: [u8; 8]) {
        if let Response::WaitingForMac { up_to_mac, .. } = self {
            let mut bytes = std::mem::take(up_to_mac);
            bytes.extend_from_slice(&mac);
            *self = Response::Built(Bytes::from(bytes));
        }
    }
}

/// MACs every response of `responses` still waiting for its MAC, up to four at a time.
pub fn mac_waiting(responses: &mut [Response]) {
    let mut waiting = responses
        .iter_mut()
        .filter(|response| response.waiting().is_some());
    loop {
        // The next four waiting (a slice's filtered iterator stays `None` once it is).
        match std::array::from_fn::<_, 4, _>(|_| waiting.next()) {
            [Some(a), Some(b), Some(c), Some(d)] => {
                let macs = retail_macs([input(a), input(b), input(c), input(d)]);
                append_macs([a, b, c, d], macs);
            }
            [Some(a), Some(b), Some(c), None] => {
                let macs = retail_macs([input(a), input(b), input(c)]);
                append_macs([a, b, c], macs);
            }
            [Some(a), Some(b), None, _] => {
                let macs = retail_macs([input(a), input(b)]);
                append_macs([a, b], macs);
            }
            [Some(a), None, ..] => {
                let (tak, data) = input(a);
                let mac = retail_mac(tak, data);
                a.append_mac(mac);
            }
            [None, ..] => return,
        }
    }
}

/// A waiting response's key and the bytes its MAC covers.
fn input(response: &Response) -> (&codec::security::TdesKey, &[u8]) {
    let (data, tak) = response
        .waiting()
        .expect("only waiting responses are MACed");
    (tak.schedule(), data)
}

fn append_macs<const N: usize>(responses: [&mut Response; N], macs: [[u8; 8]; N]) {
    for (response, mac) in responses.into_iter().zip(macs) {
        response.append_mac(mac);
    }
}

pub fn build(
    request: &Message,
    decision: &Decision,
    currency: &[u8; 3],
) -> Result<Response, BuildError> {
    let reply = &decision.reply;
    let mut response = MessageBuilder::response_to(request, request.mti().echoed_fields());
    response.set(Field::ResponseCode, &reply.code)?;
    let is_network = request.mti() == Mti::NETWORK_REQUEST;
    let signs_on = is_network && request.network_code() == Some(crate::authorize::network::SIGN_ON);
    if !is_network && request.mti() != Mti::AUTHORIZATION_REQUEST || signs_on {
        response.set(Field::SettlementDate, mmdd(reply.settlement_day).as_bytes())?;
    }
    if let Some(rrn) = reply.rrn {
        response.set_digits(Field::Rrn, rrn, 12)?;
    }
    if let Some(approval) = reply.approval {
        response.set(Field::ApprovalCode, &approval)?;
    }
    if let Some(balance_minor) = reply.balance_minor {
        let amounts = additional_amount(balance_minor, currency).ok_or(BuildError::DoesNotFit {
            field: Field::AdditionalAmounts,
            max: ADDITIONAL_AMOUNT_LEN,
        })?;
        response.set(Field::AdditionalAmounts, &amounts)?;
    }
    if let Some(data) = &decision.private_data {
        response.set(Field::PrivateData, data.as_bytes())?;
    }
    match &decision.mac_key {
        Some(tak) => Ok(Response::WaitingForMac {
            up_to_mac: response.build_up_to_mac()?,
            tak: tak.clone(),
        }),
        None => response.build().map(Response::Built),
    }
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

const ADDITIONAL_AMOUNT_LEN: usize = 20;

/// F54: account type `00`, amount type `02` (available balance), currency, `C`/`D`, 12 digits;
/// `None` when the balance has more than 12 digits. Built on the stack: it is on every
/// balance answer.
pub fn additional_amount(
    balance_minor: i64,
    currency: &[u8; 3],
) -> Option<[u8; ADDITIONAL_AMOUNT_LEN]> {
    let mut field = *b"0002000C000000000000";
    field[4..7].copy_from_slice(currency);
    if balance_minor < 0 {
        field[7] = b'D';
    }
    let mut rest = balance_minor.unsigned_abs();
    for digit in field[8..].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    (rest == 0).then_some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_waiting_for_their_macs_get_the_macs_they_would_get_alone() {
        let key = |byte: u8| TerminalKey::from([byte; 16]);
        let message = |stan: &[u8; 6]| {
            let mut builder = MessageBuilder::new(Mti::FINANCIAL_RESPONSE);
            builder.set(Field::Stan, stan).unwrap();
            builder.set(Field::ResponseCode, b"00").unwrap();
            builder.set(Field::TerminalId, b"T0000001").unwrap();
            builder
        };
        let stans = [b"000001", b"000002", b"000003", b"000004"];
        let keys = [key(0x11), key(0x22), key(0x33)];
        // Three waiting (a pair, then one alone) around one without a MAC.
        let mut responses = vec![
            Response::WaitingForMac {
                up_to_mac: message(stans[0]).build_up_to_mac().unwrap(),
                tak: keys[0].clone(),
            },
            Response::Built(message(stans[1]).build().unwrap()),
            Response::WaitingForMac {
                up_to_mac: message(stans[2]).build_up_to_mac().unwrap(),
                tak: keys[1].clone(),
            },
            Response::WaitingForMac {
                up_to_mac: message(stans[3]).build_up_to_mac().unwrap(),
                tak: keys[2].clone(),
            },
        ];
        mac_waiting(&mut responses);
        let alone = |stan, tak: &TerminalKey| {
            message(stan)
                .build_with_mac(|data| retail_mac(tak.schedule(), data))
                .unwrap()
        };
        let expected = [
            alone(stans[0], &keys[0]),
            message(stans[1]).build().unwrap(),
            alone(stans[2], &keys[1]),
            alone(stans[3], &keys[2]),
        ];
        let built: Vec<Bytes> = responses
            .into_iter()
            .map(|response| response.built().expect("MACed"))
            .collect();
        assert_eq!(built, expected);
    }

    #[test]
    fn balance_field_matches_the_vector() {
        assert_eq!(
            additional_amount(8766, b"156"),
            Some(*b"0002156C000000008766")
        );
        assert_eq!(
            additional_amount(-5, b"156"),
            Some(*b"0002156D000000000005")
        );
        assert_eq!(additional_amount(0, b"978"), Some(*b"0002978C000000000000"));
        assert_eq!(
            additional_amount(999_999_999_999, b"156"),
            Some(*b"0002156C999999999999")
        );
    }

    #[test]
    fn a_balance_of_thirteen_digits_does_not_fit() {
        assert_eq!(additional_amount(1_000_000_000_000, b"156"), None);
        assert_eq!(additional_amount(i64::MIN, b"156"), None);
    }
}
