//! `POST /v1/subsidies`: all or nothing, idempotent by reference.

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::change::{change, OperatorRef};
use super::reply::{created_unless_repeated, parse_json, ApiError};
use super::HostRef;
use crate::money::format_amount;
use crate::ops::audit::Change;
use crate::ops::subsidies::{pay_subsidies, SubsidyBatch, SubsidyError};

impl From<SubsidyError> for ApiError {
    fn from(error: SubsidyError) -> ApiError {
        match error {
            SubsidyError::Op(error) => error.into(),
            SubsidyError::Rejected(items) => ApiError::Rejected {
                message: format!(
                    "{} item(s) rejected: nothing of the batch was posted",
                    items.len()
                ),
                items: items
                    .into_iter()
                    .map(
                        |item| json!({"index": item.index, "pan": item.pan, "reason": item.reason}),
                    )
                    .collect(),
            },
        }
    }
}

pub async fn pay(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let batch: SubsidyBatch = parse_json(&body)?;
    let reference = batch.reference.clone();
    let paid = change(&host, &operator, "subsidy.paid", move |tx, now| {
        let paid = pay_subsidies(tx, &batch, now)?;
        let detail = format!(
            "{} card(s) credited {} in total from the subsidy fund",
            paid.count,
            format_amount(paid.total_minor as i64)
        );
        let change = Change::new(batch.reference.clone(), detail);
        Ok((paid, change))
    })
    .await?;
    let status = created_unless_repeated(paid.repeated);
    Ok((
        status,
        Json(json!({
            "reference": reference,
            "count": paid.count,
            "total": format_amount(paid.total_minor as i64),
            "repeated": paid.repeated,
        })),
    ))
}
