//! The `des` crate's DES, TDES and retail MAC: the reference that codec's table-driven DES
//! (codec/src/des.rs) is checked against in tests/des_props.rs and timed against in
//! benches/benches/des.rs. Written straight from ISO 9797-1 algorithm 3, not from ours.

#![allow(dead_code)] // Each includer uses part of it.

use des::cipher::consts::U8;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};

/// A double-length key as the `des` crate holds it.
pub struct Reference {
    pub tdes: TdesEde2,
    pub left: Des,
    pub right: Des,
}

impl Reference {
    pub fn new(key: &[u8; 16]) -> Reference {
        Reference {
            tdes: TdesEde2::new(GenericArray::from_slice(key)),
            left: Des::new(GenericArray::from_slice(&key[..8])),
            right: Des::new(GenericArray::from_slice(&key[8..])),
        }
    }

    /// ISO 9797-1 MAC algorithm 3, padding method 1 (zeros; one zero block when empty).
    pub fn retail_mac(&self, data: &[u8]) -> [u8; 8] {
        let mut padded = data.to_vec();
        padded.resize(data.len().div_ceil(8).max(1) * 8, 0);
        let mut state = GenericArray::from([0u8; 8]);
        for chunk in padded.chunks(8) {
            for (s, d) in state.iter_mut().zip(chunk) {
                *s ^= d;
            }
            self.left.encrypt_block(&mut state);
        }
        self.right.decrypt_block(&mut state);
        self.left.encrypt_block(&mut state);
        state.into()
    }
}

/// One block through a `des` crate cipher.
pub fn encrypt(cipher: &impl BlockEncrypt<BlockSize = U8>, block: [u8; 8]) -> [u8; 8] {
    let mut block = GenericArray::from(block);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// One block back through a `des` crate cipher.
pub fn decrypt(cipher: &impl BlockDecrypt<BlockSize = U8>, block: [u8; 8]) -> [u8; 8] {
    let mut block = GenericArray::from(block);
    cipher.decrypt_block(&mut block);
    block.into()
}
