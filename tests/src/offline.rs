//! An offline terminal's side of PROTOCOL.md 3.8 and 3.9 against the demo host: advices,
//! 0320 uploads, 0500 closes, blacklist downloads, and the sales as the terminal keeps them.

use std::time::{SystemTime, UNIX_EPOCH};

use codec::{Field, Message, MessageBuilder, Mti};
use loadgen::clock::WireTime;

use crate::demo::{MERCHANT, TERMINAL};
use crate::terminal::code;
use crate::{HostProcess, TestTerminal};

/// The demo host's UTC offset (config default, 480 minutes).
pub const UTC_OFFSET_SECS: i64 = 480 * 60;

pub fn signed_on(host: &HostProcess) -> TestTerminal {
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    t.sign_on();
    t
}

/// Local `MMDDhhmmss` at the host's offset, `shift_secs` from now.
pub fn local_time(shift_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let f7 = WireTime::from_unix((now + shift_secs + UTC_OFFSET_SECS) as u64).f7;
    String::from_utf8(f7.to_vec()).expect("digits")
}

/// An offline sale as the terminal keeps it: its STAN and local time are its identity.
#[derive(Clone, Debug)]
pub struct Sale {
    pub pan: String,
    pub amount_minor: u64,
    pub stan: u32,
    pub local: String,
    pub refund: bool,
}

pub fn with_local(b: &mut MessageBuilder, local: &str) {
    b.set(Field::LocalDate, &local.as_bytes()[..4]).unwrap();
    b.set(Field::LocalTime, &local.as_bytes()[4..]).unwrap();
}

/// Sends an 0220 (or 0221 when `repeat`) for a sale made at `local`; returns the sale and
/// the answer. A repeat reuses the sale's STAN, F7 and local time.
pub fn advice(t: &mut TestTerminal, pan: &str, amount_minor: u64, local: &str) -> (Sale, Message) {
    let mut b = t.financial(Mti::FINANCIAL_ADVICE, 0, pan, Some(amount_minor), None);
    with_local(&mut b, local);
    let stan = stan_of(&b);
    let sale = Sale {
        pan: pan.to_owned(),
        amount_minor,
        stan,
        local: local.to_owned(),
        refund: false,
    };
    (sale, t.exchange(b))
}

pub fn stan_of(b: &MessageBuilder) -> u32 {
    let f11 = b.get(Field::Stan).expect("F11 set");
    std::str::from_utf8(f11).unwrap().parse().unwrap()
}

pub fn repeat_advice(t: &mut TestTerminal, sale: &Sale) -> Message {
    let mut b = t.financial(
        Mti::FINANCIAL_ADVICE_REPEAT,
        0,
        &sale.pan,
        Some(sale.amount_minor),
        None,
    );
    with_local(&mut b, &sale.local);
    b.set_numeric(Field::Stan, sale.stan as u64).unwrap();
    t.exchange(b)
}

pub fn upload(t: &mut TestTerminal, sale: &Sale, rrn: Option<&str>) -> Option<Message> {
    let processing = if sale.refund { 200_000 } else { 0 };
    let mut b = t.financial(
        Mti::BATCH_UPLOAD,
        processing,
        &sale.pan,
        Some(sale.amount_minor),
        None,
    );
    t.give_back_stan();
    b.unset(Field::TransmissionDateTime);
    b.set_numeric(Field::Stan, sale.stan as u64).unwrap();
    with_local(&mut b, &sale.local);
    if let Some(rrn) = rrn {
        b.set(Field::Rrn, rrn.as_bytes()).unwrap();
    }
    t.try_exchange(b)
}

/// 0500 with the terminal's counts and amounts: (purchases, purchase amount, refunds,
/// refund amount).
pub fn settle(t: &mut TestTerminal, processing: u32, totals: (u64, u64, u64, u64)) -> Message {
    let mut b = MessageBuilder::new(Mti::RECONCILIATION_REQUEST);
    let f7 = t.next_f7();
    let stan = t.next_stan();
    b.set_numeric(Field::ProcessingCode, processing as u64)
        .unwrap();
    b.set(Field::TransmissionDateTime, f7.as_bytes()).unwrap();
    b.set_numeric(Field::Stan, stan as u64).unwrap();
    b.set(Field::TerminalId, t.id.as_bytes()).unwrap();
    b.set(Field::MerchantId, t.merchant.as_bytes()).unwrap();
    b.set_digits(Field::Batch, t.batch as u64, 6).unwrap();
    b.set_numeric(Field::DebitsCount, totals.0).unwrap();
    b.set_numeric(Field::DebitsAmount, totals.1).unwrap();
    b.set_numeric(Field::CreditsCount, totals.2).unwrap();
    b.set_numeric(Field::CreditsAmount, totals.3).unwrap();
    t.exchange(b)
}

pub fn assert_balanced(host: &HostProcess) {
    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true, "{check}");
}

/// Downloads the blacklist until the last page.
pub fn download_blacklist(t: &mut TestTerminal) {
    let mut version = "000000000000".to_owned();
    loop {
        let page = t.network(901, Some(&version));
        assert_eq!(code(&page), "00");
        let data = page.private_data().unwrap().to_owned();
        version = data[..12].to_owned();
        if &data[12..13] == "0" {
            return;
        }
    }
}

/// An online purchase of the test terminal, as the terminal keeps it for an upload.
pub fn online_purchase(t: &mut TestTerminal, pan: &str, amount_minor: u64) -> (Sale, String) {
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, pan, Some(amount_minor), None);
    let stan = stan_of(&b);
    let answer = t.exchange(b);
    assert_eq!(code(&answer), "00");
    let sale = Sale {
        pan: pan.to_owned(),
        amount_minor,
        stan,
        local: "1122120000".to_owned(),
        refund: false,
    };
    (sale, answer.rrn().unwrap().to_owned())
}
