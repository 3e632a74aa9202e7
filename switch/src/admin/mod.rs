//! The admin API (PROTOCOL.md 8): HTTP + JSON on the admin listener, bearer-token auth, and
//! the unauthenticated /healthz, /readyz and /metrics.

mod batches;
mod bulk;
mod cards;
mod change;
mod cutover;
mod lifecycle;
mod registry;
mod reply;
mod statement;
mod subsidies;
mod trails;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::host::{Host, Shared};
pub use reply::ApiError;

/// Largest request body: a bulk issue of `bulk::BULK_CARDS_MAX` cards fits well inside.
pub const BODY_LIMIT: usize = 2 << 20;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let api = Router::new()
        .route("/v1/merchants", post(registry::create_merchant))
        .route("/v1/terminals", post(registry::create_terminal))
        .route("/v1/cards", post(cards::issue))
        .route("/v1/cards/bulk", post(bulk::issue_many))
        .route("/v1/cards/{pan}", get(cards::show))
        .route("/v1/cards/{pan}/transactions", get(statement::statement))
        .route("/v1/cards/{pan}/lost", post(cards::lost))
        .route("/v1/cards/{pan}/found", post(cards::found))
        .route("/v1/cards/{pan}/deposits", post(cards::deposit))
        .route("/v1/cards/{pan}/withdrawals", post(cards::withdraw))
        .route("/v1/cards/{pan}/replace", post(lifecycle::replace))
        .route("/v1/cards/{pan}/cancel", post(lifecycle::cancel))
        .route("/v1/cards/{pan}/pin", post(lifecycle::pin))
        .route("/v1/cards/{pan}/limits", post(lifecycle::limits))
        .route("/v1/cards/{pan}/expiry", post(lifecycle::expiry))
        .route("/v1/subsidies", post(subsidies::pay))
        .route("/v1/blacklist", get(trails::blacklist))
        .route("/v1/audit", get(trails::audit))
        .route("/v1/ledger/check", get(registry::ledger_check))
        .route("/v1/cutover", post(cutover::cutover))
        .route("/v1/batches/{terminal}/{batch}", get(batches::report))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(refuse_oversize))
        .layer(middleware::map_response(reply::json_errors))
        .with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "recovering\n").into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(host) = shared.host.get() {
        host.refresh_metrics().await;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

/// Bearer-token check, comparing every configured token in constant time.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let operator = shared.tokens.iter().fold(None, |found, (name, token)| {
        let matches: bool = token.as_bytes().ct_eq(presented.as_bytes()).into();
        found.or(matches.then(|| name.clone()))
    });
    // The route's template, never the path itself: a path may hold a card number.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let method = request.method().clone();
    let Some(operator) = operator else {
        tracing::warn!(%method, route, "admin request refused: missing or wrong bearer token");
        return closing(ApiError::Unauthorized.into_response());
    };
    let Some(host) = shared.host.get().cloned() else {
        return closing(ApiError::Unavailable.into_response());
    };
    request.extensions_mut().insert(Operator(operator.clone()));
    request.extensions_mut().insert(host);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if response.status().is_success() {
        tracing::info!(operator, %method, route, status, "admin request");
    } else {
        tracing::warn!(operator, %method, route, status, "admin request refused");
    }
    response
}

/// Refuses at once, before reading a byte of it, a body whose `Content-Length` is above
/// `BODY_LIMIT`; a client that waits for the answer before sending its body learns why. (A
/// body without a length is still cut at the limit as it is read.)
async fn refuse_oversize(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    }
    next.run(request).await
}

/// Marks an answer given before the request's body was read `Connection: close`: the server
/// closes such a connection, and a client that kept it for its next request would meet a
/// closed socket.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// The name of the token a request was made with, for the audit trail.
#[derive(Clone, Debug)]
pub struct Operator(pub String);

pub type HostRef = axum::Extension<Arc<Host>>;
