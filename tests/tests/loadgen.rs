//! `loadgen` against the real `bursar`. `run`: it provisions its fleet through the admin API,
//! signs its terminals on (half of them MAC terminals) and sends every kind of request with
//! PINs and MACs; the host approves them all except top-ups, which answer `91` while there
//! is no bank link, and the book still balances. `offline`: terminals sell offline and catch
//! up; every sale is posted exactly once, whatever its 3.8 case, and every batch closes.

use std::process::Command;

use bursar_e2e::demo::ADMIN_TOKEN;
use bursar_e2e::host::bin_path;
use bursar_e2e::{make_pan, HostOptions, HostProcess};
use serde_json::{json, Value};

/// Runs `loadgen MODE --addr .. --admin-addr .. --admin-token .. ARGS --json` against `host`
/// and returns its report.
fn loadgen(host: &HostProcess, mode: &str, args: &[&str]) -> Value {
    let output = Command::new(bin_path("loadgen"))
        .args([mode, "--addr", &host.terminal_addr.to_string()])
        .args(["--admin-addr", &host.admin_addr.to_string()])
        .args(["--admin-token", ADMIN_TOKEN])
        .args(args)
        .arg("--json")
        .output()
        .expect("run loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadgen failed:\n{stderr}\n{}",
        host.logs()
    );
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

#[test]
fn loadgen_provisions_and_every_request_is_decided() {
    let host = HostProcess::start(HostOptions::default());
    let report = loadgen(
        &host,
        "run",
        &[
            "--count",
            "200",
            "--terminals",
            "6",
            "--merchants",
            "2",
            "--cards",
            "10",
            "--depth",
            "2",
            "--threads",
            "1",
            "--mix",
            "purchase=50,balance=15,refund=10,reversal=10,topup=15",
        ],
    );
    assert_eq!(report["sent"], 200, "{report:#}");
    assert_eq!(report["answered"], 200, "{report:#}");
    assert_eq!(report["errors"], json!({}), "{report:#}");
    let sent = report["sent_by_kind"].as_object().expect("sent_by_kind");
    for (kind, count) in sent {
        let expected = if kind == "topup" { "91" } else { "00" };
        assert_eq!(
            report["codes_by_kind"][kind],
            json!({ expected: count }),
            "{kind}: {report:#}"
        );
    }
    assert!(sent["purchase"].as_u64() > Some(0) && sent["topup"].as_u64() > Some(0));

    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true, "{check}");
}

/// Opening balance of every card of the offline runs, minor units.
const OPENING_MINOR: i64 = 1_000_000;
const CARDS: u64 = 12;
const TERMINALS: u64 = 4;
const SALES: u64 = 60;

/// One offline run of run id `run`: `lost_percent` of the advices never sent, so those
/// batches close only after an upload.
fn offline_run(host: &HostProcess, run: u16, lost_percent: &str) -> Value {
    let (run, cards, terminals, sales) = (
        run.to_string(),
        CARDS.to_string(),
        TERMINALS.to_string(),
        SALES.to_string(),
    );
    let report = loadgen(
        host,
        "offline",
        &[
            "--run-id",
            &run,
            "--terminals",
            &terminals,
            "--merchants",
            "2",
            "--cards",
            &cards,
            "--blocked-cards",
            "4",
            "--sales",
            &sales,
            "--duplicate-percent",
            "10",
            "--blocked-percent",
            "10",
            "--overdraft-percent",
            "5",
            "--lost-percent",
            lost_percent,
            "--card-balance",
            "10000.00",
            "--depth",
            "8",
            "--threads",
            "1",
        ],
    );
    let sales = &report["sales"];
    assert_eq!(sales["total"], TERMINALS * SALES, "{report:#}");
    // 6 blocked sales per terminal, alternately on cards blocked before and after its
    // blacklist download: both blocked rows of the 3.8 table.
    assert_eq!(
        sales["blocked_known_to_terminal"],
        3 * TERMINALS,
        "{report:#}"
    );
    assert_eq!(
        sales["blocked_after_terminal_list"],
        3 * TERMINALS,
        "{report:#}"
    );
    assert_eq!(sales["overdraft"], 3 * TERMINALS, "{report:#}");
    assert_eq!(sales["resent"], 6 * TERMINALS, "{report:#}");
    let lost = sales["advice_lost"].as_u64().unwrap();
    let sent = TERMINALS * SALES - lost;
    assert_eq!(report["errors"], json!({}), "{report:#}");
    assert_eq!(report["advices_acknowledged"], sent, "{report:#}");
    // Every re-sent advice was answered with its first answer's RRN: recognised.
    assert_eq!(report["duplicates_detected"], sales["resent"], "{report:#}");
    let codes = &report["codes_by_mti"];
    assert_eq!(codes["0220"], json!({ "00": sent }), "{report:#}");
    assert_eq!(codes["0221"], json!({ "00": 6 * TERMINALS }), "{report:#}");
    assert_eq!(report["batches"]["not_closed"], 0, "{report:#}");
    let verification = &report["verification"];
    assert_eq!(verification["cards_checked"], CARDS, "{report:#}");
    assert_eq!(verification["cards_as_expected"], CARDS, "{report:#}");
    assert_eq!(verification["ledger_balanced"], true, "{report:#}");
    report
}

/// Checks the run's cards through the admin API, independently of loadgen's own check:
/// together they hold the opening balances less what the run charged (so no advice posted
/// twice or lost), the cards blocked before the download were never charged, those blocked
/// after were, and overdrawn cards are frozen.
fn check_cards(host: &HostProcess, run: u16, report: &Value) {
    let pan = |c: u64| make_pan(&format!("6299{run:03}"), c);
    let balances: Vec<i64> = (0..CARDS).map(|c| host.balance_minor(&pan(c))).collect();
    let charged =
        bursar_e2e::host::parse_minor(report["verification"]["charged_to_cards"].as_str().unwrap());
    assert_eq!(
        balances.iter().sum::<i64>(),
        CARDS as i64 * OPENING_MINOR - charged,
        "{report:#}"
    );
    // Cards 0 and 1 were blocked before the download: the merchant bore their sales.
    assert_eq!(&balances[..2], &[OPENING_MINOR; 2], "{report:#}");
    // Cards 2 and 3 after it: charged.
    assert!(
        balances[2..4].iter().all(|b| *b < OPENING_MINOR),
        "{balances:?}"
    );
    // Every overdraft sale is above a whole opening balance: those cards are below zero.
    let overdrawn: Vec<u64> = (4..CARDS).filter(|c| balances[*c as usize] < 0).collect();
    assert!(!overdrawn.is_empty(), "{balances:?}");
    for c in overdrawn {
        let (_, card) = host.api("GET", &format!("/v1/cards/{}", pan(c)), None);
        assert_eq!(card["status"], "frozen", "{card}");
    }
}

#[test]
fn loadgen_offline_posts_every_advice_once_and_closes_every_batch() {
    let host = HostProcess::start(HostOptions::default());
    // Every advice arrives: each batch closes at the first 0500.
    let in_balance = offline_run(&host, 1, "0");
    assert_eq!(in_balance["batches"]["closed_in_balance"], TERMINALS);
    assert_eq!(
        in_balance["codes_by_mti"]["0500"],
        json!({ "00": TERMINALS }),
        "{in_balance:#}"
    );
    assert!(in_balance["codes_by_mti"].get("0320").is_none());
    check_cards(&host, 1, &in_balance);

    // Three advices per terminal never arrive: 95, the upload, then 0500 960000.
    let uploaded = offline_run(&host, 2, "5");
    assert_eq!(uploaded["sales"]["advice_lost"], 3 * TERMINALS);
    assert_eq!(uploaded["batches"]["closed_after_upload"], TERMINALS);
    assert_eq!(
        uploaded["codes_by_mti"]["0500"],
        json!({ "00": TERMINALS, "95": TERMINALS }),
        "{uploaded:#}"
    );
    assert_eq!(
        uploaded["codes_by_mti"]["0320"],
        json!({ "00": TERMINALS * SALES }),
        "{uploaded:#}"
    );
    check_cards(&host, 2, &uploaded);

    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true, "{check}");
}
