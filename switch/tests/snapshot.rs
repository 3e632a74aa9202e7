//! The host state's snapshot: taken without copying (cards, answers, refunded amounts and the
//! audit trail are copy-on-write), it keeps the state as of the moment it was taken while the
//! state changes, and it round-trips through the snapshot encoding to an equal state.

use ledger::cow_map::CowMap;
use ledger::state_machine::StateMachine;
use ledger::transfer::{BusinessDay, TransferId};
use switch::config::Config;
use switch::policy::Policy;
use switch::state::answers::{Answer, Reply, RequestKey};
use switch::state::ids::TerminalId;
use switch::state::{HostEvent, HostSnapshot, HostState};

const NOW_MS: u64 = 1_763_900_000_000;

fn seeded() -> HostState {
    let policy = Policy::from_config(&Config::default());
    switch::demo::seeded_state(&policy, BusinessDay(20261123), NOW_MS)
}

fn answer(stan: u32) -> Answer {
    Answer {
        key: RequestKey {
            terminal: TerminalId::parse("T0000001").expect("terminal id"),
            stan,
            transmitted: *b"1123083015",
        },
        digest: stan as u128,
        reply: Reply {
            code: *b"00",
            settlement_day: BusinessDay(20261123),
            rrn: Some(1_000 + stan as u64),
            approval: None,
            balance_minor: Some(0),
        },
        day: BusinessDay(20261123),
    }
}

#[test]
fn a_snapshot_keeps_its_moment_and_restores_equal() {
    let mut state = seeded();
    state.apply(&HostEvent::Answered(answer(1)));
    let pan = state.cards.values().next().expect("demo cards").pan;
    let tries_before = state.card(&pan).expect("card").pin_tries_failed;
    let audit_before = state.audit.last_id();

    let snapshot = state.snapshot();
    state.apply(&HostEvent::PinTryFailed { pan });
    state.apply(&HostEvent::Answered(answer(2)));

    let bytes = postcard::to_stdvec(&snapshot).expect("encodes");
    let decoded: HostSnapshot = postcard::from_bytes(&bytes).expect("decodes");
    let restored = HostState::restore(decoded);
    assert_eq!(restored.check(), Ok(()));
    assert_eq!(restored.cards.len(), state.cards.len());
    assert_eq!(
        restored.card(&pan).expect("card").pin_tries_failed,
        tries_before,
        "the snapshot does not see a change made after it"
    );
    assert_eq!(
        state.card(&pan).expect("card").pin_tries_failed,
        tries_before + 1
    );
    for card in state.cards.values().filter(|card| card.pan != pan) {
        assert_eq!(restored.card(&card.pan), Some(card));
    }
    assert!(restored.answers.get(&answer(1).key).is_some());
    assert!(restored.answers.get(&answer(2).key).is_none());
    assert!(state.answers.get(&answer(2).key).is_some());
    assert_eq!(restored.audit.last_id(), audit_before);
    assert_eq!(restored.card_by_account.len(), state.card_by_account.len());
    // Nothing after the snapshot posted: both books agree.
    assert_eq!(restored.book.check_balanced(), state.book.check_balanced());
}

#[test]
fn a_snapshot_of_another_layout_is_refused_not_misread() {
    let mut state = seeded();
    state.apply(&HostEvent::Answered(answer(1)));
    let bytes = postcard::to_stdvec(&state.snapshot()).expect("encodes");
    assert!(postcard::from_bytes::<HostSnapshot>(&bytes).is_ok());
    // What an earlier build wrote: the same fields without the format tag in front.
    assert!(postcard::from_bytes::<HostSnapshot>(&bytes[8..]).is_err());
    let mut retagged = bytes.clone();
    retagged[..8].copy_from_slice(b"HOSTSN01");
    assert!(postcard::from_bytes::<HostSnapshot>(&retagged).is_err());
    // The layout that carried the history and the answers whole, before chunk files.
    retagged[..8].copy_from_slice(b"HOSTSN02");
    assert!(postcard::from_bytes::<HostSnapshot>(&retagged).is_err());
}

#[test]
fn refunded_amounts_are_shared_by_the_snapshot_and_keep_its_moment() {
    let mut state = seeded();
    state.refunded_minor.insert(TransferId(7), 500);
    let snapshot = state.snapshot();
    *state
        .refunded_minor
        .get_mut(&TransferId(7))
        .expect("refunded") += 100;
    state.refunded_minor.insert(TransferId(8), 50);

    let bytes = postcard::to_stdvec(&snapshot).expect("encodes");
    let restored = HostState::restore(postcard::from_bytes(&bytes).expect("decodes"));
    assert_eq!(restored.refunded_minor.get(&TransferId(7)), Some(&500));
    assert_eq!(restored.refunded_minor.get(&TransferId(8)), None);
    assert_eq!(state.refunded_minor.get(&TransferId(7)), Some(&600));
}

/// Before it was shared, the snapshot carried the refunded amounts as a list of pairs:
/// postcard writes that list and the map alike, so a snapshot written by an earlier build
/// reads the same, and an earlier build could read one written now.
#[test]
fn refunded_amounts_encode_as_the_list_of_pairs_they_were() {
    let mut pairs: Vec<(TransferId, u64)> = (1..=500u64)
        .map(|n| (TransferId((u128::from(n) << 64) | 3), n * 100))
        .collect();
    let as_list = postcard::to_stdvec(&pairs).expect("encodes");
    let map: CowMap<TransferId, u64> = postcard::from_bytes(&as_list).expect("reads a list");
    assert_eq!(map.len(), pairs.len());
    for (id, amount) in &pairs {
        assert_eq!(map.get(id), Some(amount));
    }

    // Byte for byte what the list of the same pairs, in the map's order, encodes to.
    let as_map = postcard::to_stdvec(&map).expect("encodes");
    let in_map_order: Vec<(TransferId, u64)> = map.iter().map(|(id, n)| (*id, *n)).collect();
    assert_eq!(as_map, postcard::to_stdvec(&in_map_order).expect("encodes"));
    let mut read_back: Vec<(TransferId, u64)> =
        postcard::from_bytes(&as_map).expect("a list reads the map");
    read_back.sort();
    pairs.sort();
    assert_eq!(read_back, pairs);
}
