//! The business day's batch reconciliation file, `REC_<institution>_<YYYYMMDD>_1.csv`: one
//! line per terminal batch closed that day, with both sides' totals and the report's counts
//! (the full lists are in `GET /v1/batches/{terminal}/{batch}`). A file of its own beside
//! CLR and TXN, whose formats PROTOCOL.md 5 fixes (docs/DECISIONS.md). Pure, and built from
//! what each batch was when it closed, so a re-published day is byte-identical.
//!
//! ```text
//! H,1,<institution>,<YYYY-MM-DD>,1,<created, RFC 3339 UTC>
//! B,<terminal>,<batch>,<closed by: totals|upload>,<closed at>,<in_balance|out_of_balance>,
//!   <terminal: purchase count,amount,refund count,amount>,<host: the same four>,
//!   <matched>,<posted at upload>,<refunds not posted>,<missing at terminal>,
//!   <offline exceptions>,<STAN gaps>
//! T,<B line count>
//! ```

use ledger::book::Totals;
use ledger::transfer::BusinessDay;

use super::clearing::{csv_field, FILE_SEQ};
use crate::clock::{iso_date, DateTime};
use crate::money::format_amount;
use crate::state::HostState;

/// The file's name and contents.
pub fn build(
    state: &HostState,
    day: BusinessDay,
    closed_at_ms: u64,
    institution: &str,
) -> (String, Vec<u8>) {
    let created = DateTime::from_epoch_ms(closed_at_ms, 0).rfc3339_utc();
    let mut file = format!("H,1,{institution},{},{FILE_SEQ},{created}\n", iso_date(day));
    let mut lines = 0u64;
    for (key, batch) in state.batches.closed_in(day) {
        let closing = batch
            .closing
            .expect("a batch closed in a day has its closing");
        let summary = batch.at_close.expect("closed in a day").summary;
        file.push_str(&format!(
            "B,{},{:06},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(key.terminal.as_str()),
            key.batch,
            if closing.after_upload {
                "upload"
            } else {
                "totals"
            },
            DateTime::from_epoch_ms(closing.at_ms, 0).rfc3339_utc(),
            if closing.terminal_totals == closing.host_totals {
                "in_balance"
            } else {
                "out_of_balance"
            },
            totals_fields(&closing.terminal_totals),
            totals_fields(&closing.host_totals),
            summary.matched,
            summary.posted_at_upload,
            summary.refunds_not_posted,
            summary.missing_at_terminal,
            summary.offline_exceptions,
            summary.stan_gaps,
        ));
        lines += 1;
    }
    file.push_str(&format!("T,{lines}\n"));
    let name = format!("REC_{institution}_{:08}_{FILE_SEQ}.csv", day.0);
    (name, file.into_bytes())
}

fn totals_fields(totals: &Totals) -> String {
    format!(
        "{},{},{},{}",
        totals.purchase_count,
        format_amount(totals.purchase_minor as i64),
        totals.refund_count,
        format_amount(totals.refund_minor as i64)
    )
}
