//! Operator helpers over the admin API, for the end-to-end tests.

use serde_json::{json, Value};

use crate::host::HostProcess;
use crate::terminal::TestTerminal;

/// The body of `POST /v1/cards` for a card of `kind`, with PIN `pin` if any.
pub fn card_body(pan: &str, kind: &str, pin: Option<&str>) -> Value {
    let mut body = json!({
        "pan": pan,
        "holder_name": "Test Holder",
        "holder_id": format!("H-{}", &pan[pan.len() - 6..]),
        "kind": kind,
        "expiry": "3012",
    });
    if let Some(pin) = pin {
        body["pin"] = json!(pin);
    }
    body
}

/// Issues a card (asserting 201) and returns its JSON.
pub fn issue(host: &HostProcess, pan: &str, kind: &str, pin: Option<&str>) -> Value {
    let (status, body) = host.api("POST", "/v1/cards", Some(card_body(pan, kind, pin)));
    assert_eq!(status, 201, "issue {kind} card: {body}");
    body
}

/// A cash deposit at the desk (asserting 201).
pub fn deposit(host: &HostProcess, pan: &str, amount: &str, reference: &str) -> Value {
    let (status, body) = host.api(
        "POST",
        &format!("/v1/cards/{pan}/deposits"),
        Some(json!({"amount": amount, "reference": reference})),
    );
    assert_eq!(status, 201, "deposit: {body}");
    body
}

pub fn merchant_body(id: &str, kinds: Option<&[&str]>) -> Value {
    let mut body = json!({
        "id": id,
        "name": "Test Canteen",
        "settlement_account": "6222000011112222",
        "fee_bps": 150,
    });
    if let Some(kinds) = kinds {
        body["accepted_kinds"] = json!(kinds);
    }
    body
}

pub fn terminal_body(id: &str, merchant: &str) -> Value {
    json!({
        "id": id,
        "merchant_id": merchant,
        "tpk": crate::demo::TPK,
        "mac_required": false,
        "offline_floor_limit": "50.00",
    })
}

/// Registers a merchant and one terminal of it, and signs the terminal on.
pub fn merchant_with_terminal(
    host: &HostProcess,
    merchant: &str,
    terminal: &str,
    kinds: Option<&[&str]>,
) -> TestTerminal {
    let (status, body) = host.api(
        "POST",
        "/v1/merchants",
        Some(merchant_body(merchant, kinds)),
    );
    assert_eq!(status, 201, "merchant: {body}");
    let (status, body) = host.api(
        "POST",
        "/v1/terminals",
        Some(terminal_body(terminal, merchant)),
    );
    assert_eq!(status, 201, "terminal: {body}");
    let mut t = TestTerminal::connect(host.terminal_addr, terminal, merchant);
    t.sign_on();
    t
}

/// The audit trail's id of its latest entry.
pub fn audit_last_id(host: &HostProcess) -> u64 {
    let (status, body) = host.api("GET", "/v1/audit?since=0&limit=1", None);
    assert_eq!(status, 200, "audit: {body}");
    body["last_id"].as_u64().expect("last_id")
}

/// Everything the API shows of a card and the book: what must not change when a request
/// fails, and what must survive a restart.
pub fn card_state(host: &HostProcess, pan: &str) -> Value {
    let (status, card) = host.api("GET", &format!("/v1/cards/{pan}"), None);
    assert_eq!(status, 200, "card: {card}");
    let (status, statement) = host.api("GET", &format!("/v1/cards/{pan}/transactions"), None);
    assert_eq!(status, 200, "statement: {statement}");
    json!({"card": card, "statement": statement})
}
