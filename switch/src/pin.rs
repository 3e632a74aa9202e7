//! PIN verification values: the host keeps HMAC-SHA-256(key, PAN || PIN), never the PIN,
//! and compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::state::ids::Pan;

/// The key of the PIN verification values, with HMAC's key blocks already hashed: keying
/// HMAC-SHA-256 costs two of the four compressions of a verification, and PIN checks run on
/// the engine thread.
#[derive(Clone)]
pub struct VerificationKey(Hmac<Sha256>);

impl VerificationKey {
    pub fn new(key: &[u8; 32]) -> VerificationKey {
        VerificationKey(Hmac::new_from_slice(key).expect("HMAC takes any key length"))
    }
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key, nor state derived from it.
        f.write_str("VerificationKey(..)")
    }
}

pub fn verifier(key: &VerificationKey, pan: &Pan, pin: &str) -> [u8; 32] {
    let mut mac = key.0.clone();
    mac.update(pan.as_str().as_bytes());
    mac.update(b"|");
    mac.update(pin.as_bytes());
    mac.finalize().into_bytes().into()
}

pub fn matches(key: &VerificationKey, pan: &Pan, pin: &str, expected: &[u8; 32]) -> bool {
    verifier(key, pan, pin).ct_eq(expected).into()
}

/// A PIN an operator may set: 4 to 12 digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA-256 keyed afresh for every verification, as the values stored so far were made.
    fn keyed_afresh(key: &[u8; 32], pan: &Pan, pin: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{}|{pin}", pan.as_str()).as_bytes());
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn a_prepared_key_gives_the_values_of_one_keyed_each_time() {
        let raw = *b"bursar-demo-pin-verification-key";
        let key = VerificationKey::new(&raw);
        let pan = Pan::parse("6290001234567893").unwrap();
        for pin in ["1234", "0000", "987654321012"] {
            // Twice: the prepared state is cloned, never used up.
            for _ in 0..2 {
                assert_eq!(verifier(&key, &pan, pin), keyed_afresh(&raw, &pan, pin));
            }
            assert!(matches(&key, &pan, pin, &keyed_afresh(&raw, &pan, pin)));
        }
        assert!(!matches(
            &key,
            &pan,
            "1235",
            &keyed_afresh(&raw, &pan, "1234")
        ));
        assert_eq!(format!("{key:?}"), "VerificationKey(..)");
    }
}
