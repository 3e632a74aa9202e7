//! Offline terminals end to end (PROTOCOL.md 3.8 and 3.9): every row of the advice rules
//! table, every path of batch settlement and upload, and an upload cut by `kill -9`.

use bursar_e2e::demo::*;
use bursar_e2e::offline::*;
use bursar_e2e::terminal::code;
use bursar_e2e::{HostOptions, HostProcess};
use codec::{Field, Mti};
use serde_json::{json, Value};

fn card(host: &HostProcess, pan: &str) -> Value {
    let (status, card) = host.api("GET", &format!("/v1/cards/{pan}"), None);
    assert_eq!(status, 200, "GET card: {card}");
    card
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
