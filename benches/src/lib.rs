//! Shared fixtures for the benchmarks in `benches/` and the load examples.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use ledger::*;

pub mod rates;

pub const DAY: BusinessDay = BusinessDay(20261123);
pub const MERCHANTS: u32 = 20;
/// What a card is funded with: enough that no purchase in a run is declined.
pub const CARD_FUNDS_MINOR: u64 = 1_000_000_000_000;

/// A book with a bank account, merchants and funded cards, as the switch's would be.
#[derive(Clone)]
pub struct Fixture {
    pub book: Book,
    pub cards: Vec<AccountId>,
    pub merchants: Vec<AccountId>,
}

impl Fixture {
    pub fn new(cards: u32) -> Fixture {
        let mut book = Book::new();
        let bank = open(&mut book, AccountKind::BankSettlement);
        let merchants: Vec<_> = (0..MERCHANTS)
            .map(|_| open(&mut book, AccountKind::MerchantPayable))
            .collect();
        let cards: Vec<_> = (0..cards)
            .map(|_| open(&mut book, AccountKind::CardStoredValue))
            .collect();
        for (index, &card) in cards.iter().enumerate() {
            let mut legs = ArrayVec::new();
            legs.push(leg(bank, Side::Debit, CARD_FUNDS_MINOR));
            legs.push(leg(card, Side::Credit, CARD_FUNDS_MINOR));
            let top_up = Transfer {
                id: TransferId(u128::MAX - index as u128),
                kind: TransferKind::TopUp,
                business_day: DAY,
                legs,
                allow_overdraft: false,
                related: None,
                refs: References::NONE,
                timestamp_ms: 1_763_900_000_000,
            };
            book.apply(&LedgerEvent::Post(top_up));
        }
        Fixture {
            book,
            cards,
            merchants,
        }
    }

    /// The `n`-th purchase of a run: a card of the fixture pays a merchant, with the
    /// references the switch sets (RRN, terminal, merchant, batch, STAN, local time, approval).
    pub fn purchase(&self, n: u64) -> Transfer {
        let card = self.cards[(mix(n) % self.cards.len() as u64) as usize];
        let merchant_index = n % self.merchants.len() as u64;
        let merchant = self.merchants[merchant_index as usize];
        let amount_minor = 100 + mix(n ^ 0xA5) % 4_900;
        let mut legs = ArrayVec::new();
        legs.push(leg(card, Side::Debit, amount_minor));
        legs.push(leg(merchant, Side::Credit, amount_minor));
        let rrn = 100_000_000_000 + n;
        let mut terminal = *b"T0000000";
        terminal[5..].copy_from_slice(format!("{:03}", n % 1000).as_bytes());
        let mut merchant_id = *b"M00000000000000";
        merchant_id[13..].copy_from_slice(format!("{merchant_index:02}").as_bytes());
        let mut approval = *b"A00000";
        approval[1..].copy_from_slice(format!("{:05}", rrn % 100_000).as_bytes());
        Transfer {
            // Like the switch's F41+F11+F7 hash: spread over all 128 bits.
            id: TransferId(((mix(n) as u128) << 64) | mix(!n) as u128),
            kind: TransferKind::Purchase,
            business_day: DAY,
            legs,
            allow_overdraft: false,
            related: None,
            refs: References {
                rrn,
                terminal,
                merchant: merchant_id,
                batch: 1 + (n / 10_000) as u32 % 1000,
                stan: (n % 1_000_000) as u32,
                local_time: *b"1123083015",
                approval,
                channel: Channel::Online,
            },
            timestamp_ms: 1_763_900_000_000 + n,
        }
    }
}

pub fn open(book: &mut Book, kind: AccountKind) -> AccountId {
    let id = book.next_account_id();
    book.apply(&LedgerEvent::OpenAccount { id, kind });
    id
}

fn leg(account: AccountId, side: Side, amount_minor: u64) -> Leg {
    Leg {
        account,
        side,
        amount_minor,
    }
}

/// splitmix64: spreads a counter over the cards and the id space.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The switch's decision and emit, on the engine thread: `prepare`, then post if new.
pub fn decide_and_post(tx: &mut Tx<'_, Book>, transfer: Transfer) -> bool {
    match tx.state().prepare(&transfer) {
        Ok(Prepared::New) => {
            tx.emit(LedgerEvent::Post(transfer));
            true
        }
        _ => false,
    }
}

/// This thread's time on a CPU so far, in nanoseconds (Linux), or `None`.
pub fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Median over `rounds` of the mean time per call of `f` (thread CPU time where available,
/// see [`thread_cpu_ns`], else wall clock), each round lasting about `round_time`.
pub fn median_ns<T>(rounds: usize, round_time: Duration, mut f: impl FnMut() -> T) -> f64 {
    // Calibrate a batch size that takes about a millisecond, so the clock is read rarely.
    let mut batch = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        if start.elapsed() >= Duration::from_millis(1) || batch >= 1 << 24 {
            break;
        }
        batch *= 2;
    }
    let mut means: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let cpu_start = thread_cpu_ns();
            let mut calls = 0u64;
            while start.elapsed() < round_time {
                for _ in 0..batch {
                    black_box(f());
                }
                calls += batch;
            }
            let ns = match (cpu_start, thread_cpu_ns()) {
                (Some(from), Some(to)) => to.saturating_sub(from) as f64,
                _ => start.elapsed().as_nanos() as f64,
            };
            ns / calls as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}

/// Rounds and round length for the ratio tables the benchmarks print after criterion's:
/// `cargo bench` passes --bench; `cargo test --benches` does not, and then one quick round
/// only checks that the loops run.
pub fn ratio_rounds() -> (usize, Duration) {
    if std::env::args().any(|a| a == "--bench") {
        (7, Duration::from_millis(700))
    } else {
        (1, Duration::from_millis(20))
    }
}

/// Prints rows of (workload, our ns, their ns) with the ratio theirs / ours.
pub fn print_ratios(rounds: usize, round_time: Duration, theirs: &str, rows: &[(&str, f64, f64)]) {
    let clock = match thread_cpu_ns() {
        Some(_) => "thread CPU time",
        None => "wall clock",
    };
    println!("\nratio (median ns per call over {rounds} rounds of {round_time:?}, {clock}):");
    println!(
        "{:<12} {:>12} {:>12} {:>8}",
        "workload", "codec", theirs, "ratio"
    );
    for (name, ours_ns, theirs_ns) in rows {
        println!(
            "{name:<12} {ours_ns:>10.0}ns {theirs_ns:>10.0}ns {:>7.1}x",
            theirs_ns / ours_ns
        );
    }
}
