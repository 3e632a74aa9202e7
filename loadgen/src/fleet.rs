//! The simulated terminals, their merchants and the cards they charge, and their provisioning
//! through the admin API (PROTOCOL.md 8).
//!
//! Every id carries a run id, so that runs against the same host never collide. All loadgen
//! terminals share one TPK and one TAK (below): a load test needs keys the host knows, not
//! key separation, and one TPK lets the PIN block of each card be computed once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use codec::security::{encrypt_pin_block, TdesKey};
use serde_json::{json, Value};

/// The PIN key of every loadgen terminal. Test key: never use it for a real terminal.
pub const LOADGEN_TPK: &str = "1F2E3D4C5B6A79880897A6B5C4D3E2F1";
/// The MAC key of every loadgen terminal (and the echo host's default). Test key.
pub const LOADGEN_TAK: &str = "2C3D4E5F60718293A4B5C6D7E8F90A1B";

/// Most terminals one run simulates: terminal ids have four digits for the serial.
pub const TERMINALS_MAX: usize = 10_000;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct FleetPlan {
    /// Three digits that make this run's ids unique on the host.
    pub run_id: u16,
    pub terminals: usize,
    pub merchants: usize,
    pub cards: usize,
    /// Share of terminals registered MAC-enabled, in percent.
    pub mac_percent: u8,
    /// Cards' PIN threshold in minor units: purchases at or above it carry a PIN.
    pub pin_threshold_minor: u64,
    /// Each card's opening balance, in minor units.
    pub card_balance_minor: u64,
    /// Terminals' offline floor limit (PROTOCOL.md 3.8), in minor units.
    pub offline_floor_limit_minor: u64,
}

#[derive(Clone, Debug)]
pub struct TerminalSpec {
    pub id: String,
    pub merchant: String,
    pub mac: bool,
}

#[derive(Clone)]
pub struct CardSpec {
    pub pan: String,
    pin: String,
    /// F52 of this card's PIN under [`LOADGEN_TPK`] (format 0 is deterministic).
    pub pin_block: [u8; 8],
}

/// The identities a run uses, with the keys to sign and encrypt for them.
pub struct Fleet {
    pub plan: FleetPlan,
    pub terminals: Vec<TerminalSpec>,
    pub merchants: Vec<String>,
    pub cards: Vec<CardSpec>,
    pub tpk: TdesKey,
    pub tak: TdesKey,
}

impl FleetPlan {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.run_id > 999 {
            bail!("--run-id must be 0 to 999");
        }
        if !(1..=TERMINALS_MAX).contains(&self.terminals) {
            bail!("--terminals must be 1 to {TERMINALS_MAX}");
        }
        if self.merchants == 0 || self.merchants > self.terminals {
            bail!("--merchants must be 1 to the number of terminals");
        }
        if !(1..=99_999_999).contains(&self.cards) {
            bail!("--cards must be 1 to 99999999");
        }
        if self.mac_percent > 100 {
            bail!("--mac-percent must be 0 to 100");
        }
        Ok(())
    }

    pub fn fleet(&self) -> Fleet {
        let tpk = TdesKey::from_hex(LOADGEN_TPK).expect("literal key");
        let tak = TdesKey::from_hex(LOADGEN_TAK).expect("literal key");
        let run = self.run_id;
        let merchants: Vec<String> = (0..self.merchants)
            .map(|m| format!("LGM{run:03}{m:09}"))
            .collect();
        let terminals = (0..self.terminals)
            .map(|t| TerminalSpec {
                id: format!("L{run:03}{t:04}"),
                merchant: merchants[t % merchants.len()].clone(),
                // Spread evenly: terminal t is MAC-enabled when the running share crosses a
                // whole terminal.
                mac: (t + 1) * self.mac_percent as usize / 100
                    > t * self.mac_percent as usize / 100,
            })
            .collect();
        let cards = (0..self.cards)
            .map(|c| {
                let pan = luhn_complete(&format!("6299{run:03}{c:08}"));
                let pin = format!("{:04}", (c * 7919 + 1357) % 10_000);
                let pin_block = encrypt_pin_block(&tpk, &pan, &pin).expect("4-digit PIN");
                CardSpec {
                    pan,
                    pin,
                    pin_block,
                }
            })
            .collect();
        Fleet {
            plan: self.clone(),
            terminals,
            merchants,
            cards,
            tpk,
            tak,
        }
    }
}

/// `body` followed by the digit that makes it Luhn-valid.
pub fn luhn_complete(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will be rightmost, so the body's rightmost digit is doubled.
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled - if doubled > 9 { 9 } else { 0 }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// `12.34` from 1234 minor units.
pub fn format_amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// `"12.34"`, `"12"` or `"12.3"` to minor units, without a float.
pub fn parse_amount(text: &str) -> Result<u64, String> {
    let (units, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || (!fraction.is_empty() && !digits(fraction)) || fraction.len() > 2 {
        return Err(format!("`{text}` is not an amount like 12.34"));
    }
    let units: u64 = units
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    let fraction: u64 = format!("{fraction:0<2}").parse().expect("two digits");
    units
        .checked_mul(100)
        .and_then(|u| u.checked_add(fraction))
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// The admin API of the host under test.
pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl AdminClient {
    pub fn new(addr: &str, token: &str) -> AdminClient {
        AdminClient {
            base: format!("http://{addr}"),
            token: token.to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let result = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(body);
        Self::answer("POST", path, result)
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let result = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        Self::answer("GET", path, result)
    }

    fn answer(
        method: &str,
        path: &str,
        result: Result<ureq::Response, ureq::Error>,
    ) -> anyhow::Result<Value> {
        match result {
            Ok(response) => Ok(response.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let hint = match status {
                    401 => ": check --admin-token",
                    409 => ": this run id was used before on this host, pass another --run-id",
                    _ => "",
                };
                Err(anyhow!("{method} {path}: HTTP {status} {text}{hint}"))
            }
            Err(error) => Err(anyhow!("{method} {path}: {error} (is --admin-addr right?)")),
        }
    }

    /// Reports a card lost: it is blocked, in the next blacklist version.
    pub fn report_lost(&self, pan: &str) -> anyhow::Result<()> {
        self.post(&format!("/v1/cards/{pan}/lost"), json!({}))
            .map(drop)
    }

    /// A card's balance in minor units (negative after an offline overdraft).
    pub fn card_balance_minor(&self, pan: &str) -> anyhow::Result<i64> {
        let card = self.get(&format!("/v1/cards/{pan}"))?;
        let text = card["balance"]
            .as_str()
            .with_context(|| format!("GET /v1/cards/…: no balance in {card}"))?;
        let (sign, digits) = match text.strip_prefix('-') {
            Some(digits) => (-1, digits),
            None => (1, text),
        };
        let minor = parse_amount(digits).map_err(|e| anyhow!("card balance: {e}"))?;
        Ok(sign * i64::try_from(minor).context("card balance out of range")?)
    }

    /// Whether the host's book balances (`GET /v1/ledger/check`).
    pub fn ledger_balanced(&self) -> anyhow::Result<bool> {
        let check = self.get("/v1/ledger/check")?;
        check["balanced"]
            .as_bool()
            .with_context(|| format!("GET /v1/ledger/check: no `balanced` in {check}"))
    }
}

/// Registers the fleet's merchants, terminals and cards (with their opening deposits), with
/// `workers` requests in flight so that the host's group commit batches them.
pub fn provision(fleet: &Fleet, admin: &AdminClient, workers: usize) -> anyhow::Result<()> {
    let plan = &fleet.plan;
    let max = format_amount(999_999_999_999);
    let merchant = |m: usize| {
        let id = &fleet.merchants[m];
        admin.post(
            "/v1/merchants",
            json!({
                "id": id,
                "name": format!("Loadgen merchant {m}"),
                "settlement_account": format!("LG{}", &id[3..]),
                "fee_bps": 100,
            }),
        )
    };
    let terminal = |t: usize| {
        let spec = &fleet.terminals[t];
        admin.post(
            "/v1/terminals",
            json!({
                "id": spec.id,
                "merchant_id": spec.merchant,
                "tpk": LOADGEN_TPK,
                "tak": LOADGEN_TAK,
                "mac_required": spec.mac,
                "offline_floor_limit": format_amount(plan.offline_floor_limit_minor),
            }),
        )
    };
    let card = |c: usize| {
        let spec = &fleet.cards[c];
        admin.post(
            "/v1/cards",
            json!({
                "pan": spec.pan,
                "holder_name": format!("Loadgen holder {c}"),
                "holder_id": format!("LG-{c}"),
                "kind": "staff",
                "expiry": "9912",
                "pin": spec.pin,
                // A linked bank card, so that a top-up goes to the bank (or answers 91).
                "bank_account": luhn_complete(&format!("622202{:03}{c:09}", plan.run_id)),
                // Limits out of the way: the load is the point, not the limits.
                "limits": {
                    "per_txn": max,
                    "daily_amount": max,
                    "daily_count": 2_000_000_000u32,
                    "pin_threshold": format_amount(plan.pin_threshold_minor),
                },
            }),
        )?;
        admin.post(
            &format!("/v1/cards/{}/deposits", spec.pan),
            json!({
                "amount": format_amount(plan.card_balance_minor),
                "reference": format!("loadgen-{}-opening", spec.pan),
            }),
        )
    };
    in_parallel(fleet.merchants.len(), workers, merchant).context("registering merchants")?;
    in_parallel(fleet.terminals.len(), workers, terminal).context("registering terminals")?;
    in_parallel(fleet.cards.len(), workers, card).context("issuing cards")?;
    Ok(())
}

/// Runs `job(0..count)` on `workers` threads; the first error stops the rest.
pub fn in_parallel<T>(
    count: usize,
    workers: usize,
    job: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                if let Err(error) = job(i) {
                    failure.lock().expect("no panics").get_or_insert(error);
                    next.store(count, Ordering::Relaxed);
                    return;
                }
            });
        }
    });
    match failure.into_inner().expect("no panics") {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_the_wire() {
        let plan = FleetPlan {
            run_id: 42,
            terminals: 10,
            merchants: 3,
            cards: 5,
            mac_percent: 50,
            pin_threshold_minor: 2000,
            card_balance_minor: 100,
            offline_floor_limit_minor: 0,
        };
        plan.validate().unwrap();
        let fleet = plan.fleet();
        assert_eq!(fleet.terminals[9].id, "L0420009");
        assert_eq!(fleet.terminals[9].merchant, "LGM042000000000");
        assert_eq!(fleet.terminals.iter().filter(|t| t.mac).count(), 5);
        for card in &fleet.cards {
            assert_eq!(card.pan.len(), 16);
            assert!(card.pan.starts_with("6299042"));
        }
    }

    #[test]
    fn luhn_digit_matches_known_pans() {
        // The demo cards of switch/src/demo.rs.
        assert_eq!(luhn_complete("629000123456789"), "6290001234567893");
        assert_eq!(luhn_complete("629000987654321"), "6290009876543213");
        assert_eq!(luhn_complete("629000000000001"), "6290000000000014");
    }

    #[test]
    fn amounts_without_floats() {
        assert_eq!(parse_amount("12.34"), Ok(1234));
        assert_eq!(parse_amount("12.3"), Ok(1230));
        assert_eq!(parse_amount("12"), Ok(1200));
        assert!(parse_amount("1.234").is_err());
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("1e3").is_err());
        assert_eq!(format_amount(1205), "12.05");
    }
}
