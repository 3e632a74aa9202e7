//! Building outgoing messages: each field is validated once, when it is set, and written
//! straight into its place in wire order, so `build` only adds the MTI and the bitmaps.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::body::Body;
use crate::error::BuildError;
use crate::field::{first_field, Field, Format, Length, SECONDARY_FIELDS, SPECS};
use crate::mask;
use crate::message::{Ends, Message, MAX_MESSAGE_LEN};
use crate::mti::Mti;

/// An outgoing message under construction.
///
/// Fields may be set in any order and set again; every value is checked against the
/// dictionary when set, so `build` only fails when the whole message is too large. The
/// fields live in one buffer exactly as they will go on the wire (length prefixes
/// included, in field order), with a table of where each ends like [`Message`]'s: setting
/// fields in ascending order appends, setting one out of order moves the fields after it.
/// The buffer is inside the builder up to 256 bytes (the profile's card messages), so
/// `build`'s output, allocated once, is the only allocation; it copies the buffer behind
/// the MTI and bitmaps.
///
/// `Debug` masks sensitive fields like [`Message`]'s.
#[derive(Clone)]
pub struct MessageBuilder {
    mti: Mti,
    /// Bit `128 - n` set when field `n` is set (never F1: `build` derives it).
    present: u128,
    /// The fields set, in wire order, each with its length prefix: what follows the
    /// bitmaps. Never longer than [`MAX_MESSAGE_LEN`], so offsets in it fit a `u16`.
    body: Body,
    /// Where each field's wire form ends in `body`, in wire order: as many entries as
    /// fields set.
    ends: Ends,
    /// Number of fields set.
    count: usize,
}

impl MessageBuilder {
    /// An empty message of type `mti`.
    #[inline]
    pub fn new(mti: Mti) -> MessageBuilder {
        MessageBuilder {
            mti,
            present: 0,
            body: Body::new(),
            ends: [0; 128],
            count: 0,
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
        let echoed = builder.echo(request, echo);
        // The request's fields fit in a message, so they fit in an empty builder.
        debug_assert!(echoed.is_ok());
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
        builder.echo(request, echo)?;
        Ok(builder)
    }

    /// A builder holding every data element of `message` (to amend and re-send it).
    pub fn from_message(message: &Message) -> MessageBuilder {
        let mut builder = MessageBuilder::new(message.mti());
        let copied = builder.copy_fields(message, u128::MAX);
        // The message's fields fit in a message, so they fit in an empty builder.
        debug_assert!(copied.is_ok());
        builder
    }

    /// Copies the fields of `echo` that `request` carries. Parsed values already passed
    /// the dictionary's checks, so their wire form (prefix and data) is copied as it is.
    /// An error only if the message would grow larger than a frame can carry.
    pub fn echo(&mut self, request: &Message, echo: &[Field]) -> Result<&mut Self, BuildError> {
        let wanted = echo.iter().fold(0, |mask, field| mask | field.bit());
        self.copy_fields(request, wanted)?;
        Ok(self)
    }

    /// Copies the wire form of the data elements of `wanted` that `message` carries.
    fn copy_fields(&mut self, message: &Message, wanted: u128) -> Result<(), BuildError> {
        let data_elements = !(Field::SecondaryBitmap.bit() | Field::ExtendedBitmap.bit());
        let entries = message.entries(wanted & data_elements);
        let bytes = message.as_bytes();
        if self.count > 0 {
            for (field, entry) in entries {
                let encoded = bytes.get(entry).unwrap_or_default();
                self.place(field, encoded.len())?.copy_from_slice(encoded);
            }
            return Ok(());
        }
        // Into an empty builder (a response, a copy) the fields go in the message's order:
        // each run of adjacent fields is copied at once, and their ends follow from the
        // message's. They fit: they fitted in the message.
        for (run, ends) in message.runs(wanted & data_elements) {
            let shift = self.body.len().wrapping_sub(run.start);
            let slots = self.ends.get_mut(self.count..).unwrap_or_default();
            for (slot, &end) in slots.iter_mut().zip(ends) {
                *slot = usize::from(end).wrapping_add(shift) as u16;
            }
            self.count += ends.len();
            self.body
                .extend_from_slice(bytes.get(run).unwrap_or_default());
        }
        self.present |= message.data_elements() & wanted & data_elements;
        Ok(())
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
        if !spec.format.accepts_all(value) {
            return Err(match spec.format {
                Format::N => BuildError::NonDigit(field),
                _ => BuildError::NotText(field),
            });
        }
        let digits = spec.length.prefix_digits();
        let slot = self.place(field, digits + stored_len)?;
        let (prefix, data) = slot.split_at_mut(digits);
        write_prefix(prefix, stored_len);
        let (value_part, padding) = data.split_at_mut(value.len());
        copy_short(value_part, value);
        if !padding.is_empty() {
            padding.fill(b' ');
        }
        Ok(self)
    }

    /// Sets a text field; fixed `an`/`ans` fields are space-filled (see [`Self::set`]).
    #[inline]
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
        let Some(entry) = self.entry(field) else {
            return self;
        };
        let rank = field.rank_in(self.present);
        self.body.remove(entry.clone());
        self.ends.copy_within(rank + 1..self.count, rank);
        self.count -= 1;
        for end in &mut self.ends[rank..self.count] {
            *end -= entry.len() as u16;
        }
        self.present &= !field.bit();
        self
    }

    /// Whether a field is set.
    pub fn has(&self, field: Field) -> bool {
        self.present & field.bit() != 0
    }

    /// A field's value as it will be sent (after padding).
    pub fn get(&self, field: Field) -> Option<&[u8]> {
        let entry = self.entry(field)?;
        let data = entry.start + SPECS[field as usize].length.prefix_digits()..entry.end;
        self.body.as_slice().get(data)
    }

    /// The fields set, in wire order.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &[u8])> + Clone + '_ {
        let mut remaining = self.present;
        let mut ends = self.ends.iter();
        let mut start = 0;
        std::iter::from_fn(move || {
            let (field, bit) = first_field(remaining)?;
            remaining &= !bit;
            let end = usize::from(*ends.next()?);
            let data = start + SPECS[field as usize].length.prefix_digits()..end;
            start = end;
            Some((field, self.body.get(data)))
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
        let mut out = self.build_up_to_mac()?;
        let code = mac(&out);
        out.extend_from_slice(&code);
        Ok(Bytes::from(out))
    }

    /// What [`MessageBuilder::build_with_mac`] MACs: the message up to its MAC field, whose
    /// 8 bytes the caller appends (so that it can compute several MACs together).
    pub fn build_up_to_mac(&self) -> Result<Vec<u8>, BuildError> {
        let others = self.present & !(Field::Mac.bit() | Field::Mac2.bit());
        let mac_field = if others & SECONDARY_FIELDS != 0 {
            Field::Mac2
        } else {
            Field::Mac
        };
        self.assemble(Some(mac_field))
    }

    /// Writes everything but the MAC field's data (when `mac_field` is given, its bit is
    /// set, any MAC already set is left out and 8 bytes are reserved for the new one).
    fn assemble(&self, mac_field: Option<Field>) -> Result<Vec<u8>, BuildError> {
        let mut announced = self.present;
        // Parts of the body to leave out: the MAC fields when a new MAC is appended. F64
        // ends the primary fields and F128 ends the body, so at most two cuts, in order.
        let mut cuts = [None, None];
        let mut len = 4 + 8 + self.body.len();
        if let Some(mac_field) = mac_field {
            for (cut, old_mac) in cuts.iter_mut().zip([Field::Mac, Field::Mac2]) {
                *cut = self.entry(old_mac);
                len -= cut.as_ref().map_or(0, Range::len);
            }
            announced &= !(Field::Mac.bit() | Field::Mac2.bit());
            announced |= mac_field.bit();
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
        let mut from = 0;
        let body = self.body.as_slice();
        for cut in cuts.into_iter().flatten() {
            out.extend_from_slice(body.get(from..cut.start).unwrap_or_default());
            from = cut.end;
        }
        out.extend_from_slice(body.get(from..).unwrap_or_default());
        Ok(out)
    }

    /// Makes room for `field`'s wire form of `encoded_len` bytes in its place in the body,
    /// replacing its previous value if any, marks it present and returns the room to fill.
    #[inline]
    fn place(&mut self, field: Field, encoded_len: usize) -> Result<&mut [u8], BuildError> {
        let end = self.body.len();
        if self.present & (field.bit() | field.fields_after()) == 0 {
            // The common case, fields set in wire order: append, move nothing.
            if end + encoded_len > MAX_MESSAGE_LEN {
                return Err(BuildError::MessageTooLarge {
                    len: end + encoded_len,
                });
            }
            // At most 127 data elements, so the table has room.
            if let Some(slot) = self.ends.get_mut(self.count) {
                *slot = (end + encoded_len) as u16;
            }
            self.count += 1;
            self.present |= field.bit();
            return Ok(self.body.grow(encoded_len));
        }
        self.place_among(field, encoded_len)
    }

    /// [`Self::place`] for a field set again or before fields already set: the fields after
    /// it move. Kept out of line so that appending stays small enough to inline.
    #[inline(never)]
    fn place_among(&mut self, field: Field, encoded_len: usize) -> Result<&mut [u8], BuildError> {
        let end = self.body.len();
        let was_set = self.has(field);
        let rank = field.rank_in(self.present);
        let start = self.start(rank);
        let old = match was_set {
            true => start..usize::from(self.ends[rank]),
            false => start..start,
        };
        let body_len = end - old.len() + encoded_len;
        if body_len > MAX_MESSAGE_LEN {
            return Err(BuildError::MessageTooLarge { len: body_len });
        }
        let new = start..start + encoded_len;
        if new.end > old.end {
            self.body.resize(body_len);
        }
        self.body.as_mut_slice().copy_within(old.end..end, new.end);
        self.body.resize(body_len);

        // Every entry after `rank` ends `encoded_len - old.len()` bytes further. Wrapping
        // arithmetic adds a negative difference too; the results fit (checked above).
        let shift = (encoded_len as u16).wrapping_sub(old.len() as u16);
        if was_set {
            for end in &mut self.ends[rank + 1..self.count] {
                *end = end.wrapping_add(shift);
            }
        } else {
            // A new entry at `rank`: the ones after it move up one place as they shift.
            for i in (rank + 1..=self.count).rev() {
                self.ends[i] = self.ends[i - 1].wrapping_add(shift);
            }
            self.count += 1;
            self.present |= field.bit();
        }
        self.ends[rank] = new.end as u16;
        Ok(self.body.as_mut_slice().get_mut(new).unwrap_or_default())
    }

    /// Where the field of rank `rank` in wire order starts: where the one before it ends.
    fn start(&self, rank: usize) -> usize {
        match rank.checked_sub(1) {
            Some(previous) => usize::from(self.ends[previous]),
            None => 0,
        }
    }

    /// Where `field`'s wire form (prefix and data) lies in the body, if set.
    fn entry(&self, field: Field) -> Option<Range<usize>> {
        if !self.has(field) {
            return None;
        }
        let rank = field.rank_in(self.present);
        Some(self.start(rank)..usize::from(self.ends[rank]))
    }
}

/// Number of decimal digits of `value` (1 for 0).
fn decimal_digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Copies `src` into `dst`, of the same length, in at most two overlapping moves when it is
/// at most 16 bytes long, as most field values are: a call to `memcpy` costs more than
/// such a copy.
#[inline]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    macro_rules! two_moves {
        ($n:literal) => {{
            if let (Some(d), Some(s)) = (dst.first_chunk_mut::<$n>(), src.first_chunk::<$n>()) {
                *d = *s;
            }
            if let (Some(d), Some(s)) = (dst.last_chunk_mut::<$n>(), src.last_chunk::<$n>()) {
                *d = *s;
            }
        }};
    }
    match src.len() {
        8..=16 => two_moves!(8),
        4..=7 => two_moves!(4),
        2..=3 => two_moves!(2),
        _ => dst.copy_from_slice(src),
    }
}

/// Writes `len` in ASCII digits filling `prefix` (nothing for a fixed field's empty prefix).
#[inline]
fn write_prefix(prefix: &mut [u8], len: usize) {
    let mut rest = len;
    for digit in prefix.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
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
        let body_len = b.body.len();
        b.set_numeric(Field::Stan, 5).unwrap();
        b.set_numeric(Field::Stan, 6).unwrap();
        assert_eq!(b.body.len(), body_len + 6);
        assert_eq!(b.get(Field::Stan), Some(&b"000006"[..]));
    }

    #[test]
    fn resetting_keeps_the_body_exact() {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        b.set_numeric(Field::Stan, 7).unwrap();
        b.set_numeric(Field::NetworkCode, 1).unwrap();
        for i in 0..6000usize {
            let len = 998 + i % 2;
            b.set(Field::PrivateData, &vec![b'a' + (i % 26) as u8; len])
                .unwrap();
        }
        // F11, then F48 (3-digit prefix, 999 bytes), then F70.
        assert_eq!(b.body.len(), 6 + 3 + 999 + 3);
        let message = Message::parse(b.build().unwrap()).unwrap();
        assert_eq!(message.stan(), Some(7));
        assert_eq!(message.network_code(), Some(1));
        // The last value set: i = 5999, 't' x 999.
        assert_eq!(message.private_data(), Some("t".repeat(999).as_str()));
    }

    /// Fields set out of order, re-set with other lengths and unset in the middle end up in
    /// wire order, exactly as if set in order.
    #[test]
    fn inserts_in_place() {
        let mut shuffled = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        shuffled.set_text(Field::TerminalId, "T1").unwrap();
        shuffled.set_text(Field::PrivateData, "long value").unwrap();
        shuffled.set_numeric(Field::Pan, 123).unwrap();
        shuffled.set_numeric(Field::NetworkCode, 1).unwrap();
        shuffled.set_numeric(Field::Stan, 9).unwrap();
        shuffled.set_text(Field::PrivateData, "x").unwrap();
        shuffled
            .set_numeric(Field::Pan, 6_290_001_234_567_893)
            .unwrap();
        shuffled.set_text(Field::Rrn, "R").unwrap();
        shuffled.unset(Field::Rrn);
        shuffled.unset(Field::Amount);

        let mut ordered = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        ordered.set_text(Field::Pan, "6290001234567893").unwrap();
        ordered.set_numeric(Field::Stan, 9).unwrap();
        ordered.set_text(Field::TerminalId, "T1").unwrap();
        ordered.set_text(Field::PrivateData, "x").unwrap();
        ordered.set_numeric(Field::NetworkCode, 1).unwrap();

        assert_eq!(shuffled.build().unwrap(), ordered.build().unwrap());
        let fields: Vec<(Field, &[u8])> = shuffled.fields().collect();
        assert_eq!(
            fields,
            [
                (Field::Pan, &b"6290001234567893"[..]),
                (Field::Stan, b"000009"),
                (Field::TerminalId, b"T1      "),
                (Field::PrivateData, b"x"),
                (Field::NetworkCode, b"001"),
            ]
        );
        assert_eq!(shuffled.get(Field::PrivateData), Some(&b"x"[..]));
        assert_eq!(shuffled.get(Field::Rrn), None);
    }

    /// A MAC already set (F64 in the middle of a message with a secondary bitmap, F128 at
    /// its end) is left out when a new one is appended.
    #[test]
    fn old_macs_are_dropped() {
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.set_numeric(Field::Stan, 1).unwrap();
        b.set(Field::Mac, &[1; 8]).unwrap();
        b.set_numeric(Field::NetworkCode, 1).unwrap();
        b.set(Field::Mac2, &[2; 8]).unwrap();
        let bytes = b.build_with_mac(|_| [3; 8]).unwrap();
        let message = Message::parse(bytes).unwrap();
        assert!(!message.has(Field::Mac));
        assert_eq!(message.mac(), Some([3; 8]));
        assert_eq!(message.network_code(), Some(1));
        assert_eq!(message.as_bytes().len(), 4 + 16 + 6 + 3 + 8);
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
