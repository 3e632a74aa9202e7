//! The double-entry book: accounts, the applied transfers, and the indexes the switch
//! queries. Pure in-memory state: it changes only through [`LedgerEvent`]s, so the engine can
//! log them and replay them after a crash.
//!
//! Two steps per transfer, as in TigerBeetle: [`Book::prepare`] checks a transfer against
//! the book without changing it (the switch calls it to decide), and [`Book::apply`] applies
//! a logged event, checking it again and panicking when it does not hold (a bug or a
//! corrupt log, never a business outcome).

use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountId, AccountKind, Side};
use crate::cow_vec::CowVec;
use crate::hash::FastMap;
use crate::history::{AppliedTransfer, History, POSITION_NONE};
use crate::id_index::IdIndex;
use crate::rrn_index::RrnIndex;
use crate::snapshot::{LogVisitor, SharedLog, SnapshotLogs};
use crate::state_machine::StateMachine;
use crate::transfer::{BusinessDay, References, Transfer, TransferId, TransferKind, LEGS_MAX};

/// The most accounts a book holds: ids are dense `u32`s.
pub const ACCOUNTS_MAX: u32 = u32::MAX - 1;

/// The largest total an account side may reach, so that a balance always fits an `i64`.
pub const ACCOUNT_TOTAL_MAX_MINOR: u64 = i64::MAX as u64;

/// What the write-ahead log stores for the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// Opens account `id`, which must be [`Book::next_account_id`] when applied.
    OpenAccount {
        id: AccountId,
        kind: AccountKind,
    },
    Post(Transfer),
}

/// The outcome of [`Book::prepare`].
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared<'a> {
    /// The transfer is valid and new: applying it would post it.
    New,
    /// A transfer with this id was already applied: applying again changes nothing and this
    /// is its first result. The stored transfer is returned as it was first posted; the
    /// caller compares it with its own if a reused id with other content matters to it.
    Duplicate(&'a AppliedTransfer),
}

/// Why a transfer cannot be posted. Business outcomes, not bugs: the switch maps them to
/// response codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("transfer is unbalanced: debits differ from credits, a leg is zero, or it has fewer than two legs")]
    Unbalanced,
    #[error("account {0:?} does not exist")]
    UnknownAccount(AccountId),
    #[error("account {account:?} holds {balance_minor} and the transfer needs {needed_minor}")]
    InsufficientFunds {
        account: AccountId,
        balance_minor: i64,
        needed_minor: u64,
    },
    #[error("account {account:?} would exceed the largest total an account may hold")]
    Overflow { account: AccountId },
    #[error("the transfer named in `related` does not exist")]
    OriginalNotFound,
    #[error("the original transfer was already reversed")]
    AlreadyReversed,
    #[error("a reversal cannot be reversed")]
    ReversalOfReversal,
    #[error("a reversal's legs must mirror its original's exactly (same accounts and amounts, sides swapped, same order)")]
    ReversalMismatch,
}

/// Takings of a merchant on a day, or of a terminal in a batch.
///
/// Purchases and offline purchases count as purchases, refunds as refunds; a reversal removes
/// its original; other kinds do not count.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Totals {
    pub purchase_count: u64,
    pub purchase_minor: u64,
    pub refund_count: u64,
    pub refund_minor: u64,
}

impl Totals {
    fn add(&mut self, kind: TransferKind, amount_minor: u64) {
        match kind {
            TransferKind::Purchase | TransferKind::OfflinePurchase => {
                self.purchase_count += 1;
                self.purchase_minor += amount_minor;
            }
            TransferKind::Refund => {
                self.refund_count += 1;
                self.refund_minor += amount_minor;
            }
            _ => {}
        }
    }

    fn remove(&mut self, kind: TransferKind, amount_minor: u64) {
        let underflow = "totals lose a transfer they never counted";
        match kind {
            TransferKind::Purchase | TransferKind::OfflinePurchase => {
                self.purchase_count = self.purchase_count.checked_sub(1).expect(underflow);
                self.purchase_minor = self
                    .purchase_minor
                    .checked_sub(amount_minor)
                    .expect(underflow);
            }
            TransferKind::Refund => {
                self.refund_count = self.refund_count.checked_sub(1).expect(underflow);
                self.refund_minor = self
                    .refund_minor
                    .checked_sub(amount_minor)
                    .expect(underflow);
            }
            _ => {}
        }
    }
}

fn counts_in_totals(kind: TransferKind) -> bool {
    matches!(
        kind,
        TransferKind::Purchase | TransferKind::OfflinePurchase | TransferKind::Refund
    )
}

/// The result of [`Book::check_balanced`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BookCheck {
    /// Sum of all accounts' debits equals the sum of their credits.
    pub balanced: bool,
    pub debits_minor: u128,
    pub credits_minor: u128,
    pub accounts: usize,
    pub transfers: usize,
}

/// An account and the head of its posting chain, side by side so that posting touches one
/// cache line. The chain head fits in `Account`'s padding: 24 bytes either way.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    account: Account,
    /// Position of the account's latest posting, `POSITION_NONE` when it has none.
    last_posting: u32,
}

/// A run of consecutive positions posted on the same business day. Days arrive almost in
/// order, so a handful of runs per day indexes them at no cost per transfer.
#[derive(Copy, Clone, Debug)]
struct DayRun {
    day: BusinessDay,
    first: u32,
}

/// A point-in-time copy of the book: the accounts copied, the history shared (immutable
/// chunks). The hash indexes are not copied: [`Book::restore`] rebuilds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BookSnapshot {
    slots: CowVec<Slot>,
    history: SharedLog<AppliedTransfer>,
}

impl BookSnapshot {
    pub fn accounts(&self) -> usize {
        self.slots.len()
    }

    pub fn transfers(&self) -> usize {
        self.history.len()
    }
}

impl SnapshotLogs for BookSnapshot {
    fn visit_logs<V: LogVisitor>(&mut self, visitor: &mut V) -> std::io::Result<()> {
        visitor.visit("history", &mut self.history)
    }
}

/// Indexes derived from the history, rebuilt on restore.
#[derive(Clone, Debug, Default)]
struct Indexes {
    by_id: IdIndex,
    /// The first transfer posted with each RRN: a reversal that repeats its original's RRN
    /// does not hide the original.
    by_rrn: RrnIndex,
    /// Original position -> reversal position.
    reversed_by: FastMap<u32, u32>,
    merchant_days: FastMap<([u8; 15], BusinessDay), Totals>,
    batches: FastMap<([u8; 8], u32), Totals>,
    day_runs: Vec<DayRun>,
}

#[derive(Clone, Debug, Default)]
pub struct Book {
    /// Chunks shared with snapshots until written (see `CowVec`).
    slots: CowVec<Slot>,
    history: History,
    indexes: Indexes,
    /// Running sums of every account's sides: must stay equal (double entry).
    debits_minor: u128,
    credits_minor: u128,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// The id the next `OpenAccount` event must carry.
    pub fn next_account_id(&self) -> AccountId {
        AccountId(self.slots.len() as u32)
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.slots.get(id.0 as usize).map(|slot| &slot.account)
    }

    pub fn balance_minor(&self, id: AccountId) -> Option<i64> {
        self.account(id).map(Account::balance_minor)
    }

    pub fn accounts(&self) -> usize {
        self.slots.len()
    }

    pub fn transfers(&self) -> usize {
        self.history.len() as usize
    }

    /// Checks `transfer` against the book, changing nothing.
    pub fn prepare(&self, transfer: &Transfer) -> Result<Prepared<'_>, TransferError> {
        if let Some(position) = self.indexes.by_id.get(transfer.id, &self.history) {
            return Ok(Prepared::Duplicate(
                self.history.get(position).expect("indexed"),
            ));
        }
        let related = transfer
            .related
            .and_then(|id| self.indexes.by_id.get(id, &self.history));
        validate(
            &self.slots,
            &self.history,
            &self.indexes.reversed_by,
            transfer,
            related,
        )?;
        Ok(Prepared::New)
    }

    /// Builds the reversal of `original`: the same legs with their sides swapped.
    pub fn reversal_of(
        &self,
        original: TransferId,
        id: TransferId,
        business_day: BusinessDay,
        refs: References,
        timestamp_ms: u64,
    ) -> Result<Transfer, TransferError> {
        let applied = self
            .transfer(original)
            .ok_or(TransferError::OriginalNotFound)?;
        if applied.transfer.kind == TransferKind::Reversal {
            return Err(TransferError::ReversalOfReversal);
        }
        if self.indexes.reversed_by.contains_key(&applied.position) {
            return Err(TransferError::AlreadyReversed);
        }
        let legs = applied
            .transfer
            .legs
            .iter()
            .map(|leg| crate::transfer::Leg {
                side: opposite(leg.side),
                ..*leg
            })
            .collect();
        Ok(Transfer {
            id,
            kind: TransferKind::Reversal,
            business_day,
            legs,
            allow_overdraft: false,
            related: Some(original),
            refs,
            timestamp_ms,
        })
    }

    /// Applies a logged event. Panics if it cannot be applied: events are checked with
    /// [`Book::prepare`] before they are logged, so a failure here is a bug or a corrupt log.
    /// A transfer whose id was already applied changes nothing.
    pub fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::OpenAccount { id, kind } => self.open_account(*id, *kind),
            LedgerEvent::Post(transfer) => self.post(transfer),
        }
        debug_assert_eq!(self.debits_minor, self.credits_minor, "book out of balance");
    }

    fn open_account(&mut self, id: AccountId, kind: AccountKind) {
        assert_eq!(
            id,
            self.next_account_id(),
            "accounts are opened densely, in order"
        );
        assert!(id.0 < ACCOUNTS_MAX, "book is full: {} accounts", id.0);
        self.slots.push(Slot {
            account: Account::new(kind),
            last_posting: POSITION_NONE,
        });
    }

    fn post(&mut self, transfer: &Transfer) {
        let position = self.history.len();
        let related = transfer
            .related
            .and_then(|id| self.indexes.by_id.get(id, &self.history));
        if self.indexes.by_id.get(transfer.id, &self.history).is_some() {
            return;
        }
        // `validate` checks the balance first (`is_balanced`): an unbalanced transfer panics.
        if let Err(error) = validate(
            &self.slots,
            &self.history,
            &self.indexes.reversed_by,
            transfer,
            related,
        ) {
            panic!("cannot apply transfer {:?}: {error}", transfer.id);
        }
        self.indexes.by_id.insert_new(transfer.id, position);

        // Every check has passed: from here on nothing can fail, so the transfer applies whole.
        let mut previous_postings = [POSITION_NONE; LEGS_MAX];
        for (index, leg) in transfer.legs.iter().enumerate() {
            let slot = self
                .slots
                .get_mut(leg.account.0 as usize)
                .expect("validated account");
            match leg.side {
                Side::Debit => slot.account.debits_minor += leg.amount_minor,
                Side::Credit => slot.account.credits_minor += leg.amount_minor,
            }
            let linked = transfer.legs[..index]
                .iter()
                .any(|earlier| earlier.account == leg.account);
            if !linked {
                previous_postings[index] = slot.last_posting;
                slot.last_posting = position;
            }
        }
        let amount_minor = transfer.amount_minor();
        self.debits_minor += amount_minor as u128;
        self.credits_minor += amount_minor as u128;

        self.history.push(AppliedTransfer {
            transfer: transfer.clone(),
            position,
            previous_postings,
        });
        let entry = self.history.get(position).expect("just pushed");
        index_transfer(&mut self.indexes, &self.history, entry, related);
    }

    /// Makes room for `transfers` more transfers in the indexes, so that applying them does
    /// not rehash the id index (replay calls this with the length of the WAL).
    pub fn reserve(&mut self, transfers: usize) {
        self.indexes.by_id.reserve(transfers);
        self.indexes.by_rrn.reserve(transfers);
    }

    /// Asks the CPU to fetch the id index's slot where looking up or adding transfer `id`
    /// starts: a request's transfer id is known before it runs. Changes nothing.
    pub fn prefetch_id(&self, id: TransferId) {
        self.indexes.by_id.prefetch(id);
    }

    /// Asks the CPU to fetch what applying `event` will touch at random places (the id
    /// index's slot, the legs' accounts, the terminal's batch totals), so that replay can
    /// issue it a few events ahead. Changes nothing.
    pub fn prefetch(&self, event: &LedgerEvent) {
        let LedgerEvent::Post(transfer) = event else {
            return;
        };
        self.indexes.by_id.prefetch(transfer.id);
        for leg in &transfer.legs {
            if let Some(slot) = self.slots.get(leg.account.0 as usize) {
                crate::hash::prefetch(slot);
            }
        }
        if counts_in_totals(transfer.kind) {
            // A lookup (a `HashMap` does not tell where a key's bucket is): its loads start
            // the misses early, whatever it finds. The batches' table is large (a terminal's
            // totals per batch), the merchants' days small.
            let refs = &transfer.refs;
            if let Some(totals) = self.indexes.batches.get(&(refs.terminal, refs.batch)) {
                crate::hash::prefetch(totals);
            }
        }
    }

    pub fn transfer(&self, id: TransferId) -> Option<&AppliedTransfer> {
        let position = self.indexes.by_id.get(id, &self.history)?;
        self.history.get(position)
    }

    /// The first transfer posted with this RRN.
    pub fn transfer_by_rrn(&self, rrn: u64) -> Option<&AppliedTransfer> {
        let position = self.indexes.by_rrn.get(rrn)?;
        self.history.get(position)
    }

    pub fn transfer_at(&self, position: u32) -> Option<&AppliedTransfer> {
        self.history.get(position)
    }

    pub fn is_reversed(&self, id: TransferId) -> bool {
        self.reversed_by(id).is_some()
    }

    /// The reversal that undid transfer `id`, if any.
    pub fn reversed_by(&self, id: TransferId) -> Option<&AppliedTransfer> {
        let position = self.indexes.by_id.get(id, &self.history)?;
        let reversal = *self.indexes.reversed_by.get(&position)?;
        self.history.get(reversal)
    }

    pub fn merchant_day_totals(&self, merchant: &[u8; 15], day: BusinessDay) -> Totals {
        self.indexes
            .merchant_days
            .get(&(*merchant, day))
            .copied()
            .unwrap_or_default()
    }

    pub fn batch_totals(&self, terminal: &[u8; 8], batch: u32) -> Totals {
        self.indexes
            .batches
            .get(&(*terminal, batch))
            .copied()
            .unwrap_or_default()
    }

    /// Transfers of a business day, in posting order.
    pub fn transfers_of_day(
        &self,
        day: BusinessDay,
    ) -> impl Iterator<Item = &AppliedTransfer> + '_ {
        let runs = &self.indexes.day_runs;
        let history_len = self.history.len();
        runs.iter()
            .enumerate()
            .filter(move |(_, run)| run.day == day)
            .flat_map(move |(index, run)| {
                let end = runs.get(index + 1).map_or(history_len, |next| next.first);
                (run.first..end)
                    .map(move |position| self.history.get(position).expect("in history"))
            })
    }

    /// An account's postings in posting order, each with the account's balance after it:
    /// a card statement. Follows the account's chain back from its latest posting, so the
    /// cost is the account's own postings, whatever the size of the book.
    pub fn postings_of(
        &self,
        id: AccountId,
    ) -> impl DoubleEndedIterator<Item = (&AppliedTransfer, i64)> + '_ {
        let mut postings = Vec::new();
        if let Some(slot) = self.slots.get(id.0 as usize) {
            let kind = slot.account.kind;
            let mut balance_minor = slot.account.balance_minor();
            let mut position = slot.last_posting;
            while position != POSITION_NONE {
                let entry = self
                    .history
                    .get(position)
                    .expect("posting chain stays in history");
                postings.push((entry, balance_minor));
                balance_minor -= effect_minor(&entry.transfer, id, kind);
                let leg = entry.transfer.legs.iter().position(|leg| leg.account == id);
                let leg =
                    leg.expect("posting chain links only transfers with a leg on the account");
                let previous = entry.previous_postings[leg];
                assert!(
                    previous == POSITION_NONE || previous < position,
                    "chain goes back"
                );
                position = previous;
            }
            // Every account opens at zero: undoing all its postings must come back to zero.
            assert_eq!(
                balance_minor, 0,
                "account {id:?}: postings do not add up to its balance"
            );
        }
        postings.reverse();
        postings.into_iter()
    }

    /// Sums every account's sides. Cheap enough to call at day close.
    pub fn check_balanced(&self) -> BookCheck {
        let mut debits_minor: u128 = 0;
        let mut credits_minor: u128 = 0;
        for slot in self.slots.iter() {
            debits_minor += slot.account.debits_minor as u128;
            credits_minor += slot.account.credits_minor as u128;
        }
        BookCheck {
            balanced: debits_minor == credits_minor,
            debits_minor,
            credits_minor,
            accounts: self.slots.len(),
            transfers: self.history.len() as usize,
        }
    }

    /// The full check run after recovery: the book balances, and every account's totals equal
    /// the sum of its postings in the history.
    pub fn verify(&self) -> Result<(), String> {
        let check = self.check_balanced();
        if !check.balanced {
            return Err(format!(
                "book does not balance: debits {} != credits {}",
                check.debits_minor, check.credits_minor
            ));
        }
        if (check.debits_minor, check.credits_minor) != (self.debits_minor, self.credits_minor) {
            return Err("running totals differ from the accounts' sums".to_string());
        }
        let mut recount = vec![(0u64, 0u64); self.slots.len()];
        for entry in self.history.iter() {
            for leg in &entry.transfer.legs {
                let Some(sides) = recount.get_mut(leg.account.0 as usize) else {
                    return Err(format!(
                        "transfer {:?} posts to unknown {:?}",
                        entry.transfer.id, leg.account
                    ));
                };
                match leg.side {
                    Side::Debit => sides.0 += leg.amount_minor,
                    Side::Credit => sides.1 += leg.amount_minor,
                }
            }
        }
        for (index, (slot, sides)) in self.slots.iter().zip(&recount).enumerate() {
            if (slot.account.debits_minor, slot.account.credits_minor) != *sides {
                return Err(format!(
                    "account {index}: totals differ from the sum of its postings"
                ));
            }
        }
        Ok(())
    }

    pub fn snapshot(&self) -> BookSnapshot {
        BookSnapshot {
            slots: self.slots.clone(),
            history: self.history.share(),
        }
    }

    /// Rebuilds a book from a snapshot, indexes included. Panics if the snapshot's shape is
    /// impossible (a bug; snapshots are checksummed on disk).
    pub fn restore(snapshot: BookSnapshot) -> Book {
        let history = History::from_log(snapshot.history);
        let mut book = Book {
            slots: snapshot.slots,
            history,
            ..Book::default()
        };
        let Book {
            slots,
            history,
            indexes,
            debits_minor,
            credits_minor,
        } = &mut book;
        for slot in slots.iter() {
            assert!(slot.last_posting == POSITION_NONE || slot.last_posting < history.len());
            *debits_minor += slot.account.debits_minor as u128;
            *credits_minor += slot.account.credits_minor as u128;
        }
        indexes.by_id.reserve(history.len() as usize);
        for entry in history.iter() {
            let id = entry.transfer.id;
            let previous = indexes.by_id.get(id, history);
            assert!(previous.is_none(), "transfer {id:?} twice in the history");
            indexes.by_id.insert_new(id, entry.position);
            let related = entry.transfer.related.map(|id| {
                indexes
                    .by_id
                    .get(id, history)
                    .expect("related transfers precede their relatives")
            });
            index_transfer(indexes, history, entry, related);
        }
        book
    }
}

impl StateMachine for Book {
    type Event = LedgerEvent;
    type Snapshot = BookSnapshot;

    fn apply(&mut self, event: &LedgerEvent) {
        Book::apply(self, event)
    }

    fn snapshot(&self) -> BookSnapshot {
        Book::snapshot(self)
    }

    fn restore(snapshot: BookSnapshot) -> Book {
        Book::restore(snapshot)
    }

    fn check(&self) -> Result<(), String> {
        self.verify()
    }

    fn reserve(&mut self, events: u64) {
        Book::reserve(self, usize::try_from(events).unwrap_or(usize::MAX));
    }

    fn prefetch(&self, event: &LedgerEvent) {
        Book::prefetch(self, event)
    }
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Debit => Side::Credit,
        Side::Credit => Side::Debit,
    }
}

/// What `transfer` does to the balance of account `id` (of `kind`), in minor units.
fn effect_minor(transfer: &Transfer, id: AccountId, kind: AccountKind) -> i64 {
    let normal = kind.normal_side();
    let mut effect: i64 = 0;
    for leg in transfer.legs.iter().filter(|leg| leg.account == id) {
        if leg.side == normal {
            effect += leg.amount_minor as i64;
        } else {
            effect -= leg.amount_minor as i64;
        }
    }
    effect
}

/// Every rule a new transfer must pass. Pure: `prepare` and `apply` both call it.
/// `related` is the position of `transfer.related`, if that transfer exists.
fn validate(
    slots: &CowVec<Slot>,
    history: &History,
    reversed_by: &FastMap<u32, u32>,
    transfer: &Transfer,
    related: Option<u32>,
) -> Result<(), TransferError> {
    if !transfer.is_balanced() {
        return Err(TransferError::Unbalanced);
    }
    for (index, leg) in transfer.legs.iter().enumerate() {
        let Some(slot) = slots.get(leg.account.0 as usize) else {
            return Err(TransferError::UnknownAccount(leg.account));
        };
        // The legs on one account are judged together, once, at the account's first leg.
        if transfer.legs[..index]
            .iter()
            .any(|earlier| earlier.account == leg.account)
        {
            continue;
        }
        let account = &slot.account;
        let (mut debits_minor, mut credits_minor) = (0u64, 0u64);
        for same in transfer.legs[index..]
            .iter()
            .filter(|same| same.account == leg.account)
        {
            match same.side {
                Side::Debit => debits_minor += same.amount_minor,
                Side::Credit => credits_minor += same.amount_minor,
            }
        }
        let overflow = TransferError::Overflow {
            account: leg.account,
        };
        let debits_after = account
            .debits_minor
            .checked_add(debits_minor)
            .ok_or(overflow)?;
        let credits_after = account
            .credits_minor
            .checked_add(credits_minor)
            .ok_or(overflow)?;
        if debits_after > ACCOUNT_TOTAL_MAX_MINOR || credits_after > ACCOUNT_TOTAL_MAX_MINOR {
            return Err(overflow);
        }
        if account.kind == AccountKind::CardStoredValue && !transfer.allow_overdraft {
            let balance_minor = account.balance_minor();
            let net_minor = credits_minor as i128 - debits_minor as i128;
            if net_minor < 0 && (balance_minor as i128) + net_minor < 0 {
                return Err(TransferError::InsufficientFunds {
                    account: leg.account,
                    balance_minor,
                    needed_minor: (-net_minor) as u64,
                });
            }
        }
    }
    match (transfer.kind, transfer.related) {
        (TransferKind::Reversal, None) => return Err(TransferError::OriginalNotFound),
        (TransferKind::Reversal, Some(_)) => {
            let position = related.ok_or(TransferError::OriginalNotFound)?;
            let original = &history.get(position).expect("indexed transfer").transfer;
            if original.kind == TransferKind::Reversal {
                return Err(TransferError::ReversalOfReversal);
            }
            if reversed_by.contains_key(&position) {
                return Err(TransferError::AlreadyReversed);
            }
            let mirrors = original.legs.len() == transfer.legs.len()
                && original.legs.iter().zip(&transfer.legs).all(|(o, r)| {
                    o.account == r.account
                        && o.amount_minor == r.amount_minor
                        && o.side == opposite(r.side)
                });
            if !mirrors {
                return Err(TransferError::ReversalMismatch);
            }
        }
        (_, Some(_)) => {
            related.ok_or(TransferError::OriginalNotFound)?;
        }
        (_, None) => {}
    }
    Ok(())
}

/// Adds an applied transfer to the derived indexes (all but `by_id`, which the caller owns).
fn index_transfer(
    indexes: &mut Indexes,
    history: &History,
    entry: &AppliedTransfer,
    related: Option<u32>,
) {
    let transfer = &entry.transfer;
    if transfer.refs.rrn != 0 {
        indexes
            .by_rrn
            .insert_first(transfer.refs.rrn, entry.position);
    }
    match indexes.day_runs.last() {
        Some(run) if run.day == transfer.business_day => {}
        _ => indexes.day_runs.push(DayRun {
            day: transfer.business_day,
            first: entry.position,
        }),
    }
    if counts_in_totals(transfer.kind) {
        let amount_minor = transfer.amount_minor();
        let refs = &transfer.refs;
        indexes
            .merchant_days
            .entry((refs.merchant, transfer.business_day))
            .or_default()
            .add(transfer.kind, amount_minor);
        indexes
            .batches
            .entry((refs.terminal, refs.batch))
            .or_default()
            .add(transfer.kind, amount_minor);
    }
    if transfer.kind == TransferKind::Reversal {
        let original_position = related.expect("a reversal's original exists");
        let previous = indexes
            .reversed_by
            .insert(original_position, entry.position);
        assert!(
            previous.is_none(),
            "transfer at {original_position} reversed twice"
        );
        let original = &history.get(original_position).expect("indexed").transfer;
        if counts_in_totals(original.kind) {
            let amount_minor = original.amount_minor();
            let refs = &original.refs;
            let day = original.business_day;
            let merchant_day = indexes.merchant_days.get_mut(&(refs.merchant, day));
            merchant_day
                .expect("original was counted")
                .remove(original.kind, amount_minor);
            let batch = indexes.batches.get_mut(&(refs.terminal, refs.batch));
            batch
                .expect("original was counted")
                .remove(original.kind, amount_minor);
        }
    }
}
