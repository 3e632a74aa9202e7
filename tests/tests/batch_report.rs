//! The batch reconciliation report end to end (PROTOCOL.md 3.8, 3.9, 8): `GET
//! /v1/batches/{terminal}/{batch}` after each way a batch can go, and the `REC_` file the
//! business day publishes beside its clearing files.

use std::path::Path;

use bursar_e2e::demo::*;
use bursar_e2e::offline::*;
use bursar_e2e::terminal::code;
use bursar_e2e::{make_pan, HostOptions, HostProcess, TestTerminal};
use codec::{Field, Mti};
use serde_json::{json, Value};

fn report(host: &HostProcess, t: &TestTerminal) -> Value {
    let path = format!("/v1/batches/{}/{:06}", t.id, t.batch);
    let (status, body) = host.api("GET", &path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn totals(purchases: u64, purchase_amount: &str, refunds: u64, refund_amount: &str) -> Value {
    json!({
        "purchase_count": purchases,
        "purchase_amount": purchase_amount,
        "refund_count": refunds,
        "refund_amount": refund_amount,
    })
}

/// The entry of a report list with this STAN.
fn by_stan(list: &Value, stan: u32) -> &Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|entry| entry["stan"] == stan)
        .unwrap_or_else(|| panic!("STAN {stan} in {list}"))
}

fn stans(list: &Value) -> Vec<u32> {
    let mut stans: Vec<u32> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| entry["stan"].as_u64().unwrap() as u32)
        .collect();
    stans.sort();
    stans
}

/// An approved online purchase and what a reversal of it needs: (STAN, F7).
fn purchase_to_reverse(t: &mut TestTerminal, pan: &str, amount_minor: u64) -> (u32, String) {
    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, pan, Some(amount_minor), None);
    let stan = stan_of(&b);
    let f7 = String::from_utf8(b.get(Field::TransmissionDateTime).unwrap().to_vec()).unwrap();
    assert_eq!(code(&t.exchange(b)), "00");
    (stan, f7)
}

/// A sale (or refund) only the terminal knows of: its advice never reached the host.
fn unseen(t: &mut TestTerminal, pan: &str, amount_minor: u64, refund: bool) -> Sale {
    Sale {
        pan: pan.to_owned(),
        amount_minor,
        stan: t.next_stan(),
        local: local_time(-120),
        refund,
    }
}

const LISTS: [&str; 6] = [
    "matched",
    "posted_at_upload",
    "refunds_not_posted",
    "missing_at_terminal",
    "offline_exceptions",
    "stan_gaps",
];

#[test]
fn in_balance_batch_reports_both_totals_and_nothing_to_chase() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let (_, first_rrn) = online_purchase(&mut t, STAFF, 100);
    online_purchase(&mut t, STAFF, 200);
    // A reversed purchase is out of the totals.
    let (stan, f7) = purchase_to_reverse(&mut t, STAFF, 300);
    assert_eq!(code(&t.reversal(STAFF, 300, stan, &f7)), "00");
    assert_eq!(code(&t.refund(STAFF, 50, &first_rrn)), "00");
    let (_, answer) = advice(&mut t, STAFF, 400, &local_time(-60));
    assert_eq!(code(&answer), "00");

    let open = report(&host, &t);
    assert_eq!(open["status"], "open");
    assert_eq!(open["terminal"], TERMINAL);
    assert_eq!(open["batch"], format!("{:06}", t.batch));
    assert_eq!(open["host_totals"], totals(3, "7.00", 1, "0.50"));
    assert_eq!(open["terminal_totals"], Value::Null);
    assert_eq!(open["closing"], Value::Null);

    assert_eq!(code(&settle(&mut t, 920_000, (3, 700, 1, 50))), "00");
    let closed = report(&host, &t);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["host_totals"], totals(3, "7.00", 1, "0.50"));
    assert_eq!(closed["terminal_totals"], closed["host_totals"]);
    assert_eq!(closed["closing"]["closed_by"], "totals");
    assert_eq!(closed["closing"]["in_balance"], true);
    assert_eq!(
        closed["closing"]["host_totals_at_close"],
        closed["host_totals"]
    );
    for list in LISTS {
        assert_eq!(closed[list], json!([]), "{list}: {closed}");
        assert_eq!(closed["summary"][list], 0, "{list}: {closed}");
    }
}

#[test]
fn out_of_balance_then_upload_reports_matched_posted_and_missing() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    let before = host.balance_minor(STAFF);
    let (known, known_rrn) = online_purchase(&mut t, STAFF, 100);
    // The host has this one; the terminal lost it.
    let (host_only, host_only_rrn) = online_purchase(&mut t, STAFF, 200);
    // The terminal sold this offline and its advice never arrived.
    let sale = unseen(&mut t, STAFF, 700, false);
    // A refund the host never approved.
    let refund = unseen(&mut t, STAFF, 30, true);
    assert_eq!(code(&settle(&mut t, 920_000, (2, 800, 1, 30))), "95");
    assert_eq!(report(&host, &t)["status"], "open", "a 95 closes nothing");

    for upload_of in [&known, &sale, &refund] {
        let rrn = (upload_of.stan == known.stan).then_some(known_rrn.as_str());
        assert_eq!(code(&upload(&mut t, upload_of, rrn).unwrap()), "00");
    }
    assert_eq!(code(&settle(&mut t, 960_000, (2, 800, 1, 30))), "00");
    assert_eq!(host.balance_minor(STAFF), before - 1000);

    let r = report(&host, &t);
    assert_eq!(r["status"], "closed");
    assert_eq!(r["closing"]["closed_by"], "upload");
    assert_eq!(r["closing"]["in_balance"], false);
    assert_eq!(r["terminal_totals"], totals(2, "8.00", 1, "0.30"));
    assert_eq!(r["host_totals"], totals(3, "10.00", 0, "0.00"));

    assert_eq!(stans(&r["matched"]), [known.stan]);
    let matched = by_stan(&r["matched"], known.stan);
    assert_eq!(matched["rrn"], known_rrn.as_str());
    assert_eq!(matched["amount"], "1.00");
    assert_eq!(matched["differs"], false);

    assert_eq!(stans(&r["posted_at_upload"]), [sale.stan]);
    let posted = by_stan(&r["posted_at_upload"], sale.stan);
    assert_eq!(posted["amount"], "7.00");
    assert_eq!(posted["local_time"], sale.local.as_str());
    assert_eq!(posted["rule"], "normal");
    assert_eq!(posted["charged_to"], "card");
    assert_eq!(posted["source"], "upload");
    assert_eq!(posted["pan"], "629000******3213", "masked PAN only");

    assert_eq!(stans(&r["refunds_not_posted"]), [refund.stan]);
    assert_eq!(stans(&r["missing_at_terminal"]), [host_only.stan]);
    let missing = by_stan(&r["missing_at_terminal"], host_only.stan);
    assert_eq!(missing["type"], "purchase");
    assert_eq!(missing["amount"], "2.00");
    assert_eq!(missing["rrn"], host_only_rrn.as_str());

    assert_eq!(r["offline_exceptions"], json!([]));
    assert_eq!(r["stan_gaps"], json!([]));
    assert_eq!(
        r["summary"],
        json!({"matched": 1, "posted_at_upload": 1, "refunds_not_posted": 1,
               "missing_at_terminal": 1, "offline_exceptions": 0, "stan_gaps": 0})
    );
    assert!(!r.to_string().contains(STAFF), "no full PAN in the report");
    assert_balanced(&host);
}

#[test]
fn every_offline_exception_is_listed_with_the_rule_that_decided_it() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    download_blacklist(&mut t);
    let (status, _) = host.api("POST", &format!("/v1/cards/{STAFF}/lost"), None);
    assert_eq!(status, 200);

    let sold = |t: &mut TestTerminal, pan: &str, amount_minor: u64, shift_secs: i64| {
        let (sale, answer) = advice(t, pan, amount_minor, &local_time(shift_secs));
        assert_eq!(code(&answer), "00");
        sale.stan
    };
    let before_block = sold(&mut t, STAFF, 100, -3600);
    let after_terminal_list = sold(&mut t, STAFF, 200, 120);
    let overdraft = sold(&mut t, STUDENT2, 3000, -60);
    // The demo terminal's floor limit is 50.00.
    let above_floor = sold(&mut t, STUDENT, 6000, -60);
    let unknown_card = sold(&mut t, &make_pan("629999", 7), 500, -60);
    download_blacklist(&mut t);
    let known_to_terminal = sold(&mut t, STAFF, 400, 180);

    let r = report(&host, &t);
    let exceptions = &r["offline_exceptions"];
    let mut expected = vec![
        after_terminal_list,
        overdraft,
        above_floor,
        unknown_card,
        known_to_terminal,
    ];
    expected.sort();
    assert_eq!(stans(exceptions), expected, "not {before_block}: {r}");
    let rows = [
        (
            after_terminal_list,
            "blocked_after_terminal_blacklist",
            false,
            "card",
        ),
        (overdraft, "overdraft", false, "card"),
        (above_floor, "normal", true, "card"),
        (unknown_card, "unknown_card", false, "merchant"),
        (
            known_to_terminal,
            "blocked_in_terminal_blacklist",
            false,
            "merchant",
        ),
    ];
    for (stan, rule, above_floor_limit, charged_to) in rows {
        let entry = by_stan(exceptions, stan);
        assert_eq!(entry["rule"], rule, "{entry}");
        assert_eq!(entry["above_floor_limit"], above_floor_limit, "{entry}");
        assert_eq!(entry["charged_to"], charged_to, "{entry}");
        assert_eq!(entry["source"], "advice", "{entry}");
        assert!(entry["rrn"].as_str().is_some_and(|r| r.len() == 12));
    }
    assert_eq!(by_stan(exceptions, unknown_card)["pan"], Value::Null);
    assert_eq!(r["summary"]["offline_exceptions"], 5);
    // The merchant bears two: the terminal counts them as sales, and so does the host.
    assert_eq!(r["host_totals"]["purchase_count"], 6);
    assert_eq!(r["host_totals"]["purchase_amount"], "102.00");
    assert_balanced(&host);
}

#[test]
fn stans_missing_from_the_batch_are_listed_as_gaps() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    online_purchase(&mut t, STAFF, 100);
    // Records the terminal lost: their STANs never reached the host.
    let lost_first = [t.next_stan(), t.next_stan()];
    // A declined request is a STAN the host has seen, and so are a balance inquiry and an
    // echo: the terminal numbers every message from one counter.
    assert_ne!(code(&t.purchase(STAFF, 60_000, None)), "00");
    assert_eq!(code(&t.balance(STAFF, None)), "00");
    assert_eq!(code(&t.network(301, None)), "00");
    online_purchase(&mut t, STAFF, 200);
    let lost_later = t.next_stan();
    let (_, answer) = advice(&mut t, STAFF, 300, &local_time(-60));
    assert_eq!(code(&answer), "00");

    let r = report(&host, &t);
    assert_eq!(
        r["stan_gaps"],
        json!([lost_first[0], lost_first[1], lost_later])
    );
    assert_eq!(r["summary"]["stan_gaps"], 3);
}

#[test]
fn unknown_batches_and_terminals_are_404_bad_ones_400_and_a_wrong_token_401() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    online_purchase(&mut t, STAFF, 100);
    let error = |path: &str, status: u16| {
        let (got, body) = host.api("GET", path, None);
        assert_eq!(got, status, "GET {path}: {body}");
        let message = body["error"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "GET {path}: {body}");
        message.to_owned()
    };
    let batch = format!("{:06}", t.batch);
    let message = error(&format!("/v1/batches/T9999999/{batch}"), 404);
    assert!(message.contains("T9999999"), "{message}");
    error(&format!("/v1/batches/{TERMINAL}/999999"), 404);
    error(&format!("/v1/batches/{MAC_TERMINAL}/{batch}"), 404);
    error(&format!("/v1/batches/{TERMINAL}/12345"), 400);
    error(&format!("/v1/batches/{TERMINAL}/12345x"), 400);
    error(&format!("/v1/batches/T00001/{batch}"), 400);

    let path = format!("/v1/batches/{TERMINAL}/{batch}");
    for token in [None, Some("wrong-token-0123456789")] {
        let (status, body) = host.api_with_token("GET", &path, None, token);
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(report(&host, &t)["status"], "open");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn checksum_verifies(dir: &Path, name: &str) {
    let status = std::process::Command::new("sha256sum")
        .args(["--check", "--quiet", &format!("{name}.sha256")])
        .current_dir(dir)
        .status()
        .expect("run sha256sum");
    assert!(status.success(), "{name} verifies");
}

#[test]
fn the_days_reconciliation_file_has_a_line_per_closed_batch_and_republishes_identically() {
    let host = HostProcess::start(HostOptions::demo());
    let mut t = signed_on(&host);
    // Batch 1: in balance.
    let first_batch = t.batch;
    online_purchase(&mut t, STAFF, 100);
    assert_eq!(code(&settle(&mut t, 920_000, (1, 100, 0, 0))), "00");
    // Batch 2: out of balance, uploaded: one posted at upload, one the terminal lost.
    t.batch += 1;
    let (kept, kept_rrn) = online_purchase(&mut t, STAFF, 200);
    let (lost_stan, lost_f7) = purchase_to_reverse(&mut t, STAFF, 300);
    let sale = unseen(&mut t, STAFF, 400, false);
    assert_eq!(code(&settle(&mut t, 920_000, (2, 600, 0, 0))), "95");
    assert_eq!(code(&upload(&mut t, &kept, Some(&kept_rrn)).unwrap()), "00");
    assert_eq!(code(&upload(&mut t, &sale, None).unwrap()), "00");
    assert_eq!(code(&settle(&mut t, 960_000, (2, 600, 0, 0))), "00");
    // Batch 3 stays open: not in the day's file.
    t.batch += 1;
    online_purchase(&mut t, STAFF, 500);

    let (status, published) = host.api("POST", "/v1/cutover", Some(json!({})));
    assert_eq!(status, 200, "{published}");
    let day = published["business_date"].as_str().unwrap().to_owned();
    let rec_name = format!("REC_00000001_{}_1.csv", day.replace('-', ""));
    let files = published["files"].as_array().unwrap();
    assert!(files.contains(&json!(rec_name)), "{published}");
    assert!(files.contains(&json!(format!("{rec_name}.sha256"))));
    let outbox = host.outbox_dir();
    checksum_verifies(&outbox, &rec_name);
    let rec = read(&outbox, &rec_name);
    let lines: Vec<&str> = rec.lines().collect();
    assert!(
        lines[0].starts_with(&format!("H,1,00000001,{day},1,")),
        "{rec}"
    );
    assert_eq!(lines.len(), 4, "header, two batches, trailer: {rec}");
    assert_eq!(lines[3], "T,2");
    // The closing time (field 5) is the host's clock; the rest is fixed.
    let without_time = |line: &str| {
        let mut fields: Vec<&str> = line.split(',').collect();
        assert!(fields[4].ends_with('Z'), "{line}");
        fields.remove(4);
        fields.join(",")
    };
    assert_eq!(
        without_time(lines[1]),
        format!("B,{TERMINAL},{first_batch:06},totals,in_balance,1,1.00,0,0.00,1,1.00,0,0.00,0,0,0,0,0,0")
    );
    assert_eq!(
        without_time(lines[2]),
        format!(
            "B,{TERMINAL},{:06},upload,out_of_balance,2,6.00,0,0.00,3,9.00,0,0.00,1,1,0,1,0,0",
            first_batch + 1
        )
    );

    // After the close the lost purchase is reversed from batch 3: the live report changes,
    // the day's file does not.
    assert_eq!(code(&t.reversal(STAFF, 300, lost_stan, &lost_f7)), "00");
    t.batch -= 1;
    assert_eq!(report(&host, &t)["missing_at_terminal"], json!([]));
    std::fs::remove_file(outbox.join(&rec_name)).unwrap();
    std::fs::remove_file(outbox.join(format!("{rec_name}.sha256"))).unwrap();
    let (status, again) = host.api("POST", "/v1/cutover", Some(json!({"business_date": day})));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["files"], published["files"]);
    assert_eq!(read(&outbox, &rec_name), rec, "byte-identical");
    checksum_verifies(&outbox, &rec_name);
}
