//! How every change made through the API runs: one closure on the engine thread decides and
//! emits its events, and, when it changed anything, its audit entry joins them in the same
//! transaction. The answer is sent once all of it is durable.

use axum::Extension;

use super::reply::ApiError;
use super::{HostRef, Operator};
use crate::authorize::HostTx;
use crate::clock::now_ms;
use crate::ops::audit::{record, Change};

pub type OperatorRef = Extension<Operator>;

/// Runs `decide` (given the host time) and records its [`Change`] under `action` if it
/// emitted any event. A failed `decide` emitted nothing, so nothing is recorded either.
pub async fn change<R, F>(
    host: &HostRef,
    operator: &OperatorRef,
    action: &'static str,
    decide: F,
) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(&mut HostTx<'_>, u64) -> Result<(R, Change), ApiError> + Send + 'static,
{
    let operator = operator.0 .0.clone();
    let now = now_ms();
    host.engine
        .execute(move |tx| {
            let before = tx.emitted();
            let (result, change) = decide(tx, now)?;
            if tx.emitted() > before {
                record(tx, &operator, now, action, change);
            }
            Ok(result)
        })
        .await?
}

/// Records a change made in steps of its own (a day close writes its files between engine
/// transactions), once it is done, in a transaction of its own: a crash between the change
/// and this record loses the record, never the change.
pub async fn record_done(
    host: &HostRef,
    operator: &OperatorRef,
    action: &'static str,
    change: Change,
) -> Result<(), ApiError> {
    let operator = operator.0 .0.clone();
    let now = now_ms();
    host.engine
        .execute(move |tx| record(tx, &operator, now, action, change))
        .await?;
    Ok(())
}
