//! The book's rules, one case each, then random sequences against a simple model.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use ledger::*;
use proptest::prelude::*;

struct Fixture {
    book: Book,
    bank: AccountId,
    card: AccountId,
    merchant: AccountId,
}

fn fixture(card_balance_minor: u64) -> Fixture {
    let mut book = Book::new();
    let open = |book: &mut Book, kind| {
        let id = book.next_account_id();
        book.apply(&LedgerEvent::OpenAccount { id, kind });
        id
    };
    let bank = open(&mut book, AccountKind::BankSettlement);
    let card = open(&mut book, AccountKind::CardStoredValue);
    let merchant = open(&mut book, AccountKind::MerchantPayable);
    if card_balance_minor > 0 {
        book.apply(&LedgerEvent::Post(top_up(
            1_000_000,
            bank,
            card,
            card_balance_minor,
        )));
    }
    Fixture {
        book,
        bank,
        card,
        merchant,
    }
}

fn post(book: &mut Book, transfer: Transfer) -> Result<(), TransferError> {
    match book.prepare(&transfer)? {
        Prepared::New | Prepared::Duplicate(_) => book.apply(&LedgerEvent::Post(transfer)),
    }
    Ok(())
}

#[test]
fn purchase_moves_value_and_balances() {
    let Fixture {
        mut book,
        card,
        merchant,
        ..
    } = fixture(1_000);
    post(&mut book, purchase(1, card, merchant, 300)).unwrap();
    assert_eq!(book.balance_minor(card), Some(700));
    assert_eq!(book.balance_minor(merchant), Some(300));
    let check = book.check_balanced();
    assert!(check.balanced);
    assert_eq!((check.accounts, check.transfers), (3, 2));
    book.verify().unwrap();
}

#[test]
fn card_may_not_go_below_zero_unless_offline_overdraft() {
    let Fixture {
        mut book,
        bank,
        card,
        merchant,
    } = fixture(100);
    let error = post(&mut book, purchase(1, card, merchant, 101)).unwrap_err();
    assert_eq!(
        error,
        TransferError::InsufficientFunds {
            account: card,
            balance_minor: 100,
            needed_minor: 101
        }
    );
    assert_eq!(
        book.balance_minor(card),
        Some(100),
        "a rejected transfer changes nothing"
    );
    assert!(book.transfer(TransferId(1)).is_none());

    let mut offline = purchase(2, card, merchant, 150);
    offline.kind = TransferKind::OfflinePurchase;
    offline.allow_overdraft = true;
    post(&mut book, offline).unwrap();
    assert_eq!(book.balance_minor(card), Some(-50));
    // Crediting an overdrawn card is always allowed, even if it stays below zero.
    post(&mut book, top_up(3, bank, card, 20)).unwrap();
    assert_eq!(book.balance_minor(card), Some(-30));
}

#[test]
fn unbalanced_and_unknown_are_rejected() {
    let Fixture {
        book,
        card,
        merchant,
        ..
    } = fixture(1_000);
    let unbalanced = transfer(
        1,
        TransferKind::Purchase,
        &[(card, Side::Debit, 10), (merchant, Side::Credit, 9)],
    );
    assert_eq!(book.prepare(&unbalanced), Err(TransferError::Unbalanced));
    let zero = transfer(
        2,
        TransferKind::Purchase,
        &[(card, Side::Debit, 0), (merchant, Side::Credit, 0)],
    );
    assert_eq!(book.prepare(&zero), Err(TransferError::Unbalanced));
    let one_leg = transfer(3, TransferKind::Purchase, &[(card, Side::Debit, 10)]);
    assert_eq!(book.prepare(&one_leg), Err(TransferError::Unbalanced));
    let unknown = purchase(4, card, AccountId(99), 10);
    assert_eq!(
        book.prepare(&unknown),
        Err(TransferError::UnknownAccount(AccountId(99)))
    );
}

#[test]
#[should_panic(expected = "cannot apply transfer")]
fn applying_an_invalid_event_panics() {
    let Fixture {
        mut book,
        card,
        merchant,
        ..
    } = fixture(10);
    book.apply(&LedgerEvent::Post(purchase(1, card, merchant, 11)));
}

#[test]
fn same_id_twice_changes_nothing_and_returns_the_first_result() {
    let Fixture {
        mut book,
        card,
        merchant,
        ..
    } = fixture(1_000);
    let first = purchase(1, card, merchant, 300);
    post(&mut book, first.clone()).unwrap();
    let before = fingerprint(&book);
    // Even a retry that would now fail (or differs) is the first result, and applying it
    // again is a no-op.
    let mut retry = purchase(1, card, merchant, 900);
    retry.timestamp_ms += 1;
    match book.prepare(&retry).unwrap() {
        Prepared::Duplicate(applied) => assert_eq!(applied.transfer, first),
        Prepared::New => panic!("duplicate not detected"),
    }
    book.apply(&LedgerEvent::Post(retry));
    assert_eq!(fingerprint(&book), before);
}

#[test]
fn reversal_undoes_once_and_cannot_be_reversed() {
    let Fixture {
        mut book,
        card,
        merchant,
        ..
    } = fixture(1_000);
    let mut sale = purchase(1, card, merchant, 300);
    sale.refs = refs(555, 1, 7);
    post(&mut book, sale).unwrap();
    assert_eq!(
        book.merchant_day_totals(&merchant_id(1), DAY)
            .purchase_minor,
        300
    );

    let reversal = book
        .reversal_of(TransferId(1), TransferId(2), DAY, refs(555, 1, 7), 0)
        .unwrap();
    post(&mut book, reversal).unwrap();
    assert_eq!(book.balance_minor(card), Some(1_000));
    assert!(book.is_reversed(TransferId(1)));
    assert_eq!(
        book.reversed_by(TransferId(1)).unwrap().transfer.id,
        TransferId(2)
    );
    assert_eq!(
        book.merchant_day_totals(&merchant_id(1), DAY),
        Totals::default()
    );
    assert_eq!(book.batch_totals(&terminal_id(1), 7), Totals::default());
    // The RRN still finds the original, not the reversal that repeats it.
    assert_eq!(
        book.transfer_by_rrn(555).unwrap().transfer.id,
        TransferId(1)
    );

    let again = book.reversal_of(TransferId(1), TransferId(3), DAY, References::NONE, 0);
    assert_eq!(again, Err(TransferError::AlreadyReversed));
    let mut forced = transfer(
        3,
        TransferKind::Reversal,
        &[(card, Side::Credit, 300), (merchant, Side::Debit, 300)],
    );
    forced.related = Some(TransferId(1));
    assert_eq!(book.prepare(&forced), Err(TransferError::AlreadyReversed));
    let of_reversal = book.reversal_of(TransferId(2), TransferId(4), DAY, References::NONE, 0);
    assert_eq!(of_reversal, Err(TransferError::ReversalOfReversal));
    let missing = book.reversal_of(TransferId(77), TransferId(5), DAY, References::NONE, 0);
    assert_eq!(missing, Err(TransferError::OriginalNotFound));
}

#[test]
fn reversal_must_mirror_its_original() {
    let Fixture {
        mut book,
        card,
        merchant,
        ..
    } = fixture(1_000);
    post(&mut book, purchase(1, card, merchant, 300)).unwrap();
    let mut partial = book
        .reversal_of(TransferId(1), TransferId(2), DAY, References::NONE, 0)
        .unwrap();
    partial.legs[0].amount_minor = 200;
    partial.legs[1].amount_minor = 200;
    assert_eq!(book.prepare(&partial), Err(TransferError::ReversalMismatch));
    let mut unlinked = book
        .reversal_of(TransferId(1), TransferId(2), DAY, References::NONE, 0)
        .unwrap();
    unlinked.related = None;
    assert_eq!(
        book.prepare(&unlinked),
        Err(TransferError::OriginalNotFound)
    );
}

#[test]
fn totals_per_merchant_day_and_terminal_batch() {
    let Fixture {
        mut book,
        bank,
        card,
        merchant,
    } = fixture(10_000);
    let sale = |id: u128, amount, terminal, batch, day| {
        let mut sale = purchase(id, card, merchant, amount);
        sale.refs = refs(id as u64, terminal, batch);
        sale.business_day = day;
        sale
    };
    post(&mut book, sale(1, 100, 1, 1, DAY)).unwrap();
    post(&mut book, sale(2, 200, 1, 1, DAY)).unwrap();
    post(&mut book, sale(3, 400, 1, 2, DAY)).unwrap();
    post(&mut book, sale(4, 800, 2, 1, BusinessDay(20261123))).unwrap();
    let mut refund = transfer(
        5,
        TransferKind::Refund,
        &[(merchant, Side::Debit, 50), (card, Side::Credit, 50)],
    );
    refund.refs = refs(5, 1, 2);
    refund.related = Some(TransferId(3));
    post(&mut book, refund).unwrap();
    post(&mut book, top_up(6, bank, card, 5)).unwrap();

    let day1 = book.merchant_day_totals(&merchant_id(1), DAY);
    assert_eq!(
        day1,
        Totals {
            purchase_count: 3,
            purchase_minor: 700,
            refund_count: 1,
            refund_minor: 50
        }
    );
    assert_eq!(
        book.merchant_day_totals(&merchant_id(2), BusinessDay(20261123))
            .purchase_minor,
        800
    );
    assert_eq!(book.batch_totals(&terminal_id(1), 1).purchase_minor, 300);
    assert_eq!(
        book.batch_totals(&terminal_id(1), 2),
        Totals {
            purchase_count: 1,
            purchase_minor: 400,
            refund_count: 1,
            refund_minor: 50
        }
    );
    let ids: Vec<u128> = book
        .transfers_of_day(DAY)
        .map(|applied| applied.transfer.id.0)
        .collect();
    assert_eq!(ids, vec![1_000_000, 1, 2, 3, 5, 6]);
    let mut unknown = transfer(
        7,
        TransferKind::Refund,
        &[(merchant, Side::Debit, 1), (card, Side::Credit, 1)],
    );
    unknown.related = Some(TransferId(99));
    assert_eq!(book.prepare(&unknown), Err(TransferError::OriginalNotFound));
}

#[test]
fn statement_lists_postings_with_running_balance() {
    let Fixture {
        mut book,
        bank,
        card,
        merchant,
    } = fixture(0);
    post(&mut book, top_up(1, bank, card, 1_000)).unwrap();
    post(&mut book, purchase(2, card, merchant, 300)).unwrap();
    post(&mut book, top_up(3, bank, merchant, 5)).unwrap();
    post(&mut book, purchase(4, card, merchant, 200)).unwrap();
    let statement: Vec<(u128, i64)> = book
        .postings_of(card)
        .map(|(applied, balance)| (applied.transfer.id.0, balance))
        .collect();
    assert_eq!(statement, vec![(1, 1_000), (2, 700), (4, 500)]);
    let newest_first: Vec<u128> = book
        .postings_of(card)
        .rev()
        .map(|(applied, _)| applied.transfer.id.0)
        .collect();
    assert_eq!(newest_first, vec![4, 2, 1]);
    assert_eq!(book.postings_of(AccountId(1234)).count(), 0);
}

#[test]
fn snapshot_restores_the_same_book_and_shares_history() {
    let mut workload = Workload::new(7);
    let mut book = Book::new();
    for _ in 0..10_000 {
        let event = workload.next_event(&book);
        book.apply(&event);
    }
    let snapshot = book.snapshot();
    assert_eq!(snapshot.transfers(), book.transfers());
    // The live book goes on; the snapshot does not move.
    let before = postcard::to_stdvec(&snapshot).unwrap();
    for _ in 0..1_000 {
        let event = workload.next_event(&book);
        book.apply(&event);
    }
    assert_eq!(postcard::to_stdvec(&snapshot).unwrap(), before);
    let restored = Book::restore(postcard::from_bytes(&before).unwrap());
    restored.verify().unwrap();
    let restored_again = Book::restore(book.snapshot());
    assert_eq!(fingerprint(&restored_again), fingerprint(&book));
    for card in &workload.cards {
        let live: Vec<_> = book
            .postings_of(*card)
            .map(|(applied, balance)| (applied.position, balance))
            .collect();
        let back: Vec<_> = restored_again
            .postings_of(*card)
            .map(|(applied, balance)| (applied.position, balance))
            .collect();
        assert_eq!(live, back);
    }
    for id in 1..2_000u128 {
        let (live, back) = (
            book.transfer(TransferId(id)),
            restored_again.transfer(TransferId(id)),
        );
        assert_eq!(live, back);
        assert_eq!(
            book.is_reversed(TransferId(id)),
            restored_again.is_reversed(TransferId(id))
        );
    }
}

// ---- Model-based property test ------------------------------------------------------------

/// The simplest book that could work: no indexes, no chains, just maps and sums.
#[derive(Default)]
struct Model {
    kinds: Vec<AccountKind>,
    debits: Vec<u64>,
    credits: Vec<u64>,
    applied: HashMap<u128, Transfer>,
    order: Vec<u128>,
    reversed: HashSet<u128>,
}

impl Model {
    fn balance(&self, account: usize) -> i64 {
        let (debits, credits) = (self.debits[account] as i64, self.credits[account] as i64);
        match self.kinds[account].normal_side() {
            Side::Credit => credits - debits,
            Side::Debit => debits - credits,
        }
    }

    fn check(&self, transfer: &Transfer) -> Result<bool, TransferError> {
        if self.applied.contains_key(&transfer.id.0) {
            return Ok(false);
        }
        let debits: u64 = transfer
            .legs
            .iter()
            .filter(|l| l.side == Side::Debit)
            .map(|l| l.amount_minor)
            .sum();
        let credits: u64 = transfer
            .legs
            .iter()
            .filter(|l| l.side == Side::Credit)
            .map(|l| l.amount_minor)
            .sum();
        if transfer.legs.len() < 2
            || debits != credits
            || transfer.legs.iter().any(|l| l.amount_minor == 0)
        {
            return Err(TransferError::Unbalanced);
        }
        let mut seen = HashSet::new();
        for leg in &transfer.legs {
            let account = leg.account.0 as usize;
            if account >= self.kinds.len() {
                return Err(TransferError::UnknownAccount(leg.account));
            }
            if !seen.insert(account) {
                continue;
            }
            let net: i64 = transfer
                .legs
                .iter()
                .filter(|l| l.account == leg.account)
                .map(|l| {
                    if l.side == Side::Credit {
                        l.amount_minor as i64
                    } else {
                        -(l.amount_minor as i64)
                    }
                })
                .sum();
            let balance = self.balance(account);
            if self.kinds[account] == AccountKind::CardStoredValue
                && !transfer.allow_overdraft
                && net < 0
                && balance + net < 0
            {
                return Err(TransferError::InsufficientFunds {
                    account: leg.account,
                    balance_minor: balance,
                    needed_minor: (-net) as u64,
                });
            }
        }
        if transfer.kind == TransferKind::Reversal {
            let original = transfer
                .related
                .and_then(|id| self.applied.get(&id.0))
                .ok_or(TransferError::OriginalNotFound)?;
            if original.kind == TransferKind::Reversal {
                return Err(TransferError::ReversalOfReversal);
            }
            if self.reversed.contains(&original.id.0) {
                return Err(TransferError::AlreadyReversed);
            }
            let mirrors = original.legs.len() == transfer.legs.len()
                && original.legs.iter().zip(&transfer.legs).all(|(o, r)| {
                    o.account == r.account && o.amount_minor == r.amount_minor && o.side != r.side
                });
            if !mirrors {
                return Err(TransferError::ReversalMismatch);
            }
        } else if let Some(related) = transfer.related {
            if !self.applied.contains_key(&related.0) {
                return Err(TransferError::OriginalNotFound);
            }
        }
        Ok(true)
    }

    fn apply(&mut self, transfer: &Transfer) {
        for leg in &transfer.legs {
            match leg.side {
                Side::Debit => self.debits[leg.account.0 as usize] += leg.amount_minor,
                Side::Credit => self.credits[leg.account.0 as usize] += leg.amount_minor,
            }
        }
        if transfer.kind == TransferKind::Reversal {
            self.reversed.insert(transfer.related.unwrap().0);
        }
        self.applied.insert(transfer.id.0, transfer.clone());
        self.order.push(transfer.id.0);
    }

    /// Totals recomputed from scratch over every applied transfer.
    fn totals(&self, matches: impl Fn(&Transfer) -> bool) -> Totals {
        let mut totals = Totals::default();
        for id in &self.order {
            let transfer = &self.applied[id];
            if !matches(transfer) || self.reversed.contains(id) {
                continue;
            }
            match transfer.kind {
                TransferKind::Purchase | TransferKind::OfflinePurchase => {
                    totals.purchase_count += 1;
                    totals.purchase_minor += transfer.amount_minor();
                }
                TransferKind::Refund => {
                    totals.refund_count += 1;
                    totals.refund_minor += transfer.amount_minor();
                }
                _ => {}
            }
        }
        totals
    }
}

#[derive(Clone, Debug)]
enum Op {
    Open(u8),
    Purchase {
        card: u8,
        merchant: u8,
        amount: u64,
        offline: bool,
        terminal: u8,
        batch: u8,
        day: u8,
    },
    TopUp {
        card: u8,
        amount: u64,
    },
    Refund {
        of: u8,
        amount: u64,
    },
    Reverse {
        of: u8,
        tamper: bool,
    },
    Duplicate {
        of: u8,
    },
    Random {
        legs: Vec<(u8, bool, u64)>,
        kind: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..8).prop_map(Op::Open),
        5 => (any::<u8>(), any::<u8>(), 1u64..2_000, prop::bool::weighted(0.2), 0u8..3, 0u8..2, 0u8..2)
            .prop_map(|(card, merchant, amount, offline, terminal, batch, day)| Op::Purchase { card, merchant, amount, offline, terminal, batch, day }),
        3 => (any::<u8>(), 1u64..3_000).prop_map(|(card, amount)| Op::TopUp { card, amount }),
        1 => (any::<u8>(), 1u64..1_000).prop_map(|(of, amount)| Op::Refund { of, amount }),
        2 => (any::<u8>(), prop::bool::weighted(0.2)).prop_map(|(of, tamper)| Op::Reverse { of, tamper }),
        1 => any::<u8>().prop_map(|of| Op::Duplicate { of }),
        1 => (prop::collection::vec((0u8..20, any::<bool>(), 0u64..100), 1..=4), 0u8..11)
            .prop_map(|(legs, kind)| Op::Random { legs, kind }),
    ]
}

const KINDS: [AccountKind; 8] = [
    AccountKind::CardStoredValue,
    AccountKind::MerchantPayable,
    AccountKind::BankSettlement,
    AccountKind::SubsidyFund,
    AccountKind::CashDesk,
    AccountKind::FeeRevenue,
    AccountKind::ForfeitedBalances,
    AccountKind::OfflineSuspense,
];

const TRANSFER_KINDS: [TransferKind; 11] = [
    TransferKind::Purchase,
    TransferKind::Refund,
    TransferKind::TopUp,
    TransferKind::OfflinePurchase,
    TransferKind::OfflineRejected,
    TransferKind::Deposit,
    TransferKind::Withdrawal,
    TransferKind::Subsidy,
    TransferKind::Replacement,
    TransferKind::Cancellation,
    TransferKind::Reversal,
];

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[index as usize % items.len()])
}

/// Turns an op into a transfer against the current accounts (None: nothing to do).
fn build(op: &Op, model: &Model, book: &Book, next_id: u128) -> Option<Transfer> {
    let of_kind = |kind| -> Vec<AccountId> {
        (0..model.kinds.len())
            .filter(|&i| model.kinds[i] == kind)
            .map(|i| AccountId(i as u32))
            .collect()
    };
    let (cards, merchants, banks) = (
        of_kind(AccountKind::CardStoredValue),
        of_kind(AccountKind::MerchantPayable),
        of_kind(AccountKind::BankSettlement),
    );
    let ids = &model.order;
    Some(match op {
        Op::Open(_) => return None,
        Op::Purchase {
            card,
            merchant,
            amount,
            offline,
            terminal,
            batch,
            day,
        } => {
            let mut t = purchase(
                next_id,
                pick(&cards, *card)?,
                pick(&merchants, *merchant)?,
                *amount,
            );
            t.refs = refs(next_id as u64 % 50, *terminal as u64, *batch as u32);
            t.business_day = BusinessDay(DAY.0 + *day as u32);
            if *offline {
                t.kind = TransferKind::OfflinePurchase;
                t.allow_overdraft = true;
            }
            t
        }
        Op::TopUp { card, amount } => {
            top_up(next_id, pick(&banks, 0)?, pick(&cards, *card)?, *amount)
        }
        Op::Refund { of, amount } => {
            let original = &model.applied[&pick(ids, *of)?];
            let (card, merchant) = (original.legs[0].account, original.legs[1].account);
            let mut t = transfer(
                next_id,
                TransferKind::Refund,
                &[
                    (merchant, Side::Debit, *amount),
                    (card, Side::Credit, *amount),
                ],
            );
            t.refs = original.refs;
            t.related = Some(original.id);
            t
        }
        Op::Reverse { of, tamper } => {
            let original = TransferId(pick(ids, *of)?);
            let mut t =
                match book.reversal_of(original, TransferId(next_id), DAY, References::NONE, 0) {
                    Ok(t) => t,
                    Err(_) => {
                        // Build the mirror by hand so that prepare, not the helper, must refuse it.
                        let o = &model.applied[&original.0];
                        let legs: Vec<_> = o
                            .legs
                            .iter()
                            .map(|l| {
                                (
                                    l.account,
                                    if l.side == Side::Debit {
                                        Side::Credit
                                    } else {
                                        Side::Debit
                                    },
                                    l.amount_minor,
                                )
                            })
                            .collect();
                        let mut t = transfer(next_id, TransferKind::Reversal, &legs);
                        t.related = Some(original);
                        t
                    }
                };
            if *tamper {
                t.legs.swap(0, 1);
            }
            t
        }
        Op::Duplicate { of } => model.applied[&pick(ids, *of)?].clone(),
        Op::Random { legs, kind } => {
            let legs: Vec<_> = legs
                .iter()
                .map(|&(account, debit, amount)| {
                    (
                        AccountId(account as u32),
                        if debit { Side::Debit } else { Side::Credit },
                        amount,
                    )
                })
                .collect();
            transfer(next_id, TRANSFER_KINDS[*kind as usize], &legs)
        }
    })
}

fn compare(model: &Model, book: &Book) {
    assert_eq!(book.accounts(), model.kinds.len());
    assert_eq!(book.transfers(), model.order.len());
    for account in 0..model.kinds.len() {
        let id = AccountId(account as u32);
        assert_eq!(
            book.balance_minor(id),
            Some(model.balance(account)),
            "balance of {id:?}"
        );
        let statement: Vec<_> = book.postings_of(id).collect();
        if let Some((_, last)) = statement.last() {
            assert_eq!(
                *last,
                model.balance(account),
                "statement of {id:?} ends at its balance"
            );
        }
    }
    for day in [DAY, BusinessDay(DAY.0 + 1)] {
        for terminal in 0..3 {
            let merchant = merchant_id(terminal);
            let expected = model.totals(|t| t.refs.merchant == merchant && t.business_day == day);
            assert_eq!(book.merchant_day_totals(&merchant, day), expected);
            let count = book.transfers_of_day(day).count();
            assert_eq!(
                count,
                model
                    .order
                    .iter()
                    .filter(|id| model.applied[*id].business_day == day)
                    .count()
            );
        }
    }
    for terminal in 0..3 {
        for batch in 0..2 {
            let expected =
                model.totals(|t| t.refs.terminal == terminal_id(terminal) && t.refs.batch == batch);
            assert_eq!(book.batch_totals(&terminal_id(terminal), batch), expected);
        }
    }
    for (position, id) in model.order.iter().enumerate() {
        let applied = book
            .transfer(TransferId(*id))
            .expect("applied transfer is found");
        assert_eq!(applied.position as usize, position);
        assert_eq!(&applied.transfer, &model.applied[id]);
        assert_eq!(
            book.is_reversed(TransferId(*id)),
            model.reversed.contains(id)
        );
    }
    for rrn in 1..50u64 {
        let first = model
            .order
            .iter()
            .find(|id| model.applied[*id].refs.rrn == rrn);
        assert_eq!(
            book.transfer_by_rrn(rrn)
                .map(|applied| applied.transfer.id.0),
            first.copied()
        );
    }
    let check = book.check_balanced();
    assert!(check.balanced, "{check:?}");
    book.verify().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn book_matches_the_model(ops in prop::collection::vec(op(), 1..150)) {
        let mut book = Book::new();
        let mut model = Model::default();
        let bank = book.next_account_id();
        book.apply(&LedgerEvent::OpenAccount { id: bank, kind: AccountKind::BankSettlement });
        model.kinds.push(AccountKind::BankSettlement);
        model.debits.push(0);
        model.credits.push(0);
        let mut next_id: u128 = 1;
        for op in &ops {
            if let Op::Open(kind) = op {
                let kind = KINDS[*kind as usize];
                book.apply(&LedgerEvent::OpenAccount { id: book.next_account_id(), kind });
                model.kinds.push(kind);
                model.debits.push(0);
                model.credits.push(0);
                continue;
            }
            let Some(transfer) = build(op, &model, &book, next_id) else { continue };
            let expected = model.check(&transfer);
            let before = fingerprint(&book);
            match (book.prepare(&transfer), expected) {
                (Ok(Prepared::New), Ok(true)) => {
                    book.apply(&LedgerEvent::Post(transfer.clone()));
                    model.apply(&transfer);
                    next_id += 1;
                }
                (Ok(Prepared::Duplicate(first)), Ok(false)) => {
                    prop_assert_eq!(&first.transfer, &model.applied[&transfer.id.0]);
                    book.apply(&LedgerEvent::Post(transfer.clone()));
                    prop_assert_eq!(fingerprint(&book), before, "a duplicate changed the book");
                }
                (Err(error), Err(expected)) => {
                    prop_assert_eq!(error, expected);
                    prop_assert_eq!(fingerprint(&book), before, "a rejected transfer changed the book");
                    next_id += 1;
                }
                (got, expected) => prop_assert!(false, "book said {:?}, model said {:?} for {:?}", got, expected, transfer),
            }
            prop_assert!(book.check_balanced().balanced);
        }
        compare(&model, &book);
        let restored = Book::restore(postcard::from_bytes(&postcard::to_stdvec(&book.snapshot()).unwrap()).unwrap());
        compare(&model, &restored);
    }
}
