//! The terminal link end to end: the real `bursar` binary over a real socket, every message
//! type and every response code of PROTOCOL.md 3.1-3.7.

use bursar_e2e::demo::*;
use bursar_e2e::terminal::code;
use bursar_e2e::{make_pan, HostOptions, HostProcess, TestTerminal};
use codec::{Field, MessageBuilder, Mti};
use serde_json::json;

fn signed_on(host: &HostProcess, terminal: &str, merchant: &str) -> TestTerminal {
    let mut t = TestTerminal::connect(host.terminal_addr, terminal, merchant);
    t.sign_on();
    t
}

/// Issues a card with its own limits and a deposit; returns its PAN.
fn issue_card(
    host: &HostProcess,
    serial: u64,
    kind: &str,
    expiry: &str,
    limits: serde_json::Value,
    deposit: &str,
) -> String {
    let pan = make_pan("629100", serial);
    let (status, body) = host.api(
        "POST",
        "/v1/cards",
        Some(json!({"pan": pan, "holder_name": "Test Holder", "holder_id": format!("H{serial}"), "kind": kind,
                    "expiry": expiry, "pin": "1357", "limits": limits})),
    );
    assert_eq!(status, 201, "issue card: {body}");
    if deposit != "0.00" {
        let (status, body) = host.api(
            "POST",
            &format!("/v1/cards/{pan}/deposits"),
            Some(json!({"amount": deposit, "reference": format!("open-{pan}")})),
        );
        assert_eq!(status, 201, "deposit: {body}");
    }
    pan
}

#[test]
fn sign_on_echo_sign_off_and_business_date() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    // Financial requests before sign-on: 03.
    assert_eq!(code(&t.purchase(STUDENT, 100, None)), "03");
    let response = t.sign_on();
    assert_eq!(response.mti(), Mti::NETWORK_RESPONSE);
    assert_eq!(
        response.get_str(Field::SettlementDate).map(str::len),
        Some(4)
    );
    assert_eq!(code(&t.network(301, None)), "00");
    assert_eq!(code(&t.network(999, None)), "12");
    assert_eq!(code(&t.network(2, None)), "00");
    assert_eq!(code(&t.purchase(STUDENT, 100, None)), "03", "signed off");
}

#[test]
fn purchase_approved_debits_the_card_and_answers_the_balance() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let before = host.balance_minor(STUDENT);
    let response = t.purchase(STUDENT, 1234, None);
    assert_eq!(code(&response), "00");
    assert_eq!(response.mti(), Mti::FINANCIAL_RESPONSE);
    for field in [
        Field::Pan,
        Field::ProcessingCode,
        Field::Amount,
        Field::Stan,
        Field::TerminalId,
        Field::MerchantId,
        Field::Batch,
    ] {
        assert!(response.has(field), "{field:?} echoed");
    }
    assert_eq!(response.rrn().map(str::len), Some(12));
    assert_eq!(response.approval_code().map(str::len), Some(6));
    let f54 = response.get_str(Field::AdditionalAmounts).unwrap();
    assert_eq!(f54, format!("0002156C{:012}", before - 1234));
    assert_eq!(host.balance_minor(STUDENT), before - 1234);
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(check["balanced"], true);
}

#[test]
fn every_decline_code_of_the_purchase_path() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);

    // 03: unknown terminal; terminal under another merchant.
    let mut stranger = TestTerminal::connect(host.terminal_addr, "T9999999", MERCHANT);
    assert_eq!(code(&stranger.network(1, None)), "03");
    let mut wrong_merchant = TestTerminal::connect(host.terminal_addr, TERMINAL, STAFF_MERCHANT);
    assert_eq!(code(&wrong_merchant.purchase(STUDENT, 100, None)), "03");

    // 30: a financial message without F60.
    let mut b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(100), None);
    b.unset(Field::Batch);
    assert_eq!(code(&t.exchange(b)), "30");
    // 12: unknown processing code.
    let b = t.financial(Mti::FINANCIAL_REQUEST, 990_000, STUDENT, Some(100), None);
    assert_eq!(code(&t.exchange(b)), "12");
    // 14: a Luhn-valid card that was never issued.
    assert_eq!(code(&t.purchase(&make_pan("629999", 1), 100, None)), "14");
    // 13: zero amount.
    assert_eq!(code(&t.purchase(STUDENT, 0, None)), "13");
    // 57: a student card at the staff canteen.
    let mut staff_canteen = signed_on(&host, STAFF_TERMINAL, STAFF_MERCHANT);
    assert_eq!(code(&staff_canteen.purchase(STUDENT, 100, None)), "57");
    assert_eq!(code(&staff_canteen.purchase(STAFF, 100, None)), "00");
    // 54: expired card.
    let expired = issue_card(&host, 1, "student", "2001", json!({}), "10.00");
    assert_eq!(code(&t.purchase(&expired, 100, None)), "54");
    // 61: per-transaction limit, then the daily amount; 65: daily count.
    let limited = issue_card(
        &host,
        2,
        "student",
        "3012",
        json!({"per_txn": "5.00", "daily_amount": "8.00", "daily_count": 3, "pin_threshold": "100.00"}),
        "50.00",
    );
    assert_eq!(code(&t.purchase(&limited, 501, None)), "61");
    assert_eq!(code(&t.purchase(&limited, 500, None)), "00");
    assert_eq!(
        code(&t.purchase(&limited, 400, None)),
        "61",
        "5.00 + 4.00 > 8.00 a day"
    );
    assert_eq!(code(&t.purchase(&limited, 100, None)), "00");
    assert_eq!(code(&t.purchase(&limited, 100, None)), "00");
    assert_eq!(
        code(&t.purchase(&limited, 100, None)),
        "65",
        "a fourth purchase today"
    );
    // 51: more than the balance.
    assert_eq!(code(&t.purchase(STUDENT2, 2001, None)), "51");
    assert_eq!(
        host.balance_minor(STUDENT2),
        2000,
        "a decline changes no balance"
    );
    // 41: reported lost, declined at once.
    let (status, _) = host.api("POST", &format!("/v1/cards/{STUDENT2}/lost"), None);
    assert_eq!(status, 200);
    assert_eq!(code(&t.purchase(STUDENT2, 100, None)), "41");
    let (status, _) = host.api("POST", &format!("/v1/cards/{STUDENT2}/found"), None);
    assert_eq!(status, 200);
    assert_eq!(code(&t.purchase(STUDENT2, 100, None)), "00");
}

#[test]
fn pin_missing_wrong_and_tries_exceeded() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    // The student default PIN threshold is 100.00.
    assert_eq!(
        code(&t.purchase(STUDENT, 10_000, None)),
        "55",
        "PIN required, missing"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 10_000, Some("9999"))),
        "55",
        "wrong PIN, try 1"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 1_000, Some(STUDENT_PIN))),
        "00",
        "right PIN resets the tries"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 10_000, Some("9999"))),
        "55",
        "try 1"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 10_000, Some("9999"))),
        "55",
        "try 2"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 10_000, Some("9999"))),
        "75",
        "try 3 reaches the maximum"
    );
    assert_eq!(
        code(&t.purchase(STUDENT, 1_000, Some(STUDENT_PIN))),
        "75",
        "even the right PIN, until a new PIN is set"
    );
}

#[test]
fn mac_terminal_macs_every_message_and_rejects_bad_macs() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = TestTerminal::connect(host.terminal_addr, MAC_TERMINAL, MERCHANT).with_mac(TAK);
    t.sign_on(); // recv() verifies the response's MAC
    assert_eq!(code(&t.purchase(STUDENT, 100, None)), "00");
    // A request with a wrong MAC: 63, and the answer is still MACed.
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(100), None);
    let mut bytes = t.finish(b).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    t.send_frame(&bytes);
    assert_eq!(code(&t.recv()), "63");
    // No MAC at all: 63.
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(100), None);
    let bytes = b.build().unwrap();
    t.send_frame(&bytes);
    assert_eq!(code(&t.recv()), "63");
}

#[test]
fn balance_inquiry_refund_and_its_declines() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let balance = t.balance(STUDENT, None);
    assert_eq!(code(&balance), "00");
    assert_eq!(balance.mti(), Mti::AUTHORIZATION_RESPONSE);
    assert_eq!(
        balance.get_str(Field::AdditionalAmounts),
        Some("0002156C000000010000")
    );

    let purchase = t.purchase(STUDENT, 1_000, None);
    assert_eq!(code(&purchase), "00");
    let rrn = purchase.rrn().unwrap().to_owned();
    assert_eq!(
        code(&t.refund(STUDENT, 1_001, &rrn)),
        "13",
        "more than the purchase"
    );
    assert_eq!(code(&t.refund(STUDENT, 400, &rrn)), "00");
    assert_eq!(
        code(&t.refund(STUDENT, 601, &rrn)),
        "13",
        "more than what is left"
    );
    assert_eq!(code(&t.refund(STUDENT, 600, &rrn)), "00");
    assert_eq!(code(&t.refund(STUDENT, 1, &rrn)), "13", "nothing left");
    assert_eq!(
        code(&t.refund(STUDENT, 100, "999999999999")),
        "25",
        "no such purchase"
    );
    // The same RRN at another merchant is not found either.
    let mut other = signed_on(&host, STAFF_TERMINAL, STAFF_MERCHANT);
    assert_eq!(code(&other.refund(STAFF, 100, &rrn)), "25");
    assert_eq!(host.balance_minor(STUDENT), 10_000);
}

#[test]
fn reversal_undoes_once_and_unknown_originals_change_nothing() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(2_500), None);
    let stan = b
        .get(Field::Stan)
        .map(|s| std::str::from_utf8(s).unwrap().parse::<u32>().unwrap())
        .unwrap();
    let f7 = std::str::from_utf8(b.get(Field::TransmissionDateTime).unwrap())
        .unwrap()
        .to_owned();
    assert_eq!(code(&t.exchange(b)), "00");
    assert_eq!(host.balance_minor(STUDENT), 7_500);

    let reversal = t.reversal(STUDENT, 2_500, stan, &f7);
    assert_eq!(reversal.mti(), Mti::REVERSAL_RESPONSE);
    assert_eq!(code(&reversal), "00");
    assert_eq!(host.balance_minor(STUDENT), 10_000);
    assert_eq!(
        code(&t.reversal(STUDENT, 2_500, stan, &f7)),
        "00",
        "again: idempotent"
    );
    assert_eq!(host.balance_minor(STUDENT), 10_000);
    assert_eq!(
        code(&t.reversal(STUDENT, 2_500, 424_242, "1122000000")),
        "00",
        "unknown original"
    );
    assert_eq!(host.balance_minor(STUDENT), 10_000);
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(check["balanced"], true);
}

#[test]
fn retransmission_gets_the_same_answer_and_posts_once() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(700), None);
    let bytes = t.finish(b.clone());
    t.send_frame(&bytes);
    let first = t.recv();
    t.send_frame(&bytes);
    let second = t.recv();
    assert_eq!(code(&first), "00");
    assert_eq!(first.as_bytes(), second.as_bytes(), "byte-identical answer");
    assert_eq!(host.balance_minor(STUDENT), 10_000 - 700, "posted once");
    // Same F41, F11 and F7 with another amount: 94.
    let mut changed = b;
    changed.set_numeric(Field::Amount, 800).unwrap();
    assert_eq!(code(&t.exchange(changed)), "94");
    assert_eq!(host.balance_minor(STUDENT), 10_000 - 700);
}

#[test]
fn pipelined_requests_on_one_connection_are_all_answered() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let mut stans = std::collections::HashSet::new();
    for _ in 0..50 {
        let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(100), None);
        let bytes = t.finish(b);
        stans.insert(
            codec::Message::parse(bytes.clone())
                .unwrap()
                .stan()
                .unwrap(),
        );
        t.send_frame(&bytes);
    }
    for _ in 0..50 {
        let response = t.recv();
        assert_eq!(code(&response), "00");
        assert!(
            stans.remove(&response.stan().unwrap()),
            "each request answered once"
        );
    }
    assert!(stans.is_empty());
    assert_eq!(host.balance_minor(STAFF), 50_000 - 50 * 100);
}

#[test]
fn bad_frames_and_bad_messages() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    // Keep-alives are ignored, never answered.
    t.send_frame(&[]);
    t.send_frame(&[]);
    // A message with a letter in F4 (n 12): answered 30 with F11 and F41.
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STUDENT, Some(100), None);
    let stan = b.get(Field::Stan).unwrap().to_vec();
    let mut bytes = b.build().unwrap().to_vec();
    let amount = std::str::from_utf8(b.get(Field::Amount).unwrap())
        .unwrap()
        .to_owned();
    let at = bytes
        .windows(12)
        .position(|w| w == amount.as_bytes())
        .unwrap();
    bytes[at + 3] = b'X';
    t.send_frame(&bytes);
    let response = t.recv();
    assert_eq!(code(&response), "30");
    assert_eq!(response.mti(), Mti::FINANCIAL_RESPONSE);
    assert_eq!(response.get(Field::Stan), Some(&stan[..]));
    assert_eq!(response.terminal_id(), Some(TERMINAL));
    // Garbage without a readable MTI: dropped, and the connection stays up.
    t.send_frame(b"\x01\x02garbage");
    assert_eq!(code(&t.network(301, None)), "00", "connection still up");

    // An over-size length closes only that connection.
    let mut other = signed_on(&host, TERMINAL, MERCHANT);
    use std::io::{Read, Write};
    other.stream.write_all(&[0xFF, 0xFF]).unwrap();
    let mut buf = [0u8; 1];
    let closed = matches!(other.stream.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "over-size frame closes the connection");
    assert_eq!(
        code(&t.network(301, None)),
        "00",
        "other connections unaffected"
    );
    assert!(host
        .metrics()
        .contains("bursar_frames_rejected_total{reason=\"oversize\"} 1"));
}

#[test]
fn blacklist_download_pages_through_versions() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let none = t.network(901, Some("000000000000"));
    assert_eq!(code(&none), "00");
    assert_eq!(none.get_str(Field::PrivateData), Some("0000000000000"));
    // 60 blocks: more than one page (50 entries a page).
    let mut pans = Vec::new();
    for serial in 0..60 {
        let pan = issue_card(&host, 100 + serial, "student", "3012", json!({}), "0.00");
        let (status, _) = host.api("POST", &format!("/v1/cards/{pan}/lost"), None);
        assert_eq!(status, 200);
        pans.push(pan);
    }
    let (status, _) = host.api("POST", &format!("/v1/cards/{}/found", pans[0]), None);
    assert_eq!(status, 200);
    let mut version = "000000000000".to_owned();
    let mut entries = Vec::new();
    loop {
        let page = t.network(901, Some(&version));
        assert_eq!(code(&page), "00");
        let data = page.get_str(Field::PrivateData).unwrap().to_owned();
        version = data[..12].to_owned();
        entries.extend(
            data[13..]
                .split(';')
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
        );
        if &data[12..13] == "0" {
            break;
        }
    }
    assert_eq!(version, "000000000061");
    assert_eq!(entries.len(), 61);
    assert_eq!(entries[0], format!("+{}", pans[0]));
    assert_eq!(entries[60], format!("-{}", pans[0]));
}

#[test]
fn a_financial_request_without_its_processing_code_is_a_format_error() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host, TERMINAL, MERCHANT);
    let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
    b.set(Field::Stan, b"000001").unwrap();
    b.set(Field::TerminalId, b"T0000001").unwrap();
    b.set(Field::MerchantId, b"M00000000000001").unwrap();
    // No processing code (nor the other required fields): 30, with F11 and F41 echoed.
    let response = t.exchange(b);
    assert_eq!(code(&response), "30");
    assert_eq!(response.stan(), Some(1));
}
