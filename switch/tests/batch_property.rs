//! Property: whatever a canteen terminal does within its batches (online sales, offline
//! sales whose advice arrives or not, reversals, retransmissions, repeated advices, records
//! it loses, 0320 uploads with duplicates, 0500 closes), every batch's totals at the host
//! equal what the book posted for that batch, each sale is posted once, a batch closed on
//! its totals agreed with the terminal, and the book balances (PROTOCOL.md 3.7-3.9).
//!
//! Runs `authorize::terminal_request` on a `HostState` directly, without the engine or
//! sockets: the decisions and events are the same, and a case costs microseconds.

use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti};
use ledger::book::Totals;
use ledger::state_machine::{StateMachine, Tx};
use ledger::transfer::{BusinessDay, TransferKind};
use proptest::prelude::*;
use switch::authorize::{host_totals, terminal_request};
use switch::config::Config;
use switch::policy::Policy;
use switch::state::batches::BatchKey;
use switch::state::ids::TerminalId;
use switch::state::HostState;

const TERMINAL: &str = "T0000001";
const MERCHANT: &str = "M00000000000001";
/// The demo cards (switch/src/demo.rs): 100.00, 500.00, 50.00 and 20.00, so offline sales
/// overdraw some of them and online sales on those are then declined.
const CARDS: [&str; 4] = [
    "6290001234567893",
    "6290009876543213",
    "6290000000000014",
    "6290000000000022",
];
/// 2026-11-23 04:00 UTC, the demo business day.
const NOW_MS: u64 = 1_795_406_400_000;

#[derive(Clone, Debug)]
enum Op {
    Online {
        card: usize,
        amount: u64,
    },
    /// An offline sale; its advice reaches the host now, or only with the upload.
    Offline {
        card: usize,
        amount: u64,
        advised: bool,
    },
    Reverse {
        pick: usize,
    },
    /// The same request bytes again (a retransmission, or the same 0220 again).
    Retransmit {
        pick: usize,
    },
    /// An 0221 repeat of an offline sale's advice.
    RepeatAdvice {
        pick: usize,
    },
    /// 0500; the terminal may have lost one record first.
    Close {
        lose: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let card = 0..CARDS.len();
    let amount = 1..2_500u64;
    prop_oneof![
        4 => (card.clone(), amount.clone()).prop_map(|(card, amount)| Op::Online { card, amount }),
        4 => (card, amount, any::<bool>())
            .prop_map(|(card, amount, advised)| Op::Offline { card, amount, advised }),
        1 => any::<usize>().prop_map(|pick| Op::Reverse { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Retransmit { pick }),
        1 => any::<usize>().prop_map(|pick| Op::RepeatAdvice { pick }),
        1 => proptest::option::weighted(0.3, any::<usize>()).prop_map(|lose| Op::Close { lose }),
    ]
}

/// A sale as the terminal keeps it.
#[derive(Clone, Debug)]
struct Record {
    card: usize,
    amount: u64,
    stan: u32,
    /// F7, and the local time F13 + F12 (the same here).
    time: String,
    online: bool,
    /// The host has it (approved online, or its advice or upload arrived).
    at_host: bool,
    reversed: bool,
}

/// One terminal against one host state.
struct Sim {
    state: HostState,
    policy: Policy,
    stan: u32,
    seconds: u32,
    batch: u32,
    records: Vec<Record>,
    /// Requests of the current batch and their answers, for retransmission.
    sent: Vec<(Bytes, [u8; 2])>,
    /// Every sale the host must have posted, once: (batch, STAN, amount), not reversed.
    posted: Vec<(u32, u32, u64)>,
}

impl Sim {
    fn new() -> Sim {
        let policy = Policy::from_config(&Config::default());
        let state = switch::demo::seeded_state(&policy, BusinessDay(20261123), NOW_MS);
        let mut sim = Sim {
            state,
            policy,
            stan: 0,
            seconds: 8 * 3600,
            batch: 1,
            records: Vec::new(),
            sent: Vec::new(),
            posted: Vec::new(),
        };
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        let (stan, time) = sim.next_ids();
        b.set(Field::TransmissionDateTime, time.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, stan as u64).unwrap();
        b.set(Field::TerminalId, TERMINAL.as_bytes()).unwrap();
        b.set_numeric(Field::NetworkCode, 1).unwrap();
        assert_eq!(&sim.exchange(b.build().unwrap()), b"00", "sign-on");
        sim
    }

    /// A fresh STAN and `MMDDhhmmss`, both increasing.
    fn next_ids(&mut self) -> (u32, String) {
        self.stan += 1;
        self.seconds += 1;
        let s = self.seconds;
        let time = format!("1123{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60);
        (self.stan, time)
    }

    fn exchange(&mut self, bytes: Bytes) -> [u8; 2] {
        let msg = Message::parse(bytes).expect("the test builds valid messages");
        let mut events = Vec::new();
        let mut tx = Tx::new(&mut self.state, &mut events);
        terminal_request(&mut tx, &msg, &self.policy, NOW_MS)
            .reply
            .code
    }

    fn request(&self, mti: Mti, processing: u64, record: &Record) -> MessageBuilder {
        let mut b = MessageBuilder::new(mti);
        b.set(Field::Pan, CARDS[record.card].as_bytes()).unwrap();
        b.set_numeric(Field::ProcessingCode, processing).unwrap();
        b.set_numeric(Field::Amount, record.amount).unwrap();
        b.set(Field::TransmissionDateTime, record.time.as_bytes())
            .unwrap();
        b.set_numeric(Field::Stan, record.stan as u64).unwrap();
        b.set(Field::LocalDate, &record.time.as_bytes()[..4])
            .unwrap();
        b.set(Field::LocalTime, &record.time.as_bytes()[4..])
            .unwrap();
        b.set(Field::TerminalId, TERMINAL.as_bytes()).unwrap();
        b.set(Field::MerchantId, MERCHANT.as_bytes()).unwrap();
        b.set_digits(Field::Batch, self.batch as u64, 6).unwrap();
        b
    }

    fn send(&mut self, b: MessageBuilder) -> [u8; 2] {
        let bytes = b.build().unwrap();
        let code = self.exchange(bytes.clone());
        self.sent.push((bytes, code));
        code
    }

    fn sale(&mut self, card: usize, amount: u64, online: bool) -> Record {
        let (stan, time) = self.next_ids();
        Record {
            card,
            amount,
            stan,
            time,
            online,
            at_host: false,
            reversed: false,
        }
    }

    /// The host has a sale now: remember it as posted, once.
    fn reached_host(&mut self, index: usize) {
        let record = &mut self.records[index];
        if !record.at_host {
            record.at_host = true;
            self.posted.push((self.batch, record.stan, record.amount));
        }
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Online { card, amount } => {
                let mut record = self.sale(card, amount, true);
                let b = self.request(Mti::FINANCIAL_REQUEST, 0, &record);
                if &self.send(b) == b"00" {
                    record.at_host = true;
                    self.posted.push((self.batch, record.stan, amount));
                    self.records.push(record);
                }
            }
            Op::Offline {
                card,
                amount,
                advised,
            } => {
                let record = self.sale(card, amount, false);
                self.records.push(record);
                if advised {
                    self.advise(self.records.len() - 1, Mti::FINANCIAL_ADVICE);
                }
            }
            Op::Reverse { pick } => {
                let candidates: Vec<usize> = (0..self.records.len())
                    .filter(|&i| self.records[i].online && !self.records[i].reversed)
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let index = candidates[pick % candidates.len()];
                let original = self.records[index].clone();
                let (stan, time) = self.next_ids();
                let mut b = self.request(Mti::REVERSAL_REQUEST, 0, &original);
                b.set_numeric(Field::Stan, stan as u64).unwrap();
                b.set(Field::TransmissionDateTime, time.as_bytes()).unwrap();
                b.unset(Field::LocalDate).unset(Field::LocalTime);
                let f90 = format!(
                    "0200{:06}{}{}",
                    original.stan,
                    original.time,
                    "0".repeat(22)
                );
                b.set(Field::OriginalData, f90.as_bytes()).unwrap();
                assert_eq!(&self.send(b), b"00", "reversal of an approved sale");
                self.records[index].reversed = true;
                let at = self
                    .posted
                    .iter()
                    .position(|p| (p.0, p.1) == (self.batch, original.stan))
                    .expect("an online sale was posted");
                self.posted.remove(at);
            }
            Op::Retransmit { pick } => {
                if self.sent.is_empty() {
                    return;
                }
                let (bytes, code) = self.sent[pick % self.sent.len()].clone();
                assert_eq!(
                    self.exchange(bytes),
                    code,
                    "a retransmission: the same answer"
                );
            }
            Op::RepeatAdvice { pick } => {
                let offline: Vec<usize> = (0..self.records.len())
                    .filter(|&i| !self.records[i].online)
                    .collect();
                if let Some(&index) = offline.get(pick % offline.len().max(1)) {
                    self.advise(index, Mti::FINANCIAL_ADVICE_REPEAT);
                }
            }
            Op::Close { lose } => self.close(lose),
        }
    }

    fn advise(&mut self, index: usize, mti: Mti) {
        let b = self.request(mti, 0, &self.records[index]);
        assert_eq!(&self.send(b), b"00", "an advice is always recorded");
        self.reached_host(index);
    }

    /// The terminal's 0500: in balance unless it lost a record or an advice never arrived;
    /// then its upload (the first record twice) and the 0500 after upload.
    fn close(&mut self, lose: Option<usize>) {
        if let Some(pick) = lose.filter(|_| !self.records.is_empty()) {
            self.records.remove(pick % self.records.len());
        }
        let kept: Vec<Record> = self
            .records
            .iter()
            .filter(|r| !r.reversed)
            .cloned()
            .collect();
        let terminal = Totals {
            purchase_count: kept.len() as u64,
            purchase_minor: kept.iter().map(|r| r.amount).sum(),
            refund_count: 0,
            refund_minor: 0,
        };
        // The host compares counts and amounts only: a lost record and an advice that never
        // arrived can cancel out.
        let host_has: Vec<u64> = self
            .posted
            .iter()
            .filter(|p| p.0 == self.batch)
            .map(|p| p.2)
            .collect();
        let in_balance = host_has.len() as u64 == terminal.purchase_count
            && host_has.iter().sum::<u64>() == terminal.purchase_minor;
        let code = self.settle(920_000, &terminal);
        assert_eq!(&code, if in_balance { b"00" } else { b"95" }, "0500 920000");
        if !in_balance {
            let uploads = kept.first().into_iter().chain(kept.iter());
            for record in uploads.cloned().collect::<Vec<_>>() {
                let mut b = self.request(Mti::BATCH_UPLOAD, 0, &record);
                b.unset(Field::TransmissionDateTime);
                assert_eq!(&self.send(b), b"00", "0320");
                if let Some(index) = self.records.iter().position(|r| r.stan == record.stan) {
                    self.reached_host(index);
                }
            }
            assert_eq!(&self.settle(960_000, &terminal), b"00", "0500 960000");
        }
        let key = self.key(self.batch);
        assert!(self.state.batches.is_closed(&key));
        self.batch += 1;
        self.records.clear();
        self.sent.clear();
    }

    fn settle(&mut self, processing: u64, totals: &Totals) -> [u8; 2] {
        let mut b = MessageBuilder::new(Mti::RECONCILIATION_REQUEST);
        let (stan, time) = self.next_ids();
        b.set_numeric(Field::ProcessingCode, processing).unwrap();
        b.set(Field::TransmissionDateTime, time.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, stan as u64).unwrap();
        b.set(Field::TerminalId, TERMINAL.as_bytes()).unwrap();
        b.set(Field::MerchantId, MERCHANT.as_bytes()).unwrap();
        b.set_digits(Field::Batch, self.batch as u64, 6).unwrap();
        b.set_numeric(Field::DebitsCount, totals.purchase_count)
            .unwrap();
        b.set_numeric(Field::DebitsAmount, totals.purchase_minor)
            .unwrap();
        b.set_numeric(Field::CreditsCount, totals.refund_count)
            .unwrap();
        b.set_numeric(Field::CreditsAmount, totals.refund_minor)
            .unwrap();
        self.exchange(b.build().unwrap())
    }

    fn key(&self, batch: u32) -> BatchKey {
        BatchKey {
            terminal: TerminalId::parse(TERMINAL).unwrap(),
            batch,
        }
    }

    /// A batch's totals summed from the book's postings, reversed ones left out.
    fn posted_totals(&self, batch: u32) -> Totals {
        let book = &self.state.book;
        let mut totals = Totals::default();
        for position in 0..book.transfers() as u32 {
            let t = &book.transfer_at(position).expect("in history").transfer;
            let ours = t.refs.terminal.as_slice() == TERMINAL.as_bytes() && t.refs.batch == batch;
            if !ours || book.is_reversed(t.id) {
                continue;
            }
            match t.kind {
                TransferKind::Purchase
                | TransferKind::OfflinePurchase
                | TransferKind::OfflineRejected => {
                    totals.purchase_count += 1;
                    totals.purchase_minor += t.amount_minor();
                }
                TransferKind::Refund => {
                    totals.refund_count += 1;
                    totals.refund_minor += t.amount_minor();
                }
                _ => {}
            }
        }
        totals
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn batch_totals_are_what_was_posted_once_and_the_book_balances(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.run(op);
        }
        sim.close(None);
        for batch in 1..sim.batch {
            let key = sim.key(batch);
            let closing = sim.state.batches.get(&key).and_then(|b| b.closing);
            let Some(closing) = closing else {
                // A batch with no message the host saw leaves no record; its 0500 closed
                // an empty one.
                prop_assert!(sim.posted.iter().all(|p| p.0 != batch));
                continue;
            };
            let posted = sim.posted_totals(batch);
            prop_assert_eq!(host_totals(&sim.state, &key), posted, "batch {}", batch);
            prop_assert_eq!(closing.host_totals, posted, "batch {} at its close", batch);
            let expected: Vec<u64> = sim.posted.iter().filter(|p| p.0 == batch).map(|p| p.2).collect();
            prop_assert_eq!(posted.purchase_count, expected.len() as u64, "batch {}: each sale once", batch);
            prop_assert_eq!(posted.purchase_minor, expected.iter().sum::<u64>());
            if !closing.after_upload {
                prop_assert_eq!(closing.terminal_totals, closing.host_totals);
            }
        }
        let check = sim.state.book.check_balanced();
        prop_assert!(check.balanced, "debits {} != credits {}", check.debits_minor, check.credits_minor);
        prop_assert_eq!(sim.state.check(), Ok(()));
    }
}
