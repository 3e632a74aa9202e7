//! Workloads shared by the ledger's integration tests.
#![allow(dead_code)]

use arrayvec::ArrayVec;
use ledger::sim_disk::SimRng;
use ledger::*;

pub const DAY: BusinessDay = BusinessDay(20261122);

pub fn merchant_id(n: u64) -> [u8; 15] {
    let mut id = *b"MERCHANT0000000";
    id[14] = b'0' + (n % 10) as u8;
    id
}

pub fn terminal_id(n: u64) -> [u8; 8] {
    let mut id = *b"TERM0000";
    id[7] = b'0' + (n % 10) as u8;
    id
}

pub fn refs(rrn: u64, terminal: u64, batch: u32) -> References {
    References {
        rrn,
        terminal: terminal_id(terminal),
        merchant: merchant_id(terminal),
        batch,
        ..References::NONE
    }
}

pub fn transfer(id: u128, kind: TransferKind, legs: &[(AccountId, Side, u64)]) -> Transfer {
    let legs: ArrayVec<Leg, LEGS_MAX> = legs
        .iter()
        .map(|&(account, side, amount_minor)| Leg {
            account,
            side,
            amount_minor,
        })
        .collect();
    Transfer {
        id: TransferId(id),
        kind,
        business_day: DAY,
        legs,
        allow_overdraft: false,
        related: None,
        refs: References::NONE,
        timestamp_ms: 1_700_000_000_000 + id as u64,
    }
}

/// Card pays merchant.
pub fn purchase(id: u128, card: AccountId, merchant: AccountId, amount_minor: u64) -> Transfer {
    transfer(
        id,
        TransferKind::Purchase,
        &[
            (card, Side::Debit, amount_minor),
            (merchant, Side::Credit, amount_minor),
        ],
    )
}

/// Bank funds card.
pub fn top_up(id: u128, bank: AccountId, card: AccountId, amount_minor: u64) -> Transfer {
    transfer(
        id,
        TransferKind::TopUp,
        &[
            (bank, Side::Debit, amount_minor),
            (card, Side::Credit, amount_minor),
        ],
    )
}

/// A book's state as bytes, to compare two books exactly.
pub fn fingerprint(book: &Book) -> Vec<u8> {
    postcard::to_stdvec(&book.snapshot()).expect("snapshot encodes")
}

pub fn apply_all(events: &[LedgerEvent]) -> Book {
    let mut book = Book::new();
    for event in events {
        book.apply(event);
    }
    book
}

/// Generates valid events against a live book, as the switch would: opens a few accounts,
/// then top-ups, purchases (some declined and skipped), reversals and duplicates.
pub struct Workload {
    rng: SimRng,
    next_id: u128,
    pub cards: Vec<AccountId>,
    pub merchants: Vec<AccountId>,
    pub bank: Option<AccountId>,
}

impl Workload {
    pub fn new(seed: u64) -> Workload {
        Workload {
            rng: SimRng::new(seed),
            next_id: 1,
            cards: Vec::new(),
            merchants: Vec::new(),
            bank: None,
        }
    }

    /// The next event to emit, checked with `prepare` against `book`.
    pub fn next_event(&mut self, book: &Book) -> LedgerEvent {
        loop {
            if let Some(event) = self.try_event(book) {
                return event;
            }
        }
    }

    fn open(&mut self, book: &Book, kind: AccountKind) -> LedgerEvent {
        let id = book.next_account_id();
        match kind {
            AccountKind::BankSettlement => self.bank = Some(id),
            AccountKind::MerchantPayable => self.merchants.push(id),
            _ => self.cards.push(id),
        }
        LedgerEvent::OpenAccount { id, kind }
    }

    fn try_event(&mut self, book: &Book) -> Option<LedgerEvent> {
        if self.bank.is_none() {
            return Some(self.open(book, AccountKind::BankSettlement));
        }
        if self.merchants.len() < 2 {
            return Some(self.open(book, AccountKind::MerchantPayable));
        }
        if self.cards.len() < 3 || self.rng.chance(1, 30) {
            return Some(self.open(book, AccountKind::CardStoredValue));
        }
        let card = self.cards[self.rng.below(self.cards.len() as u64) as usize];
        let merchant = self.merchants[self.rng.below(self.merchants.len() as u64) as usize];
        let amount = 1 + self.rng.below(5_000);
        let roll = self.rng.below(100);
        let id = self.next_id;
        let transfer = if roll < 30 {
            top_up(id, self.bank.expect("opened"), card, amount)
        } else if roll < 85 {
            let mut transfer = purchase(id, card, merchant, amount);
            transfer.refs = refs(id as u64, self.rng.below(3), 1 + self.rng.below(2) as u32);
            transfer
        } else if roll < 95 {
            let original = TransferId(1 + self.rng.below(self.next_id as u64) as u128);
            book.reversal_of(original, TransferId(id), DAY, References::NONE, 0)
                .ok()?
        } else {
            // A retry of an earlier transfer: logged again, changes nothing.
            let original = TransferId(1 + self.rng.below(self.next_id as u64) as u128);
            return book
                .transfer(original)
                .map(|applied| LedgerEvent::Post(applied.transfer.clone()));
        };
        match book.prepare(&transfer) {
            Ok(Prepared::New) => {
                self.next_id += 1;
                Some(LedgerEvent::Post(transfer))
            }
            _ => None,
        }
    }
}
