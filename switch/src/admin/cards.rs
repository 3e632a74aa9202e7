//! Card endpoints: issue, show, lost / found, cash at the desk.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use ledger::transfer::TransferKind;
use serde::Deserialize;
use serde_json::{json, Value};

use super::change::{change, OperatorRef};
use super::reply::{created_unless_repeated, parse_json, ApiError};
use super::HostRef;
use crate::money::{format_amount, parse_amount};
use crate::ops::audit::Change;
use crate::ops::cards::{desk_cash, issue_card, parse_pan, set_lost, NewCard};
use crate::policy::Policy;
use crate::state::cards::{Card, CardStatus, LimitOverrides};
use crate::state::HostState;

pub fn card_json(state: &HostState, card: &Card, policy: &Policy) -> Value {
    let balance_minor = state.card_balance_minor(card);
    let status = match card.status {
        CardStatus::Lost => "lost",
        CardStatus::Cancelled => "cancelled",
        CardStatus::Active if balance_minor < 0 => "frozen",
        CardStatus::Active => "active",
    };
    let limits = card.limits.over(policy.kind_limits(card.kind));
    json!({
        "pan": card.pan.as_str(),
        "kind": card.kind.as_str(),
        "status": status,
        "balance": format_amount(balance_minor),
        "holder_name": card.holder_name,
        "holder_id": card.holder_id,
        "expiry": card.expiry.as_yymm(),
        "bank_account_linked": card.bank_account.is_some(),
        "pin_set": card.pin_verifier.is_some(),
        "pin_tries_failed": card.pin_tries_failed,
        "limits": {
            "per_txn": format_amount(limits.per_txn_minor as i64),
            "daily_amount": format_amount(limits.daily_amount_minor as i64),
            "daily_count": limits.daily_count,
            "pin_threshold": format_amount(limits.pin_threshold_minor as i64),
        },
        "limits_overridden": overridden(&card.limits),
        "replaced_by": card.replaced_by.map(|p| p.as_str().to_owned()),
    })
}

/// Which limits are the card's own rather than its kind's default.
pub fn overridden(limits: &LimitOverrides) -> Vec<&'static str> {
    [
        ("per_txn", limits.per_txn_minor.is_some()),
        ("daily_amount", limits.daily_amount_minor.is_some()),
        ("daily_count", limits.daily_count.is_some()),
        ("pin_threshold", limits.pin_threshold_minor.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name)
    .collect()
}

/// What the audit trail says about a newly issued card (never its PIN).
pub fn issued_detail(card: &Card) -> String {
    format!(
        "issued {} card, holder_id `{}`, expiry {}, PIN {}, bank account {}, own limits [{}]",
        card.kind.as_str(),
        card.holder_id,
        card.expiry.as_yymm(),
        if card.pin_verifier.is_some() {
            "set"
        } else {
            "not set"
        },
        if card.bank_account.is_some() {
            "linked"
        } else {
            "none"
        },
        overridden(&card.limits).join(", "),
    )
}

pub async fn issue(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let new: NewCard = parse_json(&body)?;
    let policy = host.policy.clone();
    let body = change(&host, &operator, "card.issued", move |tx, _| {
        let card = issue_card(tx, &policy, &new)?;
        let change = Change::new(card.pan.masked(), issued_detail(&card));
        Ok((card_json(tx.state(), &card, &policy), change))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn show(host: HostRef, Path(pan): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let pan = parse_pan(&pan)?;
    let policy = host.policy.clone();
    let body = host
        .engine
        .execute(move |tx| {
            let state = tx.state();
            state.card(&pan).map(|card| card_json(state, card, &policy))
        })
        .await?;
    body.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("card {pan} is not issued")))
}

async fn set_lost_status(
    host: HostRef,
    operator: OperatorRef,
    pan: String,
    lost: bool,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let policy = host.policy.clone();
    let action = if lost { "card.lost" } else { "card.found" };
    let body = change(&host, &operator, action, move |tx, now| {
        set_lost(tx, &pan, lost, now)?;
        let state = tx.state();
        let version = state.blacklist.version();
        let mut body = card_json(state, state.card(&pan).expect("just checked"), &policy);
        body["blacklist_version"] = json!(version);
        let detail = format!(
            "{}; blacklist version {version}",
            if lost {
                "reported lost, blocked"
            } else {
                "found, unblocked"
            }
        );
        Ok((body, Change::new(pan.masked(), detail)))
    })
    .await?;
    Ok(Json(body))
}

pub async fn lost(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_lost_status(host, operator, pan, true).await
}

pub async fn found(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_lost_status(host, operator, pan, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeskRequest {
    amount: String,
    reference: String,
}

async fn desk(
    host: HostRef,
    operator: OperatorRef,
    pan: String,
    body: Bytes,
    kind: TransferKind,
) -> Result<impl IntoResponse, ApiError> {
    let pan = parse_pan(&pan)?;
    let request: DeskRequest = parse_json(&body)?;
    let amount_minor =
        parse_amount(&request.amount).map_err(|e| ApiError::BadRequest(format!("amount: {e}")))?;
    let reference = request.reference.clone();
    let action = if kind == TransferKind::Deposit {
        "card.deposit"
    } else {
        "card.withdrawal"
    };
    let result = change(&host, &operator, action, move |tx, now| {
        let result = desk_cash(tx, &pan, kind, amount_minor, &reference, now)?;
        let detail = format!(
            "{} {} at the desk, reference `{reference}`, balance after {}",
            if kind == TransferKind::Deposit {
                "paid in"
            } else {
                "paid out"
            },
            format_amount(amount_minor as i64),
            format_amount(result.balance_minor)
        );
        Ok((result, Change::new(pan.masked(), detail)))
    })
    .await?;
    let status = created_unless_repeated(result.repeated);
    Ok((
        status,
        Json(json!({
            "pan": pan.as_str(),
            "reference": request.reference,
            "amount": format_amount(result.amount_minor as i64),
            "balance": format_amount(result.balance_minor),
            "repeated": result.repeated,
        })),
    ))
}

pub async fn deposit(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    desk(host, operator, pan, body, TransferKind::Deposit).await
}

pub async fn withdraw(
    host: HostRef,
    operator: OperatorRef,
    Path(pan): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    desk(host, operator, pan, body, TransferKind::Withdrawal).await
}
