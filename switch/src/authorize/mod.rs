//! Decisions on terminal requests (PROTOCOL.md 3). One function owns the control flow of a
//! request ([`terminal_request`]): who is asking, is the message complete, is it authentic,
//! has it been answered before; then one module per message type decides.
//!
//! Everything here runs on the ledger engine's thread against the current state, and changes
//! it only by emitting events, so a decision and its posting are one atomic step.

mod advice;
mod balance;
mod batch;
mod checks;
pub mod network;
pub mod prechecked;
mod purchase;
mod refund;
mod reversal;
mod topup;

pub use batch::host_totals;

use std::ops::Deref;

use codec::{Field, Message, Mti, ResponseCode};
use ledger::state_machine::Tx;
use ledger::transfer::{Channel, References, TransferId};
use sha2::{Digest, Sha256};

use crate::policy::Policy;
use crate::state::answers::{Answer, Reply, RequestKey};
use crate::state::bank::PendingTopUp;
use crate::state::batches::BatchEvent;
use crate::state::ids::{MerchantId, TerminalId};
use crate::state::registry::{Terminal, TerminalKey};
use crate::state::{HostEvent, HostState};
use prechecked::Prechecked;

pub type HostTx<'a> = Tx<'a, HostState>;

/// What the link needs to answer a request: the reply fields, F48 when there is one, and the
/// key to MAC the response with.
#[derive(Clone, Debug)]
pub struct Decision {
    pub reply: Reply,
    pub private_data: Option<String>,
    pub mac_key: Option<TerminalKey>,
    /// Why a request was declined, for the log line (never a PAN or key).
    pub reason: Option<&'static str>,
}

impl Decision {
    /// The decision for a checked request: its reply when approved; when declined, a reply
    /// with the code and the next RRN (declined 0210s carry one, PROTOCOL.md 3.2) and the
    /// reason for the log line.
    pub fn settled(tx: &HostTx<'_>, outcome: Result<Reply, checks::Declined>) -> Decision {
        match outcome {
            Ok(reply) => Decision {
                reply,
                private_data: None,
                mac_key: None,
                reason: None,
            },
            Err((code, reason)) => {
                let mut reply = Reply::declined(code, tx.state().business_day);
                reply.rrn = Some(tx.state().next_rrn);
                Decision {
                    reply,
                    private_data: None,
                    mac_key: None,
                    reason: Some(reason),
                }
            }
        }
    }
}

/// The terminal a request comes from, with what its connection already checked for it.
pub struct Asking<'a> {
    pub terminal: Terminal,
    pub prechecked: &'a Prechecked,
}

impl Deref for Asking<'_> {
    type Target = Terminal;

    fn deref(&self) -> &Terminal {
        &self.terminal
    }
}

/// What is left to do at the bank before a top-up can be answered (`bank::topup`).
#[derive(Copy, Clone, Debug)]
pub enum BankStep {
    /// Send this top-up to the bank (its `TopUpStarted` was emitted).
    Send(PendingTopUp),
    /// A retransmission of a top-up still waiting for the bank: answer what it gets.
    AwaitPending(RequestKey),
}

/// What a top-up may start: the bank link must be signed on and the SAF queue have room
/// (a top-up that times out queues a reversal).
#[derive(Copy, Clone, Debug)]
pub struct BankGate {
    pub link_up: bool,
    pub saf_depth_max: usize,
}

impl BankGate {
    pub const CLOSED: BankGate = BankGate {
        link_up: false,
        saf_depth_max: 0,
    };
}

/// The kinds of terminal request, by MTI and processing code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum RequestType {
    NetworkManagement,
    BalanceInquiry,
    Purchase,
    Refund,
    TopUp,
    Reversal,
    /// 0220/0221 offline advice (3.8).
    Advice,
    /// 0320 batch upload (3.9).
    Upload,
    /// 0500 batch settlement (3.9).
    Settlement,
    /// Handled by later modules (offline advices, batches): answered `12` until then.
    Unsupported,
}

/// The F39 to answer when the message cannot even be classified.
pub const UNKNOWN_PROCESSING_CODE: ResponseCode = ResponseCode::InvalidTransaction;

fn classify(msg: &Message) -> RequestType {
    let code = msg.processing_code();
    match msg.mti() {
        Mti::NETWORK_REQUEST => RequestType::NetworkManagement,
        Mti::AUTHORIZATION_REQUEST => match code {
            Some(310_000) | None => RequestType::BalanceInquiry,
            Some(_) => RequestType::Unsupported,
        },
        Mti::FINANCIAL_REQUEST => match code {
            // Without F3 it is read as a purchase, whose required fields then answer `30`.
            Some(0) | None => RequestType::Purchase,
            Some(200_000) => RequestType::Refund,
            Some(400_000) => RequestType::TopUp,
            _ => RequestType::Unsupported,
        },
        Mti::REVERSAL_REQUEST
        | Mti::REVERSAL_REQUEST_REPEAT
        | Mti::REVERSAL_ADVICE
        | Mti::REVERSAL_ADVICE_REPEAT => RequestType::Reversal,
        Mti::FINANCIAL_ADVICE | Mti::FINANCIAL_ADVICE_REPEAT => match code {
            Some(0) | None => RequestType::Advice,
            Some(_) => RequestType::Unsupported,
        },
        Mti::BATCH_UPLOAD => RequestType::Upload,
        Mti::RECONCILIATION_REQUEST => RequestType::Settlement,
        _ => RequestType::Unsupported,
    }
}

/// Whether the answer to a request of this type is kept, so that a retransmission gets it
/// again and a request with the same key but other content is refused.
fn keeps_answer(kind: RequestType) -> bool {
    matches!(
        kind,
        RequestType::Purchase | RequestType::Refund | RequestType::TopUp | RequestType::Reversal
    )
}

/// [`keeps_answer`] of the request `msg`'s MTI and processing code make it.
pub fn answer_kept_for(msg: &Message) -> bool {
    keeps_answer(classify(msg))
}

/// Fields each request type must carry (PROTOCOL.md 3.1-3.6); a missing one is `30`.
fn required_fields(kind: RequestType) -> &'static [Field] {
    use Field::*;
    match kind {
        RequestType::NetworkManagement => &[TransmissionDateTime, Stan, TerminalId, NetworkCode],
        RequestType::BalanceInquiry => &[
            Pan,
            ProcessingCode,
            TransmissionDateTime,
            Stan,
            LocalTime,
            LocalDate,
            TerminalId,
            MerchantId,
            Batch,
        ],
        RequestType::Purchase | RequestType::TopUp | RequestType::Advice => &[
            Pan,
            ProcessingCode,
            Amount,
            TransmissionDateTime,
            Stan,
            LocalTime,
            LocalDate,
            TerminalId,
            MerchantId,
            Batch,
        ],
        RequestType::Refund => &[
            Pan,
            ProcessingCode,
            Amount,
            TransmissionDateTime,
            Stan,
            LocalTime,
            LocalDate,
            Rrn,
            TerminalId,
            MerchantId,
            Batch,
        ],
        RequestType::Reversal => &[
            Pan,
            ProcessingCode,
            Amount,
            TransmissionDateTime,
            Stan,
            TerminalId,
            MerchantId,
            Batch,
            OriginalData,
        ],
        RequestType::Upload => &[
            Pan,
            ProcessingCode,
            Amount,
            Stan,
            LocalTime,
            LocalDate,
            TerminalId,
            MerchantId,
            Batch,
        ],
        RequestType::Settlement => &[
            ProcessingCode,
            Stan,
            TerminalId,
            MerchantId,
            Batch,
            CreditsCount,
            DebitsCount,
            CreditsAmount,
            DebitsAmount,
        ],
        RequestType::Unsupported => &[Stan, TerminalId],
    }
}

/// Decides a terminal request with no bank link (top-ups answer `91`) and nothing checked
/// before the engine.
pub fn terminal_request(
    tx: &mut HostTx<'_>,
    msg: &Message,
    policy: &Policy,
    now_ms: u64,
) -> Decision {
    let nothing_checked = Prechecked::default();
    let (decision, step) =
        terminal_request_with_bank(tx, msg, &nothing_checked, policy, BankGate::CLOSED, now_ms);
    assert!(step.is_none(), "no top-up starts without a bank link");
    decision
}

/// Decides a terminal request. A top-up that passed its checks comes back with a
/// [`BankStep`]: its answer is the bank's, so nothing is recorded for it here.
pub fn terminal_request_with_bank(
    tx: &mut HostTx<'_>,
    msg: &Message,
    prechecked: &Prechecked,
    policy: &Policy,
    gate: BankGate,
    now_ms: u64,
) -> (Decision, Option<BankStep>) {
    let state = tx.state();
    let day = state.business_day;
    let decline = |code, reason, mac_key| Decision {
        reply: Reply::declined(code, day),
        private_data: None,
        mac_key,
        reason: Some(reason),
    };

    let Some(terminal) = msg
        .terminal_id()
        .and_then(TerminalId::parse)
        .and_then(|id| state.terminals.get(&id))
    else {
        return (
            decline(
                ResponseCode::UnknownTerminal,
                "terminal not registered",
                None,
            ),
            None,
        );
    };
    let mac_key = terminal.mac_key();
    let kind = classify(msg);
    if kind != RequestType::NetworkManagement {
        let merchant = msg.merchant_id().and_then(MerchantId::parse);
        if merchant != Some(terminal.merchant) {
            return (
                decline(
                    ResponseCode::UnknownTerminal,
                    "merchant does not match the terminal",
                    mac_key.clone(),
                ),
                None,
            );
        }
        if !terminal.signed_on {
            return (
                decline(
                    ResponseCode::UnknownTerminal,
                    "terminal not signed on",
                    mac_key.clone(),
                ),
                None,
            );
        }
    }
    if let Some(field) = required_fields(kind).iter().find(|f| !msg.has(**f)) {
        let _ = field;
        return (
            decline(
                ResponseCode::FormatError,
                "required field missing",
                mac_key.clone(),
            ),
            None,
        );
    }
    if let Some(reason) = checks::format(msg, policy) {
        return (
            decline(ResponseCode::FormatError, reason, mac_key.clone()),
            None,
        );
    }
    if terminal.mac_required && !prechecked.mac_valid(msg, terminal) {
        return (
            decline(
                ResponseCode::MacFailure,
                "MAC missing or wrong",
                mac_key.clone(),
            ),
            None,
        );
    }

    let key = request_key(msg, terminal);
    let answers_kept = keeps_answer(kind);
    // Only a request whose answer is kept is compared by content (every use below is under
    // `answers_kept`): the others skip the SHA-256, and the connection computed it already.
    let digest = if answers_kept {
        prechecked.content_digest(msg)
    } else {
        0
    };
    if answers_kept {
        if let Some(answer) = state.answers.get(&key) {
            let decision = if answer.digest == digest {
                Decision {
                    reply: answer.reply,
                    private_data: None,
                    mac_key: mac_key.clone(),
                    reason: None,
                }
            } else {
                decline(
                    ResponseCode::DuplicateDifferent,
                    "same F41, F11 and F7 with different content",
                    mac_key.clone(),
                )
            };
            return (decision, None);
        }
        // A top-up still at the bank has no answer yet: its retransmission waits for it.
        if let Some(pending) = state.bank.pending_topups.get(&key) {
            if pending.digest == digest {
                let waiting = decline(ResponseCode::BankUnavailable, "waiting", mac_key.clone());
                return (waiting, Some(BankStep::AwaitPending(key)));
            }
            return (
                decline(
                    ResponseCode::DuplicateDifferent,
                    "same F41, F11 and F7 with different content",
                    mac_key.clone(),
                ),
                None,
            );
        }
    }

    let terminal = Asking {
        terminal: terminal.clone(),
        prechecked,
    };
    let takes_transactions = !matches!(
        kind,
        RequestType::NetworkManagement | RequestType::BalanceInquiry | RequestType::Settlement
    );
    if takes_transactions && batch::refuses(state, msg, &terminal) {
        let mut decision = decline(
            ResponseCode::InvalidTransaction,
            "batch closed",
            mac_key.clone(),
        );
        if answers_kept {
            decision.reply.rrn = Some(state.next_rrn);
            let day = state.business_day;
            tx.emit(HostEvent::Answered(Answer {
                key,
                digest,
                reply: decision.reply,
                day,
            }));
        }
        return (decision, None);
    }
    let mut step = None;
    let mut decision = match kind {
        RequestType::NetworkManagement => network::decide(tx, msg, &terminal, policy),
        RequestType::BalanceInquiry => balance::decide(tx, msg, &terminal, policy),
        RequestType::Purchase => purchase::decide(tx, msg, &terminal, policy, key, now_ms),
        RequestType::Refund => refund::decide(tx, msg, &terminal, key, now_ms),
        RequestType::TopUp => {
            let (decision, started) =
                topup::decide(tx, msg, &terminal, policy, (key, digest), gate, now_ms);
            step = started.map(BankStep::Send);
            decision
        }
        RequestType::Reversal => reversal::decide(tx, msg, &terminal, key, now_ms),
        RequestType::Advice => advice::decide(tx, msg, &terminal, policy, now_ms),
        RequestType::Upload => batch::upload(tx, msg, &terminal, policy, now_ms),
        RequestType::Settlement => batch::settle(tx, msg, &terminal, now_ms),
        RequestType::Unsupported => decline(
            UNKNOWN_PROCESSING_CODE,
            "unsupported message or processing code",
            None,
        ),
    };
    decision.mac_key = mac_key;
    if matches!(
        kind,
        RequestType::NetworkManagement | RequestType::BalanceInquiry | RequestType::Settlement
    ) {
        // Terminals number every message from one counter: without this, these STANs would
        // show as gaps in the batch's report.
        tx.emit(HostEvent::Batch(BatchEvent::Seen {
            terminal: terminal.terminal.id,
            batch: msg.batch(),
            stan: key.stan,
        }));
    }
    if answers_kept && step.is_none() {
        let day = tx.state().business_day;
        tx.emit(HostEvent::Answered(Answer {
            key,
            digest,
            reply: decision.reply,
            day,
        }));
    }
    (decision, step)
}

impl Reply {
    pub fn declined(code: ResponseCode, day: ledger::transfer::BusinessDay) -> Reply {
        Reply {
            code: code_bytes(code),
            settlement_day: day,
            rrn: None,
            approval: None,
            balance_minor: None,
        }
    }
}

pub fn code_bytes(code: ResponseCode) -> [u8; 2] {
    let s = code.as_str().as_bytes();
    [s[0], s[1]]
}

pub fn request_key(msg: &Message, terminal: &Terminal) -> RequestKey {
    request_key_of(msg, terminal.id)
}

/// [`request_key`] of a request naming `terminal` (its F41), before the terminal is looked up.
pub fn request_key_of(msg: &Message, terminal: TerminalId) -> RequestKey {
    let mut transmitted = [b'0'; 10];
    if let Some(f7) = msg.get(Field::TransmissionDateTime) {
        transmitted.copy_from_slice(f7);
    }
    RequestKey {
        terminal,
        stan: msg.stan().unwrap_or(0),
        transmitted,
    }
}

/// The transfer id of a terminal's financial request: its F41, F11 and F7, packed exactly
/// (64 + 20 + 34 bits), so a retransmission or a reversal finds it without an index.
pub fn transfer_id_of(key: &RequestKey) -> TransferId {
    let terminal = u64::from_be_bytes(key.terminal.0) as u128;
    // F7 is ten digits (the codec checks `n` fields): read them directly, without a UTF-8
    // check and `str::parse` for every request; anything else reads as `parse` would.
    let transmitted: u64 = if key.transmitted.iter().all(u8::is_ascii_digit) {
        key.transmitted
            .iter()
            .fold(0, |n, digit| n * 10 + u64::from(digit - b'0'))
    } else {
        std::str::from_utf8(&key.transmitted)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    debug_assert!(key.stan < (1 << 20) && transmitted < (1 << 34));
    TransferId(terminal << 64 | (key.stan as u128) << 34 | transmitted as u128)
}

/// Digest of the request's bytes (MTI to the end, MAC included): 128 bits of SHA-256, stable
/// across builds because it is stored in the log.
pub fn content_digest(msg: &Message) -> u128 {
    let hash = Sha256::digest(msg.as_bytes());
    u128::from_be_bytes(hash[..16].try_into().expect("16 bytes"))
}

/// The references of the transfer an online request makes: where it was made (the terminal,
/// its merchant, F60, F11, the terminal's local time) and what the terminal is told (`rrn`,
/// `approval`).
pub fn online_refs(
    terminal: &Terminal,
    msg: &Message,
    key: &RequestKey,
    rrn: u64,
    approval: [u8; 6],
) -> References {
    References {
        rrn,
        terminal: terminal.id.0,
        merchant: terminal.merchant.0,
        batch: msg.batch().unwrap_or(0),
        stan: key.stan,
        local_time: local_time(msg),
        approval,
        channel: Channel::Online,
    }
}

/// `MMDDhhmmss` at the terminal, from F13 and F12.
pub fn local_time(msg: &Message) -> [u8; 10] {
    let mut local = [b'0'; 10];
    if let (Some(date), Some(time)) = (msg.get(Field::LocalDate), msg.get(Field::LocalTime)) {
        local[..4].copy_from_slice(date);
        local[4..].copy_from_slice(time);
    }
    local
}

/// The approval code of an approved request: derived from its RRN, so it is unique too.
pub fn approval_code(rrn: u64) -> [u8; 6] {
    // `A` and the RRN's last five digits, written without formatting a `String`.
    let mut code = *b"A00000";
    let mut rest = rrn % 100_000;
    for digit in code[1..].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_code_is_a_and_the_rrn_last_five_digits() {
        for rrn in [0, 7, 42, 99_999, 100_000, 123_456_789, u64::MAX] {
            let expected = format!("A{:05}", rrn % 100_000);
            assert_eq!(&approval_code(rrn), expected.as_bytes(), "rrn {rrn}");
        }
    }

    #[test]
    fn transfer_id_packs_f41_f11_and_f7() {
        let terminal = TerminalId::parse("T0000001").expect("terminal id");
        let key = |transmitted: &[u8; 10]| RequestKey {
            terminal,
            stan: 123_456,
            transmitted: *transmitted,
        };
        let id = |transmitted: &[u8; 10]| transfer_id_of(&key(transmitted)).0;
        let high = (u64::from_be_bytes(terminal.0) as u128) << 64 | 123_456u128 << 34;
        assert_eq!(id(b"1123083015"), high | 1_123_083_015);
        assert_eq!(id(b"0000000000"), high);
        assert_eq!(id(b"9999999999"), high | 9_999_999_999);
        // Not digits: read as `str::parse` reads them.
        assert_eq!(id(b"+123456789"), high | 123_456_789);
        assert_eq!(id(b"12345 6789"), high);
    }
}
