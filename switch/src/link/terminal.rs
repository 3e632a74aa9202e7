//! The terminal link: a TCP (optionally TLS) server of length-prefixed ISO 8583 frames.
//!
//! Each connection is one task that reads frames, drives its requests' futures (bounded by a
//! per-connection in-flight limit) and writes each batch of responses as they complete: a
//! slow request never holds up the others on its connection (PROTOCOL.md 1, pipelining).
//! The connection keeps the keys of the terminals it serves, learned from the engine, so that
//! its requests check MACs and decrypt PIN blocks before the engine (`authorize::prechecked`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use codec::framing::{FrameCodec, FrameError};
use codec::{MaskedPan, Message};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::authorize;
use crate::authorize::prechecked::Prechecked;
use crate::clock::now_ms;
use crate::host::Host;
use crate::link::respond::{self, Response};
use crate::metrics::ConnectionInFlight;
use crate::state::ids::TerminalId;
use crate::state::registry::TerminalKeys;
use crate::state::HostState;

/// The keys of the terminals seen on one connection.
type KnownKeys = Mutex<HashMap<TerminalId, TerminalKeys>>;

/// Accepts connections until `shutdown`, then returns once every connection has answered what
/// it had taken in (each stops reading at `shutdown`).
pub async fn serve(listener: TcpListener, host: Arc<Host>, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(host.config.terminal_link.max_connections));
    let tls = host.terminal_tls.clone();
    // Shutdown waits for the connections' tasks: a request decided (and durable) but not yet
    // answered when the runtime stopped would leave its terminal to time out and reverse it.
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => {
                tasks.close();
                tasks.wait().await;
                return;
            }
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            host.metrics.connections_rejected.inc();
            warn!(%peer, limit = host.config.terminal_link.max_connections, "connection limit reached: closing");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let host = host.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            host.metrics.connections_open.inc();
            info!(%peer, "terminal connected");
            match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => connection(stream, host.clone(), shutdown).await,
                    Err(error) => warn!(%peer, %error, "TLS handshake failed"),
                },
                None => connection(socket, host.clone(), shutdown).await,
            }
            host.metrics.connections_open.dec();
            info!(%peer, "terminal disconnected");
            drop(permit);
        });
    }
}

async fn connection<S>(stream: S, host: Arc<Host>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let link = &host.config.terminal_link;
    let limit = link.max_in_flight_per_connection;
    assert!(
        limit > 0,
        "the configuration refuses a zero in-flight limit"
    );
    let mut framed = Framed::new(stream, FrameCodec::new(link.max_frame_bytes));
    let known_keys = KnownKeys::default();
    let mut in_flight = host.metrics.request_counts.connection();
    // The connection's requests, polled by this one task: no task, channel or `Arc` per
    // request, and each completes on its own (a top-up waiting on the bank holds up nothing).
    let mut requests = FuturesUnordered::new();
    let idle = Duration::from_millis(link.idle_timeout_ms);
    let idle_timer = tokio::time::sleep(idle);
    let cancelled = shutdown.cancelled();
    tokio::pin!(idle_timer, cancelled);
    let mut last_frame = Instant::now();
    // False once the peer closed, idled, failed or the host shuts down: no new requests are
    // read, the ones started are still answered (SIGTERM drains).
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            Some(answered) = requests.next() => {
                if let Err(error) = write_answers(&mut framed, &mut in_flight, answered, &mut requests).await {
                    debug!(%error, "write failed");
                    break;
                }
            }
            // Backpressure: at the limit, stop reading until a request completes.
            next = framed.next(), if reading && requests.len() < limit => {
                let Some(frame) = read_frame(&host, next, &mut reading) else {
                    continue;
                };
                last_frame = Instant::now();
                // A second frame already read goes with this one: their MACs are checked
                // together. (Polled with a no-op waker: the loop polls again before sleeping.)
                let second = if requests.len() + 1 < limit {
                    framed
                        .next()
                        .now_or_never()
                        .and_then(|next| read_frame(&host, next, &mut reading))
                } else {
                    None
                };
                let submitted = match second {
                    None => [Some(decide(&host, &known_keys, frame)), None],
                    Some(second) => decide_pair(&host, &known_keys, frame, second).map(Some),
                };
                let before = requests.len();
                for submitted in submitted.into_iter().flatten() {
                    requests.push(answer(&host, &known_keys, submitted, last_frame));
                }
                in_flight.started(requests.len() - before);
            }
            // Re-armed from the last frame rather than reset on each one, which costs more.
            () = &mut idle_timer, if reading => {
                let deadline = last_frame + idle;
                if Instant::now() >= deadline {
                    info!("terminal idle too long: closing");
                    reading = false;
                } else {
                    idle_timer.as_mut().reset(deadline.into());
                }
            }
            () = &mut cancelled, if reading => reading = false,
            else => break,
        }
    }
}

/// The frame read, if any; otherwise the connection stops reading (the peer closed, or the
/// frame was refused: counted).
fn read_frame(
    host: &Host,
    next: Option<Result<Bytes, FrameError>>,
    reading: &mut bool,
) -> Option<Bytes> {
    match next {
        Some(Ok(frame)) => Some(frame),
        Some(Err(error)) => {
            *reading = false;
            rejected(host, error);
            None
        }
        None => {
            *reading = false;
            None
        }
    }
}

/// Counts the frame that ended a connection's reading.
fn rejected(host: &Host, error: FrameError) {
    match error {
        FrameError::Oversize { declared, max } => {
            host.metrics
                .frames_rejected
                .with_label_values(&["oversize"])
                .inc();
            warn!(
                declared,
                max, "frame above the maximum size: closing the connection"
            );
        }
        error => debug!(%error, "read failed"),
    }
}

/// Writes `first` and every other answer already complete, then flushes once: one system
/// call for all of them instead of one each. Their MACs are computed up to four at a time
/// first ([`respond::mac_waiting`]).
async fn write_answers<S, F>(
    framed: &mut Framed<S, FrameCodec>,
    in_flight: &mut ConnectionInFlight<'_>,
    first: Option<Response>,
    requests: &mut FuturesUnordered<F>,
) -> Result<(), FrameError>
where
    S: AsyncWrite + Unpin,
    F: Future<Output = Option<Response>>,
{
    let mut answers: Vec<Response> = first.into_iter().collect();
    let mut done = 1;
    // `now_or_never` polls with a no-op waker; the caller's loop polls `requests` again
    // with the task's own before it sleeps, so no wake-up is lost.
    while let Some(Some(next)) = requests.next().now_or_never() {
        answers.extend(next);
        done += 1;
    }
    in_flight.done(done);
    respond::mac_waiting(&mut answers);
    for answer in answers {
        let response = answer.built().expect("every response MACed above");
        framed.feed(response).await?;
    }
    SinkExt::<Bytes>::flush(framed).await
}

/// A request handed to the engine, with the terminal it names; or why its frame did not parse.
type Submitted = Result<(Option<TerminalId>, ledger::Pending<Decided>), codec::ParseError>;

/// One request, from its submission to its response: waits for the engine's decision and
/// builds the response; `None` when there is nothing to answer.
async fn answer(
    host: &Arc<Host>,
    known_keys: &KnownKeys,
    submitted: Submitted,
    started: Instant,
) -> Option<Response> {
    let (terminal, pending) = match submitted {
        Ok(submitted) => submitted,
        Err(error) => return answer_unparsable(host, error).await,
    };
    // In a block: what the engine hands back is gone before the top-up's await below, so it
    // takes no room in the future (async locals keep theirs to the end of their scope).
    let topup = {
        let (decided, times) = pending.timed().await;
        if let Some(times) = &times {
            host.metrics.request_counts.stages(started, times);
        }
        let mut decided = match decided {
            Ok(decided) => decided,
            Err(error) => {
                warn!(%error, "engine unavailable: request not answered");
                return None;
            }
        };
        if let (Some(id), Some(keys)) = (terminal, decided.learned.take()) {
            lock(known_keys).insert(id, keys);
        }
        match decided.bank_step {
            None => return respond(host, &decided.request, &decided.decision, started),
            Some(step) => topup_then_respond(host, step, decided, started),
        }
    };
    topup.await
}

/// A top-up is answered with the bank's decision (`bank::topup`). Boxed, so that only top-ups
/// carry the request and the decision across the bank's round trip.
fn topup_then_respond(
    host: &Arc<Host>,
    step: authorize::BankStep,
    decided: Decided,
    started: Instant,
) -> std::pin::Pin<Box<dyn Future<Output = Option<Response>> + Send + '_>> {
    Box::pin(async move {
        let decision = crate::bank::topup::complete(host, step, decided.decision.mac_key).await?;
        respond(host, &decided.request, &decision, started)
    })
}

/// The response to a decided request, with its log line and metrics.
fn respond(
    host: &Host,
    request: &Message,
    decision: &authorize::Decision,
    started: Instant,
) -> Option<Response> {
    let mti = request.mti();
    let code = std::str::from_utf8(&decision.reply.code).unwrap_or("??");
    if let Some(reason) = decision.reason {
        info!(
            mti = %mti.as_str(),
            stan = request.stan().unwrap_or(0),
            terminal = request.terminal_id().unwrap_or("?"),
            pan = %MaskedPan(request.pan().unwrap_or("")),
            code,
            reason,
            "request declined"
        );
    }
    let response = respond::build(request, decision, &host.policy.currency);
    host.metrics
        .request_counts
        .answered(mti.as_str(), code, started.elapsed());
    match response {
        Ok(response) => Some(response),
        Err(error) => {
            warn!(%error, mti = %mti.as_str(), "could not build the response");
            None
        }
    }
}

/// A request as the engine thread decided it, handed back with the request itself.
struct Decided {
    request: Message,
    decision: authorize::Decision,
    bank_step: Option<authorize::BankStep>,
    /// The terminal's keys, when the connection should learn them (`Prechecked`).
    learned: Option<TerminalKeys>,
}

/// A request parsed, with the terminal it names and the keys its connection knows for it.
struct Parsed {
    request: Message,
    terminal: Option<TerminalId>,
    keys: Option<TerminalKeys>,
}

fn parse(known_keys: &KnownKeys, frame: Bytes) -> Result<Parsed, codec::ParseError> {
    let request = Message::parse(frame)?;
    let terminal = request.terminal_id().and_then(TerminalId::parse);
    let keys = terminal.and_then(|id| lock(known_keys).get(&id).cloned());
    Ok(Parsed {
        request,
        terminal,
        keys,
    })
}

/// Parses a frame, checks its MAC and PIN block here and hands the request to the engine
/// thread. Plain functions rather than part of [`answer`]: the request and its checks are
/// moved into the engine's job, and locals of an `async fn` keep their room in its future
/// even once moved, which every request's future would carry.
fn decide(host: &Host, known_keys: &KnownKeys, frame: Bytes) -> Submitted {
    decide_parsed(host, parse(known_keys, frame))
}

fn decide_parsed(host: &Host, parsed: Result<Parsed, codec::ParseError>) -> Submitted {
    let parsed = parsed?;
    let prechecked = Prechecked::new(&parsed.request, parsed.keys);
    Ok(submit(host, parsed.request, parsed.terminal, prechecked))
}

/// [`decide`] for two frames read together, in order, their MACs checked together.
fn decide_pair(host: &Host, known_keys: &KnownKeys, first: Bytes, second: Bytes) -> [Submitted; 2] {
    match (parse(known_keys, first), parse(known_keys, second)) {
        (Ok(a), Ok(b)) => {
            let [checked_a, checked_b] =
                Prechecked::pair((&a.request, a.keys), (&b.request, b.keys));
            [
                Ok(submit(host, a.request, a.terminal, checked_a)),
                Ok(submit(host, b.request, b.terminal, checked_b)),
            ]
        }
        (a, b) => [a, b].map(|parsed| decide_parsed(host, parsed)),
    }
}

/// Hands a checked request to the engine thread.
fn submit(
    host: &Host,
    request: Message,
    terminal: Option<TerminalId>,
    prechecked: Prechecked,
) -> (Option<TerminalId>, ledger::Pending<Decided>) {
    let policy = host.policy.clone();
    let now = now_ms();
    let gate = authorize::BankGate {
        link_up: host.bank.is_signed_on(),
        saf_depth_max: host.config.bank.saf_depth_max,
    };
    // What the engine will probe for it, fetched while the requests before it run.
    let key = terminal.map(|id| authorize::request_key_of(&request, id));
    let ahead = move |state: &HostState| {
        if let Some(key) = &key {
            state.prefetch_request(key);
        }
    };
    let pending = host.engine.execute_prefetched(ahead, move |tx| {
        let (decision, bank_step) =
            authorize::terminal_request_with_bank(tx, &request, &prechecked, &policy, gate, now);
        let learned = terminal
            .and_then(|id| tx.state().terminals.get(&id))
            .and_then(|terminal| prechecked.keys_to_learn(terminal));
        Decided {
            request,
            decision,
            bank_step,
            learned,
        }
    });
    (terminal, pending)
}

async fn answer_unparsable(host: &Arc<Host>, error: codec::ParseError) -> Option<Response> {
    let terminal = error
        .salvage
        .terminal_id
        .and_then(|t| TerminalId::parse(std::str::from_utf8(&t).ok()?));
    // The MAC key is looked up so that a MAC-enabled terminal's `30` is MACed like any answer.
    let mac_key = match terminal {
        Some(terminal) => host
            .engine
            .execute(move |tx| {
                tx.state()
                    .terminals
                    .get(&terminal)
                    .and_then(|t| t.mac_key())
            })
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match respond::format_error(&error, mac_key.as_ref()) {
        Some(Ok(response)) => {
            info!(%error, "unparsable message answered 30");
            let mti = error
                .salvage
                .mti
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            host.metrics.requests.with_label_values(&[&mti, "30"]).inc();
            Some(Response::Built(response))
        }
        Some(Err(build_error)) => {
            warn!(%error, %build_error, "unparsable message: could not build its 30");
            host.metrics.messages_dropped.inc();
            None
        }
        None => {
            info!(%error, "unparsable message without MTI, F11 and F41: dropped");
            host.metrics.messages_dropped.inc();
            None
        }
    }
}

fn lock(keys: &KnownKeys) -> std::sync::MutexGuard<'_, HashMap<TerminalId, TerminalKeys>> {
    // A panic while holding it cannot leave the map half-changed (one insert or get).
    keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
