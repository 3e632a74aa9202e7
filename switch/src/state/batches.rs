//! Terminal batches (PROTOCOL.md 3.8, 3.9): per (terminal, F60) the approved transactions the
//! host knows, the offline sales and the rule that decided each, what the terminal uploaded,
//! the STANs seen, and the closing. Derived from postings and [`BatchEvent`]s only, so a
//! replay rebuilds it exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use ledger::book::Totals;
use ledger::cow_ord_map::CowOrdMap;
use ledger::transfer::{BusinessDay, Transfer, TransferId, TransferKind};

use super::ids::{Pan, TerminalId};

/// One batch of one terminal.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchKey {
    pub terminal: TerminalId,
    pub batch: u32,
}

/// What identifies a transaction inside a batch, for online postings, advices and uploads
/// alike: F11 and the terminal's local time (F13 + F12, `MMDDhhmmss`). An 0320 carries no F7,
/// so the F41+F11+F7 of 3.7 cannot be used.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxnKey {
    pub stan: u32,
    pub local_time: [u8; 10],
}

/// How an offline sale was posted (the rows of PROTOCOL.md 3.8).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfflineRule {
    /// Debit card, credit merchant.
    Normal,
    /// Posted; the card went below zero and is frozen until it is back to zero.
    Overdraft,
    /// The card was blocked before the sale in a blacklist version the terminal had: not
    /// charged to the card, the merchant bears it.
    BlockedKnownToTerminal,
    /// The card was blocked before the sale, but after the terminal's blacklist: charged to
    /// the card, flagged for review.
    BlockedAfterTerminalList,
    /// No such card (never issued, or fails the Luhn check): the merchant bears it.
    UnknownCard,
}

impl OfflineRule {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineRule::Normal => "normal",
            OfflineRule::Overdraft => "overdraft",
            OfflineRule::BlockedKnownToTerminal => "blocked_in_terminal_blacklist",
            OfflineRule::BlockedAfterTerminalList => "blocked_after_terminal_blacklist",
            OfflineRule::UnknownCard => "unknown_card",
        }
    }

    /// Not charged to a card: posted as `OfflineRejected`.
    pub fn merchant_bears(self) -> bool {
        matches!(
            self,
            OfflineRule::BlockedKnownToTerminal | OfflineRule::UnknownCard
        )
    }
}

/// Where an offline sale reached the host from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfflineSource {
    /// An 0220/0221 advice.
    Advice,
    /// An 0320 upload of a sale the host had not seen.
    Upload,
}

/// An offline sale as recorded, with the rule that decided its posting.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineSale {
    pub batch: BatchKey,
    pub txn: TxnKey,
    pub pan: Option<Pan>,
    pub amount_minor: u64,
    pub rule: OfflineRule,
    /// Above the terminal's offline floor limit: posted, flagged for review.
    pub above_floor: bool,
    pub source: OfflineSource,
    pub transfer: TransferId,
    pub rrn: u64,
}

impl OfflineSale {
    /// An exception is anything an operator should look at.
    pub fn is_exception(&self) -> bool {
        self.rule != OfflineRule::Normal || self.above_floor
    }
}

/// What became of one 0320.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadOutcome {
    /// The host had it: nothing posted.
    Matched(TransferId),
    /// The host had not seen it: posted as an offline advice (see the batch's offline sales).
    Posted(TransferId),
    /// A refund the host never approved: nothing posted, left to the operators.
    UnknownRefund,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub txn: TxnKey,
    pub amount_minor: u64,
    pub outcome: UploadOutcome,
}

/// The closing of a batch: the terminal's totals and the host's at that moment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub terminal_totals: Totals,
    pub host_totals: Totals,
    /// Closed by 0500 F3=960000 after an upload (totals may differ), not by matching totals.
    pub after_upload: bool,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchEvent {
    /// An offline sale was recorded; its posting is the ledger event logged just before.
    OfflineSale(OfflineSale),
    /// A 0320 was matched or left unposted (a posted one is an `OfflineSale` with source
    /// `Upload`).
    Uploaded {
        batch: BatchKey,
        upload: Upload,
    },
    Closed {
        batch: BatchKey,
        closing: Closing,
    },
    /// A request that changes no batch (balance inquiry, 0500, 0800) used this STAN: it is in
    /// the batch's sequence, not a gap. `batch` is its F60; without one (0800), the
    /// terminal's current batch.
    Seen {
        terminal: TerminalId,
        batch: Option<u32>,
        stan: u32,
    },
}

/// An approved sale or refund of the batch, online or offline.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTxn {
    pub transfer: TransferId,
    pub kind: TransferKind,
    pub amount_minor: u64,
    pub reversed: bool,
    /// The terminal sent it in its 0320 upload.
    pub uploaded: bool,
}

/// The reconciliation report of a batch in counts (the lists are in the admin API).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// Uploaded transactions the host had.
    pub matched: u64,
    /// Uploaded sales the host had not seen, posted as offline advices at upload.
    pub posted_at_upload: u64,
    /// Uploaded refunds the host never approved: not posted.
    pub refunds_not_posted: u64,
    /// Transactions the host has (not reversed) that the terminal's upload left out.
    pub missing_at_terminal: u64,
    /// Offline sales posted under a rule other than `normal`, or above the floor limit.
    pub offline_exceptions: u64,
    pub stan_gaps: u64,
}

/// A batch as it was when it closed, and the business day it closed in: what that day's
/// reconciliation file says of it. Fixed at the close, so a re-published file is
/// byte-identical whatever reaches the batch later (a `12` answered with one of its STANs,
/// a reversal from the next batch).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtClose {
    pub business_day: BusinessDay,
    pub summary: BatchSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub closing: Option<Closing>,
    pub at_close: Option<AtClose>,
    /// Every STAN of the batch the host recorded (postings, reversals, declines, advices,
    /// uploads), for the gap report.
    /// (A set: the values are `()`.) Kept in runs behind `Arc`, like `transactions`: after a
    /// snapshot, a write copies one run, not a whole open batch.
    pub stans: CowOrdMap<u32, ()>,
    pub transactions: CowOrdMap<TxnKey, BatchTxn>,
    pub offline: Vec<OfflineSale>,
    pub uploads: Vec<Upload>,
    /// Offline sales the merchant bears: the terminal counts them as sales, the book's batch
    /// totals do not (they are not charged to a card).
    pub rejected_count: u64,
    pub rejected_minor: u64,
}

impl Batch {
    pub fn is_closed(&self) -> bool {
        self.closing.is_some()
    }

    /// Whether `txn` came in an upload already: the flag of a transaction the batch holds
    /// (looked up, so that checking a whole upload is not quadratic), else the uploads the
    /// host did not post (a refund it never approved), which are few.
    pub fn has_upload_of(&self, txn: &TxnKey) -> bool {
        match self.transactions.get(txn) {
            Some(known) => known.uploaded,
            None => self.uploads.iter().any(|u| u.txn == *txn),
        }
    }

    /// STANs missing between the lowest and the highest the batch has.
    pub fn stan_gaps(&self) -> Vec<u32> {
        self.stan_gaps_iter().collect()
    }

    /// The same, lazily: a STAN that wrapped round within a batch leaves a hole of up to a
    /// million, which a report lists only the start of.
    pub fn stan_gaps_iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.stans
            .keys()
            .zip(self.stans.keys().skip(1))
            .flat_map(|(&low, &high)| low + 1..high)
    }

    pub fn stan_gap_count(&self) -> u64 {
        match (self.stans.first_key(), self.stans.last_key()) {
            (Some(&low), Some(&high)) => (high - low + 1) as u64 - self.stans.len() as u64,
            _ => 0,
        }
    }

    /// The terminal sent its transactions (0320s, or an 0500 after upload), so what it left
    /// out means something.
    pub fn was_uploaded(&self) -> bool {
        !self.uploads.is_empty() || self.closing.is_some_and(|c| c.after_upload)
    }

    /// Approved transactions, not reversed, the terminal's upload did not have.
    pub fn missing_at_terminal(&self) -> impl Iterator<Item = (&TxnKey, &BatchTxn)> + '_ {
        let uploaded = self.was_uploaded();
        self.transactions
            .iter()
            .filter(move |(_, t)| uploaded && !t.uploaded && !t.reversed)
    }

    pub fn offline_exceptions(&self) -> impl Iterator<Item = &OfflineSale> + '_ {
        self.offline.iter().filter(|sale| sale.is_exception())
    }

    pub fn summary(&self) -> BatchSummary {
        let count = |wanted: fn(&UploadOutcome) -> bool| {
            self.uploads.iter().filter(|u| wanted(&u.outcome)).count() as u64
        };
        BatchSummary {
            matched: count(|o| matches!(o, UploadOutcome::Matched(_))),
            posted_at_upload: count(|o| matches!(o, UploadOutcome::Posted(_))),
            refunds_not_posted: count(|o| matches!(o, UploadOutcome::UnknownRefund)),
            missing_at_terminal: self.missing_at_terminal().count() as u64,
            offline_exceptions: self.offline_exceptions().count() as u64,
            stan_gaps: self.stan_gap_count(),
        }
    }

    /// What the book's batch totals leave out: sales the merchant bears.
    pub fn with_rejected(&self, book_totals: Totals) -> Totals {
        Totals {
            purchase_count: book_totals.purchase_count + self.rejected_count,
            purchase_minor: book_totals.purchase_minor + self.rejected_minor,
            ..book_totals
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Batches {
    /// Each batch behind an `Arc`: a snapshot copies pointers, not every sale of every batch,
    /// on the engine thread; the first write after it copies that one batch.
    batches: BTreeMap<BatchKey, Arc<Batch>>,
    /// Each terminal's batch of its latest financial message: where a decline's STAN goes.
    current: BTreeMap<TerminalId, u32>,
    /// The STAN last recorded, and where: it stays in that batch (STANs are never removed).
    /// The `Answered` that follows a posting records the posting's STAN in the same batch
    /// again; this skips that lookup. Derived, so neither kept in a snapshot nor compared.
    #[serde(skip)]
    last_stan: Option<(BatchKey, u32)>,
}

impl Batches {
    pub fn get(&self, key: &BatchKey) -> Option<&Batch> {
        self.batches.get(key).map(Arc::as_ref)
    }

    pub fn is_closed(&self, key: &BatchKey) -> bool {
        self.get(key).is_some_and(Batch::is_closed)
    }

    /// Batches that closed in `day`, in (terminal, batch) order.
    pub fn closed_in(&self, day: BusinessDay) -> impl Iterator<Item = (&BatchKey, &Batch)> + '_ {
        self.batches
            .iter()
            .map(|(key, batch)| (key, batch.as_ref()))
            .filter(move |(_, b)| b.at_close.is_some_and(|at| at.business_day == day))
    }

    pub fn transaction(&self, key: &BatchKey, txn: &TxnKey) -> Option<&BatchTxn> {
        self.batches.get(key)?.transactions.get(txn)
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn batch_mut(&mut self, key: BatchKey) -> &mut Batch {
        self.current.insert(key.terminal, key.batch);
        Arc::make_mut(self.batches.entry(key).or_default())
    }

    /// Records `stan` in batch `key` (its terminal's current batch from now on).
    fn record_stan(&mut self, key: BatchKey, stan: u32) -> &mut Batch {
        self.last_stan = Some((key, stan));
        let batch = self.batch_mut(key);
        batch.stans.insert(stan, ());
        batch
    }

    /// Keeps the batch in step with a posting from a terminal. `original` is the transfer a
    /// reversal undoes.
    pub fn on_post(&mut self, transfer: &Transfer, original: Option<&Transfer>) {
        let refs = &transfer.refs;
        if refs.terminal == [0; 8] {
            return;
        }
        let key = BatchKey {
            terminal: TerminalId(refs.terminal),
            batch: refs.batch,
        };
        let txn = TxnKey {
            stan: refs.stan,
            local_time: refs.local_time,
        };
        match transfer.kind {
            TransferKind::Purchase
            | TransferKind::OfflinePurchase
            | TransferKind::OfflineRejected
            | TransferKind::Refund => {
                let batch = self.record_stan(key, refs.stan);
                batch.transactions.insert(
                    txn,
                    BatchTxn {
                        transfer: transfer.id,
                        kind: transfer.kind,
                        amount_minor: transfer.amount_minor(),
                        reversed: false,
                        uploaded: false,
                    },
                );
            }
            TransferKind::Reversal => {
                self.record_stan(key, refs.stan);
                let Some(original) = original else { return };
                let refs = &original.refs;
                let original_key = BatchKey {
                    terminal: TerminalId(refs.terminal),
                    batch: refs.batch,
                };
                let original_txn = TxnKey {
                    stan: refs.stan,
                    local_time: refs.local_time,
                };
                if let Some(entry) = self
                    .batches
                    .get_mut(&original_key)
                    .and_then(|b| Arc::make_mut(b).transactions.get_mut(&original_txn))
                {
                    entry.reversed = true;
                }
            }
            _ => {}
        }
    }

    /// A request answered without a posting (a decline): its STAN belongs to the terminal's
    /// current batch.
    pub fn on_answered(&mut self, terminal: TerminalId, stan: u32) {
        if let Some(&batch) = self.current.get(&terminal) {
            let key = BatchKey { terminal, batch };
            if self.last_stan != Some((key, stan)) {
                self.record_stan(key, stan);
            }
        }
    }

    /// Applies a batch event; `business_day` is the host's current day (when a batch closes).
    pub fn apply(&mut self, event: &BatchEvent, business_day: BusinessDay) {
        match event {
            BatchEvent::Seen {
                terminal,
                batch: Some(batch),
                stan,
            } => {
                let key = BatchKey {
                    terminal: *terminal,
                    batch: *batch,
                };
                self.record_stan(key, *stan);
            }
            BatchEvent::Seen {
                terminal,
                batch: None,
                stan,
            } => self.on_answered(*terminal, *stan),
            BatchEvent::OfflineSale(sale) => {
                let batch = self.batch_mut(sale.batch);
                assert!(
                    batch.transactions.contains_key(&sale.txn),
                    "an offline sale's posting is logged before it"
                );
                if sale.rule.merchant_bears() {
                    batch.rejected_count += 1;
                    batch.rejected_minor += sale.amount_minor;
                }
                if sale.source == OfflineSource::Upload {
                    batch
                        .transactions
                        .get_mut(&sale.txn)
                        .expect("checked above")
                        .uploaded = true;
                    batch.uploads.push(Upload {
                        txn: sale.txn,
                        amount_minor: sale.amount_minor,
                        outcome: UploadOutcome::Posted(sale.transfer),
                    });
                }
                batch.offline.push(*sale);
            }
            BatchEvent::Uploaded { batch, upload } => {
                let batch = self.record_stan(*batch, upload.txn.stan);
                if let Some(entry) = batch.transactions.get_mut(&upload.txn) {
                    entry.uploaded = true;
                }
                batch.uploads.push(*upload);
            }
            BatchEvent::Closed { batch, closing } => {
                let batch = Arc::make_mut(self.batches.entry(*batch).or_default());
                assert!(batch.closing.is_none(), "a batch closes once");
                batch.closing = Some(*closing);
                batch.at_close = Some(AtClose {
                    business_day,
                    summary: batch.summary(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_the_holes_between_the_lowest_and_highest_stan() {
        let mut batch = Batch::default();
        batch.stans.extend([3, 4, 7, 8, 10].map(|stan| (stan, ())));
        assert_eq!(batch.stan_gaps(), vec![5, 6, 9]);
        assert_eq!(batch.stan_gap_count(), 3);
        assert_eq!(Batch::default().stan_gaps(), Vec::<u32>::new());
        assert_eq!(Batch::default().stan_gap_count(), 0);
    }
}
