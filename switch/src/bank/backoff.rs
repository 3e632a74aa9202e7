//! Reconnect delays: exponential from a minimum to a maximum, with jitter so that many hosts
//! (or a host restarted in a loop) do not hammer the bank in step.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    /// The ceiling of the next delay, before jitter.
    next_ms: u64,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64) -> Backoff {
        assert!(min_ms >= 1 && min_ms <= max_ms, "back-off bounds");
        Backoff {
            min_ms,
            max_ms,
            next_ms: min_ms,
        }
    }

    /// The next delay: uniform in [ceiling/2, ceiling], then the ceiling doubles (capped).
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.next_ms;
        self.next_ms = ceiling.saturating_mul(2).min(self.max_ms);
        Duration::from_millis(rng.gen_range(ceiling / 2..=ceiling).max(1))
    }

    /// After a successful sign-on the next failure starts from the minimum again.
    pub fn reset(&mut self) {
        self.next_ms = self.min_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(100, 1000);
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for ceiling in ceilings {
            let delay = backoff.next_delay(&mut rng).as_millis() as u64;
            assert!(
                (ceiling / 2..=ceiling).contains(&delay),
                "{delay} within [{}, {ceiling}]",
                ceiling / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay(&mut rng).as_millis() <= 100);
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut rng = StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<u128> = (0..20)
            .map(|_| {
                let mut backoff = Backoff::new(1000, 1000);
                backoff.next_delay(&mut rng).as_millis()
            })
            .collect();
        assert!(delays.len() > 5, "jittered delays differ: {delays:?}");
    }
}
