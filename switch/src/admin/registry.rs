//! `POST /v1/merchants`, `POST /v1/terminals`, `GET /v1/ledger/check`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::ops::registry::{register_merchant, register_terminal, NewMerchant, NewTerminal};

pub async fn create_merchant(host: HostRef, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let new: NewMerchant = parse_json(&body)?;
    let merchant = host
        .engine
        .execute(move |tx| register_merchant(tx, &new))
        .await??;
    let kinds: Vec<&str> = crate::state::cards::CardKind::ALL
        .iter()
        .filter(|k| merchant.accepts(**k))
        .map(|k| k.as_str())
        .collect();
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

pub async fn create_terminal(host: HostRef, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let new: NewTerminal = parse_json(&body)?;
    let terminal = host
        .engine
        .execute(move |tx| register_terminal(tx, &new))
        .await??;
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
