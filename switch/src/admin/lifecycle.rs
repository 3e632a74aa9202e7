//! `POST /v1/cards/{pan}/replace`, `/cancel`, `/pin`, `/limits`, `/expiry`.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::cards::card_json;
use super::change::{change, OperatorRef};
use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::authorize::HostTx;
use crate::money::format_amount;
use crate::ops::audit::Change;
use crate::ops::cards::parse_pan;
use crate::ops::lifecycle::{
    cancel_card, replace_card, set_expiry, set_limits, set_pin, ExpiryRequest, LimitsUpdate,
    PinRequest, ReplaceRequest,
};
use crate::policy::Policy;
use crate::state::cards::LimitOverrides;
use crate::state::ids::Pan;

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

/// The card updates that answer with the card as it now is: parse the PAN and the body, make
/// the change with its audit entry (`update` returns the entry's detail), answer with the card.
async fn update_card<R, F>(
    host: HostRef,
    operator: OperatorRef,
    action: &'static str,
    pan: &str,
    body: &[u8],
    update: F,
) -> Result<Json<Value>, ApiError>
where
    R: DeserializeOwned + Send + 'static,
    F: FnOnce(&mut HostTx<'_>, &Policy, &Pan, R) -> Result<String, ApiError> + Send + 'static,
{
    let pan = parse_pan(pan)?;
    let request: R = parse_json(body)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, action, move |tx, _| {
        let detail = update(tx, &policy, &pan, request)?;
        let state = tx.state();
        let card = state.card(&pan).expect("the update found the card");
        Ok((
            card_json(state, card, &policy),
            Change::new(pan.masked(), detail),
        ))
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
    update_card(
        host,
        operator,
        "card.pin_set",
        &pan,
        &body,
        |tx, policy, pan, request: PinRequest| {
            set_pin(tx, policy, pan, &request)?;
            Ok("new PIN set, failed tries reset".to_owned())
        },
    )
    .await
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
    update_card(
        host,
        operator,
        "card.limits_set",
        &pan,
        &body,
        |tx, _, pan, update: LimitsUpdate| {
            let (before, after) = set_limits(tx, pan, &update)?;
            Ok(format!(
                "own limits {} -> {}",
                describe(&before),
                describe(&after)
            ))
        },
    )
    .await
}

pub async fn expiry(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update_card(
        host,
        operator,
        "card.expiry_set",
        &pan,
        &body,
        |tx, _, pan, request: ExpiryRequest| {
            let before = set_expiry(tx, pan, &request)?;
            let after = tx
                .state()
                .card(pan)
                .expect("the update found the card")
                .expiry;
            Ok(format!(
                "expiry {} -> {}",
                before.as_yymm(),
                after.as_yymm()
            ))
        },
    )
    .await
}
