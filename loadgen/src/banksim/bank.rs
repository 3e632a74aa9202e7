//! The simulated bank's books and its record of what it received. No I/O: the link asks,
//! this decides.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

/// How to treat requests of one MTI (set through the control port).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rule {
    /// Requests still to leave unanswered; `u64::MAX` for all of them.
    pub drop_remaining: u64,
    pub delay_ms: u64,
}

/// One request as received, for the tests' inspection.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub mti: String,
    pub stan: u32,
    /// F90 of reversal advices.
    pub original: Option<String>,
    /// What was answered (F39), or `None` when dropped.
    pub answered: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub tls_handshakes_failed: u64,
    pub sign_ons: u64,
    pub approvals: u64,
    pub declines: u64,
    pub reversals_applied: u64,
    pub clearing_accepted: u64,
    pub clearing_rejected: u64,
}

pub struct Bank {
    default_balance: u64,
    balances: HashMap<String, u64>,
    /// Approved top-ups by their (F11, F7): the account and amount, to reverse them.
    approved: HashMap<(u32, String), (String, u64)>,
    reversed: HashSet<(u32, String)>,
    pub rules: BTreeMap<String, Rule>,
    pub refuse_connections: bool,
    pub counters: Counters,
    pub received: Vec<Received>,
    /// Answers to the bank's own 0800s (cutover, echo), F39 by F70.
    pub network_answers: Vec<(u16, String)>,
    approval_serial: u64,
}

/// The bank's decision on a top-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUpAnswer {
    pub code: &'static str,
    pub approval: Option<String>,
}

impl Bank {
    pub fn new(default_balance: u64) -> Bank {
        Bank {
            default_balance,
            balances: HashMap::new(),
            approved: HashMap::new(),
            reversed: HashSet::new(),
            rules: BTreeMap::new(),
            refuse_connections: false,
            counters: Counters::default(),
            received: Vec::new(),
            network_answers: Vec::new(),
            approval_serial: 0,
        }
    }

    pub fn set_balance(&mut self, account: &str, minor: u64) {
        self.balances.insert(account.to_owned(), minor);
    }

    pub fn balance(&self, account: &str) -> u64 {
        self.balances
            .get(account)
            .copied()
            .unwrap_or(self.default_balance)
    }

    /// Whether to answer a request of `mti` (consumes one drop), and after what delay.
    pub fn rule_for(&mut self, mti: &str) -> (bool, u64) {
        let Some(rule) = self.rules.get_mut(mti) else {
            return (true, 0);
        };
        let answer = if rule.drop_remaining == 0 {
            true
        } else {
            if rule.drop_remaining != u64::MAX {
                rule.drop_remaining -= 1;
            }
            false
        };
        (answer, rule.delay_ms)
    }

    /// Top-up authorization (4.2): approve while the account has the money, else `51`.
    pub fn authorize(
        &mut self,
        account: &str,
        amount_minor: u64,
        key: (u32, String),
    ) -> TopUpAnswer {
        if let Some((_, _)) = self.approved.get(&key) {
            // A repeat of an approved request is approved again, not charged again.
            return TopUpAnswer {
                code: "00",
                approval: Some(format!("B{:05}", self.approval_serial % 100_000)),
            };
        }
        let balance = self.balance(account);
        if amount_minor == 0 || amount_minor > balance {
            self.counters.declines += 1;
            return TopUpAnswer {
                code: if amount_minor == 0 { "13" } else { "51" },
                approval: None,
            };
        }
        self.balances
            .insert(account.to_owned(), balance - amount_minor);
        self.approved
            .insert(key, (account.to_owned(), amount_minor));
        self.approval_serial += 1;
        self.counters.approvals += 1;
        TopUpAnswer {
            code: "00",
            approval: Some(format!("B{:05}", self.approval_serial % 100_000)),
        }
    }

    /// A reversal advice (4.3): undoes the original once; unknown or repeated ones change
    /// nothing. Either way the advice is acknowledged.
    pub fn reverse(&mut self, original: (u32, String)) {
        if self.reversed.contains(&original) {
            return;
        }
        if let Some((account, amount)) = self.approved.get(&original).cloned() {
            let balance = self.balance(&account);
            self.balances.insert(account, balance + amount);
            self.counters.reversals_applied += 1;
        }
        self.reversed.insert(original);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approves_up_to_the_balance_and_reverses_once() {
        let mut bank = Bank::new(1000);
        let key = |stan: u32| (stan, "1123120000".to_owned());
        assert_eq!(bank.authorize("A", 600, key(1)).code, "00");
        assert_eq!(bank.authorize("A", 600, key(2)).code, "51");
        assert_eq!(bank.balance("A"), 400);
        bank.reverse(key(1));
        bank.reverse(key(1));
        assert_eq!(bank.balance("A"), 1000);
        assert_eq!(bank.counters.reversals_applied, 1);
        bank.reverse(key(9));
        assert_eq!(bank.balance("A"), 1000);
    }

    #[test]
    fn drop_rules_count_down() {
        let mut bank = Bank::new(0);
        bank.rules.insert(
            "0420".into(),
            Rule {
                drop_remaining: 2,
                delay_ms: 0,
            },
        );
        assert!(!bank.rule_for("0420").0);
        assert!(!bank.rule_for("0420").0);
        assert!(bank.rule_for("0420").0);
        assert!(bank.rule_for("0200").0);
    }
}
