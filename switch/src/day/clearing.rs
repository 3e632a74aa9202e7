//! The two clearing files of a business day (PROTOCOL.md 5), computed from the frozen
//! postings of that day. Pure: the same book and day give the same bytes, which is what lets
//! a lost file be re-published byte-identical.
//!
//! What counts for a merchant on day D: purchases (online and offline) and refunds posted
//! on D and not reversed on D; a reversal posted on D of an original from an earlier day
//! (whose file is already out) counts on D the other way round: a reversed purchase as a
//! refund, a reversed refund as a purchase. A reversal posted after D never changes D.

use std::collections::BTreeMap;

use ledger::history::AppliedTransfer;
use ledger::transfer::{BusinessDay, Channel, Transfer, TransferKind};
use sha2::{Digest, Sha256};

use crate::bank::messages::ClearingTotals;
use crate::clock::{iso_date, split_day, DateTime};
use crate::money::{fee_minor, format_amount};
use crate::state::ids::MerchantId;
use crate::state::HostState;

/// Files of one close: `seq` is 1, since a day closes once (a re-publication is the same
/// file again).
pub const FILE_SEQ: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearingFiles {
    pub day: BusinessDay,
    pub clr_name: String,
    pub clr: Vec<u8>,
    pub txn_name: String,
    pub txn: Vec<u8>,
    pub totals: ClearingTotals,
}

impl ClearingFiles {
    pub fn clr_sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.clr))
    }
}

/// Settings the files depend on.
pub struct FileSettings<'a> {
    pub institution: &'a str,
    pub currency: &'a str,
    pub utc_offset_minutes: i32,
}

#[derive(Copy, Clone, Debug, Default)]
struct MerchantDay {
    purchase_count: u64,
    purchase_minor: u64,
    refund_count: u64,
    refund_minor: u64,
}

impl MerchantDay {
    fn purchase(&mut self, amount_minor: u64) {
        self.purchase_count += 1;
        self.purchase_minor += amount_minor;
    }

    fn refund(&mut self, amount_minor: u64) {
        self.refund_count += 1;
        self.refund_minor += amount_minor;
    }
}

fn is_sale(kind: TransferKind) -> bool {
    matches!(kind, TransferKind::Purchase | TransferKind::OfflinePurchase)
}

/// Both files of `day`, created at `closed_at_ms` (the first close).
pub fn build(
    state: &HostState,
    day: BusinessDay,
    closed_at_ms: u64,
    settings: &FileSettings<'_>,
) -> ClearingFiles {
    let book = &state.book;
    let reversed_by_day_end = |transfer: &Transfer| {
        book.reversed_by(transfer.id)
            .is_some_and(|reversal| reversal.transfer.business_day <= day)
    };
    let mut merchants: BTreeMap<[u8; 15], MerchantDay> = BTreeMap::new();
    let mut txn = String::new();
    let mut txn_lines = 0u64;
    let mut txn_sum_minor = 0u64;
    for applied in book.transfers_of_day(day) {
        let transfer = &applied.transfer;
        assert_eq!(transfer.business_day, day, "the day index holds the day");
        match transfer.kind {
            kind if is_sale(kind) && !reversed_by_day_end(transfer) => merchants
                .entry(transfer.refs.merchant)
                .or_default()
                .purchase(transfer.amount_minor()),
            TransferKind::Refund if !reversed_by_day_end(transfer) => merchants
                .entry(transfer.refs.merchant)
                .or_default()
                .refund(transfer.amount_minor()),
            TransferKind::Reversal => {
                let original = transfer
                    .related
                    .and_then(|id| book.transfer(id))
                    .map(|o| &o.transfer)
                    .expect("a reversal's original is in the book");
                if original.business_day < day {
                    let entry = merchants.entry(original.refs.merchant).or_default();
                    if is_sale(original.kind) {
                        entry.refund(original.amount_minor());
                    } else if original.kind == TransferKind::Refund {
                        entry.purchase(original.amount_minor());
                    }
                }
            }
            _ => {}
        }
        txn.push_str(&txn_line(state, applied, day, settings.utc_offset_minutes));
        txn_lines += 1;
        txn_sum_minor += transfer.amount_minor();
    }
    txn.push_str(&format!(
        "T,{txn_lines},{}\n",
        format_amount(txn_sum_minor as i64)
    ));

    let created = DateTime::from_epoch_ms(closed_at_ms, 0).rfc3339_utc();
    let mut clr = format!(
        "H,1,{},{},{FILE_SEQ},{created},{}\n",
        settings.institution,
        iso_date(day),
        settings.currency
    );
    let mut totals = ClearingTotals {
        purchase_count: 0,
        purchase_minor: 0,
        refund_count: 0,
        refund_minor: 0,
        net_minor: 0,
    };
    let mut fee_total_minor = 0i64;
    let mut records = 0u64;
    // Merchants with nothing to settle (no counted transfer) get no D record.
    merchants.retain(|_, m| m.purchase_count + m.refund_count > 0);
    for (merchant_id, m) in &merchants {
        let merchant = state.merchants.get(&MerchantId(*merchant_id));
        let (name, account, fee_bps) = merchant
            .map(|m| (m.name.as_str(), m.settlement_account.as_str(), m.fee_bps))
            .unwrap_or(("", "", 0));
        let sales_minor = m.purchase_minor as i64 - m.refund_minor as i64;
        let fee = fee_minor(sales_minor, fee_bps);
        let net = sales_minor - fee;
        clr.push_str(&format!(
            "D,{},{},{},{},{},{},{},{},{}\n",
            csv_field(&String::from_utf8_lossy(merchant_id)),
            csv_field(name),
            csv_field(account),
            m.purchase_count,
            format_amount(m.purchase_minor as i64),
            m.refund_count,
            format_amount(m.refund_minor as i64),
            format_amount(fee),
            format_amount(net),
        ));
        records += 1;
        totals.purchase_count += m.purchase_count;
        totals.purchase_minor += m.purchase_minor;
        totals.refund_count += m.refund_count;
        totals.refund_minor += m.refund_minor;
        totals.net_minor += net;
        fee_total_minor += fee;
    }
    assert_eq!(
        totals.net_minor,
        totals.purchase_minor as i64 - totals.refund_minor as i64 - fee_total_minor,
        "the trailer adds up"
    );
    clr.push_str(&format!(
        "T,{records},{},{},{},{},{},{}\n",
        totals.purchase_count,
        format_amount(totals.purchase_minor as i64),
        totals.refund_count,
        format_amount(totals.refund_minor as i64),
        format_amount(fee_total_minor),
        format_amount(totals.net_minor),
    ));
    let stamp = format!("{}_{:08}_{FILE_SEQ}", settings.institution, day.0);
    ClearingFiles {
        day,
        clr_name: format!("CLR_{stamp}.csv"),
        clr: clr.into_bytes(),
        txn_name: format!("TXN_{stamp}.csv"),
        txn: txn.into_bytes(),
        totals,
    }
}

/// `<RRN>,<type>,<masked PAN>,<merchant>,<terminal>,<amount>,<local date-time>,<approval>,
/// <online|offline>,<batch>`; fields a posting does not have are empty.
fn txn_line(
    state: &HostState,
    applied: &AppliedTransfer,
    day: BusinessDay,
    utc_offset_minutes: i32,
) -> String {
    let transfer = &applied.transfer;
    let refs = &transfer.refs;
    let rrn = if refs.rrn == 0 {
        String::new()
    } else {
        format!("{:012}", refs.rrn)
    };
    let pan = transfer
        .legs
        .iter()
        .find_map(|leg| state.card_by_account.get(&leg.account))
        .map(|pan| pan.masked())
        .unwrap_or_default();
    let text = |bytes: &[u8]| {
        if bytes.iter().all(|b| *b == 0) {
            String::new()
        } else {
            csv_field(String::from_utf8_lossy(bytes).trim_end())
        }
    };
    let batch = if refs.batch == 0 {
        String::new()
    } else {
        format!("{:06}", refs.batch)
    };
    let channel = match refs.channel {
        Channel::Online => "online",
        Channel::Offline => "offline",
    };
    format!(
        "{rrn},{},{pan},{},{},{},{},{},{channel},{batch}\n",
        transfer.kind.name(),
        text(&refs.merchant),
        text(&refs.terminal),
        format_amount(transfer.amount_minor() as i64),
        local_date_time(
            refs.local_time,
            transfer.timestamp_ms,
            day,
            utc_offset_minutes
        ),
        text(&refs.approval),
    )
}

/// `YYYY-MM-DDThh:mm:ss` at the terminal (F13/F12 carry no year: the business day's, or the
/// year before for a December date on a January day), or the host's local time of posting.
fn local_date_time(local: [u8; 10], timestamp_ms: u64, day: BusinessDay, offset: i32) -> String {
    let digits = |range: std::ops::Range<usize>| -> u32 {
        std::str::from_utf8(&local[range])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    if local.iter().all(|b| b.is_ascii_digit()) && digits(0..2) >= 1 {
        let (year, day_month, _) = split_day(day);
        let month = digits(0..2);
        let year = if month == 12 && day_month == 1 {
            year - 1
        } else {
            year
        };
        return format!(
            "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}",
            digits(2..4),
            digits(4..6),
            digits(6..8),
            digits(8..10)
        );
    }
    let at = DateTime::from_epoch_ms(timestamp_ms, offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year, at.month, at.day, at.hour, at.minute, at.second
    )
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("Canteen North"), "Canteen North");
        assert_eq!(csv_field("Shop, \"East\""), "\"Shop, \"\"East\"\"\"");
    }

    #[test]
    fn local_times_take_the_business_year() {
        let day = BusinessDay(20270102);
        assert_eq!(
            local_date_time(*b"1231235959", 0, day, 480),
            "2026-12-31T23:59:59"
        );
        assert_eq!(
            local_date_time(*b"0102080000", 0, day, 480),
            "2027-01-02T08:00:00"
        );
        // No terminal time: the posting's own time at the host (UTC+8).
        assert_eq!(local_date_time([0; 10], 0, day, 480), "1970-01-01T08:00:00");
    }
}
