//! Read-only trails: `GET /v1/blacklist?since=` and `GET /v1/audit?since=`.

use axum::extract::Query;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::ApiError;
use super::HostRef;
use crate::clock::DateTime;

#[derive(Deserialize)]
pub struct Since {
    since: Option<String>,
    limit: Option<String>,
}

fn number(text: &Option<String>, name: &str) -> Result<Option<u64>, ApiError> {
    text.as_deref()
        .map(|t| {
            t.parse::<u64>().map_err(|_| {
                ApiError::BadRequest(format!("{name} must be a non-negative whole number"))
            })
        })
        .transpose()
}

/// The blacklist changes after `since`, as the sets the terminal download brings a terminal
/// at `since` to: `{version, added, removed}`.
pub async fn blacklist(host: HostRef, Query(query): Query<Since>) -> Result<Json<Value>, ApiError> {
    let since = number(&query.since, "since")?.unwrap_or(0);
    let body = host
        .engine
        .execute(move |tx| {
            let (version, added, removed) = tx.state().blacklist.delta_since(since);
            let pans = |list: Vec<crate::state::ids::Pan>| -> Vec<String> {
                list.iter().map(|p| p.as_str().to_owned()).collect()
            };
            json!({
                "since": since,
                "version": version,
                "added": pans(added),
                "removed": pans(removed),
            })
        })
        .await?;
    Ok(Json(body))
}

/// Most audit entries per page; `next` is where the following page starts.
const AUDIT_PAGE_MAX: u64 = 1000;

pub async fn audit(host: HostRef, Query(query): Query<Since>) -> Result<Json<Value>, ApiError> {
    let since = number(&query.since, "since")?.unwrap_or(0);
    let limit = number(&query.limit, "limit")?.unwrap_or(AUDIT_PAGE_MAX);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be within 1..={AUDIT_PAGE_MAX}"
        )));
    }
    let body = host
        .engine
        .execute(move |tx| {
            let trail = &tx.state().audit;
            let (page, more) = trail.page_since(since, limit as usize);
            let entries: Vec<Value> = page
                .iter()
                .map(|entry| {
                    json!({
                        "id": entry.id,
                        "at": DateTime::from_epoch_ms(entry.at_ms, 0).rfc3339_utc(),
                        "at_ms": entry.at_ms,
                        "operator": entry.operator,
                        "action": entry.action,
                        "subject": entry.subject,
                        "detail": entry.detail,
                    })
                })
                .collect();
            json!({
                "since": since,
                "last_id": trail.last_id(),
                "next": page.last().map_or(since, |e| e.id),
                "more": more,
                "entries": entries,
            })
        })
        .await?;
    Ok(Json(body))
}
