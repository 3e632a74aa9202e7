//! The first events of every log: the institution's own accounts and the first business day.

use ledger::account::AccountKind;
use ledger::book::LedgerEvent;
use ledger::transfer::BusinessDay;

use crate::authorize::HostTx;
use crate::state::{HostEvent, SystemAccounts};

pub fn genesis(tx: &mut HostTx<'_>, business_day: BusinessDay) {
    assert!(tx.state().system.is_none(), "genesis happens once");
    let mut open = |kind| {
        let id = tx.state().book.next_account_id();
        tx.emit(HostEvent::Ledger(LedgerEvent::OpenAccount { id, kind }));
        id
    };
    let system = SystemAccounts {
        bank_settlement: open(AccountKind::BankSettlement),
        subsidy_fund: open(AccountKind::SubsidyFund),
        cash_desk: open(AccountKind::CashDesk),
        fee_revenue: open(AccountKind::FeeRevenue),
        forfeited: open(AccountKind::ForfeitedBalances),
        offline_suspense: open(AccountKind::OfflineSuspense),
    };
    tx.emit(HostEvent::Genesis {
        system,
        business_day,
    });
}
