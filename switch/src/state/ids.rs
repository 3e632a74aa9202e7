//! Identifiers of the terminal link, fixed-size so that they are `Copy` and never allocate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A card number: 16 to 19 digits, Luhn-valid. Its `Display` and `Debug` are masked
/// (first 6 and last 4), so a PAN cannot reach a log by accident; `as_str` is explicit.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pan {
    len: u8,
    digits: [u8; 19],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("a card number has 16 to 19 digits")]
    Length,
    #[error("a card number has only digits")]
    NotDigits,
    #[error("the card number fails the Luhn check")]
    Luhn,
}

impl Pan {
    pub fn parse(text: &str) -> Result<Pan, PanError> {
        let bytes = text.as_bytes();
        if !(16..=19).contains(&bytes.len()) {
            return Err(PanError::Length);
        }
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(PanError::NotDigits);
        }
        if !luhn_valid(bytes) {
            return Err(PanError::Luhn);
        }
        let mut digits = [b'0'; 19];
        digits[..bytes.len()].copy_from_slice(bytes);
        Ok(Pan {
            len: bytes.len() as u8,
            digits,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len as usize]).expect("digits are ASCII")
    }

    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}******{}", &s[..6], &s[s.len() - 4..])
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = (d - b'0') as u32;
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The Luhn check digit that completes `partial` (used to make demo and test cards).
pub fn luhn_check_digit(partial: &str) -> u8 {
    for d in b'0'..=b'9' {
        let mut candidate = partial.as_bytes().to_vec();
        candidate.push(d);
        if luhn_valid(&candidate) {
            return d;
        }
    }
    unreachable!("one of ten digits always completes a Luhn sum")
}

macro_rules! fixed_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[doc = concat!("A ", $what, ": exactly ", stringify!($len), " printable ASCII characters, as on the wire.")]
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn parse(text: &str) -> Option<$name> {
                let bytes = text.as_bytes();
                let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
                if bytes.len() != $len || !printable || text.trim().is_empty() {
                    return None;
                }
                let mut id = [0u8; $len];
                id.copy_from_slice(bytes);
                Some($name(id))
            }

            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).expect("validated as ASCII")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }
    };
}

fixed_id!(TerminalId, 8, "terminal id (F41)");
fixed_id!(MerchantId, 15, "merchant id (F42)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pans_are_checked_and_masked() {
        let pan = Pan::parse("6290001234567893").unwrap();
        assert_eq!(pan.as_str(), "6290001234567893");
        assert_eq!(pan.to_string(), "629000******7893");
        assert_eq!(format!("{pan:?}"), "Pan(629000******7893)");
        assert_eq!(Pan::parse("6290001234567890"), Err(PanError::Luhn));
        assert_eq!(Pan::parse("629000123456789"), Err(PanError::Length));
        assert_eq!(Pan::parse("62900012345678a3"), Err(PanError::NotDigits));
        assert_eq!(luhn_check_digit("629000123456789"), b'3');
    }

    #[test]
    fn fixed_ids_have_exact_length() {
        assert!(TerminalId::parse("T0000001").is_some());
        assert!(TerminalId::parse("T000001").is_none());
        assert!(MerchantId::parse("M00000000000001").is_some());
        assert!(MerchantId::parse("               ").is_none());
    }
}
