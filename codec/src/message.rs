//! A parsed message: the received bytes plus a table of where each field lies in them.
//!
//! Parsing validates everything PROTOCOL.md section 2 says about the layout and the
//! character classes, records where each field ends in a fixed table, and copies nothing:
//! accessors hand out slices of the original [`Bytes`]. It does not allocate.

use bytes::Bytes;

use crate::error::{ParseError, ParseErrorKind, Salvage};
use crate::field::{count_fields, first_field, Field, Format, Length, SPECS};
use crate::mti::{Mti, MtiError};
use crate::response_code::ResponseCode;

/// The largest message a frame can carry; offsets in the field table are `u16`.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Where the data elements end, in wire order: entry `k` is the offset just past the
/// `k`-th data element present (bitmaps not counted). Each element starts where the one
/// before it ends (the first right after the bitmaps), so this one `u16` per element is
/// the whole layout, and the table stays small enough to be cheap to fill and move.
pub(crate) type Ends = [u16; 128];

/// Where the data of `field` (after its length prefix) lies, given the presence mask and
/// the ends of the elements up to it; `None` if `ends` does not reach it.
#[inline]
fn data_range(present: u128, ends: &Ends, field: Field) -> Option<std::ops::Range<usize>> {
    if field == Field::SecondaryBitmap {
        return Some(12..20);
    }
    let rank = field.rank_in(present);
    let entry_start = match rank.checked_sub(1) {
        Some(previous) => usize::from(*ends.get(previous)?),
        None => header_len(present),
    };
    let end = usize::from(*ends.get(rank)?);
    let start = entry_start + SPECS[field as usize].length.prefix_digits();
    (start <= end).then_some(start..end)
}

/// Bytes before the first data element: the MTI and one or two bitmaps.
#[inline]
fn header_len(present: u128) -> usize {
    if present & Field::SecondaryBitmap.bit() != 0 {
        20
    } else {
        12
    }
}

/// A valid ISO 8583 message of the profile. Cheap to clone (the bytes are shared).
///
/// `Display` and `Debug` mask sensitive fields (see [`crate::mask`]).
#[derive(Clone)]
pub struct Message {
    bytes: Bytes,
    mti: Mti,
    /// Bit `128 - n` is set when field `n` is present (field 1: the secondary bitmap).
    present: u128,
    /// Meaningful for as many entries as there are data elements present.
    ends: Ends,
}

impl Message {
    /// Parses one message (without the frame's length prefix).
    ///
    /// Every field is checked against the dictionary: `n` fields hold digits only, `an` and
    /// `ans` fields printable ASCII, length prefixes are digits and within the maximum, the
    /// bitmap's fields account for every byte, and bit 65 is clear. Does not allocate.
    pub fn parse(bytes: Bytes) -> Result<Message, ParseError> {
        let mut ends = [0; 128];
        let (mti, present) = walk(&bytes, &mut ends)?;
        Ok(Message {
            bytes,
            mti,
            present,
            ends,
        })
    }

    /// The message type.
    #[inline]
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// Whether the field is present (for F1: whether there is a secondary bitmap).
    #[inline]
    pub fn has(&self, field: Field) -> bool {
        self.present & field.bit() != 0
    }

    /// The field's data without its length prefix.
    #[inline]
    pub fn get(&self, field: Field) -> Option<&[u8]> {
        self.bytes.get(self.range(field)?)
    }

    /// Where the field's data lies in the message, if present.
    #[inline]
    fn range(&self, field: Field) -> Option<std::ops::Range<usize>> {
        if !self.has(field) {
            return None;
        }
        data_range(self.present, &self.ends, field)
    }

    /// A text field's data. Always `Some` for a present `n`, `an` or `ans` field (they were
    /// checked to be ASCII when parsing); `None` for binary fields.
    #[inline]
    pub fn get_str(&self, field: Field) -> Option<&str> {
        if field.spec().format == Format::B {
            return None;
        }
        std::str::from_utf8(self.get(field)?).ok()
    }

    /// The field's data as a zero-copy slice of the message's bytes, to keep beyond the
    /// message's lifetime.
    pub fn get_bytes(&self, field: Field) -> Option<Bytes> {
        let range = self.range(field)?;
        if range.end > self.bytes.len() {
            return None;
        }
        Some(self.bytes.slice(range))
    }

    /// A numeric field as a number: `None` when absent, not all digits (F60 is `ans`), or
    /// longer than 19 digits (F90, say).
    pub fn get_u64(&self, field: Field) -> Option<u64> {
        parse_u64(self.get(field)?)
    }

    /// F2, the card number.
    pub fn pan(&self) -> Option<&str> {
        self.get_str(Field::Pan)
    }

    /// F3, the processing code (`000000` purchase, `310000` balance, ...).
    pub fn processing_code(&self) -> Option<u32> {
        self.get_u64(Field::ProcessingCode).map(|v| v as u32)
    }

    /// F4, the amount in minor units.
    pub fn amount_minor(&self) -> Option<u64> {
        self.get_u64(Field::Amount)
    }

    /// F7, transmission date and time, `MMDDhhmmss`.
    pub fn transmission_time(&self) -> Option<&str> {
        self.get_str(Field::TransmissionDateTime)
    }

    /// F11, the STAN.
    pub fn stan(&self) -> Option<u32> {
        self.get_u64(Field::Stan).map(|v| v as u32)
    }

    /// F12, local time `hhmmss`.
    pub fn local_time(&self) -> Option<&str> {
        self.get_str(Field::LocalTime)
    }

    /// F13, local date `MMDD`.
    pub fn local_date(&self) -> Option<&str> {
        self.get_str(Field::LocalDate)
    }

    /// F15, the settlement (business) date `MMDD`.
    pub fn settlement_date(&self) -> Option<&str> {
        self.get_str(Field::SettlementDate)
    }

    /// F37, the retrieval reference number.
    pub fn rrn(&self) -> Option<&str> {
        self.get_str(Field::Rrn)
    }

    /// F38, the approval code.
    pub fn approval_code(&self) -> Option<&str> {
        self.get_str(Field::ApprovalCode)
    }

    /// F39, the response code.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_code(self.get(Field::ResponseCode)?)
    }

    /// F41, the terminal id, as received (8 characters, space-filled).
    pub fn terminal_id(&self) -> Option<&str> {
        self.get_str(Field::TerminalId)
    }

    /// F42, the merchant id, as received (15 characters, space-filled).
    pub fn merchant_id(&self) -> Option<&str> {
        self.get_str(Field::MerchantId)
    }

    /// F48, private data.
    pub fn private_data(&self) -> Option<&str> {
        self.get_str(Field::PrivateData)
    }

    /// F49, the currency (ISO 4217 numeric).
    pub fn currency(&self) -> Option<u16> {
        self.get_u64(Field::Currency).map(|v| v as u16)
    }

    /// F52, the encrypted PIN block.
    pub fn pin_block(&self) -> Option<[u8; 8]> {
        self.get(Field::PinBlock)?.try_into().ok()
    }

    /// F60, the terminal batch number. `None` when absent or not 1-9 digits.
    pub fn batch(&self) -> Option<u32> {
        let batch = self.get(Field::Batch)?;
        if batch.len() > 9 {
            return None;
        }
        parse_u64(batch).map(|v| v as u32)
    }

    /// F70, the network management code (`001` sign-on, `301` echo, ...).
    pub fn network_code(&self) -> Option<u16> {
        self.get_u64(Field::NetworkCode).map(|v| v as u16)
    }

    /// F90, original data elements.
    pub fn original_data(&self) -> Option<&str> {
        self.get_str(Field::OriginalData)
    }

    /// F102, account id 1 (the campus card in a bank top-up).
    pub fn account_id1(&self) -> Option<&str> {
        self.get_str(Field::AccountId1)
    }

    /// The field that carries the MAC: F128 when there is a secondary bitmap, else F64
    /// (PROTOCOL.md section 7). A message with a secondary bitmap and only F64 has no MAC.
    pub fn mac_field(&self) -> Field {
        if self.has(Field::SecondaryBitmap) {
            Field::Mac2
        } else {
            Field::Mac
        }
    }

    /// The MAC (F64 or F128, see [`Message::mac_field`]).
    pub fn mac(&self) -> Option<[u8; 8]> {
        self.get(self.mac_field())?.try_into().ok()
    }

    /// The bytes the MAC covers: from the MTI up to the byte before the MAC field. `None`
    /// when the message carries no MAC.
    pub fn mac_input(&self) -> Option<&[u8]> {
        // The MAC fields are fixed-length: no prefix between the covered bytes and the MAC.
        let start = self.range(self.mac_field())?.start;
        self.bytes.get(..start)
    }

    /// The whole message as received.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The whole message as received, giving up the parse.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The presence mask of the data elements (F1, the secondary bitmap, left out).
    pub(crate) fn data_elements(&self) -> u128 {
        self.present & !Field::SecondaryBitmap.bit()
    }

    /// The runs of adjacent data elements of `wanted` present, in wire order: where each
    /// run's wire form (prefixes and data) lies and where each of its elements ends. A
    /// response echoes most of a request's fields, in a few runs, so copying by run costs
    /// a few population counts instead of a step per field.
    pub(crate) fn runs(&self, wanted: u128) -> Runs<'_> {
        Runs {
            ends: &self.ends,
            remaining: self.data_elements(),
            wanted,
            rank: 0,
            start: header_len(self.present),
        }
    }

    /// Where the wire form (length prefix and data) of each data element of `wanted`
    /// present lies, in wire order: what a response echoes, copied as it is.
    pub(crate) fn entries(&self, wanted: u128) -> Entries<'_> {
        Entries {
            ends: &self.ends,
            remaining: self.present & !Field::SecondaryBitmap.bit(),
            wanted,
            rank: 0,
            start: header_len(self.present),
        }
    }

    /// The data elements present, in wire order, without the bitmaps.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            message: self,
            remaining: self.present & !Field::SecondaryBitmap.bit(),
            rank: 0,
            start: header_len(self.present),
        }
    }
}

/// Iterator over a message's data elements; see [`Message::fields`].
#[derive(Clone)]
pub struct Fields<'a> {
    message: &'a Message,
    /// The data elements not yet visited.
    remaining: u128,
    /// Index in the message's table of ends of the next one.
    rank: usize,
    /// Where its wire form starts.
    start: usize,
}

impl Fields<'_> {
    /// The next data element, its presence bit and where its wire form (prefix and data)
    /// lies. Walks the table of ends in order, so no element's place has to be looked up.
    fn next_entry(&mut self) -> Option<(Field, u128, std::ops::Range<usize>)> {
        let (field, bit) = first_field(self.remaining)?;
        self.remaining &= !bit;
        let end = usize::from(*self.message.ends.get(self.rank)?);
        let entry = self.start..end;
        self.rank += 1;
        self.start = end;
        Some((field, bit, entry))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Field, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (field, _, entry) = self.next_entry()?;
        let data = entry.start + SPECS[field as usize].length.prefix_digits()..entry.end;
        Some((field, self.message.bytes.get(data)?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = count_fields(self.remaining);
        (n, Some(n))
    }
}

/// Iterator over where some of a message's data elements lie; see [`Message::entries`].
pub(crate) struct Entries<'a> {
    ends: &'a Ends,
    /// The data elements not yet visited.
    remaining: u128,
    /// The ones to yield.
    wanted: u128,
    /// Index in the table of ends of the next one.
    rank: usize,
    /// Where its wire form starts.
    start: usize,
}

impl Iterator for Entries<'_> {
    type Item = (Field, std::ops::Range<usize>);

    /// Walks the table of ends in order (an element's place is where the one before it
    /// ended), stopping after the last wanted element.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining & self.wanted != 0 {
            let (field, bit) = first_field(self.remaining)?;
            self.remaining &= !bit;
            let end = usize::from(*self.ends.get(self.rank)?);
            self.rank += 1;
            let start = std::mem::replace(&mut self.start, end);
            if self.wanted & bit != 0 {
                return Some((field, start..end));
            }
        }
        None
    }
}

/// Iterator over runs of wanted data elements; see [`Message::runs`].
pub(crate) struct Runs<'a> {
    ends: &'a Ends,
    /// The data elements not yet visited.
    remaining: u128,
    /// The ones to yield.
    wanted: u128,
    /// Index in the table of ends of the first one not yet visited.
    rank: usize,
    /// Where its wire form starts.
    start: usize,
}

impl<'a> Runs<'a> {
    /// Takes the elements of `remaining` before the first one of `stop` (all of them if
    /// none): how many, and where they end.
    #[inline]
    fn take(&mut self, stop: u128) -> Option<(std::ops::Range<usize>, &'a [u16])> {
        // The bits above the highest of `stop`: the elements that come before it.
        let before = !u128::MAX.checked_shr(stop.leading_zeros()).unwrap_or(0);
        let taken = self.remaining & before;
        self.remaining &= !before;
        let count = count_fields(taken);
        let ends = self.ends.get(self.rank..self.rank + count)?;
        self.rank += count;
        let end = usize::from(*ends.last()?);
        let run = self.start..end;
        self.start = end;
        Some((run, ends))
    }
}

impl<'a> Iterator for Runs<'a> {
    type Item = (std::ops::Range<usize>, &'a [u16]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining & self.wanted == 0 {
            return None;
        }
        if self.remaining & self.wanted & first_bits(self.remaining) == 0 {
            // Skip the elements up to the next wanted one.
            self.take(self.remaining & self.wanted)?;
        }
        // The next element is wanted: take it and those after it up to an unwanted one.
        self.take(self.remaining & !self.wanted)
    }
}

/// The highest bit of `mask` (the lowest-numbered field), or 0.
#[inline]
fn first_bits(mask: u128) -> u128 {
    first_field(mask).map_or(0, |(_, bit)| bit)
}

/// A string of 1 to 19 ASCII digits as a number.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The first error seen while walking, kept so that the walk can go on to F11 and F41.
struct Pending {
    kind: ParseErrorKind,
    field: Option<Field>,
}

/// Walks the layout, filling `ends`, and returns the MTI and the presence mask.
///
/// Errors that leave the layout intact (a bad byte inside a field of known length, an
/// unknown MTI, trailing bytes) are remembered and the walk continues, so that the error
/// can carry F11 and F41 when they come later; the first error in byte order is reported.
fn walk(data: &[u8], ends: &mut Ends) -> Result<(Mti, u128), ParseError> {
    let fail = |kind, field| ParseError {
        kind,
        field,
        salvage: Salvage::default(),
    };
    if data.len() > MAX_MESSAGE_LEN {
        let kind = ParseErrorKind::MessageTooLarge { len: data.len() };
        return Err(fail(kind, None));
    }
    let Some(&[a, b, c, d]) = data.get(..4) else {
        let kind = ParseErrorKind::Truncated {
            needed: 4,
            available: data.len(),
        };
        return Err(fail(kind, None));
    };
    let mti_bytes = [a, b, c, d];
    let mut pending = None;
    let mti = match Mti::parse(&mti_bytes) {
        Ok(mti) => Some(mti),
        Err(MtiError::UnknownMti) => {
            let kind = ParseErrorKind::UnknownMti { mti: mti_bytes };
            pending = Some(Pending { kind, field: None });
            None
        }
        Err(MtiError::BadMti) => {
            return Err(fail(ParseErrorKind::BadMti { mti: mti_bytes }, None));
        }
    };
    let with_mti = |kind, field| ParseError {
        kind,
        field,
        salvage: Salvage {
            mti,
            ..Salvage::default()
        },
    };

    let Some(primary) = read_u64(data, 4) else {
        let kind = ParseErrorKind::Truncated {
            needed: 8,
            available: data.len() - 4,
        };
        return Err(with_mti(kind, None));
    };
    let mut present = u128::from(primary) << 64;
    let mut pos = 12;
    if present & Field::SecondaryBitmap.bit() != 0 {
        let Some(secondary) = read_u64(data, 12) else {
            let kind = ParseErrorKind::Truncated {
                needed: 8,
                available: data.len() - 12,
            };
            return Err(with_mti(kind, Some(Field::SecondaryBitmap)));
        };
        present |= u128::from(secondary);
        if present & Field::ExtendedBitmap.bit() != 0 {
            let kind = ParseErrorKind::TertiaryBitmap;
            return Err(with_mti(kind, Some(Field::ExtendedBitmap)));
        }
        pos = 20;
    }

    // Fields read and valid so far: what the salvage may use.
    let mut valid = present & Field::SecondaryBitmap.bit();
    let mut remaining = present & !Field::SecondaryBitmap.bit();
    let mut rank = 0;
    while let Some((field, bit)) = first_field(remaining) {
        remaining &= !bit;
        let spec = SPECS[field as usize];
        let (start, len) = match spec.length {
            Length::Fixed(len) => (pos, len as usize),
            Length::Ll(max) | Length::Lll(max) => match read_prefix(data, pos, spec.length) {
                Ok(len) if len <= max as usize => (pos + spec.length.prefix_digits(), len),
                Ok(len) => {
                    let kind = ParseErrorKind::TooLong {
                        len,
                        max: max as usize,
                    };
                    return Err(finish(
                        kind,
                        field,
                        pending,
                        salvage(data, ends, present, valid, mti),
                    ));
                }
                Err(kind) => {
                    return Err(finish(
                        kind,
                        field,
                        pending,
                        salvage(data, ends, present, valid, mti),
                    ))
                }
            },
        };
        let Some(value) = data.get(start..start + len) else {
            let kind = ParseErrorKind::Truncated {
                needed: len,
                available: data.len().saturating_sub(start),
            };
            return Err(finish(
                kind,
                field,
                pending,
                salvage(data, ends, present, valid, mti),
            ));
        };
        pos = start + len;
        // At most 127 data elements (F1 is not one), and `pos` fits: the length was checked.
        if let Some(end) = ends.get_mut(rank) {
            *end = pos as u16;
        }
        rank += 1;
        if spec.format.accepts_all(value) {
            valid |= bit;
        } else if pending.is_none() {
            pending = Some(Pending {
                kind: class_error(spec.format, value),
                field: Some(field),
            });
        }
    }
    if pos != data.len() && pending.is_none() {
        let kind = ParseErrorKind::TrailingBytes {
            count: data.len() - pos,
        };
        pending = Some(Pending { kind, field: None });
    }
    match (pending, mti) {
        (None, Some(mti)) => Ok((mti, present)),
        (Some(first), _) => Err(ParseError {
            kind: first.kind,
            field: first.field,
            salvage: salvage(data, ends, present, valid, mti),
        }),
        // Unreachable: an unknown MTI always leaves a pending error.
        (None, None) => Err(ParseError {
            kind: ParseErrorKind::UnknownMti { mti: mti_bytes },
            field: None,
            salvage: salvage(data, ends, present, valid, mti),
        }),
    }
}

/// The error to report when the walk must stop: the first one seen, with what was salvaged.
fn finish(
    kind: ParseErrorKind,
    field: Field,
    pending: Option<Pending>,
    salvage: Salvage,
) -> ParseError {
    let (kind, field) = match pending {
        Some(first) => (first.kind, first.field),
        None => (kind, Some(field)),
    };
    ParseError {
        kind,
        field,
        salvage,
    }
}

/// MTI, F11 and F41 where they were read and valid.
fn salvage(data: &[u8], ends: &Ends, present: u128, valid: u128, mti: Option<Mti>) -> Salvage {
    let read = |field: Field| {
        if valid & field.bit() == 0 {
            return None;
        }
        data.get(data_range(present, ends, field)?)
    };
    Salvage {
        mti,
        stan: read(Field::Stan).and_then(|v| v.try_into().ok()),
        terminal_id: read(Field::TerminalId).and_then(|v| v.try_into().ok()),
    }
}

#[inline]
fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Reads a 2- or 3-digit length prefix at `pos`.
#[inline]
fn read_prefix(data: &[u8], pos: usize, length: Length) -> Result<usize, ParseErrorKind> {
    let digits = length.prefix_digits();
    let Some(prefix) = data.get(pos..pos + digits) else {
        return Err(ParseErrorKind::Truncated {
            needed: digits,
            available: data.len().saturating_sub(pos),
        });
    };
    let mut len = 0usize;
    for &byte in prefix {
        if !byte.is_ascii_digit() {
            let mut shown = [0u8; 3];
            for (slot, &b) in shown.iter_mut().zip(prefix) {
                *slot = b;
            }
            return Err(ParseErrorKind::BadLengthPrefix {
                prefix: shown,
                digits: digits as u8,
            });
        }
        len = len * 10 + usize::from(byte - b'0');
    }
    Ok(len)
}

/// The error for a `value` its class rejects: the first byte it rejects.
#[cold]
fn class_error(format: Format, value: &[u8]) -> ParseErrorKind {
    let index = value.iter().position(|&b| !format.accepts(b)).unwrap_or(0);
    let byte = value.get(index).copied().unwrap_or(0);
    match format {
        Format::N => ParseErrorKind::NonDigit { index, byte },
        _ => ParseErrorKind::NotText { index, byte },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0800 sign-on of the vectors: F7, F11, F41, F70 (secondary bitmap).
    const SIGN_ON: &str = "3038303082200000008000000400000000000000313132323038333030303030303030315430303030303031303031";

    fn sign_on() -> Bytes {
        Bytes::from(hex::decode(SIGN_ON).unwrap())
    }

    #[test]
    fn parses_sign_on() {
        let message = Message::parse(sign_on()).unwrap();
        assert_eq!(message.mti(), Mti::NETWORK_REQUEST);
        assert!(message.has(Field::SecondaryBitmap));
        assert_eq!(message.transmission_time(), Some("1122083000"));
        assert_eq!(message.stan(), Some(1));
        assert_eq!(message.terminal_id(), Some("T0000001"));
        assert_eq!(message.network_code(), Some(1));
        assert_eq!(message.get(Field::Pan), None);
        assert_eq!(message.mac(), None);
        assert_eq!(message.mac_input(), None);
        let numbers: Vec<u8> = message.fields().map(|(f, _)| f.number()).collect();
        assert_eq!(numbers, [7, 11, 41, 70]);
    }

    #[test]
    fn salvages_after_a_bad_byte() {
        let mut bytes = hex::decode(SIGN_ON).unwrap();
        // F7 starts at 20: put a letter in it.
        bytes[21] = b'x';
        let error = Message::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.field, Some(Field::TransmissionDateTime));
        assert_eq!(
            error.kind,
            ParseErrorKind::NonDigit {
                index: 1,
                byte: b'x'
            }
        );
        assert_eq!(error.salvage.mti, Some(Mti::NETWORK_REQUEST));
        assert_eq!(error.salvage.stan, Some(*b"000001"));
        assert_eq!(error.salvage.terminal_id, Some(*b"T0000001"));
        assert!(error.salvage.is_answerable());
    }

    #[test]
    fn bad_stan_is_not_salvaged() {
        let mut bytes = hex::decode(SIGN_ON).unwrap();
        bytes[30] = b'?'; // inside F11 (offset 30..36)
        let error = Message::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.field, Some(Field::Stan));
        assert_eq!(error.salvage.stan, None);
        assert_eq!(error.salvage.terminal_id, Some(*b"T0000001"));
    }

    #[test]
    fn trailing_and_truncated() {
        let mut bytes = hex::decode(SIGN_ON).unwrap();
        bytes.push(b'0');
        let error = Message::parse(Bytes::from(bytes.clone())).unwrap_err();
        assert_eq!(error.kind, ParseErrorKind::TrailingBytes { count: 1 });
        assert!(error.salvage.is_answerable());
        bytes.truncate(bytes.len() - 3);
        let error = Message::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.field, Some(Field::NetworkCode));
        assert_eq!(
            error.kind,
            ParseErrorKind::Truncated {
                needed: 3,
                available: 1
            }
        );
        assert!(error.salvage.is_answerable());
    }

    #[test]
    fn unknown_mti_keeps_walking() {
        let mut bytes = hex::decode(SIGN_ON).unwrap();
        bytes[..4].copy_from_slice(b"0900");
        let error = Message::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.kind, ParseErrorKind::UnknownMti { mti: *b"0900" });
        assert_eq!(error.salvage.mti, None);
        assert_eq!(error.salvage.stan, Some(*b"000001"));
        assert!(!error.salvage.is_answerable());
    }

    #[test]
    fn tertiary_bitmap_is_refused() {
        let mut bytes = hex::decode(SIGN_ON).unwrap();
        bytes[12] |= 0x80;
        let error = Message::parse(Bytes::from(bytes)).unwrap_err();
        assert_eq!(error.kind, ParseErrorKind::TertiaryBitmap);
        assert_eq!(error.field, Some(Field::ExtendedBitmap));
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u64(b"000123"), Some(123));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(
            parse_u64(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_u64(b"10000000000000000000"), None);
    }
}
