//! One simulated terminal: a connection that signs on, then sends its share of the load and
//! matches the responses (PROTOCOL.md 1: by MTI pair, F11 and F41; any order).
//!
//! One task per connection does both directions, so a request and its response never cross
//! threads. Closed loop: `depth` requests in flight, a new one for each response; latency
//! from the real send. Open loop: requests at fixed intended times whatever the host does,
//! latency from the intended time, so a stalled host shows as latency instead of as fewer
//! requests (no coordinated omission).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use codec::security::verify_mac;
use codec::{Field, FrameCodec, Message, Mti};
use futures::{FutureExt, SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::fleet::Fleet;
use crate::mix::{Kind, Mix};
use crate::requests::{self, Original, Outgoing, RequestBuilder};
use crate::stats::{Failure, Stats};

/// Requests in flight on one connection at most, in either mode: enough for any sensible
/// depth, and small enough that a host that stops reading cannot fill the socket buffers in
/// both directions (which would deadlock a task that writes and reads in turn).
pub const IN_FLIGHT_MAX: usize = 512;
/// Approved purchases remembered per terminal for refunds and reversals.
const ORIGINALS_KEPT: usize = 256;
/// Purchase and top-up amounts, minor units.
pub const AMOUNT_MIN_MINOR: u64 = 100;
pub const AMOUNT_MAX_MINOR: u64 = 5_000;

/// tokio's timers fire on a 1 ms grid, after their deadline: open-loop sends are woken this
/// much early, so that timer lag does not count as the host's latency.
const TIMER_SLACK: Duration = Duration::from_millis(1);

#[derive(Copy, Clone, Debug)]
pub enum Pace {
    /// This many requests in flight.
    Closed { depth: usize },
    /// One request every `interval` on this connection.
    Open { interval: Duration },
}

/// How many requests the whole run may still send (`--count`), shared by all terminals.
pub struct Budget(Option<AtomicU64>);

impl Budget {
    pub fn new(count: Option<u64>) -> Budget {
        Budget(count.map(AtomicU64::new))
    }

    /// Takes one request from the budget; false once it is spent.
    fn claim(&self) -> bool {
        match &self.0 {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// What every session shares.
pub struct Shared {
    pub addr: SocketAddr,
    pub fleet: Fleet,
    pub mix: Mix,
    pub pace: Pace,
    pub timeout: Duration,
    pub stats: Stats,
    pub budget: Budget,
    /// Sessions signed on so far (or given up), for the start of the measured period.
    pub ready: AtomicU64,
    pub in_flight: AtomicU64,
    /// Cancelled when the run's duration is over: stop sending, collect what is in flight.
    pub stop: CancellationToken,
}

struct InFlight {
    kind: Kind,
    mti: Mti,
    /// From when latency counts: the send (closed loop) or the intended send (open loop).
    since: Instant,
    card: usize,
    amount_minor: u64,
    f7: [u8; 10],
}

struct Session {
    shared: Arc<Shared>,
    requests: RequestBuilder,
    in_flight: HashMap<u32, InFlight>,
    originals: VecDeque<Original>,
    rng: StdRng,
}

/// Runs terminal `index` from connect to its last response. `sign_on` is held while signing
/// on; `start` gives the measured period's start once every terminal is signed on.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut start: watch::Receiver<Option<Instant>>,
    sign_on: OwnedSemaphorePermit,
) {
    let terminal = shared.fleet.terminals[index].clone();
    let mut session = Session {
        requests: RequestBuilder::new(terminal, &shared.fleet.tak),
        shared: shared.clone(),
        in_flight: HashMap::new(),
        originals: VecDeque::with_capacity(ORIGINALS_KEPT),
        rng: StdRng::from_entropy(),
    };
    let framed = match session.sign_on().await {
        Ok(framed) => Some(framed),
        Err(failure) => {
            shared.stats.failed(failure);
            None
        }
    };
    drop(sign_on);
    shared.ready.fetch_add(1, Ordering::AcqRel);
    let Some(mut framed) = framed else { return };
    let Ok(start) = start
        .wait_for(Option::is_some)
        .await
        .map(|s| s.expect("checked"))
    else {
        return;
    };
    session.load(&mut framed, start).await;
}

pub type Link = Framed<TcpStream, FrameCodec>;

/// Connects to `addr` and signs the terminal of `requests` on (PROTOCOL.md 3.1).
pub async fn connect_signed_on(
    addr: SocketAddr,
    requests: &mut RequestBuilder,
    timeout: Duration,
) -> Result<Link, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, FrameCodec::new(codec::DEFAULT_MAX_FRAME_LEN));
    let request = requests.sign_on().map_err(|_| Failure::SignOn)?;
    let response = exchange(&mut framed, requests, request, timeout)
        .await
        .map_err(|_| Failure::SignOn)?;
    match response.get(Field::ResponseCode) {
        Some(b"00") => Ok(framed),
        _ => Err(Failure::SignOn),
    }
}

/// Sends one request and waits for its checked response (nothing else in flight).
pub async fn exchange(
    link: &mut Link,
    requests: &RequestBuilder,
    request: Outgoing,
    timeout: Duration,
) -> Result<Message, Failure> {
    link.send(request.bytes)
        .await
        .map_err(|_| Failure::Disconnected)?;
    let answer = tokio::time::timeout(timeout, link.next())
        .await
        .map_err(|_| Failure::Timeout)?;
    let Some(Ok(bytes)) = answer else {
        return Err(Failure::Disconnected);
    };
    let response = Message::parse(bytes).map_err(|_| Failure::Unparsable)?;
    check_response(requests, &response, request.mti, request.stan)?;
    Ok(response)
}

/// Checks that a response answers the request sent with `request_mti` and `stan` by the
/// terminal of `requests`, and its MAC.
pub fn check_response(
    requests: &RequestBuilder,
    message: &Message,
    request_mti: Mti,
    stan: u32,
) -> Result<(), Failure> {
    let matches = Some(message.mti()) == request_mti.response()
        && message.stan() == Some(stan)
        && message.terminal_id() == Some(requests.terminal_id());
    if !matches {
        return Err(Failure::Unmatched);
    }
    if let Some(tak) = requests.mac_key() {
        let authentic = match (message.mac(), message.mac_input()) {
            (Some(mac), Some(input)) => verify_mac(tak, input, &mac),
            _ => false,
        };
        if !authentic {
            return Err(Failure::BadMac);
        }
    }
    Ok(())
}

impl Session {
    async fn sign_on(&mut self) -> Result<Link, Failure> {
        connect_signed_on(self.shared.addr, &mut self.requests, self.shared.timeout).await
    }

    /// The measured period: send at the pace, match responses, until stopped or the budget
    /// is spent and everything sent is answered or timed out.
    async fn load(&mut self, framed: &mut Link, start: Instant) {
        let shared = self.shared.clone();
        let mut next_intended = match shared.pace {
            Pace::Open { interval } => start + interval.mul_f64(self.rng.gen::<f64>()),
            Pace::Closed { .. } => start,
        };
        let sweep_every = (shared.timeout / 4).max(Duration::from_millis(10));
        let mut next_sweep = Instant::now() + sweep_every;
        let mut sending = true;
        let timer = tokio::time::sleep_until(next_sweep);
        tokio::pin!(timer);
        loop {
            // Send whatever the pace allows now, then flush once.
            let mut wrote = false;
            while sending && self.in_flight.len() < IN_FLIGHT_MAX {
                let now = Instant::now();
                let since = match shared.pace {
                    Pace::Closed { depth } if self.in_flight.len() < depth => now,
                    // Latency counts from the intended time, or from the real send when the
                    // timer woke us a little early (a true round trip either way).
                    Pace::Open { .. } if next_intended <= now + TIMER_SLACK => {
                        next_intended.min(now)
                    }
                    _ => break,
                };
                if !shared.budget.claim() {
                    sending = false;
                    break;
                }
                if let Pace::Open { interval } = shared.pace {
                    next_intended += interval;
                }
                let Some(bytes) = self.next_request(since) else {
                    continue;
                };
                if framed.feed(bytes).await.is_err() {
                    return self.disconnected();
                }
                wrote = true;
            }
            if wrote && SinkExt::<Bytes>::flush(framed).await.is_err() {
                return self.disconnected();
            }
            if !sending && self.in_flight.is_empty() {
                return;
            }
            let wake = match shared.pace {
                Pace::Open { .. } if sending && self.in_flight.len() < IN_FLIGHT_MAX => {
                    next_sweep.min(next_intended - TIMER_SLACK)
                }
                _ => next_sweep,
            };
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            tokio::select! {
                frame = framed.next() => {
                    let mut frame = frame;
                    // Take every response already read before going back to sending.
                    loop {
                        match frame {
                            Some(Ok(bytes)) => self.on_response(bytes),
                            _ => return self.disconnected(),
                        }
                        match framed.next().now_or_never() {
                            Some(next) => frame = next,
                            None => break,
                        }
                    }
                }
                _ = &mut timer => {}
                _ = shared.stop.cancelled(), if sending => sending = false,
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + sweep_every;
            }
        }
    }

    /// Builds the next request of the mix; `None` (counted as nothing) only if the codec
    /// refuses it, which would be a bug in the fleet's data.
    fn next_request(&mut self, since: Instant) -> Option<Bytes> {
        let shared = self.shared.clone();
        let fleet = &shared.fleet;
        let mut kind = shared.mix.pick(&mut self.rng);
        // A refund or reversal needs an approved purchase of this terminal to refer to.
        let original = match kind {
            Kind::Refund | Kind::Reversal => self.originals.pop_front(),
            _ => None,
        };
        if matches!(kind, Kind::Refund | Kind::Reversal) && original.is_none() {
            kind = Kind::Purchase;
        }
        let card = match &original {
            Some(original) => original.card,
            None => self.rng.gen_range(0..fleet.cards.len()),
        };
        let spec = &fleet.cards[card];
        let amount_minor = match &original {
            Some(original) => original.amount_minor,
            None => self.rng.gen_range(AMOUNT_MIN_MINOR..=AMOUNT_MAX_MINOR),
        };
        let threshold = fleet.plan.pin_threshold_minor;
        let built: Result<Outgoing, _> = match (kind, &original) {
            (Kind::Purchase, _) => self.requests.financial(
                requests::PURCHASE,
                spec,
                Some(amount_minor),
                amount_minor >= threshold,
                None,
            ),
            (Kind::Balance, _) => {
                self.requests
                    .financial(requests::BALANCE, spec, None, threshold == 0, None)
            }
            (Kind::TopUp, _) => {
                self.requests
                    .financial(requests::TOP_UP, spec, Some(amount_minor), true, None)
            }
            (Kind::Refund, Some(original)) => self.requests.financial(
                requests::REFUND,
                spec,
                Some(amount_minor),
                false,
                Some(&original.rrn),
            ),
            (Kind::Reversal, Some(original)) => self.requests.reversal(spec, original),
            (Kind::Refund | Kind::Reversal, None) => unreachable!("turned into a purchase"),
        };
        let outgoing = match built {
            Ok(outgoing) => outgoing,
            Err(error) => {
                tracing::error!(%error, kind = kind.name(), "could not build a request");
                return None;
            }
        };
        self.in_flight.insert(
            outgoing.stan,
            InFlight {
                kind,
                mti: outgoing.mti,
                since,
                card,
                amount_minor,
                f7: outgoing.f7,
            },
        );
        shared.stats.sent(kind);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(outgoing.bytes)
    }

    fn check(&self, message: &Message, request_mti: Mti, stan: u32) -> Result<(), Failure> {
        check_response(&self.requests, message, request_mti, stan)
    }

    fn on_response(&mut self, bytes: Bytes) {
        let stats = &self.shared.stats;
        let Ok(response) = Message::parse(bytes) else {
            return stats.failed(Failure::Unparsable);
        };
        let Some(request) = response
            .stan()
            .and_then(|stan| self.in_flight.remove(&stan))
        else {
            return stats.failed(Failure::Unmatched);
        };
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let stan = response.stan().expect("matched by it");
        if let Err(failure) = self.check(&response, request.mti, stan) {
            return stats.failed(failure);
        }
        let code = response.get(Field::ResponseCode).unwrap_or(b"??");
        stats.answered(request.kind, code, request.since.elapsed());
        if request.kind == Kind::Purchase && code == b"00" {
            if let Some(rrn) = response.get(Field::Rrn).and_then(|r| r.try_into().ok()) {
                if self.originals.len() == ORIGINALS_KEPT {
                    self.originals.pop_front();
                }
                self.originals.push_back(Original {
                    card: request.card,
                    amount_minor: request.amount_minor,
                    stan,
                    f7: request.f7,
                    rrn,
                });
            }
        }
    }

    /// Gives up on requests older than the timeout.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.shared.timeout;
        let before = self.in_flight.len();
        self.in_flight
            .retain(|_, request| now.duration_since(request.since) < timeout);
        let expired = (before - self.in_flight.len()) as u64;
        for _ in 0..expired {
            self.shared.stats.failed(Failure::Timeout);
        }
        self.shared.in_flight.fetch_sub(expired, Ordering::Relaxed);
    }

    fn disconnected(&mut self) {
        let lost = self.in_flight.len() as u64;
        for _ in 0..lost {
            self.shared.stats.failed(Failure::Disconnected);
        }
        self.shared.in_flight.fetch_sub(lost, Ordering::Relaxed);
        self.in_flight.clear();
    }
}
