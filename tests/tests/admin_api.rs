//! The admin API end to end (PROTOCOL.md 8): the real `bursar` binary over HTTP, every
//! endpoint's success and its errors, idempotent repeats, the audit trail, and what a
//! terminal sees right after an operator's change.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bursar_e2e::admin::*;
use bursar_e2e::demo::*;
use bursar_e2e::host::parse_minor;
use bursar_e2e::terminal::code;
use bursar_e2e::{make_pan, HostOptions, HostProcess};
use codec::Field;
use serde_json::{json, Value};

fn fresh() -> HostProcess {
    HostProcess::start(HostOptions::default())
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error body: {body}"))
}

/// Asserts that `request` fails with `status` and changes nothing the API can show.
fn refused(host: &HostProcess, method: &str, path: &str, body: Value, status: u16, watch: &str) {
    let before = (card_state(host, watch), audit_last_id(host));
    let (got, answer) = host.api(method, path, Some(body.clone()));
    assert_eq!(got, status, "{method} {path} {body}: {answer}");
    assert!(!error_of(&answer).is_empty());
    assert_eq!(
        (card_state(host, watch), audit_last_id(host)),
        before,
        "{path} {body} changed something"
    );
}

#[test]
fn every_endpoint_wants_the_bearer_token() {
    let host = fresh();
    let pan = make_pan("629300", 1);
    let endpoints = [
        ("POST", "/v1/merchants".to_owned()),
        ("POST", "/v1/terminals".to_owned()),
        ("POST", "/v1/cards".to_owned()),
        ("POST", "/v1/cards/bulk".to_owned()),
        ("GET", format!("/v1/cards/{pan}")),
        ("POST", format!("/v1/cards/{pan}/lost")),
        ("POST", format!("/v1/cards/{pan}/found")),
        ("POST", format!("/v1/cards/{pan}/replace")),
        ("POST", format!("/v1/cards/{pan}/cancel")),
        ("POST", format!("/v1/cards/{pan}/pin")),
        ("POST", format!("/v1/cards/{pan}/limits")),
        ("POST", format!("/v1/cards/{pan}/expiry")),
        ("POST", format!("/v1/cards/{pan}/deposits")),
        ("POST", format!("/v1/cards/{pan}/withdrawals")),
        ("GET", format!("/v1/cards/{pan}/transactions")),
        ("POST", "/v1/subsidies".to_owned()),
        ("GET", "/v1/blacklist?since=0".to_owned()),
        ("GET", "/v1/audit?since=0".to_owned()),
        ("GET", "/v1/ledger/check".to_owned()),
        ("POST", "/v1/cutover".to_owned()),
        ("GET", "/v1/batches/T0000001/000001".to_owned()),
    ];
    for (method, path) in &endpoints {
        let body = (*method == "POST").then(|| json!({}));
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let (status, answer) = host.api_with_token(method, path, body.clone(), token);
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(!error_of(&answer).is_empty());
        }
    }
    assert_eq!(audit_last_id(&host), 0, "refused requests are not changes");
    let (status, _) = host.api_with_token("GET", "/healthz", None, None);
    assert_eq!(status, 200, "liveness needs no token");
    // Errors axum answers itself keep the API's shape.
    let (status, answer) = host.api("GET", "/v1/merchants", None);
    assert_eq!(status, 405);
    assert!(!error_of(&answer).is_empty());
    // A body announced above the limit is refused before it is sent (so this client, which
    // waits for the answer first, learns why instead of having its write cut off).
    let (status, answer) = announce_body(&host, "/v1/cards/bulk", 3 << 20);
    assert_eq!(status, 413);
    assert!(!error_of(&answer).is_empty());
    let (status, answer) = host.api("GET", "/v1/nothing-here", None);
    assert_eq!(status, 404);
    assert!(!error_of(&answer).is_empty());
}

/// Sends only the head of a JSON POST announcing `length` bytes of body, and reads the
/// answer: (status, JSON body).
fn announce_body(host: &HostProcess, path: &str, length: usize) -> (u16, Value) {
    let mut stream = TcpStream::connect(host.admin_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: bursar\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{"
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the answer, then the connection closed");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn merchants_and_terminals_are_validated_and_keys_never_come_back() {
    let host = fresh();
    let merchant = "M00000000000077";
    let (status, body) = host.api("POST", "/v1/merchants", Some(merchant_body(merchant, None)));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["accepted_kinds"],
        json!(["student", "staff", "temporary"])
    );
    for (bad, why) in [
        (json!({"id": "M0001"}), "short id"),
        (json!({"fee_bps": 10_001}), "fee above 10000"),
        (json!({"fee_bps": -1}), "negative fee"),
        (json!({"accepted_kinds": ["alumni"]}), "unknown kind"),
        (json!({"accepted_kinds": []}), "no kind"),
        (json!({"settlement_account": ""}), "no settlement account"),
        (json!({"name": ""}), "no name"),
    ] {
        let mut body = merchant_body("M00000000000078", None);
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let (status, answer) = host.api("POST", "/v1/merchants", Some(body));
        assert_eq!(status, 400, "{why}: {answer}");
    }
    let (status, _) = host.api("POST", "/v1/merchants", Some(merchant_body(merchant, None)));
    assert_eq!(status, 409, "a merchant is registered once");
    let (status, answer) = host.api("POST", "/v1/merchants", Some(json!("not an object")));
    assert_eq!(status, 400, "{answer}");

    let (status, body) = host.api(
        "POST",
        "/v1/terminals",
        Some(terminal_body("T0000077", merchant)),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["offline_floor_limit"], "50.00");
    let text = body.to_string().to_uppercase();
    assert!(!text.contains(TPK), "the TPK never comes back: {body}");
    for (bad, why, expected) in [
        (json!({"id": "T77"}), "short id", 400),
        (json!({"tpk": &TPK[1..]}), "31 hex digits", 400),
        (json!({"tpk": format!("{}X", &TPK[1..])}), "not hex", 400),
        (json!({"tak": "00"}), "short tak", 400),
        (json!({"mac_required": true}), "MAC without a tak", 400),
        (
            json!({"offline_floor_limit": "1.234"}),
            "three decimals",
            400,
        ),
        (json!({"offline_floor_limit": "-1.00"}), "negative", 400),
        (json!({"offline_floor_limit": "ten"}), "not a number", 400),
        (
            json!({"merchant_id": "M00000000000099"}),
            "unknown merchant",
            404,
        ),
    ] {
        let mut body = terminal_body("T0000078", merchant);
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let (status, answer) = host.api("POST", "/v1/terminals", Some(body));
        assert_eq!(status, expected, "{why}: {answer}");
        assert!(!error_of(&answer).is_empty());
    }
    let (status, _) = host.api(
        "POST",
        "/v1/terminals",
        Some(terminal_body("T0000077", merchant)),
    );
    assert_eq!(status, 409, "a terminal is registered once");
    let mut with_tak = terminal_body("T0000079", merchant);
    with_tak["tak"] = json!(TAK);
    with_tak["mac_required"] = json!(true);
    let (status, body) = host.api("POST", "/v1/terminals", Some(with_tak));
    assert_eq!(status, 201, "{body}");

    let (_, audit) = host.api("GET", "/v1/audit?since=0", None);
    let logs = host.logs().to_uppercase();
    for secret in [TPK, TAK] {
        assert!(
            !audit.to_string().to_uppercase().contains(secret),
            "no key in the audit trail"
        );
        assert!(!logs.contains(secret), "no key in the log");
    }
    assert_eq!(audit["entries"].as_array().unwrap().len(), 3, "{audit}");
}

#[test]
fn staff_only_merchant_declines_other_kinds_with_57() {
    let host = fresh();
    let mut canteen =
        merchant_with_terminal(&host, "M00000000000055", "T0000055", Some(&["staff"]));
    let student = make_pan("629301", 1);
    let staff = make_pan("629301", 2);
    issue(&host, &student, "student", None);
    issue(&host, &staff, "staff", None);
    deposit(&host, &student, "20.00", "s1");
    deposit(&host, &staff, "20.00", "s2");
    assert_eq!(code(&canteen.purchase(&student, 500, None)), "57");
    assert_eq!(code(&canteen.purchase(&staff, 500, None)), "00");
}

#[test]
fn cards_are_issued_with_their_kind_defaults_and_validated() {
    let host = fresh();
    let pan = make_pan("629302", 1);
    let card = issue(&host, &pan, "staff", Some("1234"));
    assert_eq!(card["status"], "active");
    assert_eq!(card["balance"], "0.00");
    assert_eq!(card["pin_set"], true);
    // Defaults of [cards.staff] in the configuration.
    assert_eq!(
        card["limits"],
        json!({"per_txn": "2000.00", "daily_amount": "5000.00", "daily_count": 100, "pin_threshold": "200.00"})
    );
    assert!(
        !card.to_string().contains("1234\""),
        "the PIN never comes back"
    );
    let own = make_pan("629302", 2);
    let mut body = card_body(&own, "temporary", None);
    body["limits"] = json!({"per_txn": "5.50"});
    let (status, card) = host.api("POST", "/v1/cards", Some(body));
    assert_eq!(status, 201, "{card}");
    assert_eq!(card["limits"]["per_txn"], "5.50");
    assert_eq!(
        card["limits"]["daily_amount"], "200.00",
        "the rest from [cards.temporary]"
    );

    let mut bad_luhn = pan.clone();
    let last = bad_luhn.pop().unwrap();
    bad_luhn.push(if last == '9' {
        '0'
    } else {
        (last as u8 + 1) as char
    });
    let fresh_pan = make_pan("629302", 3);
    for (body, expected, why) in [
        (card_body(&bad_luhn, "student", None), 400, "Luhn"),
        (card_body("62930212345", "student", None), 400, "too short"),
        (card_body(&fresh_pan, "alumni", None), 400, "unknown kind"),
        (
            json!({"pan": fresh_pan, "holder_name": "X", "holder_id": "Y", "kind": "student", "expiry": "3013"}),
            400,
            "month 13",
        ),
        (
            json!({"pan": fresh_pan, "holder_name": "", "holder_id": "Y", "kind": "student", "expiry": "3012"}),
            400,
            "no name",
        ),
        (
            json!({"pan": fresh_pan, "holder_name": "X", "holder_id": "Y", "kind": "student", "expiry": "3012", "pin": "12a4"}),
            400,
            "bad PIN",
        ),
        (
            json!({"pan": fresh_pan, "holder_name": "X", "holder_id": "Y", "kind": "temporary", "expiry": "3012",
                "bank_account": "6222020200112233446"}),
            400,
            "temporary with a bank account",
        ),
        (
            json!({"pan": fresh_pan, "holder_name": "X", "holder_id": "Y", "kind": "student", "expiry": "3012",
                "limits": {"per_txn": "1.001"}}),
            400,
            "three decimals",
        ),
        (
            json!({"pan": fresh_pan, "holder_name": "X", "holder_id": "Y", "kind": "student", "expiry": "3012",
                "limits": {"per_txn": "-5"}}),
            400,
            "negative",
        ),
        (json!({"pan": fresh_pan}), 400, "missing fields"),
        (card_body(&pan, "student", None), 409, "already issued"),
    ] {
        let (status, answer) = host.api("POST", "/v1/cards", Some(body));
        assert_eq!(status, expected, "{why}: {answer}");
        assert!(!error_of(&answer).is_empty());
    }
    let (status, _) = host.api("GET", &format!("/v1/cards/{fresh_pan}"), None);
    assert_eq!(status, 404, "no failed issue left a card behind");
    let (status, _) = host.api("GET", "/v1/cards/12345", None);
    assert_eq!(status, 400);
}

#[test]
fn desk_cash_is_idempotent_by_reference_and_amounts_are_exact() {
    let host = fresh();
    let pan = make_pan("629303", 1);
    issue(&host, &pan, "student", None);
    let path = format!("/v1/cards/{pan}/deposits");
    let first = deposit(&host, &pan, "10.10", "desk-1");
    assert_eq!(first["balance"], "10.10");
    deposit(&host, &pan, "0.05", "desk-2");
    // The same reference again: the first result, nothing posted.
    let (status, again) = host.api(
        "POST",
        &path,
        Some(json!({"amount": "10.10", "reference": "desk-1"})),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["repeated"], true);
    assert_eq!(
        again["balance"], "10.10",
        "the first result, not today's balance"
    );
    assert_eq!(host.balance_minor(&pan), 1015);
    for (amount, why) in [
        ("1.234", "three decimals"),
        ("-1.00", "negative"),
        ("abc", "not a number"),
        ("1e3", "exponent"),
        ("", "empty"),
        ("0.00", "zero"),
    ] {
        refused(
            &host,
            "POST",
            &path,
            json!({"amount": amount, "reference": format!("bad-{why}")}),
            400,
            &pan,
        );
    }
    refused(
        &host,
        "POST",
        &path,
        json!({"amount": 10.10, "reference": "float"}),
        400,
        &pan,
    );
    refused(
        &host,
        "POST",
        &path,
        json!({"amount": "2.00", "reference": "desk-1"}),
        409,
        &pan,
    );
    refused(
        &host,
        "POST",
        &path,
        json!({"amount": "2.00", "reference": ""}),
        400,
        &pan,
    );
    let out = format!("/v1/cards/{pan}/withdrawals");
    refused(
        &host,
        "POST",
        &out,
        json!({"amount": "10.16", "reference": "out-1"}),
        409,
        &pan,
    );
    let (status, paid) = host.api(
        "POST",
        &out,
        Some(json!({"amount": "10.15", "reference": "out-1"})),
    );
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["balance"], "0.00");
    let (status, paid) = host.api(
        "POST",
        &out,
        Some(json!({"amount": "10.15", "reference": "out-1"})),
    );
    assert_eq!((status, paid["repeated"].clone()), (200, json!(true)));
    assert_eq!(host.balance_minor(&pan), 0);
    let unknown = make_pan("629303", 2);
    let (status, _) = host.api(
        "POST",
        &format!("/v1/cards/{unknown}/deposits"),
        Some(json!({"amount": "1.00", "reference": "u"})),
    );
    assert_eq!(status, 404);
    let (_, statement) = host.api("GET", &format!("/v1/cards/{pan}/transactions"), None);
    let rows = statement["transactions"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["amount"].as_str().unwrap(),
                r["balance_after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("withdrawal", "-10.15", "0.00"),
            ("deposit", "0.05", "10.15"),
            ("deposit", "10.10", "10.10")
        ]
    );
    let (status, _) = host.api(
        "GET",
        &format!("/v1/cards/{pan}/transactions?from=2020-13-01"),
        None,
    );
    assert_eq!(status, 400);
}

#[test]
fn a_lost_card_is_declined_41_at_once_and_the_blacklist_serves_the_same_deltas() {
    let host = fresh();
    let mut t = merchant_with_terminal(&host, "M00000000000066", "T0000066", None);
    let pans: Vec<String> = (0..3).map(|i| make_pan("629304", i)).collect();
    for pan in &pans {
        issue(&host, pan, "student", None);
        deposit(&host, pan, "30.00", &format!("open-{pan}"));
    }
    assert_eq!(code(&t.purchase(&pans[0], 100, None)), "00");
    let (status, body) = host.api("POST", &format!("/v1/cards/{}/lost", pans[0]), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["blacklist_version"].as_u64()),
        (Some("lost"), Some(1))
    );
    assert_eq!(
        code(&t.purchase(&pans[0], 100, None)),
        "41",
        "declined right after the API call"
    );
    let (status, again) = host.api("POST", &format!("/v1/cards/{}/lost", pans[0]), None);
    assert_eq!(
        (status, again["blacklist_version"].as_u64()),
        (200, Some(1)),
        "lost twice bumps nothing"
    );
    host.api("POST", &format!("/v1/cards/{}/lost", pans[1]), None);
    host.api("POST", &format!("/v1/cards/{}/found", pans[0]), None);
    assert_eq!(
        code(&t.purchase(&pans[0], 100, None)),
        "00",
        "found: usable again"
    );
    let (status, _) = host.api(
        "POST",
        &format!("/v1/cards/{}/lost", make_pan("629304", 9)),
        None,
    );
    assert_eq!(status, 404);

    let (status, all) = host.api("GET", "/v1/blacklist?since=0", None);
    assert_eq!(status, 200);
    assert_eq!(
        all,
        json!({"since": 0, "version": 3, "added": [pans[1]], "removed": [pans[0]]})
    );
    let (_, tail) = host.api("GET", "/v1/blacklist?since=2", None);
    assert_eq!(
        tail,
        json!({"since": 2, "version": 3, "added": [], "removed": [pans[0]]})
    );
    let (_, none) = host.api("GET", "/v1/blacklist?since=3", None);
    assert_eq!(
        none,
        json!({"since": 3, "version": 3, "added": [], "removed": []})
    );
    let (status, _) = host.api("GET", "/v1/blacklist?since=-1", None);
    assert_eq!(status, 400);
    // The terminal download from every version leads to the same set as the API's delta.
    for since in 0..=3u64 {
        let page = t.network(901, Some(&format!("{since:012}")));
        let data = page.get_str(Field::PrivateData).unwrap().to_owned();
        let mut blocked = std::collections::BTreeMap::new();
        for entry in data[13..].split(';').filter(|e| !e.is_empty()) {
            blocked.insert(entry[1..].to_owned(), entry.starts_with('+'));
        }
        let (_, delta) = host.api("GET", &format!("/v1/blacklist?since={since}"), None);
        let mut from_api = std::collections::BTreeMap::new();
        for pan in delta["added"].as_array().unwrap() {
            from_api.insert(pan.as_str().unwrap().to_owned(), true);
        }
        for pan in delta["removed"].as_array().unwrap() {
            from_api.insert(pan.as_str().unwrap().to_owned(), false);
        }
        assert_eq!(blocked, from_api, "since {since}");
        assert_eq!(
            data[..12].parse::<u64>().unwrap(),
            delta["version"].as_u64().unwrap()
        );
    }
}

#[test]
fn replace_moves_the_balance_less_the_fee_in_one_transfer_and_carries_pin_and_limits() {
    let host = HostProcess::start(HostOptions {
        config: "[cards]\nreplacement_fee = \"1.50\"\n".into(),
        ..HostOptions::default()
    });
    let mut t = merchant_with_terminal(&host, "M00000000000044", "T0000044", None);
    let old = make_pan("629305", 1);
    let new = make_pan("629305", 2);
    issue(&host, &old, "student", Some("2468"));
    deposit(&host, &old, "100.37", "open");
    let (status, _) = host.api(
        "POST",
        &format!("/v1/cards/{old}/limits"),
        Some(json!({"pin_threshold": "1.00", "daily_count": 7})),
    );
    assert_eq!(status, 200);
    assert_eq!(code(&t.purchase(&old, 37, Some("2468"))), "00");
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    let transfers_before = check["transfers"].as_u64().unwrap();

    for (body, expected, why) in [
        (json!({"new_pan": old}), 400, "itself"),
        (json!({"new_pan": "6293050000000001"}), 400, "Luhn"),
        (json!({"new_pan": new, "expiry": "99"}), 400, "bad expiry"),
        (json!({}), 400, "no new_pan"),
    ] {
        refused(
            &host,
            "POST",
            &format!("/v1/cards/{old}/replace"),
            body,
            expected,
            &old,
        );
        let _ = why;
    }
    let taken = make_pan("629305", 3);
    issue(&host, &taken, "staff", None);
    refused(
        &host,
        "POST",
        &format!("/v1/cards/{old}/replace"),
        json!({"new_pan": taken}),
        409,
        &old,
    );

    let (status, replaced) = host.api(
        "POST",
        &format!("/v1/cards/{old}/replace"),
        Some(json!({"new_pan": new})),
    );
    assert_eq!(status, 201, "{replaced}");
    assert_eq!(
        (replaced["moved"].as_str(), replaced["fee"].as_str()),
        (Some("98.50"), Some("1.50"))
    );
    assert_eq!(
        host.balance_minor(&new),
        9850,
        "balance less the fee, exactly"
    );
    assert_eq!(host.balance_minor(&old), 0);
    let (_, old_card) = host.api("GET", &format!("/v1/cards/{old}"), None);
    assert_eq!(
        (
            old_card["status"].as_str(),
            old_card["replaced_by"].as_str()
        ),
        (Some("cancelled"), Some(new.as_str()))
    );
    let (_, new_card) = host.api("GET", &format!("/v1/cards/{new}"), None);
    assert_eq!(
        new_card["limits"], old_card["limits"],
        "limits carried over"
    );
    assert_eq!(new_card["holder_id"], old_card["holder_id"]);
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(
        check["transfers"].as_u64().unwrap(),
        transfers_before + 1,
        "one ledger transfer"
    );
    assert_eq!(check["balanced"], true);
    let (_, statement) = host.api("GET", &format!("/v1/cards/{new}/transactions"), None);
    assert_eq!(statement["transactions"][0]["type"], "replacement");
    assert_eq!(statement["transactions"][0]["amount"], "98.50");
    let (_, blacklist) = host.api("GET", "/v1/blacklist?since=0", None);
    assert_eq!(
        blacklist["added"],
        json!([old]),
        "the old card is blacklisted"
    );

    assert_eq!(
        code(&t.purchase(&old, 100, Some("2468"))),
        "62",
        "the old card is cancelled"
    );
    assert_eq!(
        code(&t.purchase(&new, 100, Some("1111"))),
        "55",
        "the PIN threshold came along"
    );
    assert_eq!(
        code(&t.purchase(&new, 100, Some("2468"))),
        "00",
        "and so did the PIN"
    );
    assert_eq!(host.balance_minor(&new), 9750);

    let (status, again) = host.api(
        "POST",
        &format!("/v1/cards/{old}/replace"),
        Some(json!({"new_pan": new})),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["repeated"].as_bool(), again["moved"].as_str()),
        (Some(true), Some("98.50"))
    );
    assert_eq!(
        host.balance_minor(&new),
        9750,
        "a repeated replace moves nothing"
    );
    let other = make_pan("629305", 4);
    let (status, _) = host.api(
        "POST",
        &format!("/v1/cards/{old}/replace"),
        Some(json!({"new_pan": other})),
    );
    assert_eq!(status, 409, "a cancelled card cannot be replaced again");
}

#[test]
fn cancel_pin_limits_and_expiry() {
    let host = fresh();
    let mut t = merchant_with_terminal(&host, "M00000000000033", "T0000033", None);
    let pan = make_pan("629306", 1);
    issue(&host, &pan, "student", Some("1234"));
    deposit(&host, &pan, "300.00", "open");

    // PIN: three wrong tries lock it (75) until a new PIN is set.
    for _ in 0..3 {
        t.purchase(&pan, 15_000, Some("9999"));
    }
    assert_eq!(code(&t.purchase(&pan, 15_000, Some("1234"))), "75");
    for pin in ["123", "1234567890123", "12a4", ""] {
        refused(
            &host,
            "POST",
            &format!("/v1/cards/{pan}/pin"),
            json!({"pin": pin}),
            400,
            &pan,
        );
    }
    let (status, card) = host.api(
        "POST",
        &format!("/v1/cards/{pan}/pin"),
        Some(json!({"pin": "8642"})),
    );
    assert_eq!(
        (status, card["pin_tries_failed"].as_u64()),
        (200, Some(0)),
        "{card}"
    );
    assert_eq!(
        code(&t.purchase(&pan, 15_000, Some("1234"))),
        "55",
        "the old PIN is gone"
    );
    assert_eq!(code(&t.purchase(&pan, 15_000, Some("8642"))), "00");

    // Limits: own limits override the kind's; null returns to the default.
    let limits = format!("/v1/cards/{pan}/limits");
    let (status, card) = host.api("POST", &limits, Some(json!({"per_txn": "5.00"})));
    assert_eq!(
        (status, card["limits"]["per_txn"].as_str()),
        (200, Some("5.00"))
    );
    assert_eq!(code(&t.purchase(&pan, 501, None)), "61");
    assert_eq!(code(&t.purchase(&pan, 500, None)), "00");
    let (_, card) = host.api(
        "POST",
        &limits,
        Some(json!({"per_txn": null, "daily_count": 2})),
    );
    assert_eq!(
        card["limits"]["per_txn"], "500.00",
        "back to [cards.student]"
    );
    assert_eq!(
        code(&t.purchase(&pan, 100, None)),
        "65",
        "third purchase today"
    );
    for body in [
        json!({}),
        json!({"per_txn": "1.001"}),
        json!({"daily_count": -1}),
        json!({"per_txn": 5}),
        json!({"weekly": "1.00"}),
    ] {
        refused(&host, "POST", &limits, body, 400, &pan);
    }

    // Expiry.
    let expiry = format!("/v1/cards/{pan}/expiry");
    for bad in ["2013", "201", "ab12"] {
        refused(&host, "POST", &expiry, json!({"expiry": bad}), 400, &pan);
    }
    let (status, card) = host.api("POST", &expiry, Some(json!({"expiry": "2001"})));
    assert_eq!((status, card["expiry"].as_str()), (200, Some("2001")));
    host.api("POST", &limits, Some(json!({"daily_count": null})));
    assert_eq!(code(&t.purchase(&pan, 100, None)), "54");
    host.api("POST", &expiry, Some(json!({"expiry": "3106"})));
    assert_eq!(code(&t.purchase(&pan, 100, None)), "00");

    // Cancel: the balance goes to forfeited balances (the default), once.
    let balance = host.balance_minor(&pan);
    let (status, card) = host.api("POST", &format!("/v1/cards/{pan}/cancel"), None);
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["status"], "cancelled");
    assert_eq!(
        parse_minor(card["balance_closed"].as_str().unwrap()),
        balance
    );
    assert_eq!(
        (card["balance"].as_str(), card["balance_to"].as_str()),
        (Some("0.00"), Some("forfeited"))
    );
    let (status, again) = host.api("POST", &format!("/v1/cards/{pan}/cancel"), None);
    assert_eq!((status, again["repeated"].as_bool()), (200, Some(true)));
    assert_eq!(code(&t.purchase(&pan, 100, None)), "62");
    for (path, body) in [
        ("pin", json!({"pin": "1111"})),
        ("limits", json!({"per_txn": "1.00"})),
        ("expiry", json!({"expiry": "3512"})),
        ("deposits", json!({"amount": "1.00", "reference": "late"})),
        ("found", json!({})),
    ] {
        refused(
            &host,
            "POST",
            &format!("/v1/cards/{pan}/{path}"),
            body,
            409,
            &pan,
        );
    }
    let unknown = make_pan("629306", 9);
    for (path, body) in [
        ("cancel", json!({})),
        ("pin", json!({"pin": "1234"})),
        ("limits", json!({"per_txn": "1.00"})),
        ("expiry", json!({"expiry": "3012"})),
        ("replace", json!({"new_pan": make_pan("629306", 8)})),
        ("withdrawals", json!({"amount": "1.00", "reference": "w"})),
    ] {
        let (status, answer) = host.api("POST", &format!("/v1/cards/{unknown}/{path}"), Some(body));
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(check["balanced"], true);
}

#[test]
fn cancel_pays_out_at_the_cash_desk_and_kind_defaults_come_from_the_config() {
    let host = HostProcess::start(HostOptions {
        config:
            "[cards]\ncancel_balance_to = \"cash_desk\"\n[cards.temporary]\nper_txn = \"7.00\"\n"
                .into(),
        ..HostOptions::default()
    });
    let pan = make_pan("629307", 1);
    let card = issue(&host, &pan, "temporary", None);
    assert_eq!(
        card["limits"]["per_txn"], "7.00",
        "kind defaults come from the configuration"
    );
    assert_eq!(
        card["limits"]["daily_amount"], "200.00",
        "a key left out keeps its kind's default"
    );
    deposit(&host, &pan, "12.34", "open");
    let (status, card) = host.api("POST", &format!("/v1/cards/{pan}/cancel"), None);
    assert_eq!(status, 200, "{card}");
    assert_eq!(
        (card["balance_closed"].as_str(), card["balance_to"].as_str()),
        (Some("12.34"), Some("cash_desk"))
    );
    let (_, statement) = host.api("GET", &format!("/v1/cards/{pan}/transactions"), None);
    assert_eq!(statement["transactions"][0]["type"], "cancellation");
    assert_eq!(statement["transactions"][0]["amount"], "-12.34");
}

#[test]
fn subsidies_are_all_or_nothing_and_idempotent_by_reference() {
    let host = fresh();
    let pans: Vec<String> = (0..4).map(|i| make_pan("629308", i)).collect();
    for pan in &pans {
        issue(&host, pan, "student", None);
    }
    host.api("POST", &format!("/v1/cards/{}/cancel", pans[3]), None);
    let items = |amounts: &[&str]| -> Value {
        json!(pans
            .iter()
            .zip(amounts)
            .map(|(pan, amount)| json!({"pan": pan, "amount": amount}))
            .collect::<Vec<_>>())
    };
    let unknown = make_pan("629308", 9);
    let mut bad = items(&["10.00", "10.00", "1.001"]);
    bad.as_array_mut()
        .unwrap()
        .push(json!({"pan": unknown, "amount": "5.00"}));
    bad.as_array_mut()
        .unwrap()
        .push(json!({"pan": pans[0], "amount": "5.00"}));
    bad.as_array_mut()
        .unwrap()
        .push(json!({"pan": pans[3], "amount": "5.00"}));
    refused(
        &host,
        "POST",
        "/v1/subsidies",
        json!({"reference": "oct", "items": bad}),
        422,
        &pans[0],
    );
    let (_, answer) = host.api(
        "POST",
        "/v1/subsidies",
        Some(json!({"reference": "oct", "items": bad})),
    );
    let offending: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["pan"].as_str().unwrap()))
        .collect();
    assert_eq!(
        offending,
        [
            (2, pans[2].as_str()),
            (3, unknown.as_str()),
            (4, pans[0].as_str()),
            (5, pans[3].as_str())
        ],
        "{answer}"
    );
    for body in [
        json!({"reference": "x", "items": []}),
        json!({"reference": "", "items": items(&["1.00"])}),
        json!({"items": items(&["1.00"])}),
    ] {
        refused(&host, "POST", "/v1/subsidies", body, 400, &pans[0]);
    }

    let good = json!({"reference": "oct", "items": items(&["10.00", "20.50", "0.01"])});
    let (status, paid) = host.api("POST", "/v1/subsidies", Some(good.clone()));
    assert_eq!(status, 201, "{paid}");
    assert_eq!(
        paid,
        json!({"reference": "oct", "count": 3, "total": "30.51", "repeated": false})
    );
    let (status, again) = host.api("POST", "/v1/subsidies", Some(good));
    assert_eq!(status, 200);
    assert_eq!(
        again,
        json!({"reference": "oct", "count": 3, "total": "30.51", "repeated": true})
    );
    assert_eq!(
        [0, 1, 2].map(|i| host.balance_minor(&pans[i])),
        [1000, 2050, 1],
        "posted once"
    );
    refused(
        &host,
        "POST",
        "/v1/subsidies",
        json!({"reference": "oct", "items": items(&["10.00", "20.50", "0.02"])}),
        409,
        &pans[0],
    );
    refused(
        &host,
        "POST",
        "/v1/subsidies",
        json!({"reference": "oct", "items": items(&["10.00", "20.50"])}),
        409,
        &pans[0],
    );
}

#[test]
fn bulk_issue_issues_each_card_on_its_own() {
    let host = fresh();
    let mut cards: Vec<Value> = (0..20)
        .map(|i| card_body(&make_pan("629309", i), "student", None))
        .collect();
    cards[5]["kind"] = json!("alumni");
    cards[7] = cards[6].clone();
    cards[9] = json!({"pan": "1"});
    let (status, answer) = host.api("POST", "/v1/cards/bulk", Some(json!({"cards": cards})));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["issued"], 17);
    let rejected: Vec<(u64, u64)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(rejected, [(5, 400), (7, 409), (9, 400)]);
    let (status, _) = host.api(
        "GET",
        &format!("/v1/cards/{}", make_pan("629309", 19)),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = host.api("POST", "/v1/cards/bulk", Some(json!({"cards": []})));
    assert_eq!(status, 400);
    let (_, audit) = host.api("GET", "/v1/audit?since=0", None);
    assert_eq!(audit["entries"][0]["action"], "cards.issued_bulk");
}

#[test]
fn the_audit_trail_names_the_operator_and_what_changed() {
    let host = HostProcess::start(HostOptions {
        env: vec![(
            "BURSAR_ADMIN_TOKEN".into(),
            "second-operator-token-42".into(),
        )],
        ..HostOptions::default()
    });
    let pan = make_pan("629310", 1);
    issue(&host, &pan, "student", Some("7531"));
    let (status, _) = host.api_with_token(
        "POST",
        &format!("/v1/cards/{pan}/lost"),
        None,
        Some("second-operator-token-42"),
    );
    assert_eq!(status, 200);
    host.api("POST", &format!("/v1/cards/{pan}/lost"), None); // no change: not recorded
    host.api(
        "POST",
        &format!("/v1/cards/{pan}/pin"),
        Some(json!({"pin": "9753"})),
    );
    host.api("POST", "/v1/cards", Some(card_body(&pan, "student", None))); // 409: not recorded
    deposit(&host, &pan, "5.00", "a1");
    host.api(
        "POST",
        &format!("/v1/cards/{pan}/deposits"),
        Some(json!({"amount": "5.00", "reference": "a1"})),
    );

    let (status, audit) = host.api("GET", "/v1/audit?since=0", None);
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    let summary: Vec<(u64, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["operator"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "e2e", "card.issued"),
            (2, "env", "card.lost"),
            (3, "e2e", "card.pin_set"),
            (4, "e2e", "card.deposit")
        ]
    );
    let masked = format!("{}******{}", &pan[..6], &pan[12..]);
    assert!(
        entries.iter().all(|e| e["subject"] == masked.as_str()),
        "{audit}"
    );
    assert!(entries[1]["detail"]
        .as_str()
        .unwrap()
        .contains("blacklist version 1"));
    assert!(entries[3]["detail"].as_str().unwrap().contains("5.00"));
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));
    // What an entry says, without its timestamps, whose digits may hold any four in a row.
    let text: String = entries
        .iter()
        .flat_map(|e| ["operator", "action", "subject", "detail"].map(|key| e[key].to_string()))
        .collect();
    assert!(
        !text.contains(&pan) && !text.contains("7531") && !text.contains("9753"),
        "no PAN or PIN: {text}"
    );

    let (status, closed) = host.api("POST", "/v1/cutover", Some(json!({})));
    assert_eq!(status, 200, "{closed}");
    let (_, last) = host.api("GET", "/v1/audit?since=4", None);
    assert_eq!(last["entries"][0]["action"], "day.cutover", "{last}");
    assert_eq!(last["entries"][0]["subject"], closed["business_date"]);

    let (_, tail) = host.api("GET", "/v1/audit?since=2&limit=1", None);
    assert_eq!(
        (
            tail["entries"][0]["id"].as_u64(),
            tail["next"].as_u64(),
            tail["more"].as_bool()
        ),
        (Some(3), Some(3), Some(true))
    );
    for bad in ["since=x", "since=-1", "limit=0", "limit=1001"] {
        let (status, _) = host.api("GET", &format!("/v1/audit?{bad}"), None);
        assert_eq!(status, 400, "{bad}");
    }
}

#[test]
fn every_change_survives_kill_9_and_restart() {
    let mut host = HostProcess::start(HostOptions::demo());
    let pan = make_pan("629311", 1);
    let new = make_pan("629311", 2);
    let other = make_pan("629311", 3);
    issue(&host, &pan, "staff", Some("1470"));
    issue(&host, &other, "temporary", None);
    deposit(&host, &pan, "40.00", "k1");
    host.api(
        "POST",
        &format!("/v1/cards/{pan}/limits"),
        Some(json!({"per_txn": "30.00"})),
    );
    host.api(
        "POST",
        &format!("/v1/cards/{pan}/expiry"),
        Some(json!({"expiry": "3311"})),
    );
    host.api("POST", "/v1/subsidies", Some(json!({"reference": "k", "items": [{"pan": pan, "amount": "2.00"}, {"pan": other, "amount": "3.00"}]})));
    host.api("POST", &format!("/v1/cards/{other}/lost"), None);
    let (status, _) = host.api(
        "POST",
        &format!("/v1/cards/{pan}/replace"),
        Some(json!({"new_pan": new})),
    );
    assert_eq!(status, 201);
    host.api(
        "POST",
        &format!("/v1/cards/{new}/pin"),
        Some(json!({"pin": "2580"})),
    );
    let (status, _) = host.api(
        "POST",
        "/v1/merchants",
        Some(merchant_body("M00000000000011", Some(&["staff"]))),
    );
    assert_eq!(status, 201);
    let snapshot = |host: &HostProcess| {
        json!({
            "old": card_state(host, &pan),
            "new": card_state(host, &new),
            "other": card_state(host, &other),
            "blacklist": host.api("GET", "/v1/blacklist?since=0", None).1,
            "audit": host.api("GET", "/v1/audit?since=0", None).1,
            "check": host.api("GET", "/v1/ledger/check", None).1,
        })
    };
    let before = snapshot(&host);
    host.kill9();
    host.restart();
    assert_eq!(snapshot(&host), before);
    assert_eq!(before["audit"]["last_id"], 10);
    // And the restarted host still enforces them: the new PIN, the staff-only merchant.
    let mut t = bursar_e2e::TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    t.sign_on();
    assert_eq!(code(&t.purchase(&new, 2_500, Some("2580"))), "00");
    assert_eq!(
        code(&t.purchase(&new, 3_001, Some("2580"))),
        "61",
        "limits carried and kept"
    );
    let (status, _) = host.api("POST", "/v1/subsidies", Some(json!({"reference": "k", "items": [{"pan": pan, "amount": "2.00"}, {"pan": other, "amount": "3.00"}]})));
    assert_eq!(status, 200, "a reference is remembered across a restart");
}
