//! Amounts: decimal strings with at most two places on the outside, integer minor units
//! (fen) inside. Parsed with `rust_decimal`, never through a float.

use rust_decimal::Decimal;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("`{0}` is not a decimal amount like \"12.34\"")]
    NotANumber(String),
    #[error("`{0}` has more than two decimal places")]
    TooPrecise(String),
    #[error("`{0}` is negative")]
    Negative(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Largest amount the wire can carry: F4 is 12 digits of minor units.
pub const AMOUNT_MAX_MINOR: u64 = 999_999_999_999;

/// Parses `"12.34"` (or `"12"`, `"12.3"`) into minor units.
pub fn parse_amount(text: &str) -> Result<u64, AmountError> {
    let trimmed = text.trim();
    // Decimal::from_str accepts forms like "1e3" or "_"; amounts are plain digits only.
    let plain = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && trimmed.bytes().filter(|b| *b == b'.').count() <= 1;
    if !plain {
        return Err(AmountError::NotANumber(text.to_owned()));
    }
    let value = Decimal::from_str(trimmed).map_err(|_| AmountError::NotANumber(text.to_owned()))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(AmountError::Negative(text.to_owned()));
    }
    if value.normalize().scale() > 2 {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let minor = value * Decimal::ONE_HUNDRED;
    if minor > Decimal::from(AMOUNT_MAX_MINOR) {
        return Err(AmountError::TooLarge(text.to_owned()));
    }
    let minor = minor.normalize();
    debug_assert_eq!(minor.scale(), 0);
    u64::try_from(minor).map_err(|_| AmountError::TooLarge(text.to_owned()))
}

/// Formats minor units as a decimal string with exactly two places: `-1234` is `"-12.34"`.
pub fn format_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The fee on a merchant's net sales: basis points, rounded half-even to the minor unit.
pub fn fee_minor(net_sales_minor: i64, fee_bps: u32) -> i64 {
    let fee = Decimal::from(net_sales_minor) * Decimal::from(fee_bps) / Decimal::from(10_000);
    let rounded =
        fee.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointNearestEven);
    i64::try_from(rounded).expect("fee of an i64 amount fits an i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_places_exactly() {
        assert_eq!(parse_amount("12.34"), Ok(1234));
        assert_eq!(parse_amount("12"), Ok(1200));
        assert_eq!(parse_amount("0.1"), Ok(10));
        assert_eq!(parse_amount("0.10"), Ok(10));
        assert_eq!(parse_amount("9999999999.99"), Ok(AMOUNT_MAX_MINOR));
    }

    #[test]
    fn rejects_what_is_not_an_amount() {
        assert!(matches!(
            parse_amount("1.234"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_amount("-1.00"),
            Err(AmountError::Negative(_))
        ));
        assert!(matches!(
            parse_amount("abc"),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("1e3"),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(parse_amount(""), Err(AmountError::NotANumber(_))));
        assert!(matches!(
            parse_amount("1.2.3"),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("10000000000.00"),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn formats_with_two_places() {
        assert_eq!(format_amount(1234), "12.34");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(-1234), "-12.34");
        assert_eq!(format_amount(0), "0.00");
    }

    #[test]
    fn fees_round_half_even() {
        // 150 bps of 1.00 = 1.5 fen -> 2; of 3.00 = 4.5 fen -> 4.
        assert_eq!(fee_minor(100, 150), 2);
        assert_eq!(fee_minor(300, 150), 4);
        assert_eq!(fee_minor(0, 150), 0);
        assert_eq!(fee_minor(-300, 150), -4);
    }
}
