//! The requests of one simulated terminal, built with the codec (PROTOCOL.md 3.1-3.9): its
//! STANs, fresh F7s, PIN blocks and MACs.

use bytes::Bytes;
use codec::security::{retail_mac, TdesKey};
use codec::{BuildError, Field, MessageBuilder, Mti};

use crate::clock::WireTime;
use crate::fleet::{CardSpec, TerminalSpec};

/// Processing codes (F3) of the requests sent.
pub const PURCHASE: u64 = 0;
pub const BALANCE: u64 = 310_000;
pub const REFUND: u64 = 200_000;
pub const TOP_UP: u64 = 400_000;
pub const SIGN_ON: u64 = 1;
pub const BLACKLIST_DOWNLOAD: u64 = 901;
/// 0500 processing codes: close the batch, close it after an upload.
pub const CLOSE_BATCH: u64 = 920_000;
pub const CLOSE_AFTER_UPLOAD: u64 = 960_000;

/// The terminal batch (F60) every loadgen terminal reports.
const BATCH: u64 = 1;

/// A built request and what identifies its response (PROTOCOL.md 1: MTI pair, F11, F41).
pub struct Outgoing {
    pub bytes: Bytes,
    pub mti: Mti,
    pub stan: u32,
    pub f7: [u8; 10],
}

/// An approved purchase, remembered for a later refund or reversal of it.
#[derive(Clone, Debug)]
pub struct Original {
    pub card: usize,
    pub amount_minor: u64,
    pub stan: u32,
    pub f7: [u8; 10],
    pub rrn: [u8; 12],
}

/// A sale a terminal approved offline, as it keeps it until upload: its STAN and local time
/// (F12/F13) are its identity at the host (PROTOCOL.md 3.8).
#[derive(Clone, Debug)]
pub struct OfflineSale {
    pub card: usize,
    pub amount_minor: u64,
    pub stan: u32,
    /// Local `MMDDhhmmss` of the sale.
    pub local: [u8; 10],
}

/// A batch's counts and amounts of purchases (debits), as in an 0500 (F76, F88; no refunds
/// offline, so F74 and F86 are zero).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchTotals {
    pub purchase_count: u64,
    pub purchase_minor: u64,
}

pub struct RequestBuilder {
    terminal: TerminalSpec,
    tak: Option<TdesKey>,
    stan: u32,
}

impl RequestBuilder {
    pub fn new(terminal: TerminalSpec, tak: &TdesKey) -> RequestBuilder {
        RequestBuilder {
            tak: terminal.mac.then(|| tak.clone()),
            terminal,
            stan: 0,
        }
    }

    /// Takes the next STAN for a sale kept offline.
    pub fn take_stan(&mut self) -> u32 {
        self.next_stan()
    }

    pub fn terminal_id(&self) -> &str {
        &self.terminal.id
    }

    pub fn mac_key(&self) -> Option<&TdesKey> {
        self.tak.as_ref()
    }

    /// 1 to 999999 and around again: unique per terminal per day together with F7.
    fn next_stan(&mut self) -> u32 {
        self.stan = self.stan % 999_999 + 1;
        self.stan
    }

    pub fn sign_on(&mut self) -> Result<Outgoing, BuildError> {
        self.network(SIGN_ON, None)
    }

    /// One page of the blacklist download (3.1, F70 = 901) after `version`.
    pub fn blacklist_download(&mut self, version: u64) -> Result<Outgoing, BuildError> {
        self.network(BLACKLIST_DOWNLOAD, Some(&format!("{version:012}")))
    }

    fn network(&mut self, code: u64, f48: Option<&str>) -> Result<Outgoing, BuildError> {
        let time = WireTime::now();
        let stan = self.next_stan();
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.set(Field::TransmissionDateTime, &time.f7)?
            .set_numeric(Field::Stan, stan.into())?
            .set_text(Field::TerminalId, &self.terminal.id)?;
        if let Some(f48) = f48 {
            b.set_text(Field::PrivateData, f48)?;
        }
        b.set_numeric(Field::NetworkCode, code)?;
        self.finish(b, stan, time)
    }

    /// The advice of an offline sale (3.8): 0220, or 0221 when it is sent again. Its STAN and
    /// F12/F13 are the sale's; F7 is now.
    pub fn advice(
        &self,
        sale: &OfflineSale,
        card: &CardSpec,
        repeat: bool,
    ) -> Result<Outgoing, BuildError> {
        let mti = if repeat {
            Mti::FINANCIAL_ADVICE_REPEAT
        } else {
            Mti::FINANCIAL_ADVICE
        };
        self.offline_sale(mti, sale, card, true)
    }

    /// The batch upload (3.9, 0320) of an offline sale: no F7.
    pub fn upload(&self, sale: &OfflineSale, card: &CardSpec) -> Result<Outgoing, BuildError> {
        self.offline_sale(Mti::BATCH_UPLOAD, sale, card, false)
    }

    fn offline_sale(
        &self,
        mti: Mti,
        sale: &OfflineSale,
        card: &CardSpec,
        with_f7: bool,
    ) -> Result<Outgoing, BuildError> {
        let time = WireTime::now();
        let mut b = MessageBuilder::new(mti);
        b.set(Field::Pan, card.pan.as_bytes())?
            .set_numeric(Field::ProcessingCode, PURCHASE)?
            .set_numeric(Field::Amount, sale.amount_minor)?;
        if with_f7 {
            b.set(Field::TransmissionDateTime, &time.f7)?;
        }
        b.set_numeric(Field::Stan, sale.stan.into())?
            .set(Field::LocalTime, &sale.local[4..])?
            .set(Field::LocalDate, &sale.local[..4])?
            .set_text(Field::TerminalId, &self.terminal.id)?
            .set_text(Field::MerchantId, &self.terminal.merchant)?
            .set_digits(Field::Batch, BATCH, 6)?;
        self.finish(b, sale.stan, time)
    }

    /// The batch settlement (3.9, 0500) with the terminal's totals: F3 = [`CLOSE_BATCH`] or
    /// [`CLOSE_AFTER_UPLOAD`].
    pub fn settlement(
        &mut self,
        processing: u64,
        totals: BatchTotals,
    ) -> Result<Outgoing, BuildError> {
        let time = WireTime::now();
        let stan = self.next_stan();
        let mut b = MessageBuilder::new(Mti::RECONCILIATION_REQUEST);
        b.set_numeric(Field::ProcessingCode, processing)?
            .set(Field::TransmissionDateTime, &time.f7)?
            .set_numeric(Field::Stan, stan.into())?
            .set_text(Field::TerminalId, &self.terminal.id)?
            .set_text(Field::MerchantId, &self.terminal.merchant)?
            .set_digits(Field::Batch, BATCH, 6)?
            .set_numeric(Field::CreditsCount, 0)?
            .set_numeric(Field::DebitsCount, totals.purchase_count)?
            .set_numeric(Field::CreditsAmount, 0)?
            .set_numeric(Field::DebitsAmount, totals.purchase_minor)?;
        self.finish(b, stan, time)
    }

    /// A purchase, balance inquiry, refund or top-up (0100/0200): F2, F3, F4 (not for a
    /// balance), F7, F11, F12, F13, F41, F42, F60, and F52 when `pin` is set.
    pub fn financial(
        &mut self,
        processing: u64,
        card: &CardSpec,
        amount_minor: Option<u64>,
        with_pin: bool,
        refund_of: Option<&[u8; 12]>,
    ) -> Result<Outgoing, BuildError> {
        let mti = if processing == BALANCE {
            Mti::AUTHORIZATION_REQUEST
        } else {
            Mti::FINANCIAL_REQUEST
        };
        let time = WireTime::now();
        let stan = self.next_stan();
        let mut b = MessageBuilder::new(mti);
        b.set(Field::Pan, card.pan.as_bytes())?
            .set_numeric(Field::ProcessingCode, processing)?;
        if let Some(amount) = amount_minor {
            b.set_numeric(Field::Amount, amount)?;
        }
        b.set(Field::TransmissionDateTime, &time.f7)?
            .set_numeric(Field::Stan, stan.into())?
            .set(Field::LocalTime, time.local_time())?
            .set(Field::LocalDate, time.local_date())?
            .set_text(Field::TerminalId, &self.terminal.id)?
            .set_text(Field::MerchantId, &self.terminal.merchant)?
            .set_digits(Field::Batch, BATCH, 6)?;
        if let Some(rrn) = refund_of {
            b.set(Field::Rrn, rrn)?;
        }
        if with_pin {
            b.set(Field::PinBlock, &card.pin_block)?;
        }
        self.finish(b, stan, time)
    }

    /// A reversal (0400) of an approved purchase: F90 names its MTI, F11 and F7.
    pub fn reversal(
        &mut self,
        card: &CardSpec,
        original: &Original,
    ) -> Result<Outgoing, BuildError> {
        let time = WireTime::now();
        let stan = self.next_stan();
        let mut f90 = [b'0'; 42];
        f90[..4].copy_from_slice(Mti::FINANCIAL_REQUEST.as_bytes());
        f90[4..10].copy_from_slice(format!("{:06}", original.stan).as_bytes());
        f90[10..20].copy_from_slice(&original.f7);
        let mut b = MessageBuilder::new(Mti::REVERSAL_REQUEST);
        b.set(Field::Pan, card.pan.as_bytes())?
            .set_numeric(Field::ProcessingCode, PURCHASE)?
            .set_numeric(Field::Amount, original.amount_minor)?
            .set(Field::TransmissionDateTime, &time.f7)?
            .set_numeric(Field::Stan, stan.into())?
            .set_text(Field::TerminalId, &self.terminal.id)?
            .set_text(Field::MerchantId, &self.terminal.merchant)?
            .set_digits(Field::Batch, BATCH, 6)?
            .set(Field::OriginalData, &f90)?;
        self.finish(b, stan, time)
    }

    fn finish(&self, b: MessageBuilder, stan: u32, time: WireTime) -> Result<Outgoing, BuildError> {
        let bytes = match &self.tak {
            Some(tak) => b.build_with_mac(|data| retail_mac(tak, data))?,
            None => b.build()?,
        };
        Ok(Outgoing {
            bytes,
            mti: b.mti(),
            stan,
            f7: time.f7,
        })
    }
}
