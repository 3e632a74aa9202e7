//! The bank link end to end (PROTOCOL.md 3.5, 4, 5): the real `bursar` and `banksim`
//! binaries over real sockets. Top-ups approved and declined; a bank that does not answer;
//! the link killed and restored; the host killed with advices queued; a business day closed
//! by each of its three triggers, with clearing files that add up and verify.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use bursar_e2e::banksim::{wait_until, BankSim};
use bursar_e2e::certs::{TestCa, Usage};
use bursar_e2e::demo::*;
use bursar_e2e::terminal::code;
use bursar_e2e::{HostOptions, HostProcess, TestTerminal};
use bytes::Bytes;
use codec::{Field, Message, Mti};
use serde_json::json;

/// The demo cards' linked bank card.
const BANK_ACCOUNT: &str = "6222020200112233446";

/// Short timeouts and back-offs: every wait in these tests is for an outcome, and the
/// outcomes come within a few hundred milliseconds.
fn bank_config(addr: std::net::SocketAddr) -> String {
    format!(
        "[bank]\naddr = \"{addr}\"\ntimeout_ms = 400\necho_interval_ms = 200\n\
         reconnect_min_ms = 50\nreconnect_max_ms = 400\n"
    )
}

/// A demo host linked to a fresh banksim; returns once the link is signed on.
fn start_pair(extra_config: &str, balances: &[&str]) -> (HostProcess, BankSim) {
    let addr = BankSim::free_addr();
    let host = HostProcess::start(HostOptions {
        demo: true,
        config: format!("{}{extra_config}", bank_config(addr)),
        ..HostOptions::default()
    });
    let bank = BankSim::start(addr, &host.outbox_dir(), balances);
    wait_signed_on(&host);
    (host, bank)
}

fn wait_signed_on(host: &HostProcess) {
    wait_until("the bank link is signed on", || {
        host.metrics()
            .contains("bursar_bank_link_state{state=\"signed_on\"} 1")
    });
}

fn metric(host: &HostProcess, name: &str) -> i64 {
    host.metrics()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} not exposed"))
}

fn signed_on(host: &HostProcess, terminal: &str, merchant: &str) -> TestTerminal {
    let mut t = TestTerminal::connect(host.terminal_addr, terminal, merchant);
    t.sign_on();
    t
}

/// A kiosk's top-up request, finished (MACed) so that a test can send it again.
fn top_up_frame(kiosk: &mut TestTerminal, pan: &str, amount_minor: u64, pin: &str) -> Bytes {
    let b = kiosk.financial(
        Mti::FINANCIAL_REQUEST,
        400_000,
        pan,
        Some(amount_minor),
        Some(pin),
    );
    kiosk.finish(b)
}

fn top_up(kiosk: &mut TestTerminal, pan: &str, amount_minor: u64, pin: &str) -> Message {
    let bytes = top_up_frame(kiosk, pan, amount_minor, pin);
    kiosk.send_frame(&bytes);
    kiosk.recv()
}

/// Advices the bank answered, of either MTI.
fn answered_advices(bank: &mut BankSim) -> Vec<(u64, Option<String>)> {
    let mut answered: Vec<_> = ["0420", "0421"]
        .iter()
        .flat_map(|mti| bank.received(mti))
        .filter(|(_, _, answer)| answer.is_some())
        .map(|(stan, original, _)| (stan, original))
        .collect();
    answered.sort();
    answered
}

#[test]
fn top_ups_approved_and_declined() {
    let (host, mut bank) = start_pair("", &[&format!("{BANK_ACCOUNT}=10000")]);
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STUDENT);

    // Approved: credited, with the bank's approval code and the new balance.
    let bytes = top_up_frame(&mut kiosk, STUDENT, 6000, STUDENT_PIN);
    kiosk.send_frame(&bytes);
    let approved = kiosk.recv();
    assert_eq!(code(&approved), "00");
    assert!(
        approved
            .get_str(Field::ApprovalCode)
            .unwrap()
            .starts_with('B'),
        "bank's F38"
    );
    assert_eq!(host.balance_minor(STUDENT), before + 6000);
    assert!(approved
        .get_str(Field::AdditionalAmounts)
        .unwrap()
        .ends_with(&format!("{:012}", before + 6000)));

    // Its retransmission gets the same answer and credits nothing more (3.7).
    kiosk.send_frame(&bytes);
    let again = kiosk.recv();
    assert_eq!(code(&again), "00");
    assert_eq!(again.get_str(Field::Rrn), approved.get_str(Field::Rrn));
    assert_eq!(host.balance_minor(STUDENT), before + 6000);

    // Beyond the bank account's balance: the bank's 51, passed on; nothing credited.
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 6000, STUDENT_PIN)), "51");
    assert_eq!(host.balance_minor(STUDENT), before + 6000);

    // Checked at the host, never sent to the bank.
    assert_eq!(code(&top_up(&mut kiosk, TEMPORARY, 100, "0000")), "57");
    assert_eq!(code(&top_up(&mut kiosk, STUDENT2, 100, "2468")), "57");
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 100, "9999")), "55");
    let sent = bank.received("0200");
    assert_eq!(sent.len(), 2, "one approved, one declined: {sent:?}");
    assert_eq!(bank.counter("approvals"), 1);
    assert_eq!(
        bank.control(&format!("balance {BANK_ACCOUNT}"))["balance"],
        4000
    );

    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true);
}

#[test]
fn a_bank_that_never_answers_gets_the_reversal_until_it_does() {
    let (host, mut bank) = start_pair("", &[]);
    bank.control("drop 0200 all");
    bank.control("drop 0420 all");
    bank.control("drop 0421 2");
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STAFF);
    assert_eq!(code(&top_up(&mut kiosk, STAFF, 2500, "4321")), "91");
    assert_eq!(host.balance_minor(STAFF), before, "nothing credited");

    wait_until("a repeated advice is answered", || {
        !answered_advices(&mut bank).is_empty()
    });
    let topup = bank.received("0200");
    assert_eq!(topup.len(), 1);
    let first = bank.received("0420");
    assert_eq!(first.len(), 1, "one 0420, then repeats: {first:?}");
    let repeats = bank.received("0421");
    assert!(
        repeats.len() >= 3,
        "0421 repeated until answered: {repeats:?}"
    );
    let original = first[0].1.clone().expect("F90");
    assert!(
        original.starts_with(&format!("0200{:06}", topup[0].0)),
        "F90 names the 0200: {original}"
    );
    for (stan, f90, _) in &repeats {
        assert_eq!(*stan, first[0].0, "a repeat keeps the advice's STAN");
        assert_eq!(f90.as_deref(), Some(original.as_str()));
    }
    assert_eq!(answered_advices(&mut bank).len(), 1);
    wait_until("the queue is empty", || {
        metric(&host, "bursar_saf_depth") == 0
    });
}

#[test]
fn link_killed_and_restored_signs_on_again_and_delivers_the_queue_once() {
    let (host, mut bank) = start_pair("", &[]);
    bank.control("drop 0200 1");
    bank.control("drop 0420 all");
    bank.control("drop 0421 all");
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let mut till = signed_on(&host, TERMINAL, MERCHANT);
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 1000, STUDENT_PIN)), "91");
    wait_until("the advice reached the bank", || {
        !bank.received("0420").is_empty()
    });

    bank.control("refuse on");
    bank.control("kill");
    wait_until("the host saw the link go down", || {
        !host
            .metrics()
            .contains("bursar_bank_link_state{state=\"signed_on\"} 1")
    });
    // Link down: top-ups 91 at once, purchases unaffected.
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 1000, STUDENT_PIN)), "91");
    for _ in 0..20 {
        assert_eq!(code(&till.purchase(STUDENT2, 10, None)), "00");
    }
    wait_until("the host retried with back-off", || {
        bank.counter("connections_refused") >= 2
    });
    assert!(metric(&host, "bursar_bank_reconnects_total") >= 2);

    bank.control("drop 0420 off");
    bank.control("drop 0421 off");
    bank.control("refuse off");
    wait_signed_on(&host);
    wait_until("the queued advice is delivered", || {
        metric(&host, "bursar_saf_depth") == 0
    });
    assert_eq!(
        bank.counter("sign_ons"),
        2,
        "signed on again after the reconnect"
    );
    assert_eq!(answered_advices(&mut bank).len(), 1, "delivered once");

    // And top-ups work again, credited once.
    let before = host.balance_minor(STUDENT);
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 1000, STUDENT_PIN)), "00");
    assert_eq!(host.balance_minor(STUDENT), before + 1000);
    assert_eq!(bank.counter("approvals"), 1);
}

#[test]
fn advices_queued_at_a_kill_9_are_delivered_after_the_restart() {
    let (mut host, mut bank) = start_pair("", &[]);
    for mti in ["0200", "0420", "0421"] {
        bank.control(&format!("drop {mti} all"));
    }
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 700, STUDENT_PIN)), "91");
    assert_eq!(code(&top_up(&mut kiosk, STAFF, 800, "4321")), "91");
    wait_until("two advices queued", || {
        metric(&host, "bursar_saf_depth") == 2
    });
    host.kill9();
    for mti in ["0200", "0420", "0421"] {
        bank.control(&format!("drop {mti} off"));
    }
    host.restart();
    wait_until("both advices delivered", || {
        answered_advices(&mut bank).len() == 2
    });
    let originals: Vec<String> = answered_advices(&mut bank)
        .into_iter()
        .map(|(_, f90)| f90.expect("F90")[4..10].to_owned())
        .collect();
    let mut sent: Vec<String> = bank
        .received("0200")
        .into_iter()
        .map(|(stan, _, _)| format!("{stan:06}"))
        .collect();
    sent.sort();
    let mut originals_sorted = originals.clone();
    originals_sorted.sort();
    assert_eq!(originals_sorted, sent, "each top-up reversed, once");
    wait_until("the queue is empty", || {
        metric(&host, "bursar_saf_depth") == 0
    });
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `sha256sum -c NAME.sha256` in the outbox: the checksums verify as the bank checks them.
fn checksums_verify(dir: &Path, names: &[String]) {
    for name in names.iter().filter(|n| n.ends_with(".sha256")) {
        let status = Command::new("sha256sum")
            .arg("-c")
            .arg("--quiet")
            .arg(name)
            .current_dir(dir)
            .status()
            .expect("run sha256sum");
        assert!(status.success(), "{name} verifies");
    }
}

fn clearing_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.starts_with("CLR_") && name.ends_with(".csv")
    });
    files
}

/// The trailer of a CLR file, as its fields.
fn trailer(clr: &str) -> Vec<String> {
    clr.lines()
        .find(|l| l.starts_with("T,"))
        .expect("trailer")
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn operator_cutover_publishes_files_that_add_up_and_republishes_them_identically() {
    let (host, mut bank) = start_pair("", &[]);
    let mut till = signed_on(&host, TERMINAL, MERCHANT);
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let first = till.purchase(STUDENT, 100, None);
    let second = till.purchase(STUDENT, 250, None);
    assert_eq!(code(&first), "00");
    assert_eq!(code(&second), "00");
    assert_eq!(
        code(&till.refund(STUDENT, 50, second.get_str(Field::Rrn).unwrap())),
        "00"
    );
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 1000, STUDENT_PIN)), "00");

    let (status, published) = host.api("POST", "/v1/cutover", Some(json!({})));
    assert_eq!(status, 200, "{published}");
    let day = published["business_date"].as_str().unwrap().to_owned();
    let files: Vec<String> = published["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        files.len(),
        6,
        "CLR, TXN, REC and their checksums: {files:?}"
    );
    let outbox = host.outbox_dir();
    checksums_verify(&outbox, &files);
    let clr_name = files
        .iter()
        .find(|f| f.starts_with("CLR_") && f.ends_with(".csv"))
        .unwrap();
    let txn_name = files
        .iter()
        .find(|f| f.starts_with("TXN_") && f.ends_with(".csv"))
        .unwrap();
    assert_eq!(
        clr_name,
        &format!("CLR_00000001_{}_1.csv", day.replace('-', ""))
    );
    let clr = read(&outbox, clr_name);
    let txn = read(&outbox, txn_name);

    // Net sales 3.00 at 150 bps: a fee of 4.5 fen, rounded half-even to 4.
    let lines: Vec<&str> = clr.lines().collect();
    assert!(
        lines[0].starts_with(&format!("H,1,00000001,{day},1,")),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(",156"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "D,M00000000000001,Canteen North,CN00000000000001,2,3.50,1,0.50,0.04,2.96"
    );
    assert_eq!(lines[2], "T,1,2,3.50,1,0.50,0.04,2.96");
    assert_eq!(lines.len(), 3);

    // The transaction file: every posting of the day, each of the test's by its RRN.
    let rows: Vec<Vec<&str>> = txn.lines().map(|l| l.split(',').collect()).collect();
    let (body, last) = rows.split_at(rows.len() - 1);
    assert_eq!(last[0][0], "T");
    assert_eq!(last[0][1], body.len().to_string());
    let sum: i64 = body
        .iter()
        .map(|r| bursar_e2e::host::parse_minor(r[5]))
        .sum();
    assert_eq!(bursar_e2e::host::parse_minor(last[0][2]), sum);
    let kinds: Vec<&str> = body
        .iter()
        .filter(|r| r[3] == MERCHANT || r[3] == KIOSK_MERCHANT)
        .map(|r| r[1])
        .collect();
    assert_eq!(kinds, ["purchase", "purchase", "refund", "topup"]);
    let purchase = body
        .iter()
        .find(|r| r[0] == first.get_str(Field::Rrn).unwrap())
        .unwrap();
    assert_eq!(purchase[2], "629000******7893", "masked PAN only");
    assert_eq!(purchase[4], TERMINAL);
    assert_eq!(purchase[5], "1.00");
    assert_eq!(purchase[8], "online");
    assert!(!txn.contains(STUDENT), "no full PAN in the file");

    wait_until("the bank accepted the 0500", || {
        bank.counter("clearing_accepted") == 1
    });
    assert_eq!(bank.counter("clearing_rejected"), 0);

    // The next postings belong to the next day.
    let after = till.purchase(STUDENT, 100, None);
    assert_ne!(
        after.get_str(Field::SettlementDate),
        first.get_str(Field::SettlementDate)
    );

    // The bank lost the files: published again, byte-identical, and handed off again.
    for name in &files {
        std::fs::remove_file(outbox.join(name)).unwrap();
    }
    let (status, again) = host.api("POST", "/v1/cutover", Some(json!({"business_date": day})));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["files"], published["files"]);
    assert_eq!(read(&outbox, clr_name), clr);
    assert_eq!(read(&outbox, txn_name), txn);
    checksums_verify(&outbox, &files);
    wait_until("the bank accepted the 0500 again", || {
        bank.counter("clearing_accepted") == 2
    });

    let (status, _) = host.api(
        "POST",
        "/v1/cutover",
        Some(json!({"business_date": "2099-01-01"})),
    );
    assert_eq!(status, 404);
    let (status, _) = host.api(
        "POST",
        "/v1/cutover",
        Some(json!({"business_date": "yesterday"})),
    );
    assert_eq!(status, 400);
    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true);
}

#[test]
fn the_banks_own_echo_is_answered() {
    let (host, mut bank) = start_pair("", &[]);
    assert_eq!(bank.control("echo")["sent"], 1);
    wait_until("the host answered the bank's echo", || {
        network_answered(&mut bank, 301)
    });
    assert_eq!(
        metric(&host, "bursar_bank_link_state{state=\"signed_on\"}"),
        1
    );
}

/// The bank's own 0800 with this F70 was answered `00`.
fn network_answered(bank: &mut BankSim, network_code: u64) -> bool {
    bank.stats()["network_answers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a[0] == network_code && a[1] == "00")
}

/// `[bank]` TLS settings: the CA that signed the bank's certificate, and the host's client
/// certificate when given.
fn tls_config(ca: &TestCa, client: Option<&(PathBuf, PathBuf)>) -> String {
    let mut config = format!("tls_ca = \"{}\"\n", ca.cert.display());
    if let Some((cert, key)) = client {
        config += &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
    }
    config
}

#[test]
fn the_bank_link_runs_mutual_tls_and_a_host_without_a_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (bank_cert, bank_key) = ca.issue("bank", Usage::Server);
    let host_identity = ca.issue("bursar", Usage::Client);
    let bank_tls: [&OsStr; 6] = [
        "--tls-cert".as_ref(),
        bank_cert.as_os_str(),
        "--tls-key".as_ref(),
        bank_key.as_os_str(),
        "--tls-client-ca".as_ref(),
        ca.cert.as_os_str(),
    ];

    // With its client certificate the host signs on, and top-ups and echoes cross the link.
    let addr = BankSim::free_addr();
    let host = HostProcess::start(HostOptions {
        demo: true,
        config: bank_config(addr) + &tls_config(&ca, Some(&host_identity)),
        ..HostOptions::default()
    });
    let mut bank = BankSim::start_with(addr, &host.outbox_dir(), &[], &bank_tls);
    wait_signed_on(&host);
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STUDENT);
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 2500, STUDENT_PIN)), "00");
    assert_eq!(host.balance_minor(STUDENT), before + 2500);
    assert_eq!(bank.counter("approvals"), 1);
    assert_eq!(bank.control("echo")["sent"], 1);
    wait_until("the host answered the bank's echo over TLS", || {
        network_answered(&mut bank, 301)
    });
    assert_eq!(bank.counter("tls_handshakes_failed"), 0);
    drop(host);

    // Without one the bank refuses the handshake: the link stays down, top-ups get 91 at
    // once, purchases go on.
    let uncertified = HostProcess::start(HostOptions {
        demo: true,
        config: bank_config(addr) + &tls_config(&ca, None),
        ..HostOptions::default()
    });
    wait_until("the bank refused the host's handshake", || {
        bank.counter("tls_handshakes_failed") >= 2
    });
    assert_eq!(
        metric(&uncertified, "bursar_bank_link_state{state=\"signed_on\"}"),
        0
    );
    let mut kiosk = signed_on(&uncertified, KIOSK, KIOSK_MERCHANT);
    assert_eq!(code(&top_up(&mut kiosk, STUDENT, 2500, STUDENT_PIN)), "91");
    let mut till = signed_on(&uncertified, TERMINAL, MERCHANT);
    assert_eq!(code(&till.purchase(STUDENT, 100, None)), "00");
    assert_eq!(bank.counter("approvals"), 1, "nothing reached the bank");
}

#[test]
fn the_banks_cutover_closes_the_day() {
    let (host, mut bank) = start_pair("", &[]);
    let mut till = signed_on(&host, TERMINAL, MERCHANT);
    assert_eq!(code(&till.purchase(STUDENT, 123, None)), "00");
    assert_eq!(bank.control("cutover")["sent"], 1);
    wait_until("the host answered the cutover", || {
        network_answered(&mut bank, 201)
    });
    wait_until("the bank accepted the 0500", || {
        bank.counter("clearing_accepted") == 1
    });
    let files = clearing_files(&host.outbox_dir());
    assert_eq!(files.len(), 1);
    let clr = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(trailer(&clr)[2..4], ["1", "1.23"]);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    checksums_verify(&host.outbox_dir(), &[format!("{name}.sha256")]);
}

#[test]
fn the_day_closes_at_the_configured_cutover_time() {
    // A UTC offset that puts local time near noon, so that a cut-over at 23:30 is hours
    // away and one at 00:00 has passed, whatever time the test runs.
    let utc_minutes = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        % 1440) as i64;
    let mut offset = 720 - utc_minutes;
    if offset >= 720 {
        offset -= 1440;
    }
    let clock = |cutover: &str| {
        format!("[host]\nutc_offset_minutes = {offset}\ncutover_time = \"{cutover}\"\n")
    };
    let addr = BankSim::free_addr();
    let mut host = HostProcess::start(HostOptions {
        demo: true,
        config: format!("{}{}", bank_config(addr), clock("23:30")),
        ..HostOptions::default()
    });
    let mut bank = BankSim::start(addr, &host.outbox_dir(), &[]);
    wait_signed_on(&host);
    let mut till = signed_on(&host, TERMINAL, MERCHANT);
    assert_eq!(code(&till.purchase(STUDENT, 200, None)), "00");
    assert!(
        clearing_files(&host.outbox_dir()).is_empty(),
        "not closed yet"
    );

    assert_eq!(host.terminate(), Some(0));
    host.set_config(format!("{}{}", bank_config(addr), clock("00:00")));
    host.restart();
    wait_until("the bank accepted the 0500", || {
        bank.counter("clearing_accepted") == 1
    });
    let files = clearing_files(&host.outbox_dir());
    assert_eq!(files.len(), 1, "one day closed");
    let clr = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(trailer(&clr)[2..4], ["1", "2.00"]);
}

#[test]
fn a_top_up_out_at_the_bank_when_the_host_dies_is_reversed_after_the_restart() {
    // A long timeout, so that the kill comes while the top-up waits for the bank.
    let addr = BankSim::free_addr();
    let config = bank_config(addr).replace("timeout_ms = 400", "timeout_ms = 30000");
    let mut host = HostProcess::start(HostOptions {
        demo: true,
        config,
        ..HostOptions::default()
    });
    let mut bank = BankSim::start(addr, &host.outbox_dir(), &[]);
    wait_signed_on(&host);
    bank.control("drop 0200 all");
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STUDENT);
    let bytes = top_up_frame(&mut kiosk, STUDENT, 900, STUDENT_PIN);
    kiosk.send_frame(&bytes);
    wait_until("the bank got the top-up", || {
        !bank.received("0200").is_empty()
    });
    host.kill9();
    bank.control("drop 0200 off");
    host.restart();

    wait_until("the reversal reached the bank", || {
        !answered_advices(&mut bank).is_empty()
    });
    let topup_stan = bank.received("0200")[0].0;
    let advices = answered_advices(&mut bank);
    assert_eq!(advices.len(), 1);
    assert!(advices[0]
        .1
        .as_deref()
        .unwrap()
        .starts_with(&format!("0200{topup_stan:06}")));
    // The kiosk, reconnecting, retransmits: the recorded answer is 91, nothing credited.
    let mut kiosk = TestTerminal::connect(host.terminal_addr, KIOSK, KIOSK_MERCHANT);
    kiosk.send_frame(&bytes);
    assert_eq!(code(&kiosk.recv()), "91");
    assert_eq!(host.balance_minor(STUDENT), before);
}

#[test]
fn a_top_up_at_the_bank_does_not_hold_up_the_requests_behind_it() {
    let (host, mut bank) = start_pair("", &[]);
    // The bank takes 300 ms (within the host's 400 ms timeout); an echo pipelined behind
    // the top-up on the same connection is answered first, the top-up after (PROTOCOL.md 1).
    bank.control("delay 0200 300");
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STUDENT);
    let top_up = top_up_frame(&mut kiosk, STUDENT, 300, STUDENT_PIN);
    let echo = kiosk.network_request(301, None);
    let echo = kiosk.finish(echo);
    kiosk.send_frame(&top_up);
    kiosk.send_frame(&echo);
    let (first, second) = (kiosk.recv(), kiosk.recv());
    assert_eq!(
        first.mti(),
        Mti::NETWORK_RESPONSE,
        "the echo is not held up"
    );
    assert_eq!(code(&first), "00");
    assert_eq!(second.mti(), Mti::FINANCIAL_RESPONSE);
    assert_eq!(code(&second), "00");
    assert_eq!(host.balance_minor(STUDENT), before + 300);
}

#[test]
fn a_retransmission_while_the_bank_decides_gets_the_same_answer_and_credits_once() {
    let (host, mut bank) = start_pair("", &[]);
    // The bank takes its time (within the host's timeout), so the kiosk's retransmission
    // arrives while the top-up is still at the bank.
    bank.control("delay 0200 250");
    let mut kiosk = signed_on(&host, KIOSK, KIOSK_MERCHANT);
    let before = host.balance_minor(STUDENT);
    let bytes = top_up_frame(&mut kiosk, STUDENT, 300, STUDENT_PIN);
    kiosk.send_frame(&bytes);
    kiosk.send_frame(&bytes);
    let (first, second) = (kiosk.recv(), kiosk.recv());
    assert_eq!((code(&first), code(&second)), ("00", "00"));
    assert_eq!(first.get_str(Field::Rrn), second.get_str(Field::Rrn));
    assert_eq!(host.balance_minor(STUDENT), before + 300, "credited once");
    assert_eq!(bank.received("0200").len(), 1, "asked the bank once");
}
