//! The business day (PROTOCOL.md 5): closing it (at the configured cut-over time, on the
//! bank's cutover 0800, or on an operator's request), publishing its clearing files
//! (`clearing`, `outbox`), and handing them off to the bank (a 0500 queued in the SAF).
//!
//! A close is one engine event (`DayClosed`): every posting decided after it belongs to the
//! next day, so the closed day's postings are frozen and its files can be rebuilt from the
//! book, byte-identical, whenever the bank loses them.

pub mod clearing;
pub mod outbox;
pub mod reconciliation;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use ledger::transfer::BusinessDay;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bank::messages::{clearing_request, ClearingRequest};
use crate::bank::saf;
use crate::clock::{days_from_civil, iso_date, mmdd, now_ms, parse_hh_mm, split_day};
use crate::host::Host;
use crate::state::bank::SafKind;
use crate::state::HostEvent;
use clearing::{ClearingFiles, FileSettings};

/// What closed the day, for the log.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Bank,
    Operator,
}

/// Closes are one at a time: two triggers at once close two days, in turn, never the same
/// day twice.
#[derive(Default)]
pub struct DayCloser {
    lock: tokio::sync::Mutex<()>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub business_day: BusinessDay,
    /// Names of the files written to the outbox (each file, then its `.sha256`).
    pub files: Vec<String>,
}

/// Why a close or re-publication was refused.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("business day {0} is neither closed nor the current one")]
    NotClosed(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// Closes the current business day and publishes it.
pub async fn close_current(host: &Arc<Host>, trigger: Trigger) -> Result<Published, CloseError> {
    let _one_at_a_time = host.day_close.lock.lock().await;
    let now = now_ms();
    let day = host
        .engine
        .execute(move |tx| {
            let day = tx.state().business_day;
            tx.emit(HostEvent::DayClosed {
                day,
                closed_at_ms: now,
            });
            day
        })
        .await
        .map_err(|e| CloseError::Failed(e.into()))?;
    let next = host.engine.execute(|tx| tx.state().business_day).await;
    if let Ok(next) = next {
        host.metrics.business_day.set(next.0 as i64);
    }
    info!(day = %iso_date(day), ?trigger, "business day closed");
    let published = publish(host, day).await.map_err(CloseError::Failed)?;
    // A snapshot at day close bounds the next recovery; a failure costs only time.
    if let Err(error) = host.engine.snapshot_now().await {
        warn!(%error, "snapshot at day close failed");
    }
    Ok(published)
}

/// `POST /v1/cutover`: the current day (closed now) or a closed one (published again).
pub async fn cutover(
    host: &Arc<Host>,
    business_day: Option<BusinessDay>,
) -> Result<Published, CloseError> {
    let Some(day) = business_day else {
        return close_current(host, Trigger::Operator).await;
    };
    let (current, closed) = host
        .engine
        .execute(move |tx| {
            let state = tx.state();
            (state.business_day, state.closed_days.contains_key(&day))
        })
        .await
        .map_err(|e| CloseError::Failed(e.into()))?;
    if day == current {
        return close_current(host, Trigger::Operator).await;
    }
    if !closed {
        return Err(CloseError::NotClosed(iso_date(day)));
    }
    let _one_at_a_time = host.day_close.lock.lock().await;
    info!(day = %iso_date(day), "re-publishing a closed day's clearing files");
    publish(host, day).await.map_err(CloseError::Failed)
}

/// Writes the day's files and queues its 0500 (unless one is already waiting).
async fn publish(host: &Arc<Host>, day: BusinessDay) -> anyhow::Result<Published> {
    let institution = host.config.host.institution_id.clone();
    let currency = host.config.host.currency.clone();
    let offset = host.config.host.utc_offset_minutes;
    let (files, (rec_name, rec)): (ClearingFiles, _) = host
        .engine
        .execute(move |tx| {
            let state = tx.state();
            let closed = state.closed_days.get(&day)?;
            let settings = FileSettings {
                institution: &institution,
                currency: &currency,
                utc_offset_minutes: offset,
            };
            Some((
                clearing::build(state, day, closed.closed_at_ms, &settings),
                reconciliation::build(state, day, closed.closed_at_ms, &institution),
            ))
        })
        .await?
        .ok_or_else(|| anyhow!("day {} is not closed", iso_date(day)))?;
    let dir = host.config.host.outbox_dir.clone();
    let written = {
        let files = files.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
            let mut names = Vec::new();
            names.extend(outbox::publish(&dir, &files.clr_name, &files.clr)?);
            names.extend(outbox::publish(&dir, &files.txn_name, &files.txn)?);
            names.extend(outbox::publish(&dir, &rec_name, &rec)?);
            Ok(names)
        })
        .await
        .context("file writer stopped")??
    };
    // Only now, with the file in place, may the bank be told about it (4.4).
    let institution = host.config.host.institution_id.clone();
    let sha = files.clr_sha256_hex();
    let now = now_ms();
    let queued = host
        .engine
        .execute(move |tx| {
            if tx.state().bank.clearing_queued(day) {
                return false;
            }
            let stan = tx.state().bank.next_stan();
            let message = clearing_request(
                &ClearingRequest {
                    stan,
                    settlement_mmdd: &mmdd(day),
                    file_name: &files.clr_name,
                    sha256_hex: &sha,
                    totals: files.totals,
                },
                &institution,
                now,
            )
            .expect("a clearing request of valid totals builds");
            saf::queue(tx, stan, SafKind::Clearing { day }, message.to_vec());
            true
        })
        .await?;
    if queued {
        host.bank.saf_wakeup.notify_one();
    }
    info!(day = %iso_date(day), files = ?written, hand_off_queued = queued, "clearing files published");
    Ok(Published {
        business_day: day,
        files: written,
    })
}

/// At start-up: a day closed just before a crash may not have had its files published and
/// its 0500 queued yet.
pub async fn recover(host: &Arc<Host>) -> anyhow::Result<()> {
    let unpublished: Vec<BusinessDay> = host
        .engine
        .execute(|tx| {
            tx.state()
                .closed_days
                .iter()
                .filter(|(_, closed)| !closed.clearing_queued)
                .map(|(day, _)| *day)
                .collect()
        })
        .await?;
    for day in unpublished {
        info!(day = %iso_date(day), "publishing a day closed before the last stop");
        publish(host, day).await?;
    }
    Ok(())
}

/// When the business day `day` closes by the clock: its date at the cut-over time, local.
pub fn cutover_instant_ms(day: BusinessDay, cutover_minutes: u32, utc_offset_minutes: i32) -> i64 {
    let (y, m, d) = split_day(day);
    let local_seconds = days_from_civil(y, m, d) * 86_400 + cutover_minutes as i64 * 60;
    (local_seconds - utc_offset_minutes as i64 * 60) * 1000
}

/// Closes the day at the configured cut-over time (and catches up on days missed while
/// the host was down, one close per day).
pub async fn schedule(host: Arc<Host>, shutdown: CancellationToken) {
    let cutover_minutes =
        parse_hh_mm(&host.config.host.cutover_time).expect("validated cut-over time");
    let offset = host.config.host.utc_offset_minutes;
    loop {
        let Ok(day) = host.engine.execute(|tx| tx.state().business_day).await else {
            return;
        };
        let due_ms = cutover_instant_ms(day, cutover_minutes, offset);
        let wait_ms = due_ms - now_ms() as i64;
        if wait_ms <= 0 {
            if let Err(error) = close_current(&host, Trigger::Schedule).await {
                warn!(%error, "scheduled day close failed: retrying in a minute");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            continue;
        }
        // Look again at least every second: another trigger may have closed the day.
        let nap = Duration::from_millis(wait_ms.clamp(1, 1000) as u64);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutover_instant_is_local_time_on_the_business_date() {
        // 2026-11-23 23:00 at UTC+8 is 15:00 UTC.
        let ms = cutover_instant_ms(BusinessDay(20261123), 23 * 60, 480);
        let utc = crate::clock::DateTime::from_epoch_ms(ms as u64, 0);
        assert_eq!(utc.rfc3339_utc(), "2026-11-23T15:00:00Z");
    }
}
