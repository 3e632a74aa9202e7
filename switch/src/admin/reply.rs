//! Errors and bodies of the admin API: every error is `{"error": "..."}` with a 4xx status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::ops::OpError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    Conflict(String),
    /// Items of a batch that made all of it fail: 422, with the items listed.
    Rejected {
        message: String,
        items: serde_json::Value,
    },
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Rejected { message, items } = self {
            let body = serde_json::json!({ "error": message, "rejected": items });
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
        let (status, message) = match self {
            ApiError::Rejected { .. } => unreachable!("answered above"),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".to_owned(),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the host is not ready".to_owned(),
            ),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl From<OpError> for ApiError {
    fn from(error: OpError) -> ApiError {
        match error {
            OpError::Invalid(m) => ApiError::BadRequest(m),
            OpError::NotFound(m) => ApiError::NotFound(m),
            OpError::Conflict(m) => ApiError::Conflict(m),
        }
    }
}

impl From<ledger::engine::EngineError> for ApiError {
    fn from(_: ledger::engine::EngineError) -> ApiError {
        ApiError::Unavailable
    }
}

/// Parses a JSON body, answering 400 with serde's reason (axum's own extractor answers 422
/// with plain text, which is not this API's error shape).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Errors axum answers by itself (a body too large, a wrong method, a path it cannot
/// extract) come as plain text; the API promises `{"error": ...}` for every 4xx.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this endpoint".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
    };
    // Keep the other headers (`Allow` of a 405); only the body and its type change.
    let (mut parts, _) = response.into_parts();
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `201` for what a request created, `200` for a repeat of an earlier request (same
/// reference), which created nothing.
pub fn created_unless_repeated(repeated: bool) -> StatusCode {
    if repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}
