//! The request mix: which kinds of terminal request a run sends, by weight
//! (`purchase=80,balance=10,refund=5,reversal=5,topup=0`).

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// The terminal requests a simulated terminal sends (PROTOCOL.md 3.2-3.6).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Purchase,
    Balance,
    Refund,
    Reversal,
    TopUp,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Purchase,
        Kind::Balance,
        Kind::Refund,
        Kind::Reversal,
        Kind::TopUp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Balance => "balance",
            Kind::Refund => "refund",
            Kind::Reversal => "reversal",
            Kind::TopUp => "topup",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Weights of each kind; at least one is above zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 5],
    total: u32,
}

impl Mix {
    /// A kind at random by weight.
    pub fn pick(&self, rng: &mut impl Rng) -> Kind {
        let mut ticket = rng.gen_range(0..self.total);
        for kind in Kind::ALL {
            let weight = self.weights[kind.index()];
            if ticket < weight {
                return kind;
            }
            ticket -= weight;
        }
        unreachable!("tickets are drawn below the total weight")
    }

    pub fn weight(&self, kind: Kind) -> u32 {
        self.weights[kind.index()]
    }
}

impl Default for Mix {
    fn default() -> Self {
        "purchase=80,balance=10,refund=5,reversal=5"
            .parse()
            .expect("the default mix parses")
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 5];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not KIND=WEIGHT"))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| {
                    format!("unknown kind `{name}`: purchase, balance, refund, reversal or topup")
                })?;
            weights[kind.index()] = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of {name} is not a whole number: `{weight}`"))?;
        }
        let total = weights.iter().try_fold(0u32, |sum, w| sum.checked_add(*w));
        match total {
            Some(total) if total > 0 => Ok(Mix { weights, total }),
            Some(_) => Err("the mix needs at least one kind with a weight above zero".into()),
            None => Err("the weights are too large".into()),
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| self.weight(**k) > 0)
            .map(|k| format!("{}={}", k.name(), self.weight(*k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_and_picks_by_weight() {
        let mix: Mix = "purchase=3, topup=1".parse().unwrap();
        assert_eq!(mix.to_string(), "purchase=3,topup=1");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let picks: Vec<Kind> = (0..4000).map(|_| mix.pick(&mut rng)).collect();
        let topups = picks.iter().filter(|k| **k == Kind::TopUp).count();
        assert!(picks
            .iter()
            .all(|k| matches!(k, Kind::Purchase | Kind::TopUp)));
        assert!((800..1200).contains(&topups), "{topups} top-ups of 4000");
    }

    #[test]
    fn rejects_bad_mixes() {
        assert!("purchase=0".parse::<Mix>().is_err());
        assert!("coffee=1".parse::<Mix>().is_err());
        assert!("purchase".parse::<Mix>().is_err());
        assert!("purchase=-1".parse::<Mix>().is_err());
    }
}
