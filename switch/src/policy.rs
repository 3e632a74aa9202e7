//! Rules the operator configures, resolved once at start-up from [`Config`] into the form the
//! authorizer uses (minor units, keys as bytes).

use crate::config::{CardKindDefaults, Config};
use crate::money::parse_amount;
use crate::state::cards::{CardKind, Limits};

#[derive(Clone)]
pub struct Policy {
    pub currency: [u8; 3],
    pub institution_id: String,
    pub utc_offset_minutes: i32,
    pub pin_tries_max: u8,
    /// Key of the PIN verification values (HMAC-SHA-256).
    pub pin_key: crate::pin::VerificationKey,
    pub blacklist_page_entries: usize,
    pub replacement_fee_minor: u64,
    pub cancel_balance_to_forfeit: bool,
    limits_by_kind: [Limits; 3],
}

impl Policy {
    /// Call after `Config::validate`: amounts and keys are known to parse.
    pub fn from_config(config: &Config) -> Policy {
        let limits = |d: &CardKindDefaults| Limits {
            per_txn_minor: parse_amount(&d.per_txn).expect("validated"),
            daily_amount_minor: parse_amount(&d.daily_amount).expect("validated"),
            daily_count: d.daily_count,
            pin_threshold_minor: parse_amount(&d.pin_threshold).expect("validated"),
        };
        let mut pin_key = [0u8; 32];
        if config.security.pin_verification_key.is_empty() {
            // A fixed demo key keeps PINs verifiable across restarts of a demo host; a real
            // deployment sets its own key.
            pin_key.copy_from_slice(b"bursar-demo-pin-verification-key");
        } else {
            pin_key.copy_from_slice(
                &hex::decode(&config.security.pin_verification_key).expect("validated"),
            );
        }
        let mut currency = [0u8; 3];
        currency.copy_from_slice(config.host.currency.as_bytes());
        Policy {
            currency,
            institution_id: config.host.institution_id.clone(),
            utc_offset_minutes: config.host.utc_offset_minutes,
            pin_tries_max: config.security.pin_tries_max,
            pin_key: crate::pin::VerificationKey::new(&pin_key),
            blacklist_page_entries: config.terminal_link.blacklist_page_entries,
            replacement_fee_minor: parse_amount(&config.cards.replacement_fee).expect("validated"),
            cancel_balance_to_forfeit: config.cards.cancel_balance_to == "forfeit",
            limits_by_kind: [
                limits(&config.cards.student),
                limits(&config.cards.staff),
                limits(&config.cards.temporary),
            ],
        }
    }

    pub fn kind_limits(&self, kind: CardKind) -> &Limits {
        &self.limits_by_kind[kind as usize]
    }
}
