//! Message type indicators of the CampusNet profile.

use std::fmt;

use crate::Field;

/// A message type indicator the profile knows (`0200`, `0810`, ...).
///
/// Only the MTIs of PROTOCOL.md (plus the authorization advices 0120/0121/0130, which an
/// ISO 8583:1987 acquirer host is expected to recognise) can be represented: anything else
/// is rejected by [`Mti::parse`], so the rest of the host never meets an MTI it has no
/// handler for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

/// Why four bytes are not an [`Mti`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtiError {
    /// Not four ASCII digits.
    BadMti,
    /// Four digits, but not a message type of this profile.
    UnknownMti,
}

impl Mti {
    /// 0100 authorization request (balance inquiry).
    pub const AUTHORIZATION_REQUEST: Mti = Mti(*b"0100");
    /// 0110 authorization response.
    pub const AUTHORIZATION_RESPONSE: Mti = Mti(*b"0110");
    /// 0120 authorization advice.
    pub const AUTHORIZATION_ADVICE: Mti = Mti(*b"0120");
    /// 0121 authorization advice, repeat.
    pub const AUTHORIZATION_ADVICE_REPEAT: Mti = Mti(*b"0121");
    /// 0130 authorization advice response.
    pub const AUTHORIZATION_ADVICE_RESPONSE: Mti = Mti(*b"0130");
    /// 0200 financial request (purchase, refund, top-up).
    pub const FINANCIAL_REQUEST: Mti = Mti(*b"0200");
    /// 0210 financial response.
    pub const FINANCIAL_RESPONSE: Mti = Mti(*b"0210");
    /// 0220 financial advice (offline purchase).
    pub const FINANCIAL_ADVICE: Mti = Mti(*b"0220");
    /// 0221 financial advice, repeat.
    pub const FINANCIAL_ADVICE_REPEAT: Mti = Mti(*b"0221");
    /// 0230 financial advice response.
    pub const FINANCIAL_ADVICE_RESPONSE: Mti = Mti(*b"0230");
    /// 0320 batch upload (file action advice in ISO terms).
    pub const BATCH_UPLOAD: Mti = Mti(*b"0320");
    /// 0330 batch upload response.
    pub const BATCH_UPLOAD_RESPONSE: Mti = Mti(*b"0330");
    /// 0400 reversal request.
    pub const REVERSAL_REQUEST: Mti = Mti(*b"0400");
    /// 0401 reversal request, repeat.
    pub const REVERSAL_REQUEST_REPEAT: Mti = Mti(*b"0401");
    /// 0410 reversal response.
    pub const REVERSAL_RESPONSE: Mti = Mti(*b"0410");
    /// 0420 reversal advice.
    pub const REVERSAL_ADVICE: Mti = Mti(*b"0420");
    /// 0421 reversal advice, repeat.
    pub const REVERSAL_ADVICE_REPEAT: Mti = Mti(*b"0421");
    /// 0430 reversal advice response.
    pub const REVERSAL_ADVICE_RESPONSE: Mti = Mti(*b"0430");
    /// 0500 reconciliation request (batch settlement, clearing hand-off).
    pub const RECONCILIATION_REQUEST: Mti = Mti(*b"0500");
    /// 0510 reconciliation response.
    pub const RECONCILIATION_RESPONSE: Mti = Mti(*b"0510");
    /// 0800 network management request.
    pub const NETWORK_REQUEST: Mti = Mti(*b"0800");
    /// 0810 network management response.
    pub const NETWORK_RESPONSE: Mti = Mti(*b"0810");

    /// Every MTI of the profile.
    pub const ALL: [Mti; 22] = [
        Mti::AUTHORIZATION_REQUEST,
        Mti::AUTHORIZATION_RESPONSE,
        Mti::AUTHORIZATION_ADVICE,
        Mti::AUTHORIZATION_ADVICE_REPEAT,
        Mti::AUTHORIZATION_ADVICE_RESPONSE,
        Mti::FINANCIAL_REQUEST,
        Mti::FINANCIAL_RESPONSE,
        Mti::FINANCIAL_ADVICE,
        Mti::FINANCIAL_ADVICE_REPEAT,
        Mti::FINANCIAL_ADVICE_RESPONSE,
        Mti::BATCH_UPLOAD,
        Mti::BATCH_UPLOAD_RESPONSE,
        Mti::REVERSAL_REQUEST,
        Mti::REVERSAL_REQUEST_REPEAT,
        Mti::REVERSAL_RESPONSE,
        Mti::REVERSAL_ADVICE,
        Mti::REVERSAL_ADVICE_REPEAT,
        Mti::REVERSAL_ADVICE_RESPONSE,
        Mti::RECONCILIATION_REQUEST,
        Mti::RECONCILIATION_RESPONSE,
        Mti::NETWORK_REQUEST,
        Mti::NETWORK_RESPONSE,
    ];

    /// Reads an MTI from exactly four bytes.
    pub fn parse(bytes: &[u8]) -> Result<Mti, MtiError> {
        let digits: [u8; 4] = bytes.try_into().map_err(|_| MtiError::BadMti)?;
        // One `match` rather than a search of `ALL`: this runs for every message received.
        // A unit test checks that it accepts exactly `ALL`.
        match &digits {
            b"0100" | b"0110" | b"0120" | b"0121" | b"0130" | b"0200" | b"0210" | b"0220"
            | b"0221" | b"0230" | b"0320" | b"0330" | b"0400" | b"0401" | b"0410" | b"0420"
            | b"0421" | b"0430" | b"0500" | b"0510" | b"0800" | b"0810" => Ok(Mti(digits)),
            _ if digits.iter().all(u8::is_ascii_digit) => Err(MtiError::UnknownMti),
            _ => Err(MtiError::BadMti),
        }
    }

    /// The four digits, e.g. `"0200"`.
    pub fn as_str(&self) -> &str {
        // Only constructed from ASCII digits, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The four digits as bytes, as on the wire.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// The MTI as a number (`0200` is 200), handy for `match`.
    pub const fn as_u16(&self) -> u16 {
        let d = &self.0;
        (d[0] - b'0') as u16 * 1000
            + (d[1] - b'0') as u16 * 100
            + (d[2] - b'0') as u16 * 10
            + (d[3] - b'0') as u16
    }

    /// Whether a message of this type expects an answer: requests (`xx0x`) and advices
    /// (`xx2x`), repeats included.
    pub const fn is_request(&self) -> bool {
        matches!(self.0[2], b'0' | b'2')
    }

    /// Whether this is a repeat (`xxx1`) of an earlier request or advice.
    pub const fn is_repeat(&self) -> bool {
        self.0[3] == b'1'
    }

    /// The MTI that answers this one: request + 10 (`0200` -> `0210`, `0420` -> `0430`).
    /// A repeat is answered like the original (`0221` -> `0230`, `0401` -> `0410`), as in
    /// ISO 8583:1987. `None` for a response.
    pub fn response(&self) -> Option<Mti> {
        if !self.is_request() {
            return None;
        }
        let mut digits = self.0;
        digits[2] += 1;
        digits[3] = b'0';
        Mti::parse(&digits).ok()
    }

    /// The fields a response copies from a request of this MTI (PROTOCOL.md 3.1-3.9): the
    /// same list for the host and for anything that answers like it.
    pub const fn echoed_fields(&self) -> &'static [Field] {
        use Field::*;
        match *self {
            Mti::NETWORK_REQUEST => &[TransmissionDateTime, Stan, TerminalId, NetworkCode],
            Mti::AUTHORIZATION_REQUEST => &[
                Pan,
                ProcessingCode,
                TransmissionDateTime,
                Stan,
                LocalTime,
                LocalDate,
                TerminalId,
                MerchantId,
                Batch,
            ],
            Mti::REVERSAL_REQUEST
            | Mti::REVERSAL_REQUEST_REPEAT
            | Mti::REVERSAL_ADVICE
            | Mti::REVERSAL_ADVICE_REPEAT => &[
                Pan,
                ProcessingCode,
                Amount,
                TransmissionDateTime,
                Stan,
                TerminalId,
                MerchantId,
                Batch,
                OriginalData,
            ],
            Mti::RECONCILIATION_REQUEST => &[
                ProcessingCode,
                TransmissionDateTime,
                Stan,
                TerminalId,
                MerchantId,
                Batch,
                CreditsCount,
                DebitsCount,
                CreditsAmount,
                DebitsAmount,
            ],
            Mti::BATCH_UPLOAD => &[
                Pan,
                ProcessingCode,
                Amount,
                TransmissionDateTime,
                Stan,
                LocalTime,
                LocalDate,
                Rrn,
                TerminalId,
                MerchantId,
                Batch,
            ],
            _ => &[
                Pan,
                ProcessingCode,
                Amount,
                TransmissionDateTime,
                Stan,
                LocalTime,
                LocalDate,
                TerminalId,
                MerchantId,
                Batch,
            ],
        }
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_has_a_known_response() {
        for mti in Mti::ALL {
            assert_eq!(Mti::parse(mti.as_bytes()), Ok(mti));
            match mti.response() {
                Some(response) => {
                    assert!(mti.is_request(), "{mti}");
                    assert!(!response.is_request());
                    assert_eq!(response.as_u16() / 10, mti.as_u16() / 10 + 1);
                }
                None => assert!(!mti.is_request(), "{mti} has no response"),
            }
        }
    }

    #[test]
    fn parse_accepts_exactly_all() {
        for n in 0..10_000 {
            let text = format!("{n:04}");
            let known = Mti::ALL.iter().any(|m| m.as_str() == text);
            assert_eq!(Mti::parse(text.as_bytes()).is_ok(), known, "{text}");
        }
        // Any byte that is not a digit, anywhere, makes it a bad MTI, not an unknown one.
        for position in 0..4 {
            for byte in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                let mut digits = *b"0200";
                digits[position] = byte;
                let parsed = Mti::parse(&digits);
                assert!(matches!(parsed, Err(MtiError::BadMti)), "{digits:?}");
            }
        }
    }

    #[test]
    fn responses() {
        let pairs = [
            ("0100", Some("0110")),
            ("0200", Some("0210")),
            ("0220", Some("0230")),
            ("0221", Some("0230")),
            ("0320", Some("0330")),
            ("0400", Some("0410")),
            ("0401", Some("0410")),
            ("0420", Some("0430")),
            ("0421", Some("0430")),
            ("0500", Some("0510")),
            ("0800", Some("0810")),
            ("0810", None),
            ("0210", None),
        ];
        for (request, response) in pairs {
            let mti = Mti::parse(request.as_bytes()).unwrap();
            assert_eq!(mti.response().as_ref().map(Mti::as_str), response);
        }
    }

    #[test]
    fn rejects() {
        assert_eq!(Mti::parse(b"0300"), Err(MtiError::UnknownMti));
        assert_eq!(Mti::parse(b"1200"), Err(MtiError::UnknownMti));
        assert_eq!(Mti::parse(b"02x0"), Err(MtiError::BadMti));
        assert_eq!(Mti::parse(b"020"), Err(MtiError::BadMti));
        assert_eq!(Mti::parse(b"02000"), Err(MtiError::BadMti));
        assert_eq!(Mti::FINANCIAL_REQUEST.as_u16(), 200);
        assert_eq!(format!("{:?}", Mti::NETWORK_REQUEST), "Mti(0800)");
    }
}
