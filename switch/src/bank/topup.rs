//! The bank half of a kiosk top-up (PROTOCOL.md 3.5, 4.2): send the 0200, wait for the
//! bank's answer, and record the outcome on the engine thread before the kiosk hears it.
//!
//! - approved: the card is credited from the bank settlement account (an engine event,
//!   durable before the kiosk's 0210), once: the transfer id is the kiosk request's;
//! - declined: the bank's code goes to the kiosk;
//! - no answer in time (or the link dropped with the request out): `91`, and a reversal
//!   advice is queued (`saf`), since the bank may have approved it;
//! - not sent at all (link down, in-flight limit): `91`, nothing to reverse.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use codec::{Field, Message, Mti, ResponseCode};
use ledger::account::Side;
use ledger::book::{LedgerEvent, Prepared};
use ledger::transfer::{Channel, Leg, References, Transfer, TransferKind};
use tracing::{info, warn};

use super::messages;
use super::saf;
use super::BankError;
use crate::authorize::{approval_code, code_bytes, transfer_id_of, BankStep, Decision, HostTx};
use crate::clock::now_ms;
use crate::host::Host;
use crate::policy::Policy;
use crate::state::answers::{Answer, Reply, RequestKey};
use crate::state::bank::PendingTopUp;
use crate::state::registry::TerminalKey;
use crate::state::HostEvent;

/// The kiosk's decision once the bank step is done; `None` if the engine stopped.
pub async fn complete(
    host: &Arc<Host>,
    step: BankStep,
    mac_key: Option<TerminalKey>,
) -> Option<Decision> {
    let (reply, reason) = match step {
        BankStep::Send(pending) => send(host, pending).await?,
        BankStep::AwaitPending(key) => (await_answer(host, key).await?, None),
    };
    Some(Decision {
        reply,
        private_data: None,
        mac_key,
        reason,
    })
}

async fn send(host: &Arc<Host>, pending: PendingTopUp) -> Option<(Reply, Option<&'static str>)> {
    let config = &host.config.bank;
    let timeout = Duration::from_millis(config.timeout_ms);
    let outcome =
        match messages::topup_request(&pending, &host.policy.institution_id, &host.policy.currency)
        {
            Ok(frame) => {
                host.bank
                    .request(frame, Mti::FINANCIAL_REQUEST, pending.bank_stan, timeout)
                    .await
            }
            Err(error) => {
                warn!(%error, "cannot build the bank top-up request");
                Err(BankError::NotSent)
            }
        };
    let policy = host.policy.clone();
    let now = now_ms();
    let (reply, reason, reversal_queued) = host
        .engine
        .execute(move |tx| finish(tx, &pending, outcome, &policy, now))
        .await
        .ok()?;
    if reversal_queued {
        host.bank.saf_wakeup.notify_one();
    }
    info!(
        terminal = %pending.terminal,
        card = %pending.card,
        bank_stan = pending.bank_stan,
        code = std::str::from_utf8(&reply.code).unwrap_or("??"),
        reversal_queued,
        "top-up answered"
    );
    Some((reply, reason))
}

/// Records a top-up's outcome: returns the kiosk's reply, the decline reason, and whether a
/// reversal was queued.
fn finish(
    tx: &mut HostTx<'_>,
    pending: &PendingTopUp,
    outcome: Result<Message, BankError>,
    policy: &Policy,
    now_ms: u64,
) -> (Reply, Option<&'static str>, bool) {
    assert!(
        tx.state().bank.pending_topups.contains_key(&pending.key),
        "a top-up is finished once, by the task that started it"
    );
    let day = tx.state().business_day;
    let bank_code = outcome
        .as_ref()
        .ok()
        .and_then(|response| response.get(Field::ResponseCode))
        .and_then(ResponseCode::from_code);
    let (reply, reason, reverse) = match (outcome, bank_code) {
        (Ok(response), Some(ResponseCode::Approved)) => {
            match credit(tx, pending, &response, now_ms) {
                Some(reply) => (reply, None, false),
                // Approved at the bank but not postable here: undo it at the bank.
                None => (
                    declined(ResponseCode::HostMalfunction, pending, day),
                    Some("ledger refused the top-up credit"),
                    true,
                ),
            }
        }
        (Ok(_), Some(code)) => (
            declined(code, pending, day),
            Some("declined by the bank"),
            false,
        ),
        (Ok(_), None) => (
            declined(ResponseCode::BankUnavailable, pending, day),
            Some("bank answered without a usable F39"),
            true,
        ),
        (Err(BankError::NotSent), _) => (
            declined(ResponseCode::BankUnavailable, pending, day),
            Some("bank link down"),
            false,
        ),
        (Err(BankError::NoAnswer), _) => (
            declined(ResponseCode::BankUnavailable, pending, day),
            Some("no answer from the bank in time"),
            true,
        ),
    };
    if reverse {
        saf::queue_reversal(tx, pending, policy, now_ms);
    }
    tx.emit(HostEvent::Answered(Answer {
        key: pending.key,
        digest: pending.digest,
        reply,
        day,
    }));
    tx.emit(HostEvent::TopUpFinished { key: pending.key });
    (reply, reason, reverse)
}

fn declined(
    code: ResponseCode,
    pending: &PendingTopUp,
    day: ledger::transfer::BusinessDay,
) -> Reply {
    let mut reply = Reply::declined(code, day);
    reply.rrn = Some(pending.rrn);
    reply
}

/// Credits the card from the bank settlement account; `None` if the ledger refuses.
fn credit(
    tx: &mut HostTx<'_>,
    pending: &PendingTopUp,
    response: &Message,
    now_ms: u64,
) -> Option<Reply> {
    let state = tx.state();
    let card = state.card(&pending.card)?.clone();
    let approval = response
        .get(Field::ApprovalCode)
        .and_then(|code| <[u8; 6]>::try_from(code).ok())
        .unwrap_or_else(|| approval_code(pending.rrn));
    let mut legs = ArrayVec::new();
    legs.push(Leg {
        account: state.system().bank_settlement,
        side: Side::Debit,
        amount_minor: pending.amount_minor,
    });
    legs.push(Leg {
        account: card.account,
        side: Side::Credit,
        amount_minor: pending.amount_minor,
    });
    let transfer = Transfer {
        id: transfer_id_of(&pending.key),
        kind: TransferKind::TopUp,
        business_day: state.business_day,
        legs,
        allow_overdraft: false,
        related: None,
        refs: References {
            rrn: pending.rrn,
            terminal: pending.terminal.0,
            merchant: pending.merchant.0,
            batch: pending.batch,
            stan: pending.key.stan,
            local_time: pending.local_time,
            approval,
            channel: Channel::Online,
        },
        timestamp_ms: now_ms,
    };
    match state.book.prepare(&transfer) {
        Ok(Prepared::New) => tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer))),
        // The id is the kiosk request's: a credit already posted is not posted again.
        Ok(Prepared::Duplicate(_)) => {}
        Err(error) => {
            warn!(%error, card = %pending.card, "top-up credit refused by the ledger");
            return None;
        }
    }
    let day = tx.state().business_day;
    Some(Reply {
        code: code_bytes(ResponseCode::Approved),
        settlement_day: day,
        rrn: Some(pending.rrn),
        approval: Some(approval),
        balance_minor: Some(tx.state().card_balance_minor(&card)),
    })
}

/// A retransmission of a top-up still at the bank: wait (polling the engine, briefly) until
/// the original's answer is recorded, which happens within the bank timeout.
async fn await_answer(host: &Arc<Host>, key: RequestKey) -> Option<Reply> {
    let deadline = Instant::now() + Duration::from_millis(2 * host.config.bank.timeout_ms + 1000);
    loop {
        let answer = host
            .engine
            .execute(move |tx| tx.state().answers.get(&key).map(|a| a.reply))
            .await
            .ok()?;
        if answer.is_some() || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After a restart: top-ups that were out at the bank when the host stopped have no answer.
/// The kiosk is answered `91` (should it retransmit) and the bank gets a reversal advice.
pub fn recover_pending(tx: &mut HostTx<'_>, policy: &Policy, now_ms: u64) -> usize {
    let mut pending: Vec<PendingTopUp> = tx.state().bank.pending_topups.values().copied().collect();
    pending.sort_by_key(|p| p.bank_stan);
    for topup in &pending {
        finish(tx, topup, Err(BankError::NoAnswer), policy, now_ms);
    }
    pending.len()
}
