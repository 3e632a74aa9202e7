//! PIN verification values: the host keeps HMAC-SHA-256(key, PAN || PIN), never the PIN,
//! and compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::state::ids::Pan;

pub fn verifier(key: &[u8; 32], pan: &Pan, pin: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(pan.as_str().as_bytes());
    mac.update(b"|");
    mac.update(pin.as_bytes());
    mac.finalize().into_bytes().into()
}

pub fn matches(key: &[u8; 32], pan: &Pan, pin: &str, expected: &[u8; 32]) -> bool {
    verifier(key, pan, pin).ct_eq(expected).into()
}

/// A PIN an operator may set: 4 to 12 digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}
