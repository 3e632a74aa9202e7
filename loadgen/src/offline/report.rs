//! What an offline run counted: sales by case, responses by message type and code, advices
//! acknowledged, duplicates the host recognised, how batches closed, and the check of every
//! card's balance against what the run sold on it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use codec::{Field, Message, Mti};
use serde::Serialize;

use super::sales::{PlannedSale, SaleCase};
use super::terminal::Closed;
use crate::requests::OfflineSale;
use crate::stats::Failure;

/// One terminal's counts, added to the run's when it is done.
#[derive(Debug, Default)]
pub struct TerminalTally {
    pub signed_on: bool,
    sales: SaleCounts,
    codes: BTreeMap<String, BTreeMap<String, u64>>,
    pub advices_acknowledged: u64,
    pub duplicates_detected: u64,
    pub closed: Option<Closed>,
    failures: BTreeMap<&'static str, u64>,
}

impl TerminalTally {
    /// Counts a response to a request of type `request` and returns its F39 (`??` if none).
    pub fn answered(&mut self, request: Mti, response: &Message) -> [u8; 2] {
        let code: [u8; 2] = response
            .get(Field::ResponseCode)
            .and_then(|c| c.try_into().ok())
            .unwrap_or(*b"??");
        *self
            .codes
            .entry(String::from_utf8_lossy(request.as_bytes()).into_owned())
            .or_default()
            .entry(String::from_utf8_lossy(&code).into_owned())
            .or_default() += 1;
        code
    }

    pub fn failed(&mut self, failure: Failure) {
        *self.failures.entry(failure.name()).or_default() += 1;
    }

    pub fn planned(&mut self, sales: &[(PlannedSale, OfflineSale)]) {
        for (plan, _) in sales {
            let counts = &mut self.sales;
            counts.total += 1;
            match plan.case {
                SaleCase::Normal => counts.normal += 1,
                SaleCase::Overdraft => counts.overdraft += 1,
                SaleCase::BlockedKnown => counts.blocked_known_to_terminal += 1,
                SaleCase::BlockedAfter => counts.blocked_after_terminal_list += 1,
            }
            counts.resent += u64::from(plan.resent);
            counts.advice_lost += u64::from(plan.lost);
        }
    }
}

/// Sales by the 3.8 case they were meant to hit, and what happened to their advices.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SaleCounts {
    pub total: u64,
    pub normal: u64,
    pub overdraft: u64,
    pub blocked_known_to_terminal: u64,
    pub blocked_after_terminal_list: u64,
    /// Advices sent twice (0220, then 0221).
    pub resent: u64,
    /// Advices never sent: the host learns of these sales from the batch upload.
    pub advice_lost: u64,
}

impl SaleCounts {
    fn add(&mut self, other: &SaleCounts) {
        self.total += other.total;
        self.normal += other.normal;
        self.overdraft += other.overdraft;
        self.blocked_known_to_terminal += other.blocked_known_to_terminal;
        self.blocked_after_terminal_list += other.blocked_after_terminal_list;
        self.resent += other.resent;
        self.advice_lost += other.advice_lost;
    }
}

/// The run's tallies, filled by the terminals as they finish.
#[derive(Default)]
pub struct Tallies(Mutex<Vec<TerminalTally>>);

impl Tallies {
    pub fn add(&self, tally: TerminalTally) {
        self.0.lock().expect("no panics").push(tally);
    }

    pub fn take(&self) -> Vec<TerminalTally> {
        std::mem::take(&mut *self.0.lock().expect("no panics"))
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Batches {
    pub closed_in_balance: u64,
    pub closed_after_upload: u64,
    pub not_closed: u64,
}

/// Every card's balance read back through the admin API and compared with its opening
/// balance less what the run sold on it (sales on cards the terminal knew were blocked are
/// borne by the merchant, 3.8).
#[derive(Debug, Serialize)]
pub struct Verification {
    pub cards_checked: u64,
    pub cards_as_expected: u64,
    /// A few cards that differ: `pan-suffix: expected vs actual` (minor units).
    pub mismatches: Vec<String>,
    /// What the run charged to cards, and what merchants bear, as amounts.
    pub charged_to_cards: String,
    pub ledger_balanced: bool,
}

#[derive(Debug, Serialize)]
pub struct OfflineReport {
    pub mode: &'static str,
    pub terminals: usize,
    pub signed_on: u64,
    pub sales_per_terminal: usize,
    /// Advices in flight per terminal during the upload.
    pub depth: usize,
    pub sales: SaleCounts,
    /// 0220s answered `00`.
    pub advices_acknowledged: u64,
    /// 0221s the host answered with the RRN of the first advice: recognised, posted once.
    pub duplicates_detected: u64,
    pub batches: Batches,
    /// Responses by request MTI, then F39.
    pub codes_by_mti: BTreeMap<String, BTreeMap<String, u64>>,
    /// From the first advice of any terminal to the last batch closed.
    pub elapsed_s: f64,
    /// Responses per second in that period, every message type.
    pub answered_per_s: f64,
    pub provision_s: Option<f64>,
    pub verification: Option<Verification>,
    /// Terminals stopped by a failure, by cause.
    pub errors: BTreeMap<&'static str, u64>,
}

/// What the run was asked to do, repeated in the report.
pub struct Shape {
    pub terminals: usize,
    pub sales_per_terminal: usize,
    pub depth: usize,
}

impl OfflineReport {
    pub fn new(
        shape: Shape,
        tallies: Vec<TerminalTally>,
        elapsed_s: f64,
        provision_s: Option<f64>,
        verification: Option<Verification>,
    ) -> OfflineReport {
        let mut report = OfflineReport {
            mode: "offline",
            terminals: shape.terminals,
            signed_on: 0,
            sales_per_terminal: shape.sales_per_terminal,
            depth: shape.depth,
            sales: SaleCounts::default(),
            advices_acknowledged: 0,
            duplicates_detected: 0,
            batches: Batches::default(),
            codes_by_mti: BTreeMap::new(),
            elapsed_s,
            answered_per_s: 0.0,
            provision_s,
            verification,
            errors: BTreeMap::new(),
        };
        for tally in tallies {
            report.signed_on += u64::from(tally.signed_on);
            report.sales.add(&tally.sales);
            report.advices_acknowledged += tally.advices_acknowledged;
            report.duplicates_detected += tally.duplicates_detected;
            match tally.closed {
                Some(Closed::InBalance) => report.batches.closed_in_balance += 1,
                Some(Closed::AfterUpload) => report.batches.closed_after_upload += 1,
                None => report.batches.not_closed += 1,
            }
            for (mti, codes) in tally.codes {
                let into = report.codes_by_mti.entry(mti).or_default();
                for (code, n) in codes {
                    *into.entry(code).or_default() += n;
                }
            }
            for (failure, n) in tally.failures {
                *report.errors.entry(failure).or_default() += n;
            }
        }
        let answered: u64 = report.codes_by_mti.values().flat_map(|c| c.values()).sum();
        if elapsed_s > 0.0 {
            report.answered_per_s = answered as f64 / elapsed_s;
        }
        report
    }

    /// Whether every batch closed, every advice was acknowledged, every duplicate was
    /// recognised, and (when checked) every card holds what it should.
    pub fn all_reconciled(&self) -> bool {
        let sent = self.sales.total - self.sales.advice_lost;
        self.batches.not_closed == 0
            && self.advices_acknowledged == sent
            && self.duplicates_detected == self.sales.resent
            && self
                .verification
                .as_ref()
                .is_none_or(|v| v.ledger_balanced && v.cards_as_expected == v.cards_checked)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.sales;
        let _ = writeln!(
            out,
            "{} terminals ({} signed on), {} offline sales each, {} advices in flight each\n\
             sales: {} ({} normal, {} overdraft, {} on cards blocked before the download, \
             {} after it); {} advices re-sent, {} lost\n\
             {} advices acknowledged, {} duplicates recognised\n\
             batches: {} closed in balance, {} after upload, {} not closed\n\
             upload took {:.2} s: {:.0} responses/s",
            self.terminals,
            self.signed_on,
            self.sales_per_terminal,
            self.depth,
            s.total,
            s.normal,
            s.overdraft,
            s.blocked_known_to_terminal,
            s.blocked_after_terminal_list,
            s.resent,
            s.advice_lost,
            self.advices_acknowledged,
            self.duplicates_detected,
            self.batches.closed_in_balance,
            self.batches.closed_after_upload,
            self.batches.not_closed,
            self.elapsed_s,
            self.answered_per_s,
        );
        for (mti, codes) in &self.codes_by_mti {
            let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            let _ = writeln!(out, "  {mti} {}", codes.join("  "));
        }
        if let Some(v) = &self.verification {
            let _ = writeln!(
                out,
                "cards: {} of {} hold what the run sold on them ({} charged); book balanced: {}",
                v.cards_as_expected, v.cards_checked, v.charged_to_cards, v.ledger_balanced
            );
            for mismatch in &v.mismatches {
                let _ = writeln!(out, "  differs: {mismatch}");
            }
        }
        let _ = writeln!(out, "{}", crate::report::errors_line(&self.errors));
        let _ = writeln!(
            out,
            "reconciled: {}",
            if self.all_reconciled() { "yes" } else { "NO" }
        );
        out
    }
}
