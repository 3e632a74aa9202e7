//! `POST /v1/cutover` (PROTOCOL.md 5, 8): close the current business day now, or publish a
//! closed day's files again (byte-identical) and re-queue its 0500.

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::change::{record_done, OperatorRef};
use super::reply::{parse_json, ApiError};
use super::HostRef;
use crate::clock::{iso_date, parse_iso_date};
use crate::day::{self, CloseError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CutoverRequest {
    business_date: Option<String>,
}

pub async fn cutover(
    host: HostRef,
    operator: OperatorRef,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: CutoverRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CutoverRequest::default()
    } else {
        parse_json(&body)?
    };
    let day = match &request.business_date {
        Some(text) => Some(parse_iso_date(text).ok_or_else(|| {
            ApiError::BadRequest(format!("business_date `{text}` is not a date YYYY-MM-DD"))
        })?),
        None => None,
    };
    let published = day::cutover(&host, day)
        .await
        .map_err(|error| match error {
            CloseError::NotClosed(_) => ApiError::NotFound(error.to_string()),
            CloseError::Failed(_) => {
                tracing::error!(%error, "cutover failed");
                ApiError::Unavailable
            }
        })?;
    let detail = format!(
        "business day {} closed and published ({} asked), {} file(s)",
        iso_date(published.business_day),
        request.business_date.as_deref().unwrap_or("current day"),
        published.files.len()
    );
    let change = crate::ops::audit::Change::new(iso_date(published.business_day), detail);
    record_done(&host, &operator, "day.cutover", change).await?;
    Ok(Json(json!({
        "business_date": iso_date(published.business_day),
        "files": published.files,
    })))
}
