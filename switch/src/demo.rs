//! Demo data for a fresh data directory, so that `bursar --demo` is a host a terminal can use
//! at once. The keys here are printed in the README: never use them for real terminals.

use ledger::state_machine::Tx;
use ledger::transfer::{BusinessDay, TransferKind};

use crate::authorize::HostTx;
use crate::ops::cards::{desk_cash, issue_card, NewCard};
use crate::ops::registry::{register_merchant, register_terminal, NewMerchant, NewTerminal};
use crate::ops::OpError;
use crate::policy::Policy;
use crate::state::ids::Pan;
use crate::state::HostState;

pub const DEMO_TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const DEMO_TAK: &str = "89ABCDEF0123456776543210FEDCBA98";

/// A demo card: PAN, holder, kind, PIN, opening balance, linked bank card.
type DemoCard = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

pub const DEMO_CARDS: [DemoCard; 4] = [
    (
        "6290001234567893",
        "Li Wei",
        "student",
        "1234",
        "100.00",
        Some("6222020200112233446"),
    ),
    (
        "6290009876543213",
        "Zhang Min",
        "staff",
        "4321",
        "500.00",
        Some("6222020200112233446"),
    ),
    (
        "6290000000000014",
        "Visitor One",
        "temporary",
        "0000",
        "50.00",
        None,
    ),
    (
        "6290000000000022",
        "Chen Jie",
        "student",
        "2468",
        "20.00",
        None,
    ),
];

/// A host state after genesis on `day` and the demo data, built in memory without an
/// engine: for tests that drive `HostState` directly.
pub fn seeded_state(policy: &Policy, day: BusinessDay, now_ms: u64) -> HostState {
    let mut state = HostState::default();
    let mut events = Vec::new();
    let mut tx = Tx::new(&mut state, &mut events);
    crate::ops::genesis::genesis(&mut tx, day);
    seed(&mut tx, policy, now_ms).expect("demo data");
    state
}

pub fn seed(tx: &mut HostTx<'_>, policy: &Policy, now_ms: u64) -> Result<(), OpError> {
    for (id, name, kinds) in [
        ("M00000000000001", "Canteen North", None),
        (
            "M00000000000002",
            "Staff Canteen",
            Some(vec!["staff".to_owned()]),
        ),
        ("M00000000000009", "Card Office Kiosks", None),
    ] {
        register_merchant(
            tx,
            &NewMerchant {
                id: id.into(),
                name: name.into(),
                settlement_account: format!("CN{}", &id[1..]),
                fee_bps: 150,
                accepted_kinds: kinds,
            },
        )?;
    }
    for (id, merchant, mac_required) in [
        ("T0000001", "M00000000000001", false),
        ("T0000002", "M00000000000001", true),
        ("T0000003", "M00000000000002", false),
        ("K0000001", "M00000000000009", false),
    ] {
        register_terminal(
            tx,
            &NewTerminal {
                id: id.into(),
                merchant_id: merchant.into(),
                tpk: DEMO_TPK.into(),
                tak: Some(DEMO_TAK.into()),
                mac_required,
                offline_floor_limit: "50.00".into(),
            },
        )?;
    }
    for (pan, holder, kind, pin, balance, bank_account) in DEMO_CARDS {
        let card = issue_card(
            tx,
            policy,
            &NewCard {
                pan: pan.into(),
                holder_name: holder.into(),
                holder_id: format!("ID-{}", &pan[12..]),
                kind: kind.into(),
                expiry: "3012".into(),
                pin: Some(pin.into()),
                bank_account: bank_account.map(Into::into),
                limits: None,
            },
        )?;
        let amount_minor = crate::money::parse_amount(balance).expect("literal amount");
        let pan: Pan = card.pan;
        desk_cash(
            tx,
            &pan,
            TransferKind::Deposit,
            amount_minor,
            &format!("demo-opening-{pan_str}", pan_str = pan.as_str()),
            now_ms,
        )?;
    }
    Ok(())
}
