//! PIN blocks (ISO 9564 format 0 under a double-length TDES key) and the retail MAC
//! (ISO 9797-1 MAC algorithm 3, padding method 1) of PROTOCOL.md section 7.
//!
//! Keys and clear PINs never show in `Debug` and have no `Display`. Key schedules are
//! computed once when a key is made, so a MAC over a message costs only the DES rounds.

use std::fmt;

use crate::des::{Schedule, Tdes2};
use crate::message::Message;

/// Why a key could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Wrong number of hex digits.
    #[error("a key needs {expected} hex digits, got {got}")]
    BadLength {
        /// Hex digits needed.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// A character that is not a hex digit.
    #[error("a key must be hex digits only")]
    NotHex,
}

/// Why a PIN block could not be made or read. Never carries the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The PAN is not 2 to 19 digits.
    #[error("the PAN must be 2 to 19 digits")]
    BadPan,
    /// The PIN is not 4 to 12 digits.
    #[error("the PIN must be 4 to 12 digits")]
    BadPin,
    /// The decrypted block is not format 0 (control nibble not 0).
    #[error("the PIN block is not ISO 9564 format 0")]
    NotFormat0,
    /// The decrypted block declares a PIN length outside 4 to 12.
    #[error("the PIN block declares a length outside 4 to 12")]
    BadPinLength,
    /// The decrypted block holds a non-digit PIN nibble or padding other than `F`: wrong
    /// key, wrong PAN or a corrupted block.
    #[error("the PIN block does not decode to digits and F padding")]
    BadBlock,
}

/// A double-length (16-byte, two-key) TDES key: a TPK or TAK. `Debug` is redacted.
#[derive(Clone)]
pub struct TdesKey(Tdes2);

impl TdesKey {
    /// A key from its 32 hex digits (as in the admin API's `tpk`/`tak`).
    pub fn from_hex(hex: &str) -> Result<TdesKey, KeyError> {
        Ok(TdesKey::from_bytes(&decode_hex::<16>(hex)?))
    }

    /// A key from its 16 bytes. DES parity bits are ignored, as DES does.
    pub fn from_bytes(key: &[u8; 16]) -> TdesKey {
        TdesKey(Tdes2::new(key))
    }

    /// The key check value: the first 3 bytes of a zero block encrypted under the key. Safe
    /// to log, and the usual way to confirm two parties hold the same key.
    pub fn check_value(&self) -> [u8; 3] {
        let block = self.encrypt(&[0; 8]);
        [block[0], block[1], block[2]]
    }

    /// TDES-encrypts one block.
    pub fn encrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        self.0.encrypt(*block)
    }

    /// TDES-decrypts one block.
    pub fn decrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        self.0.decrypt(*block)
    }
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TdesKey([redacted])")
    }
}

/// A single-length (8-byte) DES key. `Debug` is redacted.
#[derive(Clone)]
pub struct DesKey(Schedule);

impl DesKey {
    /// A key from its 16 hex digits.
    pub fn from_hex(hex: &str) -> Result<DesKey, KeyError> {
        Ok(DesKey::from_bytes(&decode_hex::<8>(hex)?))
    }

    /// A key from its 8 bytes.
    pub fn from_bytes(key: &[u8; 8]) -> DesKey {
        DesKey(Schedule::new(key))
    }

    /// DES-encrypts one block.
    pub fn encrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        self.0.encrypt(*block)
    }

    /// The key check value (see [`TdesKey::check_value`]).
    pub fn check_value(&self) -> [u8; 3] {
        let block = self.encrypt(&[0; 8]);
        [block[0], block[1], block[2]]
    }
}

impl fmt::Debug for DesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesKey([redacted])")
    }
}

/// A clear PIN, 4 to 12 digits. `Debug` is redacted and there is no `Display`; the digits
/// are overwritten when it is dropped.
pub struct Pin {
    digits: [u8; 12],
    len: u8,
}

impl Pin {
    /// A PIN from its digits.
    pub fn new(pin: &str) -> Result<Pin, PinError> {
        let bytes = pin.as_bytes();
        if !(4..=12).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(PinError::BadPin);
        }
        let mut digits = [0u8; 12];
        digits[..bytes.len()].copy_from_slice(bytes);
        Ok(Pin {
            digits,
            len: bytes.len() as u8,
        })
    }

    /// The digits, for deriving the keyed verification value. Never log them.
    pub fn digits(&self) -> &str {
        std::str::from_utf8(self.digits.get(..self.len as usize).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Compares with another PIN in time independent of where they differ.
    pub fn ct_eq(&self, other: &Pin) -> bool {
        ct_eq(&self.digits, &other.digits) & (self.len == other.len)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.digits.fill(0);
        std::hint::black_box(&mut self.digits);
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// The clear ISO 9564 format-0 PIN block: `0`, the PIN length, the PIN, `F` padding, XORed
/// with `0000` and the 12 rightmost PAN digits before the check digit.
pub fn pin_block_format0(pan: &str, pin: &str) -> Result<[u8; 8], PinError> {
    let pin = Pin::new(pin)?;
    let pan_field = pan_field(pan)?;
    let mut nibbles = [0xFu8; 16];
    nibbles[0] = 0;
    nibbles[1] = pin.len;
    for (slot, digit) in nibbles[2..].iter_mut().zip(pin.digits().bytes()) {
        *slot = digit - b'0';
    }
    let mut block = [0u8; 8];
    for (i, byte) in block.iter_mut().enumerate() {
        *byte = (nibbles[2 * i] << 4 | nibbles[2 * i + 1]) ^ pan_field[i];
    }
    Ok(block)
}

/// F52 for `pin` on card `pan`: the format-0 block encrypted under the TPK.
pub fn encrypt_pin_block(tpk: &TdesKey, pan: &str, pin: &str) -> Result<[u8; 8], PinError> {
    Ok(tpk.encrypt(&pin_block_format0(pan, pin)?))
}

/// Recovers the PIN from F52, checking that the block is well-formed format 0: control
/// nibble 0, length 4 to 12, digits, `F` padding. A wrong key or PAN almost always fails
/// these checks (`BadBlock`), which the switch answers like a wrong PIN.
pub fn decrypt_pin_block(tpk: &TdesKey, pan: &str, block: [u8; 8]) -> Result<Pin, PinError> {
    let pan_field = pan_field(pan)?;
    let mut clear = tpk.decrypt(&block);
    for (byte, mask) in clear.iter_mut().zip(pan_field) {
        *byte ^= mask;
    }
    let nibble = |i: usize| (clear[i / 2] >> (4 * (1 - i % 2))) & 0xF;
    if nibble(0) != 0 {
        return Err(PinError::NotFormat0);
    }
    let len = nibble(1) as usize;
    if !(4..=12).contains(&len) {
        return Err(PinError::BadPinLength);
    }
    let mut digits = [0u8; 12];
    for (i, slot) in digits.iter_mut().enumerate().take(len) {
        let d = nibble(2 + i);
        if d > 9 {
            return Err(PinError::BadBlock);
        }
        *slot = b'0' + d;
    }
    if (2 + len..16).any(|i| nibble(i) != 0xF) {
        return Err(PinError::BadBlock);
    }
    Ok(Pin {
        digits,
        len: len as u8,
    })
}

/// `0000` then the 12 rightmost PAN digits excluding the check digit (zero-filled on the
/// left for short PANs), as 8 bytes.
fn pan_field(pan: &str) -> Result<[u8; 8], PinError> {
    let digits = pan.as_bytes();
    if !(2..=19).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(PinError::BadPan);
    }
    let body = &digits[..digits.len() - 1];
    let take = &body[body.len().saturating_sub(12)..];
    let mut nibbles = [0u8; 16];
    for (slot, digit) in nibbles[16 - take.len()..].iter_mut().zip(take) {
        *slot = digit - b'0';
    }
    let mut field = [0u8; 8];
    for (i, byte) in field.iter_mut().enumerate() {
        *byte = nibbles[2 * i] << 4 | nibbles[2 * i + 1];
    }
    Ok(field)
}

/// ISO 9797-1 MAC algorithm 3 (the retail MAC) with padding method 1: `data` zero-padded
/// to a multiple of 8 bytes (no padding when it already is one; one zero block when it is
/// empty), DES-CBC under the key's left half, then the last block decrypted under the right
/// half and encrypted under the left again.
pub fn retail_mac(tak: &TdesKey, data: &[u8]) -> [u8; 8] {
    let left = tak.0.left();
    let mut state = [0u8; 8];
    for index in 0..mac_blocks(data) {
        state = left.encrypt(mac_input(state, data, index));
    }
    left.encrypt(tak.0.right().decrypt(state))
}

/// The retail MACs of `N` messages at once, each under its own key: the same as `N` calls of
/// [`retail_mac`], with the CBC chains' blocks encrypted together while they all have blocks
/// left, and their finishing steps together ([`crate::des::Schedule::encrypt_many`]).
pub fn retail_macs<const N: usize>(inputs: [(&TdesKey, &[u8]); N]) -> [[u8; 8]; N] {
    let lefts: [&Schedule; N] = std::array::from_fn(|i| inputs[i].0 .0.left());
    let blocks: [usize; N] = std::array::from_fn(|i| mac_blocks(inputs[i].1));
    let shared = blocks.iter().copied().min().unwrap_or(0);
    let mut states = [[0u8; 8]; N];
    for index in 0..shared {
        let chained = std::array::from_fn(|i| mac_input(states[i], inputs[i].1, index));
        states = Schedule::encrypt_many(lefts, chained);
    }
    // The longer messages' blocks left, each alone.
    for (i, state) in states.iter_mut().enumerate() {
        for index in shared..blocks[i] {
            *state = lefts[i].encrypt(mac_input(*state, inputs[i].1, index));
        }
    }
    let rights: [&Schedule; N] = std::array::from_fn(|i| inputs[i].0 .0.right());
    Schedule::encrypt_many(lefts, Schedule::decrypt_many(rights, states))
}

/// Blocks of `data` after padding method 1: one zero block when it is empty.
fn mac_blocks(data: &[u8]) -> usize {
    data.len().div_ceil(8).max(1)
}

/// The CBC input of block `index`: that block of `data`, zero-padded, XOR the chain so far.
fn mac_input(state: [u8; 8], data: &[u8], index: usize) -> [u8; 8] {
    let mut block = [0u8; 8];
    let rest = data.get(index * 8..).unwrap_or_default();
    let chunk = &rest[..rest.len().min(8)];
    block[..chunk.len()].copy_from_slice(chunk);
    (u64::from_be_bytes(state) ^ u64::from_be_bytes(block)).to_be_bytes()
}

/// Whether `mac` is the retail MAC of `data`, compared in constant time.
pub fn verify_mac(tak: &TdesKey, data: &[u8], mac: &[u8]) -> bool {
    match <[u8; 8]>::try_from(mac) {
        Ok(mac) => ct_eq(&retail_mac(tak, data), &mac),
        Err(_) => false,
    }
}

/// Whether each MAC is the retail MAC of its data under its key: [`verify_mac`] for `N`
/// messages at once, their chains interleaved ([`retail_macs`]).
pub fn verify_macs<const N: usize>(inputs: [(&TdesKey, &[u8], [u8; 8]); N]) -> [bool; N] {
    let macs = retail_macs(inputs.map(|(tak, data, _)| (tak, data)));
    std::array::from_fn(|i| ct_eq(&macs[i], &inputs[i].2))
}

/// Whether `message` carries a MAC (F64, or F128 with a secondary bitmap) that is right
/// under `tak`. `false` when it carries none.
pub fn verify_message_mac(tak: &TdesKey, message: &Message) -> bool {
    match (message.mac_input(), message.mac()) {
        (Some(data), Some(mac)) => verify_mac(tak, data, &mac),
        _ => false,
    }
}

/// Equality that looks at every byte whatever the first difference.
fn ct_eq<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn decode_hex<const N: usize>(hex: &str) -> Result<[u8; N], KeyError> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return Err(KeyError::BadLength {
            expected: 2 * N,
            got: digits.len(),
        });
    }
    let value = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(KeyError::NotHex),
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
    const PAN: &str = "6290001234567893";

    #[test]
    fn macs_together_equal_macs_one_by_one_whatever_the_lengths() {
        let a = TdesKey::from_bytes(
            b"\x01\x23\x45\x67\x89\xAB\xCD\xEF\xFE\xDC\xBA\x98\x76\x54\x32\x10",
        );
        let b = TdesKey::from_bytes(
            b"\x89\xAB\xCD\xEF\x01\x23\x45\x67\x76\x54\x32\x10\xFE\xDC\xBA\x98",
        );
        let data: Vec<u8> = (0..200u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        for len_a in [0, 1, 7, 8, 9, 16, 33, 120, 200] {
            for len_b in [0, 5, 8, 64, 121, 199] {
                let (data_a, data_b) = (&data[..len_a], &data[200 - len_b..]);
                let (mac_a, mac_b) = (retail_mac(&a, data_a), retail_mac(&b, data_b));
                assert_eq!(
                    retail_macs([(&a, data_a), (&b, data_b)]),
                    [mac_a, mac_b],
                    "lengths {len_a} and {len_b}"
                );
                assert_eq!(
                    retail_macs([(&b, data_b), (&a, data_a), (&a, data_b), (&b, data_a)]),
                    [mac_b, mac_a, retail_mac(&a, data_b), retail_mac(&b, data_a)],
                    "four, lengths {len_a} and {len_b}"
                );
            }
        }
    }

    #[test]
    fn macs_verified_together_are_verified_one_by_one() {
        let tak = TdesKey::from_bytes(
            b"\x01\x23\x45\x67\x89\xAB\xCD\xEF\xFE\xDC\xBA\x98\x76\x54\x32\x10",
        );
        let (a, b) = (&b"a purchase"[..], &b"a refund of a purchase"[..]);
        let (mac_a, mac_b) = (retail_mac(&tak, a), retail_mac(&tak, b));
        let mut wrong = mac_b;
        wrong[7] ^= 1;
        assert_eq!(
            verify_macs([(&tak, a, mac_a), (&tak, b, mac_b)]),
            [true, true]
        );
        assert_eq!(
            verify_macs([(&tak, a, mac_a), (&tak, b, wrong)]),
            [true, false]
        );
        assert_eq!(
            verify_macs([(&tak, a, mac_b), (&tak, b, mac_b)]),
            [false, true]
        );
    }

    #[test]
    fn format0_block_of_the_vectors() {
        let block = pin_block_format0(PAN, "1234").unwrap();
        assert_eq!(block, [0x04, 0x12, 0x34, 0xFE, 0xDC, 0xBA, 0x98, 0x76]);
    }

    #[test]
    fn pin_round_trip_and_checks() {
        let tpk = TdesKey::from_hex(TPK).unwrap();
        for pin in ["1234", "000000", "123456789012"] {
            let block = encrypt_pin_block(&tpk, PAN, pin).unwrap();
            assert_eq!(decrypt_pin_block(&tpk, PAN, block).unwrap().digits(), pin);
        }
        let block = encrypt_pin_block(&tpk, PAN, "1234").unwrap();
        assert!(decrypt_pin_block(&tpk, "6290001234567885", block).is_err());
        let other = TdesKey::from_hex("11111111111111112222222222222222").unwrap();
        assert!(decrypt_pin_block(&other, PAN, block).is_err());
        assert_eq!(pin_block_format0(PAN, "123"), Err(PinError::BadPin));
        assert_eq!(pin_block_format0(PAN, "12a4"), Err(PinError::BadPin));
        assert_eq!(pin_block_format0("62900x", "1234"), Err(PinError::BadPan));
    }

    #[test]
    fn keys_never_show() {
        let tpk = TdesKey::from_hex(TPK).unwrap();
        assert_eq!(format!("{tpk:?}"), "TdesKey([redacted])");
        let pin = Pin::new("1234").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin([redacted])");
        assert!(pin.ct_eq(&Pin::new("1234").unwrap()));
        assert!(!pin.ct_eq(&Pin::new("12345").unwrap()));
        assert_eq!(
            TdesKey::from_hex("0123").unwrap_err(),
            KeyError::BadLength {
                expected: 32,
                got: 4
            }
        );
        assert_eq!(
            TdesKey::from_hex(&"G".repeat(32)).unwrap_err(),
            KeyError::NotHex
        );
    }

    #[test]
    fn mac_padding() {
        let tak = TdesKey::from_hex("89ABCDEF0123456776543210FEDCBA98").unwrap();
        // Zero padding makes these equal: method 1 adds no length information.
        assert_eq!(retail_mac(&tak, b"abc"), retail_mac(&tak, b"abc\0\0\0\0\0"));
        assert_eq!(retail_mac(&tak, b""), retail_mac(&tak, &[0; 8]));
        assert_ne!(
            retail_mac(&tak, b"abcdefgh"),
            retail_mac(&tak, b"abcdefgh\0")
        );
        let mac = retail_mac(&tak, b"hello");
        assert!(verify_mac(&tak, b"hello", &mac));
        assert!(!verify_mac(&tak, b"hellp", &mac));
        assert!(!verify_mac(&tak, b"hello", &mac[..7]));
    }
}
