//! Offline terminals end to end (PROTOCOL.md 3.8 and 3.9): every row of the advice rules
//! table, every path of batch settlement and upload, and an upload cut by `kill -9`.

use std::time::{SystemTime, UNIX_EPOCH};

use bursar_e2e::demo::*;
use bursar_e2e::terminal::code;
use bursar_e2e::{HostOptions, HostProcess, TestTerminal};
use codec::{Field, Message, MessageBuilder, Mti};
use serde_json::{json, Value};

/// The demo host's UTC offset (config default, 480 minutes).
const UTC_OFFSET_SECS: i64 = 480 * 60;

fn signed_on(host: &HostProcess) -> TestTerminal {
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    t.sign_on();
    t
}

/// Local `MMDDhhmmss` at the host's offset, `shift_secs` from now.
fn local_time(shift_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secs = now + shift_secs + UTC_OFFSET_SECS;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days, month and day only.
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{month:02}{day:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An offline sale as the terminal keeps it: its STAN and local time are its identity.
#[derive(Clone, Debug)]
struct Sale {
    pan: String,
    amount_minor: u64,
    stan: u32,
    local: String,
    refund: bool,
}

fn with_local(b: &mut MessageBuilder, local: &str) {
    b.set(Field::LocalDate, &local.as_bytes()[..4]).unwrap();
    b.set(Field::LocalTime, &local.as_bytes()[4..]).unwrap();
}

/// Sends an 0220 (or 0221 when `repeat`) for a sale made at `local`; returns the sale and
/// the answer. A repeat reuses the sale's STAN, F7 and local time.
fn advice(t: &mut TestTerminal, pan: &str, amount_minor: u64, local: &str) -> (Sale, Message) {
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

fn stan_of(b: &MessageBuilder) -> u32 {
    let f11 = b.get(Field::Stan).expect("F11 set");
    std::str::from_utf8(f11).unwrap().parse().unwrap()
}

fn repeat_advice(t: &mut TestTerminal, sale: &Sale) -> Message {
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

fn upload(t: &mut TestTerminal, sale: &Sale, rrn: Option<&str>) -> Option<Message> {
    let processing = if sale.refund { 200_000 } else { 0 };
    let mut b = t.financial(
        Mti::BATCH_UPLOAD,
        processing,
        &sale.pan,
        Some(sale.amount_minor),
        None,
    );
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
fn settle(t: &mut TestTerminal, processing: u32, totals: (u64, u64, u64, u64)) -> Message {
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

fn card(host: &HostProcess, pan: &str) -> Value {
    let (status, card) = host.api("GET", &format!("/v1/cards/{pan}"), None);
    assert_eq!(status, 200, "GET card: {card}");
    card
}

fn assert_balanced(host: &HostProcess) {
    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true, "{check}");
}

/// Downloads the blacklist until the last page.
fn download_blacklist(t: &mut TestTerminal) {
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

#[test]
fn normal_advice_is_posted_once_however_often_it_is_sent() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let before = host.balance_minor(STUDENT);
    let (sale, answer) = advice(&mut t, STUDENT, 1200, &local_time(-600));
    assert_eq!(code(&answer), "00");
    assert_eq!(answer.mti(), Mti::FINANCIAL_ADVICE_RESPONSE);
    let rrn = answer.rrn().expect("an RRN for the posting").to_owned();
    assert_eq!(host.balance_minor(STUDENT), before - 1200);

    // The 0221 repeat, and the same 0220 again: `00`, the same RRN, nothing posted twice.
    let repeat = repeat_advice(&mut t, &sale);
    assert_eq!(code(&repeat), "00");
    assert_eq!(repeat.rrn(), Some(rrn.as_str()));
    let mut again = t.financial(Mti::FINANCIAL_ADVICE, 0, STUDENT, Some(1200), None);
    with_local(&mut again, &sale.local);
    again.set_numeric(Field::Stan, sale.stan as u64).unwrap();
    assert_eq!(code(&t.exchange(again)), "00");
    assert_eq!(host.balance_minor(STUDENT), before - 1200);

    // The statement shows it as offline.
    let (_, statement) = host.api("GET", &format!("/v1/cards/{STUDENT}/transactions"), None);
    assert!(
        statement.to_string().contains("offline"),
        "statement: {statement}"
    );
    assert_balanced(&host);
}

#[test]
fn overdraft_freezes_the_card_until_a_deposit_brings_it_back_to_zero() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    // STUDENT2 holds 20.00; the terminal sold 30.00 offline.
    let (_, answer) = advice(&mut t, STUDENT2, 3000, &local_time(-600));
    assert_eq!(code(&answer), "00");
    assert_eq!(host.balance_minor(STUDENT2), -1000);
    assert_eq!(card(&host, STUDENT2)["status"], "frozen");
    assert_eq!(code(&t.purchase(STUDENT2, 100, None)), "62");

    let deposit = |amount: &str, reference: &str| {
        let (status, body) = host.api(
            "POST",
            &format!("/v1/cards/{STUDENT2}/deposits"),
            Some(json!({"amount": amount, "reference": reference})),
        );
        assert_eq!(status, 201, "{body}");
    };
    deposit("5.00", "thaw-1");
    assert_eq!(card(&host, STUDENT2)["status"], "frozen", "still -5.00");
    assert_eq!(code(&t.purchase(STUDENT2, 100, None)), "62");
    deposit("6.00", "thaw-2");
    assert_eq!(card(&host, STUDENT2)["status"], "active");
    assert_eq!(code(&t.purchase(STUDENT2, 100, None)), "00");
    assert_balanced(&host);
}

#[test]
fn blocked_card_is_borne_by_the_merchant_only_if_the_terminal_had_the_block() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    download_blacklist(&mut t);
    let (status, _) = host.api("POST", &format!("/v1/cards/{STAFF}/lost"), None);
    assert_eq!(status, 200);
    let before = host.balance_minor(STAFF);

    // Sold before the block: an ordinary sale, charged to the card.
    let (_, answer) = advice(&mut t, STAFF, 100, &local_time(-3600));
    assert_eq!(code(&answer), "00");
    assert_eq!(host.balance_minor(STAFF), before - 100);

    // Sold after the block, but the terminal's blacklist is older: charged, flagged.
    let (_, answer) = advice(&mut t, STAFF, 200, &local_time(120));
    assert_eq!(code(&answer), "00");
    assert_eq!(host.balance_minor(STAFF), before - 300);

    // The terminal downloads the block; a later sale on the card is the merchant's loss.
    download_blacklist(&mut t);
    let (_, answer) = advice(&mut t, STAFF, 400, &local_time(180));
    assert_eq!(code(&answer), "00");
    assert_eq!(host.balance_minor(STAFF), before - 300, "not charged");
    assert_balanced(&host);
}

#[test]
fn advice_above_the_floor_limit_is_posted_and_an_unknown_card_is_the_merchants() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let before = host.balance_minor(STAFF);
    // The demo terminal's floor limit is 50.00.
    let (_, answer) = advice(&mut t, STAFF, 6000, &local_time(-60));
    assert_eq!(code(&answer), "00");
    assert_eq!(host.balance_minor(STAFF), before - 6000);
    let unknown = bursar_e2e::make_pan("629999", 7);
    let (_, answer) = advice(&mut t, &unknown, 500, &local_time(-60));
    assert_eq!(code(&answer), "00");
    // A message that is not an advice at all is still refused.
    let mut b = t.financial(Mti::FINANCIAL_ADVICE, 0, STAFF, Some(100), None);
    b.unset(Field::Batch);
    assert_eq!(code(&t.exchange(b)), "30");
    let b = t.financial(Mti::FINANCIAL_ADVICE, 0, STAFF, Some(0), None);
    assert_eq!(code(&t.exchange(b)), "13");
    assert_balanced(&host);
}

/// An online purchase of the test terminal, as the terminal keeps it for an upload.
fn online_purchase(t: &mut TestTerminal, pan: &str, amount_minor: u64) -> (Sale, String) {
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

#[test]
fn batch_in_balance_closes_and_a_closed_batch_takes_nothing_new() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let (_, first_rrn) = online_purchase(&mut t, STAFF, 100);
    online_purchase(&mut t, STAFF, 200);
    // A reversed purchase is out of the totals.
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(300), None);
    let stan = stan_of(&b);
    let f7 = String::from_utf8(b.get(Field::TransmissionDateTime).unwrap().to_vec()).unwrap();
    assert_eq!(code(&t.exchange(b)), "00");
    assert_eq!(code(&t.reversal(STAFF, 300, stan, &f7)), "00");
    assert_eq!(code(&t.refund(STAFF, 50, &first_rrn)), "00");
    let (_, answer) = advice(&mut t, STAFF, 400, &local_time(-60));
    assert_eq!(code(&answer), "00");
    // A declined purchase is out of the totals too.
    assert_ne!(code(&t.purchase(STAFF, 10_000_000, None)), "00");

    assert_eq!(code(&settle(&mut t, 920_000, (3, 699, 1, 50))), "95");
    let closed = settle(&mut t, 920_000, (3, 700, 1, 50));
    assert_eq!(code(&closed), "00");
    assert_eq!(closed.mti(), Mti::RECONCILIATION_RESPONSE);
    assert_eq!(code(&t.purchase(STAFF, 100, None)), "12");
    let (_, answer) = advice(&mut t, STAFF, 100, &local_time(-30));
    assert_eq!(code(&answer), "12");
    assert_eq!(
        code(&settle(&mut t, 920_000, (3, 700, 1, 50))),
        "00",
        "closed again, same totals"
    );
    assert_eq!(code(&settle(&mut t, 920_000, (4, 800, 1, 50))), "95");
    // The next batch is open.
    t.batch += 1;
    assert_eq!(code(&t.purchase(STAFF, 100, None)), "00");
    assert_balanced(&host);
}

#[test]
fn out_of_balance_batch_is_uploaded_matched_posted_once_and_closed() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let before = host.balance_minor(STAFF);
    let (known, known_rrn) = online_purchase(&mut t, STAFF, 100);
    // The host has this one; the terminal lost it.
    online_purchase(&mut t, STAFF, 200);
    // The terminal sold this one offline and its advice never arrived.
    let unseen = Sale {
        pan: STAFF.to_owned(),
        amount_minor: 700,
        stan: t.next_stan(),
        local: local_time(-120),
        refund: false,
    };
    assert_eq!(code(&settle(&mut t, 920_000, (2, 800, 0, 0))), "95");
    for sale in [&known, &unseen] {
        let answer = upload(
            &mut t,
            sale,
            (sale.stan == known.stan).then_some(known_rrn.as_str()),
        );
        let answer = answer.expect("answered");
        assert_eq!(code(&answer), "00");
        assert_eq!(answer.mti(), Mti::BATCH_UPLOAD_RESPONSE);
    }
    // The same upload again: nothing posted twice.
    assert_eq!(code(&upload(&mut t, &unseen, None).unwrap()), "00");
    assert_eq!(host.balance_minor(STAFF), before - 1000);
    assert_eq!(code(&settle(&mut t, 960_000, (2, 800, 0, 0))), "00");
    assert_eq!(code(&t.purchase(STAFF, 100, None)), "12");
    assert_eq!(host.balance_minor(STAFF), before - 1000);
    assert_balanced(&host);
}

#[test]
fn upload_cut_by_kill_9_resumes_after_restart_and_posts_nothing_twice() {
    let mut host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let before = host.balance_minor(STAFF);
    let sales: Vec<Sale> = (0..10)
        .map(|i| Sale {
            pan: STAFF.to_owned(),
            amount_minor: 100 + i,
            stan: t.next_stan(),
            local: local_time(-600 + i as i64),
            refund: false,
        })
        .collect();
    let total: u64 = sales.iter().map(|s| s.amount_minor).sum();
    assert_eq!(code(&settle(&mut t, 920_000, (10, total, 0, 0))), "95");
    for sale in &sales[..6] {
        assert_eq!(code(&upload(&mut t, sale, None).unwrap()), "00");
    }
    host.kill9();
    host.restart();
    let mut t = signed_on(&host);
    // The terminal starts its upload over.
    for sale in &sales {
        assert_eq!(code(&upload(&mut t, sale, None).unwrap()), "00");
    }
    assert_eq!(code(&settle(&mut t, 960_000, (10, total, 0, 0))), "00");
    assert_eq!(host.balance_minor(STAFF), before - total as i64);
    assert_eq!(code(&settle(&mut t, 920_000, (10, total, 0, 0))), "00");
    assert_balanced(&host);
}
