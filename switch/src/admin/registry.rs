//! `POST /v1/merchants`, `POST /v1/terminals`, `GET /v1/ledger/check`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::change::{change, OperatorRef};
use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::ops::audit::Change;
use crate::ops::registry::{register_merchant, register_terminal, NewMerchant, NewTerminal};

pub async fn create_merchant(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let new: NewMerchant = parse_json(&body)?;
    let merchant = change(&host, &operator, "merchant.registered", move |tx, _| {
        let merchant = register_merchant(tx, &new)?;
        let detail = format!(
            "name `{}`, settlement account {}, fee {} bps, accepts {}",
            merchant.name,
            merchant.settlement_account,
            merchant.fee_bps,
            accepted_kinds(&merchant).join(", ")
        );
        let change = Change::new(merchant.id.as_str(), detail);
        Ok((merchant, change))
    })
    .await?;
    let kinds = accepted_kinds(&merchant);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": merchant.id.as_str(),
            "name": merchant.name,
            "settlement_account": merchant.settlement_account,
            "fee_bps": merchant.fee_bps,
            "accepted_kinds": kinds,
        })),
    ))
}

fn accepted_kinds(merchant: &crate::state::registry::Merchant) -> Vec<&'static str> {
    crate::state::cards::CardKind::ALL
        .iter()
        .filter(|k| merchant.accepts(**k))
        .map(|k| k.as_str())
        .collect()
}

pub async fn create_terminal(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let new: NewTerminal = parse_json(&body)?;
    let terminal = change(&host, &operator, "terminal.registered", move |tx, _| {
        let terminal = register_terminal(tx, &new)?;
        // Never the keys: only whether there is a MAC key.
        let detail = format!(
            "merchant {}, MAC key {}, mac_required {}, offline floor limit {}",
            terminal.merchant,
            if terminal.tak.is_some() {
                "set"
            } else {
                "none"
            },
            terminal.mac_required,
            crate::money::format_amount(terminal.offline_floor_limit_minor as i64)
        );
        let change = Change::new(terminal.id.as_str(), detail);
        Ok((terminal, change))
    })
    .await?;
    // Keys are never returned.
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": terminal.id.as_str(),
            "merchant_id": terminal.merchant.as_str(),
            "mac_required": terminal.mac_required,
            "offline_floor_limit": crate::money::format_amount(terminal.offline_floor_limit_minor as i64),
        })),
    ))
}

pub async fn ledger_check(host: HostRef) -> Result<impl IntoResponse, ApiError> {
    let check = host
        .engine
        .execute(|tx| tx.state().book.check_balanced())
        .await?;
    Ok(Json(json!({
        "balanced": check.balanced,
        "debits": crate::money::format_amount(check.debits_minor as i64),
        "credits": crate::money::format_amount(check.credits_minor as i64),
        "accounts": check.accounts,
        "transfers": check.transfers,
    })))
}
