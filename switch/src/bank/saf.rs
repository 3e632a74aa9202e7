//! Store-and-forward (PROTOCOL.md 4.3, 4.4): reversal advices and clearing hand-offs are
//! queued as engine events (durable before their first send), then sent oldest first, one at
//! a time, again and again (0421 for a repeated 0420) until the bank answers, across
//! reconnects and restarts.

use std::sync::Arc;
use std::time::Duration;

use codec::{Field, Mti, ResponseCode};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::messages;
use super::BankError;
use crate::authorize::HostTx;
use crate::host::Host;
use crate::policy::Policy;
use crate::state::bank::{PendingTopUp, SafEntry, SafKind};
use crate::state::HostEvent;

/// Queues the 0420 that reverses `topup` at the bank.
pub fn queue_reversal(tx: &mut HostTx<'_>, topup: &PendingTopUp, policy: &Policy, now_ms: u64) {
    let stan = tx.state().bank.next_stan();
    let message = messages::reversal_advice(
        topup,
        stan,
        &policy.institution_id,
        &policy.currency,
        now_ms,
    )
    .expect("a reversal advice of a valid top-up builds");
    queue(
        tx,
        stan,
        SafKind::Reversal {
            original_stan: topup.bank_stan,
        },
        message.to_vec(),
    );
}

pub fn queue(tx: &mut HostTx<'_>, stan: u32, kind: SafKind, message: Vec<u8>) {
    assert_eq!(
        stan,
        tx.state().bank.next_stan(),
        "queued with the next STAN"
    );
    let seq = tx.state().bank.next_saf_seq;
    tx.emit(HostEvent::SafQueued(Box::new(SafEntry {
        seq,
        stan,
        kind,
        message,
        sent: false,
    })));
}

/// The sender: runs until shutdown.
pub async fn run(host: Arc<Host>, shutdown: CancellationToken) {
    let timeout = Duration::from_millis(host.config.bank.timeout_ms);
    // While nothing is due, look again now and then anyway: a wake-up is only a hint.
    let idle_check = Duration::from_millis(host.config.bank.echo_interval_ms.clamp(100, 5_000));
    loop {
        let head = host
            .engine
            .execute(|tx| {
                let bank = &tx.state().bank;
                (bank.saf_head().cloned(), bank.saf.len())
            })
            .await;
        let Ok((head, depth)) = head else {
            return;
        };
        host.metrics.saf_depth.set(depth as i64);
        let due = head.filter(|_| host.bank.is_signed_on());
        let Some(entry) = due else {
            tokio::select! {
                _ = host.bank.saf_wakeup.notified() => {}
                _ = tokio::time::sleep(idle_check) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        };
        let delivered = tokio::select! {
            delivered = deliver(&host, &entry, timeout) => delivered,
            _ = shutdown.cancelled() => return,
        };
        match delivered {
            Some(true) => {
                let seq = entry.seq;
                if host
                    .engine
                    .execute(move |tx| tx.emit(HostEvent::SafDone { seq }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(false) => {}
            None => return,
        }
    }
}

/// One attempt: `Some(true)` when the bank answered it for good, `Some(false)` to try again,
/// `None` when the engine stopped.
async fn deliver(host: &Arc<Host>, entry: &SafEntry, timeout: Duration) -> Option<bool> {
    if !entry.sent {
        // Recorded before the first send, so that after a crash every later send is a repeat.
        let seq = entry.seq;
        host.engine
            .execute(move |tx| tx.emit(HostEvent::SafSent { seq }))
            .await
            .ok()?;
    }
    let frame = messages::repeat_of(&entry.message, entry.sent);
    let mti = Mti::parse(&frame[..4]).expect("queued messages have an MTI");
    let outcome = host.bank.request(frame, mti, entry.stan, timeout).await;
    let response = match outcome {
        Ok(response) => response,
        Err(BankError::NotSent) => {
            // Link down or busy: wait for the next sign-on (or a moment) and retry.
            tokio::select! {
                _ = host.bank.saf_wakeup.notified() => {}
                _ = tokio::time::sleep(timeout) => {}
            }
            return Some(false);
        }
        Err(BankError::NoAnswer) => {
            warn!(stan = entry.stan, mti = %mti.as_str(), "no answer to a stored advice: repeating");
            return Some(false);
        }
    };
    let code = response
        .get(Field::ResponseCode)
        .and_then(ResponseCode::from_code);
    match entry.kind {
        // A 0430 of any code ends a reversal advice: the bank has it.
        SafKind::Reversal { original_stan } => {
            info!(
                stan = entry.stan,
                original_stan, "reversal advice delivered"
            );
            Some(true)
        }
        SafKind::Clearing { day } if code == Some(ResponseCode::Approved) => {
            info!(day = day.0, "clearing hand-off accepted by the bank");
            Some(true)
        }
        SafKind::Clearing { day } => {
            // 4.4: store-and-forward until `00`. Totals the bank disputes need an operator
            // (re-publish with POST /v1/cutover); keep trying at the timeout's pace.
            error!(day = day.0, code = ?code, "bank did not accept the clearing hand-off: repeating");
            tokio::time::sleep(timeout).await;
            Some(false)
        }
    }
}
