//! `POST /v1/cards/{pan}/replace`, `/cancel`, `/pin`, `/limits`, `/expiry`.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::cards::card_json;
use super::change::{change, OperatorRef};
use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::money::format_amount;
use crate::ops::audit::Change;
use crate::ops::cards::parse_pan;
use crate::ops::lifecycle::{
    cancel_card, replace_card, set_expiry, set_limits, set_pin, ExpiryRequest, LimitsUpdate,
    PinRequest, ReplaceRequest,
};
use crate::state::cards::LimitOverrides;

pub async fn replace(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let old_pan = parse_pan(&pan)?;
    let request: ReplaceRequest = parse_json(&body)?;
    let policy = host.policy.clone();
    let (replaced, body) = change(&host, &operator, "card.replaced", move |tx, now| {
        let replaced = replace_card(tx, &policy, &old_pan, &request, now)?;
        let state = tx.state();
        let new_card = state.card(&replaced.new_pan).expect("replacement issued");
        let body = json!({
            "old_pan": old_pan.as_str(),
            "new_pan": replaced.new_pan.as_str(),
            "moved": format_amount(replaced.moved_minor as i64),
            "fee": format_amount(replaced.fee_minor as i64),
            "repeated": replaced.repeated,
            "card": card_json(state, new_card, &policy),
            "blacklist_version": state.blacklist.version(),
        });
        let detail = format!(
            "cancelled and replaced by {}; moved {}, replacement fee {}",
            replaced.new_pan,
            format_amount(replaced.moved_minor as i64),
            format_amount(replaced.fee_minor as i64)
        );
        Ok(((replaced, body), Change::new(old_pan.masked(), detail)))
    })
    .await?;
    let status = if replaced.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(body)))
}

pub async fn cancel(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, "card.cancelled", move |tx, now| {
        let cancelled = cancel_card(tx, &policy, &pan, now)?;
        let state = tx.state();
        let to = if cancelled.to_forfeit {
            "forfeited"
        } else {
            "cash_desk"
        };
        let mut body = card_json(state, state.card(&pan).expect("checked"), &policy);
        body["balance_closed"] = json!(format_amount(cancelled.balance_minor as i64));
        body["balance_to"] = json!(to);
        body["repeated"] = json!(cancelled.repeated);
        body["blacklist_version"] = json!(state.blacklist.version());
        let detail = format!(
            "cancelled; balance {} to {to}",
            format_amount(cancelled.balance_minor as i64)
        );
        Ok((body, Change::new(pan.masked(), detail)))
    })
    .await?;
    Ok(Json(body))
}

pub async fn pin(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let request: PinRequest = parse_json(&body)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, "card.pin_set", move |tx, _| {
        set_pin(tx, &policy, &pan, &request)?;
        let state = tx.state();
        let body = card_json(state, state.card(&pan).expect("checked"), &policy);
        Ok((
            body,
            Change::new(pan.masked(), "new PIN set, failed tries reset"),
        ))
    })
    .await?;
    Ok(Json(body))
}

fn describe(limits: &LimitOverrides) -> String {
    let amount = |v: Option<u64>| v.map_or("default".to_owned(), |m| format_amount(m as i64));
    format!(
        "per_txn {}, daily_amount {}, daily_count {}, pin_threshold {}",
        amount(limits.per_txn_minor),
        amount(limits.daily_amount_minor),
        limits
            .daily_count
            .map_or("default".to_owned(), |c| c.to_string()),
        amount(limits.pin_threshold_minor)
    )
}

pub async fn limits(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let update: LimitsUpdate = parse_json(&body)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, "card.limits_set", move |tx, _| {
        let (before, after) = set_limits(tx, &pan, &update)?;
        let state = tx.state();
        let body = card_json(state, state.card(&pan).expect("checked"), &policy);
        let detail = format!("own limits {} -> {}", describe(&before), describe(&after));
        Ok((body, Change::new(pan.masked(), detail)))
    })
    .await?;
    Ok(Json(body))
}

pub async fn expiry(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let request: ExpiryRequest = parse_json(&body)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, "card.expiry_set", move |tx, _| {
        let before = set_expiry(tx, &pan, &request)?;
        let state = tx.state();
        let card = state.card(&pan).expect("checked");
        let detail = format!("expiry {} -> {}", before.as_yymm(), card.expiry.as_yymm());
        Ok((
            card_json(state, card, &policy),
            Change::new(pan.masked(), detail),
        ))
    })
    .await?;
    Ok(Json(body))
}
