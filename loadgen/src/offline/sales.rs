//! What an offline terminal sells while it cannot reach the host: which sales go on which
//! cards, which advices it re-sends and which it loses, decided up front in exact shares so
//! that every case of PROTOCOL.md 3.8 occurs in a run of any size.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::session::{AMOUNT_MAX_MINOR, AMOUNT_MIN_MINOR};

/// The case of 3.8 a sale is meant to hit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SaleCase {
    /// An active card with money on it.
    Normal,
    /// Above the card's whole opening balance, so it goes below zero whatever the order.
    Overdraft,
    /// A card blocked before the terminal's blacklist download: the merchant bears it.
    BlockedKnown,
    /// A card blocked after the download: charged to the card, flagged.
    BlockedAfter,
}

impl SaleCase {
    /// Whether the host charges the card (3.8: not when the terminal knew of the block).
    pub fn charges_card(self) -> bool {
        self != SaleCase::BlockedKnown
    }
}

/// Shares of a terminal's sales, in percent.
#[derive(Copy, Clone, Debug)]
pub struct Shares {
    pub duplicate: f64,
    pub blocked: f64,
    pub overdraft: f64,
    pub lost: f64,
}

/// Which cards play which part: the first `blocked_known` are blocked before the download,
/// the next `blocked_after` after it, the rest stay active.
#[derive(Copy, Clone, Debug)]
pub struct CardRoles {
    pub cards: usize,
    pub blocked_known: usize,
    pub blocked_after: usize,
}

impl CardRoles {
    pub fn new(cards: usize, blocked: usize) -> CardRoles {
        let blocked_known = blocked.div_ceil(2);
        CardRoles {
            cards,
            blocked_known,
            blocked_after: blocked - blocked_known,
        }
    }

    fn active(&self) -> std::ops::Range<usize> {
        self.blocked_known + self.blocked_after..self.cards
    }

    pub fn known(&self) -> std::ops::Range<usize> {
        0..self.blocked_known
    }

    pub fn after(&self) -> std::ops::Range<usize> {
        self.blocked_known..self.blocked_known + self.blocked_after
    }
}

/// One planned sale: the card, the amount, its case, and what happens to its advice.
#[derive(Copy, Clone, Debug)]
pub struct PlannedSale {
    pub card: usize,
    pub amount_minor: u64,
    pub case: SaleCase,
    /// Its advice is sent again (0221) after the first one is answered.
    pub resent: bool,
    /// Its advice never reaches the host: the batch is out of balance until the upload.
    pub lost: bool,
}

/// `share` percent of `count`, rounded to the nearest whole.
pub fn share_of(count: usize, percent: f64) -> usize {
    ((count as f64 * percent / 100.0).round() as usize).min(count)
}

/// The `count` sales of one terminal. Blocked sales alternate between the two blocked sets
/// (when both have cards), so that both blocked rows of 3.8 occur.
pub fn plan(
    count: usize,
    shares: Shares,
    roles: CardRoles,
    card_balance_minor: u64,
    rng: &mut StdRng,
) -> Vec<PlannedSale> {
    let blocked = if roles.blocked_known + roles.blocked_after == 0 {
        0
    } else {
        share_of(count, shares.blocked)
    };
    let overdraft = share_of(count, shares.overdraft).min(count - blocked);
    let mut cases = Vec::with_capacity(count);
    for i in 0..blocked {
        let after = roles.blocked_after > 0 && (i % 2 == 1 || roles.blocked_known == 0);
        cases.push(if after {
            SaleCase::BlockedAfter
        } else {
            SaleCase::BlockedKnown
        });
    }
    cases.resize(blocked + overdraft, SaleCase::Overdraft);
    cases.resize(count, SaleCase::Normal);
    cases.shuffle(rng);
    // Lost and re-sent advices are disjoint: a lost advice was never sent at all.
    let lost = share_of(count, shares.lost);
    let resent = share_of(count, shares.duplicate).min(count - lost);
    let mut fate: Vec<(bool, bool)> = vec![(false, false); count];
    for slot in fate.iter_mut().take(lost) {
        slot.1 = true;
    }
    for slot in fate.iter_mut().skip(lost).take(resent) {
        slot.0 = true;
    }
    fate.shuffle(rng);
    cases
        .into_iter()
        .zip(fate)
        .map(|(case, (resent, lost))| {
            let card = match case {
                SaleCase::Normal | SaleCase::Overdraft => rng.gen_range(roles.active()),
                SaleCase::BlockedKnown => rng.gen_range(roles.known()),
                SaleCase::BlockedAfter => rng.gen_range(roles.after()),
            };
            let amount = rng.gen_range(AMOUNT_MIN_MINOR..=AMOUNT_MAX_MINOR);
            PlannedSale {
                card,
                amount_minor: match case {
                    SaleCase::Overdraft => card_balance_minor + amount,
                    _ => amount,
                },
                case,
                resent,
                lost,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn exact_shares_and_card_roles() {
        let mut rng = StdRng::seed_from_u64(7);
        let shares = Shares {
            duplicate: 10.0,
            blocked: 4.0,
            overdraft: 2.0,
            lost: 1.0,
        };
        let roles = CardRoles::new(20, 4);
        let sales = plan(1000, shares, roles, 50_000, &mut rng);
        let count = |case| sales.iter().filter(|s| s.case == case).count();
        assert_eq!(count(SaleCase::BlockedKnown), 20);
        assert_eq!(count(SaleCase::BlockedAfter), 20);
        assert_eq!(count(SaleCase::Overdraft), 20);
        assert_eq!(sales.iter().filter(|s| s.resent).count(), 100);
        assert_eq!(sales.iter().filter(|s| s.lost).count(), 10);
        assert!(sales.iter().all(|s| !(s.resent && s.lost)));
        for sale in &sales {
            match sale.case {
                SaleCase::BlockedKnown => assert!(sale.card < 2),
                SaleCase::BlockedAfter => assert!((2..4).contains(&sale.card)),
                SaleCase::Overdraft => assert!(sale.card >= 4 && sale.amount_minor > 50_000),
                SaleCase::Normal => assert!(sale.card >= 4 && sale.amount_minor <= 5_000),
            }
        }
    }

    #[test]
    fn no_blocked_cards_means_no_blocked_sales() {
        let mut rng = StdRng::seed_from_u64(1);
        let shares = Shares {
            duplicate: 0.0,
            blocked: 50.0,
            overdraft: 0.0,
            lost: 0.0,
        };
        let sales = plan(10, shares, CardRoles::new(3, 0), 100, &mut rng);
        assert!(sales.iter().all(|s| s.case == SaleCase::Normal));
        assert_eq!(share_of(3, 50.0), 2);
        assert_eq!(share_of(2000, 0.05), 1);
    }
}
