//! The bank link (PROTOCOL.md 4): the host is a client of the partner bank's host.
//!
//! - `session`: one task that connects, signs on, echoes while idle, answers the bank's own
//!   0800s, detects a dead link and reconnects with back-off (`backoff`), over TCP or TLS
//!   (`tls`);
//! - [`BankLink`]: the handle everyone else uses: the link's state, and requests matched to
//!   their responses by STAN, with a bound on how many are in flight;
//! - `topup`: the bank half of a kiosk top-up; `saf`: the store-and-forward sender of
//!   reversal advices and clearing hand-offs; `messages`: what the host sends the bank.

pub mod backoff;
pub mod messages;
pub mod saf;
pub mod session;
pub mod tls;
pub mod topup;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use codec::{Message, Mti};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::metrics::Metrics;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    Down = 0,
    Connecting = 1,
    SignedOn = 2,
}

impl LinkState {
    pub const ALL: [LinkState; 3] = [LinkState::Down, LinkState::Connecting, LinkState::SignedOn];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::Connecting => "connecting",
            LinkState::SignedOn => "signed_on",
        }
    }

    fn from_u8(value: u8) -> LinkState {
        match value {
            2 => LinkState::SignedOn,
            1 => LinkState::Connecting,
            _ => LinkState::Down,
        }
    }
}

/// Why a request to the bank got no response.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// The link is not signed on, or too many requests are in flight: nothing was sent.
    #[error("bank link not signed on or at its in-flight limit: nothing sent")]
    NotSent,
    /// Sent (or possibly sent) and not answered in time, or the link dropped meanwhile.
    #[error("no answer from the bank in time")]
    NoAnswer,
}

/// (response MTI, STAN): how a response finds its request.
type WaiterKey = ([u8; 4], u32);

/// The shared handle of the bank link.
pub struct BankLink {
    configured: bool,
    state: AtomicU8,
    /// The signed-on connection's writer, when there is one.
    writer: Mutex<Option<mpsc::Sender<Bytes>>>,
    waiters: Mutex<HashMap<WaiterKey, oneshot::Sender<Message>>>,
    in_flight: Semaphore,
    /// Network management STANs (sign-on, echo): 900000..=999999, in memory.
    network_stan: AtomicU32,
    /// Woken when the link signs on or an advice is queued.
    pub saf_wakeup: Notify,
}

impl BankLink {
    pub fn new(configured: bool, max_in_flight: usize) -> BankLink {
        BankLink {
            configured,
            state: AtomicU8::new(LinkState::Down as u8),
            writer: Mutex::new(None),
            waiters: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(max_in_flight),
            network_stan: AtomicU32::new(0),
            saf_wakeup: Notify::new(),
        }
    }

    /// Whether a bank address is configured at all.
    pub fn configured(&self) -> bool {
        self.configured
    }

    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn is_signed_on(&self) -> bool {
        self.state() == LinkState::SignedOn
    }

    pub(crate) fn set_state(&self, state: LinkState, metrics: &Metrics) {
        let previous = LinkState::from_u8(self.state.swap(state as u8, Ordering::AcqRel));
        for each in LinkState::ALL {
            metrics
                .bank_link_state
                .with_label_values(&[each.as_str()])
                .set((each == state) as i64);
        }
        if previous != state {
            tracing::info!(
                from = previous.as_str(),
                to = state.as_str(),
                "bank link state"
            );
        }
    }

    pub(crate) fn next_network_stan(&self) -> u32 {
        900_000 + self.network_stan.fetch_add(1, Ordering::Relaxed) % 100_000
    }

    /// Publishes (or withdraws) the signed-on connection's writer.
    pub(crate) fn set_writer(&self, writer: Option<mpsc::Sender<Bytes>>) {
        *self.writer.lock().expect("writer lock") = writer;
    }

    /// Fails every request waiting for a response: the connection they went out on is gone.
    pub(crate) fn drop_waiters(&self) {
        self.waiters.lock().expect("waiters lock").clear();
    }

    /// Hands a response to the request waiting for it; false when nobody waits (it came
    /// after its timeout, or was never asked for).
    pub(crate) fn deliver(&self, response: Message) -> bool {
        let Some(stan) = response.stan() else {
            return false;
        };
        let key = (*response.mti().as_bytes(), stan);
        let waiter = self.waiters.lock().expect("waiters lock").remove(&key);
        match waiter {
            Some(waiter) => waiter.send(response).is_ok(),
            None => false,
        }
    }

    /// Sends `frame` (a request whose F11 is `stan`) and waits for its response.
    pub async fn request(
        &self,
        frame: Bytes,
        mti: Mti,
        stan: u32,
        timeout: Duration,
    ) -> Result<Message, BankError> {
        let response_mti = mti.response().expect("a request MTI");
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(BankError::NotSent);
        };
        let writer = self.writer.lock().expect("writer lock").clone();
        let Some(writer) = writer.filter(|_| self.is_signed_on()) else {
            return Err(BankError::NotSent);
        };
        let key = (*response_mti.as_bytes(), stan);
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(key, sender);
        if writer.send(frame).await.is_err() {
            self.waiters.lock().expect("waiters lock").remove(&key);
            return Err(BankError::NotSent);
        }
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(BankError::NoAnswer),
            Err(_) => {
                self.waiters.lock().expect("waiters lock").remove(&key);
                Err(BankError::NoAnswer)
            }
        }
    }
}
