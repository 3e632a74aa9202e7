//! MAC verification and PIN block decryption need no state but the terminal's keys, and the
//! content digest none at all, so the connection's task does them before the request
//! reaches the single engine thread, under the keys the connection last learned for that
//! terminal. The engine takes a result only when it was made under the terminal's current
//! key, and otherwise does the work itself: a decision is the same as if every check ran on
//! the engine thread.

use codec::security::{decrypt_pin_block, verify_macs, verify_message_mac, Pin, PinError, TdesKey};
use codec::Message;

use crate::authorize::{answer_kept_for, content_digest};
use crate::state::ids::Pan;
use crate::state::registry::{Terminal, TerminalKey, TerminalKeys};

/// A result and the key it was computed under.
struct Under<T> {
    key: TerminalKey,
    value: T,
}

/// What the connection checked before the engine; empty when it knew no keys yet.
#[derive(Default)]
pub struct Prechecked {
    /// The request's content digest, when its answer is kept (`authorize::content_digest`):
    /// it needs no keys, only the bytes.
    digest: Option<u128>,
    keys: Option<TerminalKeys>,
    mac_valid: Option<Under<bool>>,
    /// The clear PIN of F52 (or why the block is not one) for the card of F2.
    pin: Option<(Pan, Under<Result<Pin, PinError>>)>,
}

impl Prechecked {
    /// Checks `msg`'s MAC when the terminal must MAC, and decrypts its PIN block if it has one.
    pub fn new(msg: &Message, keys: Option<TerminalKeys>) -> Prechecked {
        Prechecked::with_mac_check(msg, keys, |tak| mac_valid_under(msg, tak))
    }

    /// [`Prechecked::new`] for two requests read together, their MACs checked together when
    /// both carry one to check: two DES chains interleaved take 0.6 of the time of two in
    /// turn (docs/CODEC.md).
    pub fn pair(
        first: (&Message, Option<TerminalKeys>),
        second: (&Message, Option<TerminalKeys>),
    ) -> [Prechecked; 2] {
        let macs = [
            mac_to_check(first.0, &first.1),
            mac_to_check(second.0, &second.1),
        ];
        match macs {
            [Some(mac_a), Some(mac_b)] => {
                let [valid_a, valid_b] = verify_macs([mac_a, mac_b]);
                [
                    Prechecked::with_mac_check(first.0, first.1, |_| valid_a),
                    Prechecked::with_mac_check(second.0, second.1, |_| valid_b),
                ]
            }
            _ => [
                Prechecked::new(first.0, first.1),
                Prechecked::new(second.0, second.1),
            ],
        }
    }

    /// The checks, with `mac_valid` telling whether the MAC is right under the TAK.
    fn with_mac_check(
        msg: &Message,
        keys: Option<TerminalKeys>,
        mac_valid: impl FnOnce(&TerminalKey) -> bool,
    ) -> Prechecked {
        let digest = answer_kept_for(msg).then(|| content_digest(msg));
        let Some(keys) = keys else {
            return Prechecked {
                digest,
                ..Prechecked::default()
            };
        };
        let mac_valid = keys.tak.as_ref().map(|tak| Under {
            key: tak.clone(),
            value: mac_valid(tak),
        });
        let pan = msg.pan().and_then(|pan| Pan::parse(pan).ok());
        let pin = match (msg.pin_block(), pan) {
            (Some(block), Some(pan)) => Some((
                pan,
                Under {
                    key: keys.tpk.clone(),
                    value: decrypt_pin_block(keys.tpk.schedule(), pan.as_str(), block),
                },
            )),
            _ => None,
        };
        Prechecked {
            digest,
            keys: Some(keys),
            mac_valid,
            pin,
        }
    }

    /// The request's content digest (`authorize::content_digest`), computed here if the
    /// connection did not.
    pub fn content_digest(&self, msg: &Message) -> u128 {
        self.digest.unwrap_or_else(|| content_digest(msg))
    }

    /// The keys the connection should keep for this terminal, when it holds none or stale ones.
    pub fn keys_to_learn(&self, terminal: &Terminal) -> Option<TerminalKeys> {
        // Compared in place: cloning the keys for every request cost more than the compare.
        let known = self.keys.as_ref().is_some_and(|keys| {
            keys.tpk == terminal.tpk && keys.tak.as_ref() == terminal.mac_key_ref()
        });
        (!known).then(|| terminal.keys())
    }

    /// Whether the request's MAC is right under the terminal's TAK.
    pub fn mac_valid(&self, msg: &Message, terminal: &Terminal) -> bool {
        let Some(tak) = &terminal.tak else {
            return false;
        };
        match &self.mac_valid {
            Some(checked) if checked.key == *tak => checked.value,
            _ => mac_valid_under(msg, tak),
        }
    }

    /// Calls `check` with the clear PIN of `block` for card `pan` under the terminal's TPK.
    pub fn with_pin<T>(
        &self,
        terminal: &Terminal,
        pan: &Pan,
        block: [u8; 8],
        check: impl FnOnce(Result<&Pin, &PinError>) -> T,
    ) -> T {
        match &self.pin {
            Some((decrypted_for, decrypted))
                if decrypted_for == pan && decrypted.key == terminal.tpk =>
            {
                check(decrypted.value.as_ref())
            }
            _ => check(decrypt_pin_block(terminal.tpk.schedule(), pan.as_str(), block).as_ref()),
        }
    }
}

/// The key, covered bytes and MAC of a request whose terminal MACs and that carries one.
fn mac_to_check<'a>(
    msg: &'a Message,
    keys: &'a Option<TerminalKeys>,
) -> Option<(&'a TdesKey, &'a [u8], [u8; 8])> {
    let tak = keys.as_ref()?.tak.as_ref()?;
    Some((tak.schedule(), msg.mac_input()?, msg.mac()?))
}

fn mac_valid_under(msg: &Message, tak: &TerminalKey) -> bool {
    verify_message_mac(tak.schedule(), msg)
}

#[cfg(test)]
mod tests {
    use codec::security::{encrypt_pin_block, retail_mac, TdesKey};
    use codec::{Field, MessageBuilder, Mti};

    use super::*;
    use crate::state::ids::{MerchantId, TerminalId};

    const PAN: &str = "6290001234567893";

    fn key(byte: u8) -> TerminalKey {
        TerminalKey::from([byte; 16])
    }

    fn terminal(tpk: TerminalKey, tak: TerminalKey) -> Terminal {
        Terminal {
            id: TerminalId::parse("T0000009").unwrap(),
            merchant: MerchantId::parse("M00000000000009").unwrap(),
            tpk,
            tak: Some(tak),
            mac_required: true,
            offline_floor_limit_minor: 0,
            signed_on: true,
            blacklist_version_served: 0,
        }
    }

    /// A purchase with a PIN block under `tpk`, MACed under `tak`.
    fn request(tpk: &TdesKey, tak: &TdesKey, pin: &str) -> Message {
        let mut b = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        b.set(Field::Pan, PAN.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, 7).unwrap();
        b.set(Field::TerminalId, b"T0000009").unwrap();
        let block = encrypt_pin_block(tpk, PAN, pin).unwrap();
        b.set(Field::PinBlock, &block).unwrap();
        let bytes = b.build_with_mac(|data| retail_mac(tak, data)).unwrap();
        Message::parse(bytes).unwrap()
    }

    fn pin_of(pre: &Prechecked, terminal: &Terminal, msg: &Message) -> Option<String> {
        let pan = Pan::parse(PAN).unwrap();
        pre.with_pin(terminal, &pan, msg.pin_block().unwrap(), |clear| {
            clear.ok().map(|pin| pin.digits().to_owned())
        })
    }

    #[test]
    fn results_under_the_current_keys_are_used() {
        let (tpk, tak) = (key(0x11), key(0x22));
        let terminal = terminal(tpk.clone(), tak.clone());
        let msg = request(tpk.schedule(), tak.schedule(), "1234");
        let pre = Prechecked::new(&msg, Some(terminal.keys()));
        assert!(pre.mac_valid(&msg, &terminal));
        assert_eq!(pin_of(&pre, &terminal, &msg).as_deref(), Some("1234"));
        assert_eq!(pre.keys_to_learn(&terminal), None);
    }

    #[test]
    fn results_under_stale_or_no_keys_are_done_again() {
        let (tpk, tak) = (key(0x11), key(0x22));
        let terminal = terminal(tpk.clone(), tak.clone());
        let msg = request(tpk.schedule(), tak.schedule(), "1234");
        let stale = TerminalKeys {
            tpk: key(0x33),
            tak: Some(key(0x44)),
        };
        for pre in [
            Prechecked::new(&msg, Some(stale)),
            Prechecked::new(&msg, None),
        ] {
            assert!(
                pre.mac_valid(&msg, &terminal),
                "checked under the current TAK"
            );
            assert_eq!(pin_of(&pre, &terminal, &msg).as_deref(), Some("1234"));
            assert_eq!(pre.keys_to_learn(&terminal), Some(terminal.keys()));
        }
    }

    #[test]
    fn the_digest_is_the_requests_with_or_without_keys() {
        let (tpk, tak) = (key(0x11), key(0x22));
        let terminal = terminal(tpk.clone(), tak.clone());
        let purchase = request(tpk.schedule(), tak.schedule(), "1234");
        for pre in [
            Prechecked::new(&purchase, Some(terminal.keys())),
            Prechecked::new(&purchase, None),
        ] {
            assert_eq!(pre.digest, Some(content_digest(&purchase)));
        }
        let defaulted = Prechecked::default();
        assert_eq!(
            defaulted.content_digest(&purchase),
            content_digest(&purchase)
        );
        // A balance inquiry's answer is not kept: nothing to compare it by.
        let mut b = MessageBuilder::new(Mti::AUTHORIZATION_REQUEST);
        b.set(Field::TerminalId, b"T0000009").unwrap();
        let inquiry = Message::parse(b.build().unwrap()).unwrap();
        assert_eq!(
            Prechecked::new(&inquiry, Some(terminal.keys())).digest,
            None
        );
    }

    #[test]
    fn a_pair_is_checked_as_each_would_be_alone() {
        let (tpk, tak) = (key(0x11), key(0x22));
        let terminal = terminal(tpk.clone(), tak.clone());
        let right = request(tpk.schedule(), tak.schedule(), "1234");
        let wrong = request(tpk.schedule(), key(0x55).schedule(), "98765");
        let keys = || Some(terminal.keys());
        for (a, b) in [(&right, &wrong), (&wrong, &right), (&right, &right)] {
            let [pre_a, pre_b] = Prechecked::pair((a, keys()), (b, keys()));
            assert_eq!(pre_a.mac_valid(a, &terminal), std::ptr::eq(a, &right));
            assert_eq!(pre_b.mac_valid(b, &terminal), std::ptr::eq(b, &right));
            assert_eq!(
                pin_of(&pre_a, &terminal, a),
                pin_of(&Prechecked::new(a, keys()), &terminal, a)
            );
            assert_eq!(pre_b.keys_to_learn(&terminal), None);
        }
        // Only one with keys: each checked alone.
        let [pre_a, pre_b] = Prechecked::pair((&right, None), (&wrong, keys()));
        assert!(pre_a.mac_valid(&right, &terminal));
        assert_eq!(pre_a.keys_to_learn(&terminal), Some(terminal.keys()));
        assert!(!pre_b.mac_valid(&wrong, &terminal));
        assert_eq!(pin_of(&pre_b, &terminal, &wrong).as_deref(), Some("98765"));
    }

    #[test]
    fn a_wrong_mac_stays_wrong() {
        let (tpk, tak) = (key(0x11), key(0x22));
        let terminal = terminal(tpk.clone(), tak);
        let msg = request(tpk.schedule(), key(0x55).schedule(), "1234");
        let pre = Prechecked::new(&msg, Some(terminal.keys()));
        assert!(!pre.mac_valid(&msg, &terminal));
        assert!(!Prechecked::new(&msg, None).mac_valid(&msg, &terminal));
    }
}
