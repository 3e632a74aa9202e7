//! What operators see: `/metrics` moves by exactly the traffic sent and parses as the
//! Prometheus text format; the logs of a busy run never show a full card number, a PIN block
//! or a key, in either log format.

use bursar_e2e::demo::*;
use bursar_e2e::prom::Exposition;
use bursar_e2e::terminal::code;
use bursar_e2e::{HostOptions, HostProcess, TestTerminal};
use codec::security::{encrypt_pin_block, TdesKey};
use codec::Mti;
use serde_json::json;

fn scrape(host: &HostProcess) -> Exposition {
    let text = host.metrics();
    Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"))
}

#[test]
fn metrics_move_by_the_traffic_and_parse_as_prometheus_text() {
    let host = HostProcess::start(HostOptions::demo());
    let before = scrape(&host);
    let requests = |e: &Exposition, mti: &str, code: &str| {
        e.value_or_zero("bursar_requests_total", &[("code", code), ("mti", mti)])
    };

    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    assert_eq!(code(&t.sign_on()), "00");
    for _ in 0..3 {
        assert_eq!(code(&t.purchase(STAFF, 150, None)), "00");
    }
    assert_eq!(code(&t.purchase(STUDENT2, 2_500, Some("2468"))), "51");
    assert_eq!(code(&t.balance(STAFF, None)), "00");
    t.send_frame(&[0xFF; 3]); // not a message: dropped, counted
    let mut probe = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    assert_eq!(code(&probe.network(301, None)), "00");

    let after = scrape(&host);
    let moved = |mti: &str, code: &str| requests(&after, mti, code) - requests(&before, mti, code);
    assert_eq!(moved("0800", "00"), 2.0, "sign-on and echo");
    assert_eq!(moved("0200", "00"), 3.0);
    assert_eq!(moved("0200", "51"), 1.0);
    assert_eq!(moved("0100", "00"), 1.0);
    let latency_count = |e: &Exposition, mti: &str| {
        e.value_or_zero("bursar_request_duration_seconds_count", &[("mti", mti)])
    };
    assert_eq!(
        latency_count(&after, "0200") - latency_count(&before, "0200"),
        4.0
    );
    // Every request parsed went through the engine, and each has one observation per stage;
    // the purchases' own syncs are in `wal_write`.
    let stage = |e: &Exposition, series: &str, stage: &str| {
        e.value_or_zero(
            &format!("bursar_request_stage_seconds_{series}"),
            &[("stage", stage)],
        )
    };
    for name in [
        "checks",
        "engine_queue",
        "grouping",
        "wal_queue",
        "wal_write",
        "wake",
    ] {
        assert_eq!(
            stage(&after, "count", name) - stage(&before, "count", name),
            7.0,
            "two 0800s, four 0200s and an 0100 in stage {name}"
        );
    }
    assert!(stage(&after, "sum", "wal_write") > stage(&before, "sum", "wal_write"));
    let counter = |e: &Exposition, name: &str| e.value_or_zero(name, &[]);
    assert_eq!(
        counter(&after, "bursar_ledger_transfers_total")
            - counter(&before, "bursar_ledger_transfers_total"),
        3.0,
        "three purchases posted, nothing for the decline or the inquiry"
    );
    assert_eq!(
        counter(&after, "bursar_messages_dropped_total")
            - counter(&before, "bursar_messages_dropped_total"),
        1.0
    );
    assert_eq!(counter(&after, "bursar_connections_open"), 2.0);
    assert!(
        counter(&after, "bursar_wal_groups_total") > counter(&before, "bursar_wal_groups_total")
    );
    assert!(
        counter(&after, "bursar_wal_fsync_duration_seconds_count")
            > counter(&before, "bursar_wal_fsync_duration_seconds_count")
    );
    assert!(counter(&after, "bursar_business_day") >= 20_260_101.0);
    assert_eq!(counter(&after, "bursar_requests_in_flight"), 0.0);

    // Conventions: counters end in _total; durations are in seconds.
    for (name, kind) in &after.types {
        assert!(
            name.starts_with("bursar_") || name.starts_with("process_"),
            "{name}"
        );
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        if name.contains("duration") {
            assert!(name.ends_with("_seconds"), "{name}");
        }
    }

    // A lost card bumps the blacklist version gauge by one.
    let version = counter(&after, "bursar_blacklist_version");
    let (status, body) = host.api(
        "POST",
        &format!("/v1/cards/{STUDENT}/lost"),
        Some(json!({})),
    );
    assert!(status < 300, "{status} {body}");
    assert_eq!(
        counter(&scrape(&host), "bursar_blacklist_version"),
        version + 1.0
    );

    drop(probe);
    drop(t);
}

/// Drives the paths that handle card numbers, PIN blocks and keys: approvals, declines of
/// every kind, wrong PINs, MAC failures, unparsable messages, operator calls.
fn busy_session(host: &HostProcess) -> Vec<String> {
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    t.sign_on();
    t.purchase(STAFF, 100, None);
    t.purchase(STUDENT, 9_000, Some("9999")); // wrong PIN
    t.purchase(STUDENT, 9_000, Some("1234"));
    t.purchase(STUDENT2, 2_500, Some("2468")); // 51
    t.purchase("6290000000000030", 100, None); // unknown card (Luhn-valid)
    t.purchase("6290000000000031", 100, None); // Luhn failure
    t.balance(TEMPORARY, None);
    // A purchase whose PAN field is malformed (letters): answered 30.
    let request = t.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(100), None);
    let good = t.finish(request);
    let mut bad = good.to_vec();
    let at = bad
        .windows(STAFF.len())
        .position(|w| w == STAFF.as_bytes())
        .expect("F2 in the message");
    bad[at + 14..at + 16].copy_from_slice(b"AB");
    t.send_frame(&bad);
    assert_eq!(code(&t.recv()), "30");
    // The MAC terminal with a wrong MAC.
    let mut m = TestTerminal::connect(host.terminal_addr, MAC_TERMINAL, MERCHANT).with_mac(TAK);
    m.sign_on();
    let request = m.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(100), None);
    let mut forged = m.finish(request).to_vec();
    *forged.last_mut().unwrap() ^= 0x01;
    m.send_frame(&forged);
    assert_eq!(code(&m.recv()), "63");
    // Operator calls that carry PANs and PINs.
    host.api("GET", &format!("/v1/cards/{STAFF}"), None);
    host.api("GET", &format!("/v1/cards/{STUDENT}/transactions"), None);
    host.api(
        "POST",
        &format!("/v1/cards/{STUDENT2}/lost"),
        Some(json!({})),
    );
    host.api("POST", "/v1/cards", Some(json!({"pan": "6290000000000048", "holder_name": "X", "kind": "student", "pin": "8642"})));
    vec![
        STAFF.into(),
        STUDENT.into(),
        STUDENT2.into(),
        TEMPORARY.into(),
        "6290000000000030".into(),
        "6290000000000031".into(),
        "6290000000000048".into(),
        TPK.into(),
        TAK.into(),
        hex::encode_upper(
            encrypt_pin_block(&TdesKey::from_hex(TPK).unwrap(), STUDENT, "9999").unwrap(),
        ),
    ]
}

fn assert_no_secrets(logs: &str, secrets: &[String]) {
    assert!(
        logs.contains("request declined"),
        "declines are logged:\n{logs}"
    );
    assert!(
        logs.contains("terminal connected"),
        "connections are logged"
    );
    let lowered = logs.to_ascii_lowercase();
    for secret in secrets {
        assert!(
            !lowered.contains(&secret.to_ascii_lowercase()),
            "a log shows {}...: {logs}",
            &secret[..6]
        );
    }
    // The masked form is what operators get instead.
    assert!(
        logs.contains("629000******0022"),
        "masked PAN of the 51 decline"
    );
}

#[test]
fn human_logs_never_show_a_full_pan_pin_block_or_key() {
    let host = HostProcess::start(HostOptions::demo());
    let secrets = busy_session(&host);
    assert_no_secrets(&host.logs(), &secrets);
}

#[test]
fn json_logs_are_json_lines_and_never_show_a_full_pan() {
    let host = HostProcess::start(HostOptions {
        extra_args: vec!["--log-json".into()],
        ..HostOptions::demo()
    });
    let secrets = busy_session(&host);
    let logs = host.logs();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            parsed["level"].is_string() && parsed["fields"].is_object(),
            "{line}"
        );
    }
    assert_no_secrets(&logs, &secrets);
}
