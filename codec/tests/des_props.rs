//! codec's table-driven DES and TDES (src/des.rs) against the `des` crate on random keys
//! and blocks, and the retail MAC against one built on the `des` crate from ISO 9797-1.

mod reference;

use codec::des::{Schedule, Tdes2};
use codec::security::{retail_mac, retail_macs, DesKey, TdesKey};
use des::cipher::generic_array::GenericArray;
use des::cipher::KeyInit;
use des::Des;
use proptest::prelude::*;
use reference::{decrypt, encrypt, Reference};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn des_matches_the_des_crate(key in any::<[u8; 8]>(), block in any::<[u8; 8]>()) {
        let ours = Schedule::new(&key);
        let theirs = Des::new(GenericArray::from_slice(&key));
        let cipher = ours.encrypt(block);
        prop_assert_eq!(cipher, encrypt(&theirs, block));
        prop_assert_eq!(ours.decrypt(block), decrypt(&theirs, block));
        prop_assert_eq!(ours.decrypt(cipher), block);
        prop_assert_eq!(DesKey::from_bytes(&key).encrypt(&block), cipher);
    }

    #[test]
    fn blocks_done_together_match_the_des_crate(
        keys in any::<[[u8; 8]; 3]>(),
        blocks in any::<[[u8; 8]; 3]>(),
    ) {
        let schedules = keys.map(|key| Schedule::new(&key));
        let together = [&schedules[0], &schedules[1], &schedules[2]];
        let ciphers = Schedule::encrypt_many(together, blocks);
        for i in 0..3 {
            let theirs = Des::new(GenericArray::from_slice(&keys[i]));
            prop_assert_eq!(ciphers[i], encrypt(&theirs, blocks[i]));
            prop_assert_eq!(Schedule::decrypt_many(together, blocks)[i], decrypt(&theirs, blocks[i]));
        }
        prop_assert_eq!(Schedule::decrypt_many(together, ciphers), blocks);
    }

    #[test]
    fn tdes_matches_the_des_crate(key in any::<[u8; 16]>(), block in any::<[u8; 8]>()) {
        let theirs = Reference::new(&key);
        let cipher = Tdes2::new(&key).encrypt(block);
        prop_assert_eq!(cipher, encrypt(&theirs.tdes, block));
        let tdes_key = TdesKey::from_bytes(&key);
        prop_assert_eq!(tdes_key.encrypt(&block), cipher);
        prop_assert_eq!(tdes_key.decrypt(&block), decrypt(&theirs.tdes, block));
        prop_assert_eq!(tdes_key.decrypt(&cipher), block);
    }

    #[test]
    fn retail_mac_matches_the_des_crate(
        key in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let ours = retail_mac(&TdesKey::from_bytes(&key), &data);
        prop_assert_eq!(ours, Reference::new(&key).retail_mac(&data));
    }

    #[test]
    fn retail_macs_together_match_the_des_crate(
        keys in any::<[[u8; 16]; 3]>(),
        lengths in any::<[prop::sample::Index; 3]>(),
        data in proptest::collection::vec(any::<u8>(), 300),
    ) {
        let tdes = keys.map(|key| TdesKey::from_bytes(&key));
        let inputs: [(&TdesKey, &[u8]); 3] =
            std::array::from_fn(|i| (&tdes[i], &data[..lengths[i].index(300)]));
        let macs = retail_macs(inputs);
        for i in 0..3 {
            prop_assert_eq!(macs[i], Reference::new(&keys[i]).retail_mac(inputs[i].1));
        }
    }
}

/// Equal halves make two-key TDES single DES: a cross-check between the two types.
#[test]
fn tdes_with_equal_halves_is_des() {
    let key = *b"\x01\x23\x45\x67\x89\xAB\xCD\xEF";
    let mut double = [0u8; 16];
    double[..8].copy_from_slice(&key);
    double[8..].copy_from_slice(&key);
    let block = *b"Now is t";
    assert_eq!(
        Tdes2::new(&double).encrypt(block),
        Schedule::new(&key).encrypt(block)
    );
}

/// NBS/NIST SP 800-17 variable-plaintext known-answer test, all 64 entries: under the key
/// 0101..01 (all zero but parity), plaintext with only bit `i` set; each ciphertext
/// decrypts back to its plaintext, and encrypting the ciphertexts as a chain is checked
/// against the reference.
#[test]
fn variable_plaintext_table() {
    let ours = Schedule::new(&[1; 8]);
    let theirs = Des::new(GenericArray::from_slice(&[1; 8]));
    for i in 0..64 {
        let plain = (1u64 << (63 - i)).to_be_bytes();
        let cipher = ours.encrypt(plain);
        assert_eq!(cipher, encrypt(&theirs, plain), "bit {}", i + 1);
        assert_eq!(ours.decrypt(cipher), plain, "bit {}", i + 1);
    }
    // The first and last entries of the published table.
    assert_eq!(
        ours.encrypt(0x8000_0000_0000_0000u64.to_be_bytes()),
        0x95F8_A5E5_DD31_D900u64.to_be_bytes()
    );
    assert_eq!(
        ours.encrypt(1u64.to_be_bytes()),
        0x166B_40B4_4ABA_4BD6u64.to_be_bytes()
    );
}
