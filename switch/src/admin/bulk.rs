//! `POST /v1/cards/bulk` `{cards: [...]}`: issues many cards in one request, each on its own
//! (a rejected card changes nothing and does not stop the others), for issuing a year's
//! intake from a file. Not in PROTOCOL.md 8: an addition, each card exactly as
//! `POST /v1/cards` would issue it. One request is one WAL group, one sync for all its cards.

use axum::body::Bytes;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::cards::issued_detail;
use super::change::{change, OperatorRef};
use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::ops::audit::Change;
use crate::ops::cards::{issue_card, NewCard};
use crate::ops::OpError;

/// Most cards per request: bounds the request body and how long the engine thread (and so
/// terminal traffic) waits for one request.
pub const BULK_CARDS_MAX: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkIssue {
    cards: Vec<Value>,
}

fn status_of(error: &OpError) -> u16 {
    match error {
        OpError::Invalid(_) => 400,
        OpError::NotFound(_) => 404,
        OpError::Conflict(_) => 409,
    }
}

pub async fn issue_many(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: BulkIssue = parse_json(&body)?;
    if request.cards.is_empty() || request.cards.len() > BULK_CARDS_MAX {
        return Err(ApiError::BadRequest(format!(
            "cards must hold 1 to {BULK_CARDS_MAX} cards"
        )));
    }
    let policy = host.policy.clone();
    let body = change(&host, &operator, "cards.issued_bulk", move |tx, _| {
        let mut issued = Vec::new();
        let mut rejected = Vec::new();
        let mut first_detail = None;
        for (index, value) in request.cards.into_iter().enumerate() {
            let pan = value.get("pan").cloned().unwrap_or(Value::Null);
            let outcome = serde_json::from_value::<NewCard>(value)
                .map_err(|e| OpError::invalid(format!("invalid card: {e}")))
                .and_then(|new| issue_card(tx, &policy, &new));
            match outcome {
                Ok(card) => {
                    first_detail.get_or_insert_with(|| issued_detail(&card));
                    issued.push(card.pan);
                }
                Err(error) => rejected.push(json!({
                    "index": index,
                    "pan": pan,
                    "status": status_of(&error),
                    "error": error.to_string(),
                })),
            }
        }
        let detail = match (issued.first(), issued.last()) {
            (Some(first), Some(last)) => format!(
                "issued {} card(s), {first} to {last}, {} rejected; first: {}",
                issued.len(),
                rejected.len(),
                first_detail.unwrap_or_default()
            ),
            _ => format!("issued none, {} rejected", rejected.len()),
        };
        let body = json!({
            "issued": issued.len(),
            "rejected": rejected,
        });
        Ok((body, Change::new("bulk issue", detail)))
    })
    .await?;
    Ok(Json(body))
}
