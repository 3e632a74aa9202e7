//! Typed parse and build errors that say which field failed and why, without showing field
//! data (a PAN must not reach a log through an error message).

use std::fmt;

use crate::field::Field;
use crate::mti::Mti;

/// Why a message could not be parsed. The offending field, if any, is in
/// [`ParseError::field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The input ends inside the MTI, a bitmap, a length prefix or a field's data.
    Truncated {
        /// Bytes the part needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// A variable field's length prefix is not ASCII digits.
    BadLengthPrefix {
        /// The prefix as received (2 or 3 bytes, zero-padded on the right).
        prefix: [u8; 3],
        /// How many of `prefix`'s bytes are the prefix.
        digits: u8,
    },
    /// A length prefix above the field's maximum.
    TooLong {
        /// The declared length.
        len: usize,
        /// The dictionary's maximum.
        max: usize,
    },
    /// A byte other than an ASCII digit in an `n` field.
    NonDigit {
        /// Position of the byte within the field's data.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// A byte outside printable ASCII (0x20..=0x7E) in an `an`/`ans` field.
    NotText {
        /// Position of the byte within the field's data.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// The MTI is four digits but not a message type of this profile.
    UnknownMti {
        /// The four bytes received.
        mti: [u8; 4],
    },
    /// The MTI is not four ASCII digits.
    BadMti {
        /// The four bytes received.
        mti: [u8; 4],
    },
    /// Bytes follow the last field the bitmap announces.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Bit 65 is set: a tertiary bitmap, which this profile does not have.
    TertiaryBitmap,
    /// The message is longer than a frame can carry (65535 bytes), so field offsets would
    /// not fit the parser's table.
    MessageTooLarge {
        /// The message's length.
        len: usize,
    },
}

impl ParseErrorKind {
    /// Whether the message's layout is still known after this error, so that the parser
    /// could keep walking to later fields (F11, F41) for the salvage.
    pub const fn layout_intact(&self) -> bool {
        matches!(
            self,
            ParseErrorKind::NonDigit { .. }
                | ParseErrorKind::NotText { .. }
                | ParseErrorKind::UnknownMti { .. }
                | ParseErrorKind::TrailingBytes { .. }
        )
    }
}

/// What could be read of an unparseable message, so that the switch can answer `30` with
/// the matching response MTI, F11 and F41 (PROTOCOL.md section 2).
///
/// Each part is set only if it was read and valid: `mti` is a known MTI; `stan` is six
/// digits; `terminal_id` is eight printable ASCII bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Salvage {
    /// The message's MTI.
    pub mti: Option<Mti>,
    /// F11 as received.
    pub stan: Option<[u8; 6]>,
    /// F41 as received.
    pub terminal_id: Option<[u8; 8]>,
}

impl Salvage {
    /// Whether a `30` response can be addressed: MTI, F11 and F41 were all readable and the
    /// MTI is one that expects an answer.
    pub fn is_answerable(&self) -> bool {
        self.stan.is_some()
            && self.terminal_id.is_some()
            && self.mti.is_some_and(|mti| mti.response().is_some())
    }
}

impl fmt::Debug for Salvage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Salvage")
            .field("mti", &self.mti)
            .field("stan", &self.stan.as_ref().map(|s| Escaped(s)))
            .field(
                "terminal_id",
                &self.terminal_id.as_ref().map(|t| Escaped(t)),
            )
            .finish()
    }
}

/// A message that could not be parsed: which field, why, and what was salvaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Why.
    pub kind: ParseErrorKind,
    /// The field being read, `None` for the MTI, the primary bitmap and whole-message
    /// errors.
    pub field: Option<Field>,
    /// MTI, F11 and F41 as far as they could be read.
    pub salvage: Salvage,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.field, &self.kind) {
            (Some(field), _) => write!(f, "{field}: ")?,
            (None, ParseErrorKind::Truncated { .. }) => f.write_str("header: ")?,
            (None, _) => f.write_str("message: ")?,
        }
        match self.kind {
            ParseErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} left")
            }
            ParseErrorKind::BadLengthPrefix { prefix, digits } => {
                let prefix = prefix.get(..digits as usize).unwrap_or(&prefix);
                write!(f, "length prefix '{}' is not digits", Escaped(prefix))
            }
            ParseErrorKind::TooLong { len, max } => {
                write!(f, "length {len} is above the maximum {max}")
            }
            ParseErrorKind::NonDigit { index, byte } => {
                write!(f, "byte {index} is '{}', not a digit", Escaped(&[byte]))
            }
            ParseErrorKind::NotText { index, byte } => {
                write!(
                    f,
                    "byte {index} is '{}', not printable ASCII",
                    Escaped(&[byte])
                )
            }
            ParseErrorKind::UnknownMti { mti } => {
                write!(f, "unknown MTI '{}'", Escaped(&mti))
            }
            ParseErrorKind::BadMti { mti } => {
                write!(f, "MTI '{}' is not four digits", Escaped(&mti))
            }
            ParseErrorKind::TrailingBytes { count } => {
                write!(f, "{count} bytes after the last field")
            }
            ParseErrorKind::TertiaryBitmap => f.write_str("bit 65 (tertiary bitmap) is set"),
            ParseErrorKind::MessageTooLarge { len } => {
                write!(f, "{len} bytes is more than a frame can carry")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Why the builder refused a field or a message. Never shows the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// F1 and F65 are bitmaps: the builder sets F1 itself, and the profile forbids F65.
    NotSettable(Field),
    /// A fixed-length field given the wrong number of bytes.
    WrongLength {
        /// The field.
        field: Field,
        /// Its fixed length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A value longer than the field's maximum.
    TooLong {
        /// The field.
        field: Field,
        /// The length given.
        len: usize,
        /// The dictionary's maximum.
        max: usize,
    },
    /// A byte other than a digit for an `n` field.
    NonDigit(Field),
    /// A byte outside printable ASCII for an `an`/`ans` field.
    NotText(Field),
    /// `set_numeric` on a field that is not `n`.
    NotNumeric(Field),
    /// `set_numeric` with a number that has more digits than the field holds.
    DoesNotFit {
        /// The field.
        field: Field,
        /// The field's length.
        max: usize,
    },
    /// The message would exceed 65535 bytes, the most a frame can carry.
    MessageTooLarge {
        /// The message's length.
        len: usize,
    },
    /// `try_response_to` on a message that is itself a response.
    NotARequest(Mti),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::NotSettable(field) => {
                write!(f, "{field} is a bitmap and cannot be set")
            }
            BuildError::WrongLength {
                field,
                expected,
                got,
            } => write!(
                f,
                "{field}: {got} bytes given, the field is fixed at {expected}"
            ),
            BuildError::TooLong { field, len, max } => {
                write!(f, "{field}: {len} bytes given, the maximum is {max}")
            }
            BuildError::NonDigit(field) => write!(f, "{field}: only digits allowed"),
            BuildError::NotText(field) => {
                write!(f, "{field}: only printable ASCII allowed")
            }
            BuildError::NotNumeric(field) => write!(f, "{field} is not a numeric field"),
            BuildError::DoesNotFit { field, max } => {
                write!(f, "{field}: the number has more than {max} digits")
            }
            BuildError::MessageTooLarge { len } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the 65535 a frame can carry"
                )
            }
            BuildError::NotARequest(mti) => write!(f, "{mti} is not a request"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Shows bytes as text, escaping anything outside printable ASCII as `\xNN`.
pub(crate) struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in self.0 {
            if matches!(byte, 0x20..=0x7E) && byte != b'\\' {
                fmt::Write::write_char(f, byte as char)?;
            } else {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_field_and_reason() {
        let error = ParseError {
            kind: ParseErrorKind::BadLengthPrefix {
                prefix: *b"9x\0",
                digits: 2,
            },
            field: Some(Field::Track2),
            salvage: Salvage::default(),
        };
        assert_eq!(error.to_string(), "F35: length prefix '9x' is not digits");
        let error = ParseError {
            kind: ParseErrorKind::NonDigit {
                index: 3,
                byte: 0xC3,
            },
            field: Some(Field::Amount),
            salvage: Salvage::default(),
        };
        assert_eq!(error.to_string(), "F4: byte 3 is '\\xC3', not a digit");
        let error = ParseError {
            kind: ParseErrorKind::Truncated {
                needed: 8,
                available: 3,
            },
            field: None,
            salvage: Salvage::default(),
        };
        assert_eq!(
            error.to_string(),
            "header: truncated: needs 8 bytes, 3 left"
        );
    }

    #[test]
    fn salvage_debug_is_readable() {
        let salvage = Salvage {
            mti: Some(Mti::FINANCIAL_REQUEST),
            stan: Some(*b"000123"),
            terminal_id: Some(*b"T0000001"),
        };
        assert!(salvage.is_answerable());
        assert_eq!(
            format!("{salvage:?}"),
            "Salvage { mti: Some(Mti(0200)), stan: Some(\"000123\"), terminal_id: Some(\"T0000001\") }"
        );
    }
}
