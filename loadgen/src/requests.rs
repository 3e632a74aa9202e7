//! The requests of one simulated terminal, built with the codec (PROTOCOL.md 3.1-3.6): its
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
        let time = WireTime::now();
        let stan = self.next_stan();
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.set(Field::TransmissionDateTime, &time.f7)?
            .set_numeric(Field::Stan, stan.into())?
            .set_text(Field::TerminalId, &self.terminal.id)?
            .set_numeric(Field::NetworkCode, SIGN_ON)?;
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
