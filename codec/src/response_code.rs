//! F39 response codes of PROTOCOL.md section 6.

use std::fmt;

macro_rules! response_codes {
    ($( $name:ident $text:literal $code:literal $doc:literal; )*) => {
        /// An F39 response code. The host only ever sends the named codes; the bank may
        /// answer others, which are kept verbatim in [`ResponseCode::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ResponseCode {
            $(
                #[doc = $doc]
                $name,
            )*
            /// A code outside PROTOCOL.md section 6 (from the bank, say): two printable
            /// ASCII bytes.
            Other([u8; 2]),
        }

        impl ResponseCode {
            /// Every named code of PROTOCOL.md section 6.
            pub const ALL: &'static [ResponseCode] = &[$(ResponseCode::$name,)*];

            /// The two bytes of F39.
            pub const fn as_bytes(&self) -> [u8; 2] {
                match self {
                    $(ResponseCode::$name => {
                        let code: &[u8; 2] = $code;
                        *code
                    })*
                    ResponseCode::Other(code) => *code,
                }
            }

            /// The code as text, e.g. `"00"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ResponseCode::$name => $text,)*
                    ResponseCode::Other(code) => std::str::from_utf8(code).unwrap_or("??"),
                }
            }

            /// Reads F39. `None` unless `code` is two printable ASCII bytes.
            pub fn from_code(code: &[u8]) -> Option<ResponseCode> {
                let code: [u8; 2] = code.try_into().ok()?;
                if !code.iter().all(|b| matches!(b, 0x20..=0x7E)) {
                    return None;
                }
                Some(match &code {
                    $($code => ResponseCode::$name,)*
                    _ => ResponseCode::Other(code),
                })
            }
        }
    };
}

response_codes! {
    Approved "00" b"00" "00: approved / accepted.";
    UnknownTerminal "03" b"03" "03: unknown or not signed-on terminal, merchant mismatch.";
    InvalidTransaction "12" b"12" "12: invalid transaction (closed batch, wrong processing code).";
    InvalidAmount "13" b"13" "13: invalid amount.";
    UnknownCard "14" b"14" "14: unknown card.";
    OriginalNotFound "25" b"25" "25: original not found.";
    FormatError "30" b"30" "30: format error.";
    CardLost "41" b"41" "41: card reported lost.";
    InsufficientBalance "51" b"51" "51: insufficient balance.";
    CardExpired "54" b"54" "54: card expired.";
    PinWrong "55" b"55" "55: PIN missing or wrong.";
    NotPermitted "57" b"57" "57: not permitted for this card.";
    AmountLimit "61" b"61" "61: amount limit exceeded.";
    CardCancelledOrFrozen "62" b"62" "62: card cancelled or frozen.";
    MacFailure "63" b"63" "63: MAC failure.";
    CountLimit "65" b"65" "65: count limit exceeded.";
    PinTriesExceeded "75" b"75" "75: PIN tries exceeded.";
    BankUnavailable "91" b"91" "91: bank unavailable.";
    DuplicateDifferent "94" b"94" "94: duplicate with different content.";
    ReconciliationDiffers "95" b"95" "95: reconciliation totals differ.";
    HostMalfunction "96" b"96" "96: host malfunction.";
}

impl ResponseCode {
    /// Only `00` approves: the profile has no partial or referral approvals.
    pub const fn is_approved(&self) -> bool {
        matches!(self, ResponseCode::Approved)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(ResponseCode::ALL.len(), 21);
        for code in ResponseCode::ALL {
            assert_eq!(ResponseCode::from_code(&code.as_bytes()), Some(*code));
            assert_eq!(code.as_str().as_bytes(), code.as_bytes());
        }
        assert_eq!(ResponseCode::FormatError.as_str(), "30");
        assert_eq!(ResponseCode::from_code(b"00"), Some(ResponseCode::Approved));
        assert!(ResponseCode::Approved.is_approved());
        assert!(!ResponseCode::InsufficientBalance.is_approved());
    }

    #[test]
    fn other_codes() {
        let other = ResponseCode::from_code(b"N7").unwrap();
        assert_eq!(other, ResponseCode::Other(*b"N7"));
        assert_eq!(other.as_str(), "N7");
        assert!(!other.is_approved());
        assert_eq!(ResponseCode::from_code(b"0"), None);
        assert_eq!(ResponseCode::from_code(b"000"), None);
        assert_eq!(ResponseCode::from_code(b"\x000"), None);
        assert_eq!(ResponseCode::Other([0xFF, 0]).as_str(), "??");
    }
}
