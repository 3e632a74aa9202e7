//! The host's state machine: everything that must survive a crash, changed only by
//! [`HostEvent`]s. Requests decide against it (in `authorize` and `admin`) and emit events;
//! the ledger engine logs the events and replays them after a crash through [`HostState::apply`].

mod answer_index;
pub mod answers;
pub mod audit;
pub mod bank;
pub mod batches;
pub mod blacklist;
pub mod cards;
pub mod ids;
pub mod registry;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ledger::account::{AccountId, AccountKind, Side};
use ledger::book::{Book, BookSnapshot, LedgerEvent};
use ledger::cow_map::CowMap;
use ledger::cow_vec::CowVec;
use ledger::hash::SeededMap;
use ledger::snapshot::{LogVisitor, SharedLog, SnapshotLogs};
use ledger::state_machine::StateMachine;
use ledger::transfer::{BusinessDay, Transfer, TransferId, TransferKind};

use answers::{Answer, Answers, RequestKey};
use audit::{AuditEntry, AuditTrail};
use bank::{BankState, PendingTopUp, SafEntry, SafKind};
use batches::{BatchEvent, Batches};
use blacklist::Blacklist;
use cards::{Card, CardStatus, Expiry, LimitOverrides};
use ids::{MerchantId, Pan, TerminalId};
use registry::{Merchant, Terminal};

/// The institution's own accounts, opened once on a fresh data directory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemAccounts {
    pub bank_settlement: AccountId,
    pub subsidy_fund: AccountId,
    pub cash_desk: AccountId,
    pub fee_revenue: AccountId,
    pub forfeited: AccountId,
    pub offline_suspense: AccountId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HostEvent {
    Ledger(LedgerEvent),
    Genesis {
        system: SystemAccounts,
        business_day: BusinessDay,
    },
    MerchantRegistered(Merchant),
    TerminalRegistered(Box<Terminal>),
    CardIssued(Box<Card>),
    CardStatusSet {
        pan: Pan,
        status: CardStatus,
        at_ms: u64,
    },
    CardExpirySet {
        pan: Pan,
        expiry: Expiry,
    },
    CardLimitsSet {
        pan: Pan,
        limits: LimitOverrides,
    },
    CardReplaced {
        old: Pan,
        new: Pan,
    },
    PinSet {
        pan: Pan,
        verifier: [u8; 32],
    },
    PinTryFailed {
        pan: Pan,
    },
    PinTriesReset {
        pan: Pan,
    },
    TerminalSession {
        terminal: TerminalId,
        signed_on: bool,
    },
    BlacklistServed {
        terminal: TerminalId,
        version: u64,
    },
    Answered(Answer),
    DayClosed {
        day: BusinessDay,
        closed_at_ms: u64,
    },
    /// A change made through the admin API, logged with the change itself.
    Audited(Box<AuditEntry>),
    /// A kiosk top-up is about to go to the bank (state/bank.rs).
    TopUpStarted(Box<PendingTopUp>),
    /// The top-up's answer is recorded (with its `Answered` and posting, if any).
    TopUpFinished {
        key: RequestKey,
    },
    SafQueued(Box<SafEntry>),
    /// The advice may have reached the bank: later sends are repeats.
    SafSent {
        seq: u64,
    },
    /// The bank answered the advice: it leaves the queue.
    SafDone {
        seq: u64,
    },
    /// Offline sales, uploads and batch closings (PROTOCOL.md 3.8, 3.9).
    Batch(BatchEvent),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClosedDay {
    pub closed_at_ms: u64,
    /// The day's clearing 0500 was queued for the bank (its files were published first).
    pub clearing_queued: bool,
}

#[derive(Clone, Debug, Default)]
pub struct HostState {
    pub book: Book,
    pub system: Option<SystemAccounts>,
    pub business_day: BusinessDay,
    pub closed_days: BTreeMap<BusinessDay, ClosedDay>,
    /// Hashed with a seeded fast hasher (`ledger::hash`): looked up several times per
    /// request on the engine thread, where SipHash showed in the profile.
    pub merchants: SeededMap<MerchantId, Merchant>,
    pub terminals: SeededMap<TerminalId, Terminal>,
    /// Copy-on-write shards: a snapshot shares them (see `CowMap`).
    pub cards: CowMap<Pan, Card>,
    pub card_by_account: SeededMap<AccountId, Pan>,
    pub blacklist: Blacklist,
    pub answers: Answers,
    /// Sum refunded so far against each purchase. Copy-on-write like the cards: it grows
    /// with every refund, and a snapshot that copied it stalled the engine thread (3-18 ms
    /// at 3 million requests, most of it the kernel handing over fresh pages).
    pub refunded_minor: CowMap<TransferId, u64>,
    /// Next retrieval reference number: one more than the highest ever logged.
    pub next_rrn: u64,
    pub audit: AuditTrail,
    pub bank: BankState,
    pub batches: Batches,
}

impl Default for SystemAccounts {
    fn default() -> Self {
        SystemAccounts {
            bank_settlement: AccountId(0),
            subsidy_fund: AccountId(0),
            cash_desk: AccountId(0),
            fee_revenue: AccountId(0),
            forfeited: AccountId(0),
            offline_suspense: AccountId(0),
        }
    }
}

impl HostState {
    /// Asks the CPU to fetch what deciding the terminal request `key` reads at random places
    /// in large tables: its slot in the answers' index and in the id index (a new request's
    /// probes end there, and its insertions take them). Run by the engine a few requests
    /// ahead ([`ledger::Engine::execute_prefetched`]); changes nothing.
    pub fn prefetch_request(&self, key: &RequestKey) {
        self.answers.prefetch(key);
        self.book.prefetch_id(crate::authorize::transfer_id_of(key));
    }

    pub fn system(&self) -> &SystemAccounts {
        self.system
            .as_ref()
            .expect("genesis is the first event of every log")
    }

    pub fn card(&self, pan: &Pan) -> Option<&Card> {
        self.cards.get(pan)
    }

    pub fn card_balance_minor(&self, card: &Card) -> i64 {
        self.card_account_balance_minor(card.account)
    }

    /// The balance of a card's stored-value account.
    pub fn card_account_balance_minor(&self, account: AccountId) -> i64 {
        self.book
            .balance_minor(account)
            .expect("every card has an account")
    }

    fn card_mut(&mut self, pan: &Pan) -> &mut Card {
        self.cards
            .get_mut(pan)
            .expect("events name cards that exist")
    }

    /// The card whose stored value a transfer moves, and on which side.
    fn card_leg(&self, transfer: &Transfer) -> Option<(Pan, Side, u64)> {
        transfer.legs.iter().find_map(|leg| {
            let pan = self.card_by_account.get(&leg.account)?;
            Some((*pan, leg.side, leg.amount_minor))
        })
    }

    /// Keeps derived card state (daily usage, refunded amounts) in step with a posting.
    fn after_post(&mut self, transfer: &Transfer) {
        match transfer.kind {
            TransferKind::Purchase => {
                if let Some((pan, _, amount)) = self.card_leg(transfer) {
                    self.card_mut(&pan).usage.add(transfer.business_day, amount);
                }
            }
            TransferKind::Refund => {
                let original = transfer.related.expect("a refund names its purchase");
                let amount = transfer.amount_minor();
                match self.refunded_minor.get_mut(&original) {
                    Some(refunded) => *refunded += amount,
                    None => {
                        self.refunded_minor.insert(original, amount);
                    }
                }
            }
            TransferKind::Reversal => {
                let original_id = transfer.related.expect("a reversal names its original");
                let original = &self
                    .book
                    .transfer(original_id)
                    .expect("reversed transfer exists")
                    .transfer;
                let (kind, day, amount, related) = (
                    original.kind,
                    original.business_day,
                    original.amount_minor(),
                    original.related,
                );
                match kind {
                    TransferKind::Purchase => {
                        if let Some((pan, _, _)) = self.card_leg(transfer) {
                            self.card_mut(&pan).usage.remove(day, amount);
                        }
                    }
                    TransferKind::Refund => {
                        let purchase = related.expect("a refund names its purchase");
                        let refunded = self
                            .refunded_minor
                            .get_mut(&purchase)
                            .expect("reversed refund was counted");
                        *refunded = refunded
                            .checked_sub(amount)
                            .expect("reversed refund was counted");
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        let original = transfer
            .related
            .filter(|_| transfer.kind == TransferKind::Reversal)
            .and_then(|id| self.book.transfer(id))
            .map(|applied| &applied.transfer);
        self.batches.on_post(transfer, original);
        if transfer.refs.rrn >= self.next_rrn {
            self.next_rrn = transfer.refs.rrn + 1;
        }
    }
}

impl StateMachine for HostState {
    type Event = HostEvent;
    type Snapshot = HostSnapshot;

    // Replay's hints go to the book, whose id index is what replay waits on.
    fn reserve(&mut self, events: u64) {
        self.book
            .reserve(usize::try_from(events).unwrap_or(usize::MAX));
    }

    fn prefetch(&self, event: &HostEvent) {
        if let HostEvent::Ledger(ledger_event) = event {
            self.book.prefetch(ledger_event);
        }
    }

    fn apply(&mut self, event: &HostEvent) {
        match event {
            HostEvent::Ledger(ledger_event) => {
                self.book.apply(ledger_event);
                if let LedgerEvent::Post(transfer) = ledger_event {
                    self.after_post(transfer);
                }
            }
            HostEvent::Genesis {
                system,
                business_day,
            } => {
                assert!(self.system.is_none(), "genesis happens once");
                self.system = Some(*system);
                self.business_day = *business_day;
                self.next_rrn = self.next_rrn.max(1);
            }
            HostEvent::MerchantRegistered(merchant) => {
                assert_eq!(
                    self.book.account(merchant.account).map(|a| a.kind),
                    Some(AccountKind::MerchantPayable)
                );
                self.merchants.insert(merchant.id, merchant.clone());
            }
            HostEvent::TerminalRegistered(terminal) => {
                assert!(
                    self.merchants.contains_key(&terminal.merchant),
                    "terminal's merchant is registered"
                );
                self.terminals.insert(terminal.id, (**terminal).clone());
            }
            HostEvent::CardIssued(card) => {
                assert_eq!(
                    self.book.account(card.account).map(|a| a.kind),
                    Some(AccountKind::CardStoredValue)
                );
                self.card_by_account.insert(card.account, card.pan);
                let previous = self.cards.insert(card.pan, (**card).clone());
                assert!(previous.is_none(), "a PAN is issued once");
            }
            HostEvent::CardStatusSet { pan, status, at_ms } => {
                let card = self.card_mut(pan);
                let was_blocked = card.status != CardStatus::Active;
                card.status = *status;
                let blocked = *status != CardStatus::Active;
                if was_blocked != blocked {
                    self.blacklist.record(*pan, blocked, *at_ms);
                }
            }
            HostEvent::CardExpirySet { pan, expiry } => self.card_mut(pan).expiry = *expiry,
            HostEvent::CardLimitsSet { pan, limits } => self.card_mut(pan).limits = *limits,
            HostEvent::CardReplaced { old, new } => self.card_mut(old).replaced_by = Some(*new),
            HostEvent::PinSet { pan, verifier } => {
                let card = self.card_mut(pan);
                card.pin_verifier = Some(cards::PinVerifier {
                    set_on: *pan,
                    value: *verifier,
                });
                card.pin_tries_failed = 0;
            }
            HostEvent::PinTryFailed { pan } => {
                let card = self.card_mut(pan);
                card.pin_tries_failed = card.pin_tries_failed.saturating_add(1);
            }
            HostEvent::PinTriesReset { pan } => self.card_mut(pan).pin_tries_failed = 0,
            HostEvent::TerminalSession {
                terminal,
                signed_on,
            } => {
                self.terminals
                    .get_mut(terminal)
                    .expect("registered terminal")
                    .signed_on = *signed_on;
            }
            HostEvent::BlacklistServed { terminal, version } => {
                let terminal = self
                    .terminals
                    .get_mut(terminal)
                    .expect("registered terminal");
                terminal.blacklist_version_served = terminal.blacklist_version_served.max(*version);
            }
            HostEvent::Answered(answer) => {
                if let Some(rrn) = answer.reply.rrn {
                    self.next_rrn = self.next_rrn.max(rrn + 1);
                }
                self.answers.insert(*answer);
                self.batches
                    .on_answered(answer.key.terminal, answer.key.stan);
            }
            HostEvent::Audited(entry) => self.audit.record((**entry).clone()),
            HostEvent::DayClosed { day, closed_at_ms } => {
                assert_eq!(*day, self.business_day, "only the current day closes");
                self.closed_days.insert(
                    *day,
                    ClosedDay {
                        closed_at_ms: *closed_at_ms,
                        clearing_queued: false,
                    },
                );
                self.business_day = crate::clock::next_day(*day);
                // A STAN is unique per terminal per day: answers older than yesterday
                // can no longer be retransmitted.
                let keep_from = *day;
                self.answers.keep_from_day(keep_from);
            }
            HostEvent::TopUpStarted(pending) => {
                self.bank.use_stan(pending.bank_stan);
                self.next_rrn = self.next_rrn.max(pending.rrn + 1);
                let previous = self.bank.pending_topups.insert(pending.key, **pending);
                assert!(previous.is_none(), "a top-up starts once");
            }
            HostEvent::TopUpFinished { key } => {
                let finished = self.bank.pending_topups.remove(key);
                assert!(finished.is_some(), "only a pending top-up finishes");
            }
            HostEvent::SafQueued(entry) => {
                assert_eq!(
                    entry.seq, self.bank.next_saf_seq,
                    "SAF entries queue in order"
                );
                self.bank.use_stan(entry.stan);
                self.bank.next_saf_seq += 1;
                if let SafKind::Clearing { day } = entry.kind {
                    self.closed_days
                        .get_mut(&day)
                        .expect("clearing is queued for a closed day")
                        .clearing_queued = true;
                }
                self.bank.saf.insert(entry.seq, (**entry).clone());
            }
            HostEvent::SafSent { seq } => {
                self.bank.saf.get_mut(seq).expect("queued advice").sent = true;
            }
            HostEvent::SafDone { seq } => {
                self.bank.saf.remove(seq).expect("queued advice");
            }
            HostEvent::Batch(event) => self.batches.apply(event, self.business_day),
        }
    }

    fn snapshot(&self) -> HostSnapshot {
        HostSnapshot {
            format: SnapshotFormat,
            book: self.book.snapshot(),
            system: self.system,
            business_day: self.business_day,
            closed_days: self.closed_days.clone(),
            merchants: self.merchants.values().cloned().collect(),
            terminals: self.terminals.values().cloned().collect(),
            cards: self.cards.clone(),
            blacklist: self.blacklist.clone(),
            answers: self.answers.log().share_log(),
            refunded_minor: self.refunded_minor.clone(),
            next_rrn: self.next_rrn,
            audit: self.audit.clone(),
            bank: self.bank.clone(),
            batches: self.batches.clone(),
        }
    }

    fn restore(snapshot: HostSnapshot) -> HostState {
        let cards = snapshot.cards;
        HostState {
            book: Book::restore(snapshot.book),
            system: snapshot.system,
            business_day: snapshot.business_day,
            closed_days: snapshot.closed_days,
            merchants: snapshot.merchants.into_iter().map(|m| (m.id, m)).collect(),
            terminals: snapshot.terminals.into_iter().map(|t| (t.id, t)).collect(),
            card_by_account: cards.values().map(|c| (c.account, c.pan)).collect(),
            cards,
            blacklist: snapshot.blacklist,
            answers: Answers::from_log(CowVec::from_log(snapshot.answers)),
            refunded_minor: snapshot.refunded_minor,
            next_rrn: snapshot.next_rrn,
            audit: snapshot.audit,
            bank: snapshot.bank,
            batches: snapshot.batches,
        }
    }

    fn check(&self) -> Result<(), String> {
        let check = self.book.check_balanced();
        if !check.balanced {
            return Err(format!(
                "the book does not balance: debits {} != credits {}",
                check.debits_minor, check.credits_minor
            ));
        }
        for card in self.cards.values() {
            if self.book.account(card.account).map(|a| a.kind) != Some(AccountKind::CardStoredValue)
            {
                return Err(format!("card {} has no stored-value account", card.pan));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostSnapshot {
    pub format: SnapshotFormat,
    pub book: BookSnapshot,
    pub system: Option<SystemAccounts>,
    pub business_day: BusinessDay,
    pub closed_days: BTreeMap<BusinessDay, ClosedDay>,
    pub merchants: Vec<Merchant>,
    pub terminals: Vec<Terminal>,
    pub cards: CowMap<Pan, Card>,
    pub blacklist: Blacklist,
    /// In the order given; the index by key is rebuilt on restore. Only pushed to (and
    /// rebuilt whole once a day), so its full chunks go to chunk files.
    pub answers: SharedLog<Answer>,
    /// Encoded as the list of pairs it was before it was shared (postcard writes a map and
    /// a list of pairs alike), so snapshots written before read the same.
    pub refunded_minor: CowMap<TransferId, u64>,
    pub next_rrn: u64,
    pub audit: AuditTrail,
    pub bank: BankState,
    pub batches: Batches,
}

impl SnapshotLogs for HostSnapshot {
    fn visit_logs<V: LogVisitor>(&mut self, visitor: &mut V) -> std::io::Result<()> {
        self.book.visit_logs(visitor)?;
        visitor.visit("answers", &mut self.answers)
    }
}

/// The first bytes of every host snapshot: the layout of what follows. A snapshot of another
/// layout is refused (the start fails with the snapshot named, and this logs both formats)
/// instead of being misread: postcard is not self-describing. Before this tag, a snapshot's
/// first bytes were the book's (and its answers a map, not a log). HOSTSN02 carried the
/// transfer history and the answers whole; HOSTSN03 their partial last chunks, the full ones
/// being in chunk files.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFormat;

const SNAPSHOT_FORMAT: [u8; 8] = *b"HOSTSN03";

impl Serialize for SnapshotFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SNAPSHOT_FORMAT.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SnapshotFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = <[u8; 8]>::deserialize(deserializer)?;
        if found != SNAPSHOT_FORMAT {
            // postcard drops a custom error's text: say it here.
            let message = format!(
                "host snapshot format {:?}, this build reads {:?} only: recover this data \
                 directory with the build that wrote it",
                String::from_utf8_lossy(&found),
                String::from_utf8_lossy(&SNAPSHOT_FORMAT),
            );
            tracing::error!("{message}");
            return Err(serde::de::Error::custom(message));
        }
        Ok(SnapshotFormat)
    }
}
