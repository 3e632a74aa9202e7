//! What the host sends the bank (PROTOCOL.md 4), built with the codec. Pure: no I/O.

use bytes::Bytes;
use codec::{BuildError, Field, Message, MessageBuilder, Mti};

use crate::clock::DateTime;
use crate::state::bank::PendingTopUp;

/// F70 codes of the bank link.
pub const SIGN_ON: u16 = 1;
pub const ECHO: u16 = 301;
pub const CUTOVER: u16 = 201;

/// F7: transmission time, UTC `MMDDhhmmss`.
pub fn transmission_time(now_ms: u64) -> [u8; 10] {
    let mut f7 = [0u8; 10];
    f7.copy_from_slice(DateTime::from_epoch_ms(now_ms, 0).mmddhhmmss().as_bytes());
    f7
}

/// 0800 sign-on or echo.
pub fn network_request(
    code: u16,
    stan: u32,
    institution: &str,
    now_ms: u64,
) -> Result<Bytes, BuildError> {
    let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
    b.set(Field::TransmissionDateTime, &transmission_time(now_ms))?;
    b.set_numeric(Field::Stan, stan as u64)?;
    b.set(Field::AcquiringInstitution, institution.as_bytes())?;
    b.set_numeric(Field::NetworkCode, code as u64)?;
    b.build()
}

/// 0810 to the bank's own 0800: `00` for sign-on, sign-off, echo and cutover, `12` else.
pub fn network_response(request: &Message, institution: &str) -> Result<Bytes, BuildError> {
    let mut b = MessageBuilder::response_to(
        request,
        &[
            Field::TransmissionDateTime,
            Field::Stan,
            Field::TerminalId,
            Field::NetworkCode,
        ],
    );
    b.set(Field::AcquiringInstitution, institution.as_bytes())?;
    let known = matches!(request.network_code(), Some(1 | 2 | ECHO | CUTOVER));
    b.set(Field::ResponseCode, if known { b"00" } else { b"12" })?;
    b.build()
}

/// The fields a top-up and its reversal share (4.2, 4.3).
fn topup_fields(
    b: &mut MessageBuilder,
    topup: &PendingTopUp,
    institution: &str,
    currency: &[u8; 3],
) -> Result<(), BuildError> {
    b.set(Field::Pan, topup.bank_account.as_str().as_bytes())?;
    b.set_numeric(Field::ProcessingCode, 400_000)?;
    b.set_numeric(Field::Amount, topup.amount_minor)?;
    b.set(Field::LocalTime, &topup.local_time[4..])?;
    b.set(Field::LocalDate, &topup.local_time[..4])?;
    b.set(Field::AcquiringInstitution, institution.as_bytes())?;
    b.set_digits(Field::Rrn, topup.rrn, 12)?;
    b.set(Field::TerminalId, &topup.terminal.0)?;
    b.set(Field::MerchantId, &topup.merchant.0)?;
    b.set(Field::Currency, currency)?;
    b.set(Field::AccountId1, topup.card.as_str().as_bytes())?;
    Ok(())
}

/// 0200 top-up authorization (4.2).
pub fn topup_request(
    topup: &PendingTopUp,
    institution: &str,
    currency: &[u8; 3],
) -> Result<Bytes, BuildError> {
    let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
    topup_fields(&mut b, topup, institution, currency)?;
    b.set(Field::TransmissionDateTime, &topup.bank_transmitted)?;
    b.set_numeric(Field::Stan, topup.bank_stan as u64)?;
    b.build()
}

/// 0420 reversal advice of a top-up (4.3): F90 names the original 0200's F11 and F7.
pub fn reversal_advice(
    topup: &PendingTopUp,
    stan: u32,
    institution: &str,
    currency: &[u8; 3],
    now_ms: u64,
) -> Result<Bytes, BuildError> {
    let mut b = MessageBuilder::new(Mti::REVERSAL_ADVICE);
    topup_fields(&mut b, topup, institution, currency)?;
    b.set(Field::TransmissionDateTime, &transmission_time(now_ms))?;
    b.set_numeric(Field::Stan, stan as u64)?;
    let original = format!(
        "0200{:06}{}{}",
        topup.bank_stan,
        std::str::from_utf8(&topup.bank_transmitted).expect("digits"),
        "0".repeat(22)
    );
    b.set(Field::OriginalData, original.as_bytes())?;
    b.build()
}

/// Totals of a clearing file, as the 0500 carries them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ClearingTotals {
    pub purchase_count: u64,
    pub purchase_minor: u64,
    pub refund_count: u64,
    pub refund_minor: u64,
    /// Net to merchants: purchases - refunds - fees; negative when the merchants owe.
    pub net_minor: i64,
}

/// 0500 clearing hand-off (4.4).
pub struct ClearingRequest<'a> {
    pub stan: u32,
    pub settlement_mmdd: &'a str,
    pub file_name: &'a str,
    pub sha256_hex: &'a str,
    pub totals: ClearingTotals,
}

pub fn clearing_request(
    request: &ClearingRequest<'_>,
    institution: &str,
    now_ms: u64,
) -> Result<Bytes, BuildError> {
    let totals = &request.totals;
    let mut b = MessageBuilder::new(Mti::RECONCILIATION_REQUEST);
    b.set_numeric(Field::ProcessingCode, 920_000)?;
    b.set(Field::TransmissionDateTime, &transmission_time(now_ms))?;
    b.set_numeric(Field::Stan, request.stan as u64)?;
    b.set(Field::SettlementDate, request.settlement_mmdd.as_bytes())?;
    b.set(Field::AcquiringInstitution, institution.as_bytes())?;
    b.set(
        Field::PrivateData,
        format!("{};{}", request.file_name, request.sha256_hex).as_bytes(),
    )?;
    b.set_numeric(Field::CreditsCount, totals.refund_count)?;
    b.set_numeric(Field::DebitsCount, totals.purchase_count)?;
    b.set_numeric(Field::CreditsAmount, totals.refund_minor)?;
    b.set_numeric(Field::DebitsAmount, totals.purchase_minor)?;
    let sign = if totals.net_minor >= 0 { 'C' } else { 'D' };
    b.set(
        Field::NetSettlement,
        format!("{sign}{:016}", totals.net_minor.unsigned_abs()).as_bytes(),
    )?;
    b.build()
}

/// The bytes to send for attempt `sent` of a queued advice: a 0420 that may already have
/// reached the bank goes out again as 0421; a 0500 is repeated as it is.
pub fn repeat_of(message: &[u8], sent_before: bool) -> Bytes {
    let mut bytes = message.to_vec();
    if sent_before && bytes.starts_with(Mti::REVERSAL_ADVICE.as_bytes()) {
        bytes[..4].copy_from_slice(Mti::REVERSAL_ADVICE_REPEAT.as_bytes());
    }
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_reversal_advices_are_0421() {
        let advice = b"0420rest".to_vec();
        assert_eq!(&repeat_of(&advice, false)[..4], b"0420");
        assert_eq!(&repeat_of(&advice, true)[..4], b"0421");
        assert_eq!(&repeat_of(b"0500rest", true)[..4], b"0500");
    }

    #[test]
    fn clearing_request_carries_the_totals() {
        let bytes = clearing_request(
            &ClearingRequest {
                stan: 7,
                settlement_mmdd: "1123",
                file_name: "CLR_00000001_20261123_1.csv",
                sha256_hex: &"ab".repeat(32),
                totals: ClearingTotals {
                    purchase_count: 3,
                    purchase_minor: 1500,
                    refund_count: 1,
                    refund_minor: 200,
                    net_minor: -5,
                },
            },
            "00000001",
            0,
        )
        .unwrap();
        let message = Message::parse(bytes).unwrap();
        assert_eq!(
            message.get_str(Field::NetSettlement),
            Some("D0000000000000005")
        );
        assert_eq!(message.get_u64(Field::DebitsAmount), Some(1500));
        assert_eq!(message.get_u64(Field::CreditsCount), Some(1));
    }
}
