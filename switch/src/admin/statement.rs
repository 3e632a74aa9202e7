//! `GET /v1/cards/{pan}/transactions?from=&to=`: the holder's statement, newest first.

use axum::extract::{Path, Query};
use axum::Json;
use ledger::account::Side;
use ledger::transfer::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::ApiError;
use super::HostRef;
use crate::clock::{iso_date, parse_iso_date};
use crate::money::format_amount;
use crate::ops::cards::parse_pan;

#[derive(Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// At most this many postings per statement page: a limit on what one request can cost.
const STATEMENT_ROWS_MAX: usize = 10_000;

pub async fn statement(
    host: HostRef,
    Path(pan): Path<String>,
    Query(range): Query<Range>,
) -> Result<Json<Value>, ApiError> {
    let pan = parse_pan(&pan)?;
    let day = |text: &Option<String>, name: &str| -> Result<Option<u32>, ApiError> {
        text.as_deref()
            .map(|t| {
                parse_iso_date(t)
                    .map(|d| d.0)
                    .ok_or_else(|| ApiError::BadRequest(format!("{name} must be YYYY-MM-DD")))
            })
            .transpose()
    };
    let (from, to) = (
        day(&range.from, "from")?.unwrap_or(0),
        day(&range.to, "to")?.unwrap_or(u32::MAX),
    );
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    let rows = host
        .engine
        .execute(move |tx| {
            let state = tx.state();
            let card = state.card(&pan)?;
            let rows: Vec<Value> = state
                .book
                .postings_of(card.account)
                .rev()
                .filter(|(applied, _)| (from..=to).contains(&applied.transfer.business_day.0))
                .take(STATEMENT_ROWS_MAX)
                .map(|(applied, balance_after)| {
                    let t = &applied.transfer;
                    let signed: i64 = t
                        .legs
                        .iter()
                        .filter(|l| l.account == card.account)
                        .map(|l| if l.side == Side::Credit { l.amount_minor as i64 } else { -(l.amount_minor as i64) })
                        .sum();
                    let merchant = std::str::from_utf8(&t.refs.merchant).ok().filter(|m| !m.starts_with('\0'));
                    json!({
                        "rrn": (t.refs.rrn != 0).then(|| format!("{:012}", t.refs.rrn)),
                        "type": t.kind.name(),
                        "merchant": merchant,
                        "amount": format_amount(signed),
                        "balance_after": format_amount(balance_after),
                        "business_date": iso_date(t.business_day),
                        "channel": if t.refs.channel == Channel::Offline { "offline" } else { "online" },
                        "reversed": state.book.is_reversed(t.id),
                    })
                })
                .collect();
            Some(rows)
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("card {pan} is not issued")))?;
    Ok(Json(json!({ "pan": pan.as_str(), "transactions": rows })))
}
