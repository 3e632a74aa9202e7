//! What a log may show of a message (PROTOCOL.md section 7): never a full card number, a
//! PIN block, track data, a MAC or a key.
//!
//! The policy, in one place:
//! - card numbers (F2, F34, F102, F103) show the first 6 and last 4 digits;
//! - track data (F35, F36, F45) and every binary field (F52 PIN block, F55 ICC data, F64 and
//!   F128 MACs, F96) show as `[redacted]`;
//! - F48 of a blacklist download (F70 = 901) shows its version and flag, and each `+PAN` /
//!   `-PAN` entry masked like F2;
//! - everything else is shown as received.

use std::fmt;

use crate::error::Escaped;
use crate::field::{Field, Format};
use crate::message::Message;
use crate::mti::Mti;

/// A card number for logs: first 6 digits, `******`, last 4 (`629000******7893`).
/// Anything that is not 13 to 19 digits is masked entirely, as `******`, since there is no
/// telling which part of it is safe.
#[derive(Clone, Copy)]
pub struct MaskedPan<'a>(pub &'a str);

impl fmt::Display for MaskedPan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pan = self.0;
        let plausible = (13..=19).contains(&pan.len()) && pan.bytes().all(|b| b.is_ascii_digit());
        match (
            plausible,
            pan.get(..6),
            pan.get(pan.len().saturating_sub(4)..),
        ) {
            (true, Some(first), Some(last)) => write!(f, "{first}******{last}"),
            _ => f.write_str("******"),
        }
    }
}

impl fmt::Debug for MaskedPan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The length of the version (12 digits) and more-pages flag that open a blacklist page.
const BLACKLIST_HEADER_LEN: usize = 13;

/// F48 of a blacklist page: header shown, each `+PAN`/`-PAN` entry masked.
struct MaskedBlacklist<'a>(&'a str);

impl fmt::Display for MaskedBlacklist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let split = self.0.len().min(BLACKLIST_HEADER_LEN);
        let (header, entries) = self.0.split_at_checked(split).unwrap_or(("", self.0));
        f.write_str(header)?;
        if entries.is_empty() {
            return Ok(());
        }
        for (i, entry) in entries.split(';').enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            match entry.strip_prefix(['+', '-']) {
                Some(pan) => write!(f, "{}{}", entry.get(..1).unwrap_or(""), MaskedPan(pan))?,
                None => write!(f, "{}", MaskedPan(entry))?,
            }
        }
        Ok(())
    }
}

/// How one field is shown.
enum Shown<'a> {
    Redacted,
    Pan(&'a str),
    Blacklist(&'a str),
    Text(&'a [u8]),
}

impl<'a> Shown<'a> {
    fn new(field: Field, value: &'a [u8], blacklist: bool) -> Shown<'a> {
        let text = std::str::from_utf8(value);
        match (field, text) {
            (Field::Track2 | Field::Track3 | Field::Track1, _) => Shown::Redacted,
            _ if field.spec().format == Format::B => Shown::Redacted,
            (Field::Pan | Field::ExtendedPan | Field::AccountId1 | Field::AccountId2, Ok(pan)) => {
                Shown::Pan(pan)
            }
            (Field::Pan | Field::ExtendedPan | Field::AccountId1 | Field::AccountId2, Err(_)) => {
                Shown::Redacted
            }
            (Field::PrivateData, Ok(data)) if blacklist => Shown::Blacklist(data),
            (Field::PrivateData, Err(_)) if blacklist => Shown::Redacted,
            _ => Shown::Text(value),
        }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Redacted => f.write_str("[redacted]"),
            Shown::Pan(pan) => write!(f, "{}", MaskedPan(pan)),
            Shown::Blacklist(data) => write!(f, "{}", MaskedBlacklist(data)),
            Shown::Text(text) => write!(f, "{}", Escaped(text)),
        }
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Redacted => f.write_str("[redacted]"),
            shown => write!(f, "\"{shown}\""),
        }
    }
}

/// Whether F48 holds blacklist entries: a network message with F70 = 901.
fn is_blacklist<'a>(fields: impl Iterator<Item = (Field, &'a [u8])>) -> bool {
    fields
        .into_iter()
        .any(|(field, value)| field == Field::NetworkCode && value == b"901")
}

/// `Debug` of a message or builder:
/// `Message { mti: Mti(0200), fields: {F2: "629000******7893", ...} }`.
pub(crate) fn fmt_debug<'a, I>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    mti: Mti,
    fields: I,
) -> fmt::Result
where
    I: Iterator<Item = (Field, &'a [u8])> + Clone,
{
    struct Key(Field);
    impl fmt::Debug for Key {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0)
        }
    }
    struct Map<I>(I, bool);
    impl<'a, I: Iterator<Item = (Field, &'a [u8])> + Clone> fmt::Debug for Map<I> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_map()
                .entries(
                    self.0
                        .clone()
                        .map(|(field, value)| (Key(field), Shown::new(field, value, self.1))),
                )
                .finish()
        }
    }
    let blacklist = is_blacklist(fields.clone());
    f.debug_struct(name)
        .field("mti", &mti)
        .field("fields", &Map(fields, blacklist))
        .finish()
}

/// `Display` of a message: `0200 F2=629000******7893 F3=000000 ... F52=[redacted]`.
pub(crate) fn fmt_display<'a, I>(f: &mut fmt::Formatter<'_>, mti: Mti, fields: I) -> fmt::Result
where
    I: Iterator<Item = (Field, &'a [u8])> + Clone,
{
    let blacklist = is_blacklist(fields.clone());
    f.write_str(mti.as_str())?;
    for (field, value) in fields {
        write!(f, " {field}={}", Shown::new(field, value, blacklist))?;
    }
    Ok(())
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_display(f, self.mti(), self.fields())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_debug(f, "Message", self.mti(), self.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_pans() {
        assert_eq!(
            MaskedPan("6290001234567893").to_string(),
            "629000******7893"
        );
        assert_eq!(
            MaskedPan("6222020200112233446").to_string(),
            "622202******3446"
        );
        assert_eq!(MaskedPan("1234567890").to_string(), "******");
        assert_eq!(MaskedPan("62900012345678x3").to_string(), "******");
        assert_eq!(MaskedPan("").to_string(), "******");
        assert_eq!(MaskedPan("62900012345678931234").to_string(), "******");
    }

    #[test]
    fn masks_blacklist_entries() {
        let page = "0000000000070+6290001234567893;-6290009876543213";
        assert_eq!(
            MaskedBlacklist(page).to_string(),
            "0000000000070+629000******7893;-629000******3213"
        );
        assert_eq!(MaskedBlacklist("000000000000").to_string(), "000000000000");
        assert_eq!(
            MaskedBlacklist("0000000000070").to_string(),
            "0000000000070"
        );
    }
}
