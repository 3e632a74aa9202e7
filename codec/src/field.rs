//! The data-element dictionary of PROTOCOL.md section 2: every field of ISO 8583:1987, its
//! name, character class and length rule.
//!
//! The dictionary is data, not code: the parser and the builder both read [`Field::spec`],
//! so a field's rule is written down exactly once.

use std::fmt;

/// Character class of a field's data, checked when parsing and when building.
///
/// PROTOCOL.md tells `n` from `an`/`ans` from `b` and nothing finer, so `an` and `ans`
/// both accept printable ASCII (0x20..=0x7E): rejecting a lower-case letter in an `an`
/// field would turn a harmless peer quirk into a `30`. ISO's `z` (track data) and `ns`
/// classes are filed under `ans` for the same reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ASCII digits only.
    N,
    /// Printable ASCII (see above).
    An,
    /// Printable ASCII.
    Ans,
    /// Raw bytes, no check.
    B,
}

impl Format {
    /// Whether `byte` may appear in a field of this class.
    #[inline]
    pub const fn accepts(self, byte: u8) -> bool {
        match self {
            Format::N => byte.is_ascii_digit(),
            Format::An | Format::Ans => matches!(byte, 0x20..=0x7E),
            Format::B => true,
        }
    }

    /// Whether every byte of `value` may appear in a field of this class: the check every
    /// field goes through when parsed or set, so it takes eight bytes at a time (see
    /// [`all_words`], [`eight_digits`], [`eight_printable`]).
    #[inline]
    pub fn accepts_all(self, value: &[u8]) -> bool {
        match self {
            Format::N => all_words(value, eight_digits),
            Format::An | Format::Ans => all_words(value, eight_printable),
            Format::B => true,
        }
    }

    /// The class as the dictionary spells it (`n`, `an`, `ans`, `b`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::N => "n",
            Format::An => "an",
            Format::Ans => "ans",
            Format::B => "b",
        }
    }
}

/// `0x0101..01`: a byte pattern repeated over the eight bytes of a `u64`.
const fn repeat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// Whether `eight` accepts every byte of `value`, taken eight bytes at a time as
/// little-endian `u64`s, with no byte-by-byte tail: after the whole words, the last eight
/// bytes (overlapping bytes already checked, which is harmless); below eight bytes, two
/// overlapping halves; below four, the first, middle and last bytes (all of them) with
/// `'0'`, which every class accepts, in the other five. Most fields are 2 to 16 bytes long,
/// so this is one or two checks instead of a loop over the tail.
#[inline(always)]
fn all_words(value: &[u8], eight: impl Fn(u64) -> bool) -> bool {
    let len = value.len();
    if let Some(last) = value.last_chunk::<8>() {
        let mut words = value.chunks_exact(8);
        let whole = words.by_ref().all(|word| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(word);
            eight(u64::from_le_bytes(bytes))
        });
        whole && (words.remainder().is_empty() || eight(u64::from_le_bytes(*last)))
    } else if let (Some(first), Some(last)) = (value.first_chunk::<4>(), value.last_chunk::<4>()) {
        let low = u64::from(u32::from_le_bytes(*first));
        let high = u64::from(u32::from_le_bytes(*last));
        eight(low | high << 32)
    } else if let (Some(&first), Some(&last)) = (value.first(), value.last()) {
        let middle = value.get(len / 2).copied().unwrap_or(first);
        let bytes = u64::from(first) | u64::from(middle) << 8 | u64::from(last) << 16;
        eight(repeat(b'0') << 24 | bytes)
    } else {
        true
    }
}

/// Whether the eight bytes of `x` are all ASCII digits: high nibble 3, and low nibble at
/// most 9 (adding 6 to it does not carry into the high nibble).
#[inline]
fn eight_digits(x: u64) -> bool {
    let high = x & repeat(0xF0);
    let low = x & repeat(0x0F);
    high == repeat(0x30) && (low + repeat(0x06)) & repeat(0xF0) == 0
}

/// Whether the eight bytes of `x` are all printable ASCII (0x20..=0x7E), with the
/// "has a byte less than / more than" tricks of Bit Twiddling Hacks: a byte below 0x20
/// borrows into its top bit when 0x20 is taken from it, a byte above 0x7E carries into
/// its top bit when 1 is added, and a byte with its top bit set is outside anyway. A
/// borrow or carry only leaves a byte that is itself flagged, so no byte is misjudged.
#[inline]
fn eight_printable(x: u64) -> bool {
    let below = x.wrapping_sub(repeat(0x20)) & !x;
    let above = x.wrapping_add(repeat(0x01)) | x;
    (below | above) & repeat(0x80) == 0
}

/// How a field's length is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Length {
    /// Exactly this many bytes, no prefix.
    Fixed(u16),
    /// A 2-digit ASCII length prefix, then at most this many bytes.
    Ll(u16),
    /// A 3-digit ASCII length prefix, then at most this many bytes.
    Lll(u16),
}

impl Length {
    /// Number of ASCII digits in the length prefix (0 for fixed fields).
    #[inline]
    pub const fn prefix_digits(self) -> usize {
        match self {
            Length::Fixed(_) => 0,
            Length::Ll(_) => 2,
            Length::Lll(_) => 3,
        }
    }

    /// The fixed length, or the maximum of a variable field.
    #[inline]
    pub const fn max(self) -> usize {
        match self {
            Length::Fixed(n) | Length::Ll(n) | Length::Lll(n) => n as usize,
        }
    }
}

/// A field's rule in the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Character class of the data.
    pub format: Format,
    /// Fixed length or variable with a maximum.
    pub length: Length,
}

impl FieldSpec {
    /// Whether the field has a fixed length (no prefix).
    #[inline]
    pub const fn is_fixed(self) -> bool {
        matches!(self.length, Length::Fixed(_))
    }

    /// The fixed length, or the maximum of a variable field.
    #[inline]
    pub const fn max_len(self) -> usize {
        self.length.max()
    }
}

impl fmt::Display for FieldSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.length {
            Length::Fixed(n) => write!(f, "{} {}", self.format.as_str(), n),
            Length::Ll(n) => write!(f, "LL {} {}", self.format.as_str(), n),
            Length::Lll(n) => write!(f, "LLL {} {}", self.format.as_str(), n),
        }
    }
}

/// Declares the `Field` enum and its dictionary from one table, so names, numbers and rules
/// cannot drift apart.
macro_rules! dictionary {
    ($( $num:literal $name:ident $fmt:ident $len:ident($max:literal) $desc:literal; )*) => {
        /// A data element of ISO 8583:1987, numbered as on the wire (`Field::Stan as u8 == 11`).
        ///
        /// Field 1 is the secondary bitmap and field 65 the (tertiary) extended bitmap: they
        /// are part of the layout, not data you set, and the CampusNet profile forbids 65.
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $(
                #[doc = $desc]
                $name = $num,
            )*
        }

        impl Field {
            /// Every field, in wire order: `ALL[n - 1].number() == n`.
            pub const ALL: [Field; 128] = [$(Field::$name,)*];

            /// The field's rule in the dictionary of PROTOCOL.md section 2.
            #[inline]
            pub const fn spec(self) -> FieldSpec {
                match self {
                    $(Field::$name => FieldSpec { format: Format::$fmt, length: Length::$len($max) },)*
                }
            }

            /// The field's ISO 8583:1987 name (or its meaning in this profile).
            pub const fn description(self) -> &'static str {
                match self {
                    $(Field::$name => $desc,)*
                }
            }
        }
    };
}

dictionary! {
    1 SecondaryBitmap B Fixed(8) "F1: bitmap, secondary (set by the builder when any field 65-128 is present).";
    2 Pan N Ll(19) "F2: primary account number (PAN). Profile: the card number, 16-19 digits, Luhn-valid.";
    3 ProcessingCode N Fixed(6) "F3: processing code.";
    4 Amount N Fixed(12) "F4: amount, transaction, in minor units.";
    5 SettlementAmount N Fixed(12) "F5: amount, settlement.";
    6 BillingAmount N Fixed(12) "F6: amount, cardholder billing.";
    7 TransmissionDateTime N Fixed(10) "F7: transmission date and time, UTC, MMDDhhmmss.";
    8 BillingFeeAmount N Fixed(8) "F8: amount, cardholder billing fee.";
    9 SettlementConversionRate N Fixed(8) "F9: conversion rate, settlement.";
    10 BillingConversionRate N Fixed(8) "F10: conversion rate, cardholder billing.";
    11 Stan N Fixed(6) "F11: system trace audit number (STAN).";
    12 LocalTime N Fixed(6) "F12: time, local transaction, hhmmss.";
    13 LocalDate N Fixed(4) "F13: date, local transaction, MMDD.";
    14 ExpirationDate N Fixed(4) "F14: date, expiration, YYMM.";
    15 SettlementDate N Fixed(4) "F15: date, settlement (business date), MMDD.";
    16 ConversionDate N Fixed(4) "F16: date, conversion.";
    17 CaptureDate N Fixed(4) "F17: date, capture.";
    18 MerchantType N Fixed(4) "F18: merchant type.";
    19 AcquiringCountry N Fixed(3) "F19: acquiring institution country code.";
    20 PanCountry N Fixed(3) "F20: PAN extended, country code.";
    21 ForwardingCountry N Fixed(3) "F21: forwarding institution country code.";
    22 PosEntryMode N Fixed(3) "F22: point of service entry mode.";
    23 CardSequenceNumber N Fixed(3) "F23: card sequence number.";
    24 NetworkInternationalId N Fixed(3) "F24: network international identifier.";
    25 PosConditionCode N Fixed(2) "F25: point of service condition code.";
    26 PosCaptureCode N Fixed(2) "F26: point of service PIN capture code.";
    27 AuthIdResponseLength N Fixed(1) "F27: authorization identification response length.";
    28 TransactionFee An Fixed(9) "F28: amount, transaction fee (x+n 8).";
    29 SettlementFee An Fixed(9) "F29: amount, settlement fee (x+n 8).";
    30 TransactionProcessingFee An Fixed(9) "F30: amount, transaction processing fee (x+n 8).";
    31 SettlementProcessingFee An Fixed(9) "F31: amount, settlement processing fee (x+n 8).";
    32 AcquiringInstitution N Ll(11) "F32: acquiring institution identification code.";
    33 ForwardingInstitution N Ll(11) "F33: forwarding institution identification code.";
    34 ExtendedPan Ans Ll(28) "F34: primary account number, extended.";
    35 Track2 Ans Ll(37) "F35: track 2 data (sensitive: never logged).";
    36 Track3 Ans Lll(104) "F36: track 3 data (sensitive: never logged).";
    37 Rrn An Fixed(12) "F37: retrieval reference number, assigned by the host.";
    38 ApprovalCode An Fixed(6) "F38: authorization identification response (approval code).";
    39 ResponseCode An Fixed(2) "F39: response code (see `ResponseCode`).";
    40 ServiceRestrictionCode An Fixed(3) "F40: service restriction code.";
    41 TerminalId Ans Fixed(8) "F41: card acceptor terminal identification.";
    42 MerchantId Ans Fixed(15) "F42: card acceptor identification code (merchant id).";
    43 CardAcceptorNameLocation Ans Fixed(40) "F43: card acceptor name/location.";
    44 AdditionalResponseData Ans Ll(25) "F44: additional response data.";
    45 Track1 Ans Ll(76) "F45: track 1 data (sensitive: never logged).";
    46 AdditionalDataIso Ans Lll(999) "F46: additional data, ISO.";
    47 AdditionalDataNational Ans Lll(999) "F47: additional data, national.";
    48 PrivateData Ans Lll(999) "F48: additional data, private. Profile: blacklist version and entries, clearing file name.";
    49 Currency N Fixed(3) "F49: currency code, transaction (ISO 4217 numeric).";
    50 SettlementCurrency N Fixed(3) "F50: currency code, settlement.";
    51 BillingCurrency N Fixed(3) "F51: currency code, cardholder billing.";
    52 PinBlock B Fixed(8) "F52: PIN data: ISO 9564 format 0 block under the TPK (sensitive: never logged).";
    53 SecurityControlInfo N Fixed(16) "F53: security related control information.";
    54 AdditionalAmounts Ans Lll(240) "F54: additional amounts. Profile: the balance in responses.";
    55 IccData B Lll(255) "F55: ICC system related data (sensitive: never logged).";
    56 ReservedIso56 Ans Lll(999) "F56: reserved ISO.";
    57 ReservedNational57 Ans Lll(999) "F57: reserved national.";
    58 ReservedNational58 Ans Lll(999) "F58: reserved national.";
    59 ReservedNational59 Ans Lll(999) "F59: reserved national.";
    60 Batch Ans Lll(999) "F60: reserved national. Profile: the terminal batch number, 6 digits.";
    61 ReservedPrivate61 Ans Lll(999) "F61: reserved private.";
    62 ReservedPrivate62 Ans Lll(999) "F62: reserved private.";
    63 ReservedPrivate63 Ans Lll(999) "F63: reserved private.";
    64 Mac B Fixed(8) "F64: message authentication code (MAC) when there is no secondary bitmap.";
    65 ExtendedBitmap B Fixed(8) "F65: bitmap, extended (tertiary). Forbidden by this profile.";
    66 SettlementCode N Fixed(1) "F66: settlement code.";
    67 ExtendedPaymentCode N Fixed(2) "F67: extended payment code.";
    68 ReceivingCountry N Fixed(3) "F68: receiving institution country code.";
    69 SettlementInstitutionCountry N Fixed(3) "F69: settlement institution country code.";
    70 NetworkCode N Fixed(3) "F70: network management information code.";
    71 MessageNumber N Fixed(4) "F71: message number.";
    72 LastMessageNumber N Fixed(4) "F72: message number, last.";
    73 ActionDate N Fixed(6) "F73: date, action.";
    74 CreditsCount N Fixed(10) "F74: credits, number (refunds).";
    75 CreditsReversalCount N Fixed(10) "F75: credits, reversal number.";
    76 DebitsCount N Fixed(10) "F76: debits, number (purchases).";
    77 DebitsReversalCount N Fixed(10) "F77: debits, reversal number.";
    78 TransfersCount N Fixed(10) "F78: transfer, number.";
    79 TransfersReversalCount N Fixed(10) "F79: transfer, reversal number.";
    80 InquiriesCount N Fixed(10) "F80: inquiries, number.";
    81 AuthorizationsCount N Fixed(10) "F81: authorizations, number.";
    82 CreditsProcessingFee N Fixed(12) "F82: credits, processing fee amount.";
    83 CreditsTransactionFee N Fixed(12) "F83: credits, transaction fee amount.";
    84 DebitsProcessingFee N Fixed(12) "F84: debits, processing fee amount.";
    85 DebitsTransactionFee N Fixed(12) "F85: debits, transaction fee amount.";
    86 CreditsAmount N Fixed(16) "F86: credits, amount (refunds).";
    87 CreditsReversalAmount N Fixed(16) "F87: credits, reversal amount.";
    88 DebitsAmount N Fixed(16) "F88: debits, amount (purchases).";
    89 DebitsReversalAmount N Fixed(16) "F89: debits, reversal amount.";
    90 OriginalData N Fixed(42) "F90: original data elements: MTI(4) + F11(6) + F7(10) + 22 zeros.";
    91 FileUpdateCode An Fixed(1) "F91: file update code.";
    92 FileSecurityCode N Fixed(2) "F92: file security code.";
    93 ResponseIndicator N Fixed(5) "F93: response indicator.";
    94 ServiceIndicator An Fixed(7) "F94: service indicator.";
    95 ReplacementAmounts An Fixed(42) "F95: replacement amounts.";
    96 MessageSecurityCode B Fixed(8) "F96: message security code (sensitive: never logged).";
    97 NetSettlement An Fixed(17) "F97: amount, net settlement: `C` or `D` then 16 digits.";
    98 Payee Ans Fixed(25) "F98: payee.";
    99 SettlementInstitution N Ll(11) "F99: settlement institution identification code.";
    100 ReceivingInstitution N Ll(11) "F100: receiving institution identification code.";
    101 FileName Ans Ll(17) "F101: file name.";
    102 AccountId1 Ans Ll(28) "F102: account identification 1. Profile: the campus card number in a bank top-up.";
    103 AccountId2 Ans Ll(28) "F103: account identification 2.";
    104 TransactionDescription Ans Lll(100) "F104: transaction description.";
    105 ReservedIso105 Ans Lll(999) "F105: reserved ISO.";
    106 ReservedIso106 Ans Lll(999) "F106: reserved ISO.";
    107 ReservedIso107 Ans Lll(999) "F107: reserved ISO.";
    108 ReservedIso108 Ans Lll(999) "F108: reserved ISO.";
    109 ReservedIso109 Ans Lll(999) "F109: reserved ISO.";
    110 ReservedIso110 Ans Lll(999) "F110: reserved ISO.";
    111 ReservedIso111 Ans Lll(999) "F111: reserved ISO.";
    112 ReservedNational112 Ans Lll(999) "F112: reserved national.";
    113 ReservedNational113 Ans Lll(999) "F113: reserved national.";
    114 ReservedNational114 Ans Lll(999) "F114: reserved national.";
    115 ReservedNational115 Ans Lll(999) "F115: reserved national.";
    116 ReservedNational116 Ans Lll(999) "F116: reserved national.";
    117 ReservedNational117 Ans Lll(999) "F117: reserved national.";
    118 ReservedNational118 Ans Lll(999) "F118: reserved national.";
    119 ReservedNational119 Ans Lll(999) "F119: reserved national.";
    120 ReservedPrivate120 Ans Lll(999) "F120: reserved private.";
    121 ReservedPrivate121 Ans Lll(999) "F121: reserved private.";
    122 ReservedPrivate122 Ans Lll(999) "F122: reserved private.";
    123 ReservedPrivate123 Ans Lll(999) "F123: reserved private.";
    124 ReservedPrivate124 Ans Lll(999) "F124: reserved private.";
    125 ReservedPrivate125 Ans Lll(999) "F125: reserved private.";
    126 ReservedPrivate126 Ans Lll(999) "F126: reserved private.";
    127 ReservedPrivate127 Ans Lll(999) "F127: reserved private.";
    128 Mac2 B Fixed(8) "F128: message authentication code (MAC) when the secondary bitmap is present.";
}

/// Rules indexed by field number (index 0 unused), so the parser's hot loop is a table read.
pub(crate) const SPECS: [FieldSpec; 129] = {
    let mut table = [FieldSpec {
        format: Format::B,
        length: Length::Fixed(0),
    }; 129];
    let mut i = 0;
    while i < 128 {
        table[i + 1] = Field::ALL[i].spec();
        i += 1;
    }
    table
};

impl Field {
    /// The field numbered `number` (1..=128), if any.
    #[inline]
    pub const fn from_number(number: u8) -> Option<Field> {
        if number >= 1 && number <= 128 {
            Some(Field::ALL[(number - 1) as usize])
        } else {
            None
        }
    }

    /// The field's number on the wire (1..=128).
    #[inline]
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// Whether this is a bitmap (F1, F65) rather than a data element.
    #[inline]
    pub const fn is_bitmap(self) -> bool {
        matches!(self, Field::SecondaryBitmap | Field::ExtendedBitmap)
    }

    /// The field's bit in a message's presence mask (bit 127 is field 1).
    #[inline]
    pub(crate) const fn bit(self) -> u128 {
        BITS[self as usize]
    }

    /// The bits of the fields numbered below this one in a presence mask: the fields that
    /// come before it on the wire.
    #[inline]
    pub(crate) const fn fields_before(self) -> u128 {
        !((self.bit() << 1).wrapping_sub(1))
    }

    /// How many data elements of `present` (F1, a bitmap, not counted) come before this
    /// field on the wire: its index in a table of the elements in wire order.
    #[inline]
    pub(crate) const fn rank_in(self, present: u128) -> usize {
        count_fields(present & self.fields_before() & !Field::SecondaryBitmap.bit())
    }

    /// The bits of the fields numbered above this one: the fields that come after it.
    #[inline]
    pub(crate) const fn fields_after(self) -> u128 {
        self.bit() - 1
    }
}

/// Presence bits indexed by field number (index 0 unused): a table read is cheaper than a
/// `u128` shift by a variable amount, several instructions on x86-64, and the parser and
/// the builder take a field's bit once or twice per field.
const BITS: [u128; 129] = {
    let mut table = [0; 129];
    let mut number = 1;
    while number <= 128 {
        table[number] = 1u128 << (128 - number);
        number += 1;
    }
    table
};

/// The lowest-numbered field in a presence mask (bit 127 is field 1), and its bit.
#[inline]
pub(crate) fn first_field(mask: u128) -> Option<(Field, u128)> {
    // 128 leading zeros, past the end of `ALL`, when the mask is empty.
    let index = mask.leading_zeros() as usize;
    let field = *Field::ALL.get(index)?;
    Some((field, BITS[field as usize]))
}

/// How many fields a presence mask holds. Without POPCNT (baseline x86-64) a population
/// count is a dozen instructions per `u64` half, and most masks counted (the fields before
/// one of F2-F64, a message without a secondary bitmap) have no secondary fields: their
/// half is not counted.
#[inline]
pub(crate) const fn count_fields(mask: u128) -> usize {
    let primary = ((mask >> 64) as u64).count_ones();
    match mask as u64 {
        0 => primary as usize,
        secondary => (primary + secondary.count_ones()) as usize,
    }
}

/// Presence bits of fields 65-128: any of them needs the secondary bitmap.
pub(crate) const SECONDARY_FIELDS: u128 = u64::MAX as u128;

/// Shown as `F11`, the way operators and PROTOCOL.md name fields.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_positions() {
        for (i, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.number() as usize, i + 1);
            assert_eq!(Field::from_number(field.number()), Some(*field));
            assert_eq!(SPECS[i + 1], field.spec());
            let prefix = format!("F{}:", i + 1);
            assert!(field.description().starts_with(&prefix), "{field:?}");
        }
        assert_eq!(Field::from_number(0), None);
        assert_eq!(Field::from_number(129), None);
        assert_eq!(Field::from_number(255), None);
    }

    #[test]
    fn profile_names() {
        let named = [
            (Field::Pan, 2),
            (Field::ProcessingCode, 3),
            (Field::Amount, 4),
            (Field::TransmissionDateTime, 7),
            (Field::Stan, 11),
            (Field::LocalTime, 12),
            (Field::LocalDate, 13),
            (Field::SettlementDate, 15),
            (Field::AcquiringInstitution, 32),
            (Field::Track2, 35),
            (Field::Rrn, 37),
            (Field::ApprovalCode, 38),
            (Field::ResponseCode, 39),
            (Field::TerminalId, 41),
            (Field::MerchantId, 42),
            (Field::PrivateData, 48),
            (Field::Currency, 49),
            (Field::PinBlock, 52),
            (Field::AdditionalAmounts, 54),
            (Field::Batch, 60),
            (Field::Mac, 64),
            (Field::NetworkCode, 70),
            (Field::CreditsCount, 74),
            (Field::DebitsCount, 76),
            (Field::CreditsAmount, 86),
            (Field::DebitsAmount, 88),
            (Field::OriginalData, 90),
            (Field::NetSettlement, 97),
            (Field::AccountId1, 102),
            (Field::Mac2, 128),
        ];
        for (field, number) in named {
            assert_eq!(field.number(), number);
        }
    }

    /// Spot checks against the table in PROTOCOL.md section 2.
    #[test]
    fn dictionary_matches_protocol() {
        let fixed = |n| Length::Fixed(n);
        assert_eq!(Field::Pan.spec().length, Length::Ll(19));
        assert_eq!(
            Field::Amount.spec(),
            FieldSpec {
                format: Format::N,
                length: fixed(12)
            }
        );
        assert_eq!(Field::TransmissionDateTime.spec().length, fixed(10));
        assert_eq!(Field::Track2.spec().length, Length::Ll(37));
        assert_eq!(Field::Track3.spec().length, Length::Lll(104));
        assert_eq!(
            Field::TerminalId.spec(),
            FieldSpec {
                format: Format::Ans,
                length: fixed(8)
            }
        );
        assert_eq!(Field::AdditionalAmounts.spec().length, Length::Lll(240));
        assert_eq!(
            Field::IccData.spec(),
            FieldSpec {
                format: Format::B,
                length: Length::Lll(255)
            }
        );
        assert_eq!(
            Field::OriginalData.spec(),
            FieldSpec {
                format: Format::N,
                length: fixed(42)
            }
        );
        assert_eq!(Field::NetSettlement.spec().length, fixed(17));
        assert_eq!(Field::AccountId1.spec().length, Length::Ll(28));
        assert_eq!(
            Field::TransactionDescription.spec().length,
            Length::Lll(100)
        );
        assert_eq!(Field::ReservedPrivate127.spec().length, Length::Lll(999));
        assert_eq!(
            Field::Mac2.spec(),
            FieldSpec {
                format: Format::B,
                length: fixed(8)
            }
        );
        assert_eq!(Field::Stan.to_string(), "F11");
        assert_eq!(Field::IccData.spec().to_string(), "LLL b 255");
    }

    /// The eight-at-a-time checks agree with the byte-by-byte ones, for every byte value in
    /// every position of every length from 0 to 11 (whole words, overlapping words and
    /// halves, the short values padded with `'0'`) and for mixes of neighbours that could
    /// carry or borrow.
    #[test]
    fn class_checks_agree_byte_by_byte() {
        let one_by_one = |format: Format, value: &[u8]| value.iter().all(|&b| format.accepts(b));
        for format in [Format::N, Format::An, Format::Ans, Format::B] {
            for byte in 0..=255u8 {
                for position in 0..11 {
                    for filler in [b'0', b'9', b' ', b'~', 0x1F, 0x7F, 0x80, 0xFF, 0x00] {
                        let mut value = [filler; 11];
                        value[position] = byte;
                        for len in 0..=11 {
                            let value = &value[..len];
                            assert_eq!(
                                format.accepts_all(value),
                                one_by_one(format, value),
                                "{format:?} {value:02X?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bits() {
        assert_eq!(Field::SecondaryBitmap.bit(), 1u128 << 127);
        assert_eq!(Field::Mac2.bit(), 1);
        assert_eq!(Field::ExtendedBitmap.bit(), 1u128 << 63);
        assert_eq!(Field::SecondaryBitmap.fields_before(), 0);
        assert_eq!(Field::Pan.fields_before(), Field::SecondaryBitmap.bit());
        assert_eq!(Field::Mac2.fields_after(), 0);
        assert_eq!(Field::Mac.fields_after(), u128::from(u64::MAX));
        for field in Field::ALL {
            assert_eq!(
                field.fields_before() | field.bit() | field.fields_after(),
                u128::MAX
            );
        }
    }
}
