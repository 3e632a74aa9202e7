//! Building outgoing messages: fields are validated against the dictionary as they are set,
//! kept in one arena, and laid out in wire order with their bitmaps by `build`.

use std::fmt;

use bytes::Bytes;

use crate::error::BuildError;
use crate::field::{first_field, Field, Format, Length, SECONDARY_FIELDS, SPECS};
use crate::mask;
use crate::message::{Message, MAX_MESSAGE_LEN};
use crate::mti::Mti;

/// Where a field's value lies in the arena, packed in a `u32` (start in the high 22 bits,
/// length in the low 10: no field is longer than 999 bytes) so the table stays small and the
/// builder cheap to create and move.
#[derive(Debug, Clone, Copy, Default)]
struct Slot(u32);

const LEN_BITS: u32 = 10;

impl Slot {
    fn new(start: usize, len: usize) -> Slot {
        Slot(((start as u32) << LEN_BITS) | len as u32)
    }

    fn start(self) -> usize {
        (self.0 >> LEN_BITS) as usize
    }

    fn len(self) -> usize {
        (self.0 & ((1 << LEN_BITS) - 1)) as usize
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start()..self.start() + self.len()
    }
}

/// Arena capacity that holds a typical profile message without growing.
const ARENA_CAPACITY: usize = 256;

/// Above this the arena is compacted, so starts fit a slot's 22 bits. The live fields
/// (at most 128 of at most 999 bytes) always fit after compaction.
const ARENA_LIMIT: usize = 1 << 22;

/// Bytes a field takes on the wire: its length prefix and its data.
#[inline]
fn encoded_len(field: Field, data_len: usize) -> usize {
    SPECS[field as usize].length.prefix_digits() + data_len
}

/// An outgoing message under construction.
///
/// Fields may be set in any order and set again; every value is checked against the
/// dictionary when set, so `build` only fails when the whole message is too large. Values
/// live in one growing buffer, so setting a field does not allocate (beyond the buffer's
/// occasional growth); `build` allocates the output once.
///
/// `Debug` masks sensitive fields like [`Message`]'s.
#[derive(Clone)]
pub struct MessageBuilder {
    mti: Mti,
    /// Bit `128 - n` set when field `n` is set (never F1: `build` derives it).
    present: u128,
    /// Sum of `encoded_len` over the fields set, so `build` knows the size in advance.
    fields_len: usize,
    slots: [Slot; 129],
    arena: Vec<u8>,
}

impl MessageBuilder {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> MessageBuilder {
        MessageBuilder {
            mti,
            present: 0,
            fields_len: 0,
            slots: [Slot::default(); 129],
            arena: Vec::with_capacity(ARENA_CAPACITY),
        }
    }

    /// A response to `request`: its MTI is the request's response MTI (`0200` -> `0210`,
    /// repeats answered like originals), and each field of `echo` that the request carries
    /// is copied verbatim.
    ///
    /// If `request` is itself a response (check [`Mti::is_request`] first), the builder
    /// keeps the request's MTI; [`MessageBuilder::try_response_to`] refuses instead.
    pub fn response_to(request: &Message, echo: &[Field]) -> MessageBuilder {
        let mti = request.mti().response().unwrap_or(request.mti());
        let mut builder = MessageBuilder::new(mti);
        builder.echo(request, echo);
        builder
    }

    /// Like [`MessageBuilder::response_to`], but an error if `request` is not a request.
    pub fn try_response_to(
        request: &Message,
        echo: &[Field],
    ) -> Result<MessageBuilder, BuildError> {
        let mti = request
            .mti()
            .response()
            .ok_or(BuildError::NotARequest(request.mti()))?;
        let mut builder = MessageBuilder::new(mti);
        builder.echo(request, echo);
        Ok(builder)
    }

    /// A builder holding every data element of `message` (to amend and re-send it).
    pub fn from_message(message: &Message) -> MessageBuilder {
        let mut builder = MessageBuilder::new(message.mti());
        for (field, value) in message.fields() {
            builder.store(field, value, value.len());
        }
        builder
    }

    /// Copies the fields of `echo` that `request` carries. Parsed values already passed
    /// the dictionary's checks, so they are stored as they are.
    pub fn echo(&mut self, request: &Message, echo: &[Field]) -> &mut Self {
        for &field in echo {
            if field.is_bitmap() {
                continue;
            }
            if let Some(value) = request.get(field) {
                self.store(field, value, value.len());
            }
        }
        self
    }

    /// The message type.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// Changes the message type.
    pub fn set_mti(&mut self, mti: Mti) -> &mut Self {
        self.mti = mti;
        self
    }

    /// Sets a field to `value` (without length prefix), checked against the dictionary:
    /// fixed `n` and `b` fields need exactly their length; fixed `an`/`ans` fields take at
    /// most their length and are space-filled on the right (the ISO rule); variable fields
    /// take at most their maximum; `n` takes digits only, `an`/`ans` printable ASCII.
    pub fn set(&mut self, field: Field, value: &[u8]) -> Result<&mut Self, BuildError> {
        if field.is_bitmap() {
            return Err(BuildError::NotSettable(field));
        }
        let spec = SPECS[field as usize];
        let stored_len = match spec.length {
            Length::Fixed(len) => {
                let len = len as usize;
                let pads = matches!(spec.format, Format::An | Format::Ans);
                if pads && value.len() > len {
                    return Err(BuildError::TooLong {
                        field,
                        len: value.len(),
                        max: len,
                    });
                }
                if !pads && value.len() != len {
                    return Err(BuildError::WrongLength {
                        field,
                        expected: len,
                        got: value.len(),
                    });
                }
                len
            }
            Length::Ll(max) | Length::Lll(max) => {
                if value.len() > max as usize {
                    return Err(BuildError::TooLong {
                        field,
                        len: value.len(),
                        max: max as usize,
                    });
                }
                value.len()
            }
        };
        match spec.format {
            Format::N if !value.iter().all(u8::is_ascii_digit) => {
                return Err(BuildError::NonDigit(field));
            }
            Format::An | Format::Ans if !value.iter().all(|b| matches!(b, 0x20..=0x7E)) => {
                return Err(BuildError::NotText(field));
            }
            _ => {}
        }
        self.store(field, value, stored_len);
        Ok(self)
    }

    /// Sets a text field; fixed `an`/`ans` fields are space-filled (see [`Self::set`]).
    pub fn set_text(&mut self, field: Field, value: &str) -> Result<&mut Self, BuildError> {
        self.set(field, value.as_bytes())
    }

    /// Sets an `n` field to a number: zero-filled to a fixed field's length, as few digits as
    /// needed in a variable field.
    pub fn set_numeric(&mut self, field: Field, value: u64) -> Result<&mut Self, BuildError> {
        let spec = field.spec();
        if spec.format != Format::N || field.is_bitmap() {
            return Err(BuildError::NotNumeric(field));
        }
        let width = match spec.length {
            Length::Fixed(len) => len as usize,
            Length::Ll(_) | Length::Lll(_) => decimal_digits(value),
        };
        self.set_digits(field, value, width)
    }

    /// Sets a text field to a number zero-filled to `width` digits (F60's batch number is
    /// `ans` in the dictionary but six digits in the profile: `set_digits(Field::Batch, 1, 6)`).
    pub fn set_digits(
        &mut self,
        field: Field,
        value: u64,
        width: usize,
    ) -> Result<&mut Self, BuildError> {
        let mut buf = [b'0'; 64];
        if field.spec().format == Format::B || field.is_bitmap() {
            return Err(BuildError::NotNumeric(field));
        }
        let digits = decimal_digits(value);
        if digits > width || width > buf.len() {
            return Err(BuildError::DoesNotFit {
                field,
                max: width.min(buf.len()),
            });
        }
        let mut rest = value;
        for slot in buf[..width].iter_mut().rev().take(digits) {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.set(field, &buf[..width])
    }

    /// Removes a field.
    pub fn unset(&mut self, field: Field) -> &mut Self {
        if self.has(field) {
            self.present &= !field.bit();
            self.fields_len -= encoded_len(field, self.slots[field as usize].len());
        }
        self
    }

    /// Whether a field is set.
    pub fn has(&self, field: Field) -> bool {
        self.present & field.bit() != 0
    }

    /// A field's value as it will be sent (after padding).
    pub fn get(&self, field: Field) -> Option<&[u8]> {
        if !self.has(field) {
            return None;
        }
        self.arena.get(self.slots[field as usize].range())
    }

    /// The fields set, in wire order.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &[u8])> + Clone + '_ {
        let mut remaining = self.present;
        std::iter::from_fn(move || {
            let (field, bit) = first_field(remaining)?;
            remaining &= !bit;
            Some((field, self.get(field).unwrap_or_default()))
        })
    }

    /// Lays the message out: MTI, bitmap(s) (F1 set when any field 65-128 is present),
    /// then the fields in order with their length prefixes.
    pub fn build(&self) -> Result<Bytes, BuildError> {
        Ok(Bytes::from(self.assemble(None)?))
    }

    /// Builds the message with a MAC: F128 when any field 65-127 is set, else F64 (the other
    /// one is dropped). Its bit is set before `mac` is called on the bytes from the MTI up
    /// to the MAC field, and the 8 bytes `mac` returns are appended (PROTOCOL.md 7).
    pub fn build_with_mac(&self, mac: impl FnOnce(&[u8]) -> [u8; 8]) -> Result<Bytes, BuildError> {
        let others = self.present & !(Field::Mac.bit() | Field::Mac2.bit());
        let mac_field = if others & SECONDARY_FIELDS != 0 {
            Field::Mac2
        } else {
            Field::Mac
        };
        let mut out = self.assemble(Some(mac_field))?;
        let code = mac(&out);
        out.extend_from_slice(&code);
        Ok(Bytes::from(out))
    }

    /// Writes everything but the MAC field's data (when `mac_field` is given, its bit is
    /// set and 8 bytes are reserved for it).
    fn assemble(&self, mac_field: Option<Field>) -> Result<Vec<u8>, BuildError> {
        let mut data_fields = self.present;
        let mut announced = self.present;
        let mut len = 4 + 8 + self.fields_len;
        if let Some(mac_field) = mac_field {
            let macs = Field::Mac.bit() | Field::Mac2.bit();
            for mac in [Field::Mac, Field::Mac2] {
                if self.has(mac) {
                    len -= encoded_len(mac, self.slots[mac as usize].len());
                }
            }
            data_fields &= !macs;
            announced = data_fields | mac_field.bit();
            len += 8;
        }
        if announced & SECONDARY_FIELDS != 0 {
            announced |= Field::SecondaryBitmap.bit();
            len += 8;
        }
        if len > MAX_MESSAGE_LEN {
            return Err(BuildError::MessageTooLarge { len });
        }

        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(self.mti.as_bytes());
        out.extend_from_slice(&((announced >> 64) as u64).to_be_bytes());
        if announced & Field::SecondaryBitmap.bit() != 0 {
            out.extend_from_slice(&(announced as u64).to_be_bytes());
        }
        let mut remaining = data_fields;
        while let Some((field, bit)) = first_field(remaining) {
            remaining &= !bit;
            let value = self
                .arena
                .get(self.slots[field as usize].range())
                .unwrap_or_default();
            put_prefix(&mut out, SPECS[field as usize].length, value.len());
            out.extend_from_slice(value);
        }
        Ok(out)
    }

    /// Stores an already validated value, space-filled to `stored_len`. Overwrites in place
    /// when the field is set again with the same length, so re-setting F39 in a loop does not
    /// grow the arena.
    fn store(&mut self, field: Field, value: &[u8], stored_len: usize) {
        let index = field as usize;
        let value = value.get(..stored_len).unwrap_or(value);
        if self.has(field) {
            let slot = self.slots[index];
            if slot.len() == stored_len {
                if let Some(target) = self.arena.get_mut(slot.range()) {
                    let (data, pad) = target.split_at_mut(value.len());
                    data.copy_from_slice(value);
                    pad.fill(b' ');
                    return;
                }
            }
            self.unset(field);
        }
        if self.arena.len() + stored_len > ARENA_LIMIT {
            self.compact();
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(value);
        self.arena.resize(start + stored_len, b' ');
        self.slots[index] = Slot::new(start, stored_len);
        self.present |= field.bit();
        self.fields_len += encoded_len(field, stored_len);
    }

    /// Drops the arena bytes of overwritten and unset fields.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(ARENA_CAPACITY.max(self.fields_len));
        let mut remaining = self.present;
        while let Some((field, bit)) = first_field(remaining) {
            remaining &= !bit;
            let slot = self.slots[field as usize];
            let start = arena.len();
            arena.extend_from_slice(self.arena.get(slot.range()).unwrap_or_default());
            self.slots[field as usize] = Slot::new(start, slot.len());
        }
        self.arena = arena;
    }
}

/// Number of decimal digits of `value` (1 for 0).
fn decimal_digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Writes a variable field's ASCII length prefix (nothing for a fixed field).
#[inline]
fn put_prefix(out: &mut Vec<u8>, length: Length, len: usize) {
    let digit = |d: usize| b'0' + (d % 10) as u8;
    match length {
        Length::Fixed(_) => {}
        Length::Ll(_) => out.extend_from_slice(&[digit(len / 10), digit(len)]),
        Length::Lll(_) => out.extend_from_slice(&[digit(len / 100), digit(len / 10), digit(len)]),
    }
}

impl fmt::Debug for MessageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        mask::fmt_debug(f, "MessageBuilder", self.mti, self.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BuildError;

    #[test]
    fn builds_sign_on() {
        let mut builder = MessageBuilder::new(Mti::NETWORK_REQUEST);
        builder
            .set(Field::TransmissionDateTime, b"1122083000")
            .unwrap()
            .set_numeric(Field::Stan, 1)
            .unwrap()
            .set_text(Field::TerminalId, "T0000001")
            .unwrap()
            .set_numeric(Field::NetworkCode, 1)
            .unwrap();
        let bytes = builder.build().unwrap();
        assert_eq!(
            hex::encode_upper(&bytes),
            "3038303082200000008000000400000000000000313132323038333030303030303030315430303030303031303031"
        );
    }

    #[test]
    fn validates() {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        assert_eq!(
            b.set(Field::Stan, b"12345").unwrap_err(),
            BuildError::WrongLength {
                field: Field::Stan,
                expected: 6,
                got: 5
            }
        );
        assert_eq!(
            b.set(Field::Stan, b"12345x").unwrap_err(),
            BuildError::NonDigit(Field::Stan)
        );
        assert_eq!(
            b.set(Field::Pan, &[b'1'; 20]).unwrap_err(),
            BuildError::TooLong {
                field: Field::Pan,
                len: 20,
                max: 19
            }
        );
        assert_eq!(
            b.set(Field::TerminalId, b"T\x01").unwrap_err(),
            BuildError::NotText(Field::TerminalId)
        );
        assert_eq!(
            b.set(Field::SecondaryBitmap, &[0; 8]).unwrap_err(),
            BuildError::NotSettable(Field::SecondaryBitmap)
        );
        assert_eq!(
            b.set(Field::ExtendedBitmap, &[0; 8]).unwrap_err(),
            BuildError::NotSettable(Field::ExtendedBitmap)
        );
        assert_eq!(
            b.set_numeric(Field::Stan, 1_000_000).unwrap_err(),
            BuildError::DoesNotFit {
                field: Field::Stan,
                max: 6
            }
        );
        assert_eq!(
            b.set_numeric(Field::TerminalId, 1).unwrap_err(),
            BuildError::NotNumeric(Field::TerminalId)
        );
        assert!(b.set(Field::PinBlock, &[0xFF; 8]).is_ok());
        assert!(b.set(Field::PinBlock, &[0xFF; 7]).is_err());
    }

    #[test]
    fn pads_and_overwrites() {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_RESPONSE);
        b.set_text(Field::ApprovalCode, "A1").unwrap();
        assert_eq!(b.get(Field::ApprovalCode), Some(&b"A1    "[..]));
        b.set_text(Field::ApprovalCode, "B22222").unwrap();
        assert_eq!(b.get(Field::ApprovalCode), Some(&b"B22222"[..]));
        b.set_digits(Field::Batch, 1, 6).unwrap();
        assert_eq!(b.get(Field::Batch), Some(&b"000001"[..]));
        b.set_numeric(Field::Pan, 0).unwrap();
        assert_eq!(b.get(Field::Pan), Some(&b"0"[..]));
        b.unset(Field::Pan);
        assert!(!b.has(Field::Pan));
        let arena_len = b.arena.len();
        b.set_numeric(Field::Stan, 5).unwrap();
        b.set_numeric(Field::Stan, 6).unwrap();
        assert_eq!(b.arena.len(), arena_len + 6);
    }

    #[test]
    fn arena_is_compacted() {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        b.set_numeric(Field::Stan, 7).unwrap();
        for i in 0..6000usize {
            let len = 998 + i % 2;
            b.set(Field::PrivateData, &vec![b'a' + (i % 26) as u8; len])
                .unwrap();
        }
        assert!(b.arena.len() <= ARENA_LIMIT);
        let message = Message::parse(b.build().unwrap()).unwrap();
        assert_eq!(message.stan(), Some(7));
        // The last value set: i = 5999, 't' x 999.
        assert_eq!(message.private_data(), Some("t".repeat(999).as_str()));
    }

    #[test]
    fn secondary_bitmap_follows_fields() {
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.set_numeric(Field::NetworkCode, 301).unwrap();
        let with = b.build().unwrap();
        assert_eq!(with[4] & 0x80, 0x80);
        b.unset(Field::NetworkCode);
        let without = b.build().unwrap();
        assert_eq!(without.len(), 12);
        assert_eq!(&without[4..], &[0; 8]);
    }

    #[test]
    fn mac_field_choice() {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        b.set_numeric(Field::Stan, 7).unwrap();
        let bytes = b.build_with_mac(|data| {
            assert_eq!(data.len(), 4 + 8 + 6);
            [0xAB; 8]
        });
        let message = Message::parse(bytes.unwrap()).unwrap();
        assert_eq!(message.mac(), Some([0xAB; 8]));
        assert_eq!(message.mac_field(), Field::Mac);
        assert_eq!(message.mac_input().map(<[u8]>::len), Some(18));

        b.set_numeric(Field::NetworkCode, 1).unwrap();
        let message = Message::parse(b.build_with_mac(|_| [1; 8]).unwrap()).unwrap();
        assert_eq!(message.mac_field(), Field::Mac2);
        assert!(!message.has(Field::Mac));
        assert_eq!(message.mac(), Some([1; 8]));
    }
}
