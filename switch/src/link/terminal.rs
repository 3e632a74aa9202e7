//! The terminal link: a TCP (optionally TLS) server of length-prefixed ISO 8583 frames.
//!
//! Each connection has a reader that decodes frames and starts one task per request, bounded
//! by a per-connection in-flight limit, and a writer that sends responses as they complete:
//! a slow request never holds up the others on its connection (PROTOCOL.md 1, pipelining).
//! The connection keeps the keys of the terminals it serves, learned from the engine, so that
//! its tasks check MACs and decrypt PIN blocks before the engine (`authorize::prechecked`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use codec::framing::{FrameCodec, FrameError};
use codec::{MaskedPan, Message};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::authorize;
use crate::authorize::prechecked::Prechecked;
use crate::clock::now_ms;
use crate::host::Host;
use crate::link::respond;
use crate::state::ids::TerminalId;
use crate::state::registry::TerminalKeys;

/// The keys of the terminals seen on one connection.
type KnownKeys = Arc<Mutex<HashMap<TerminalId, TerminalKeys>>>;

pub async fn serve(listener: TcpListener, host: Arc<Host>, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(host.config.terminal_link.max_connections));
    let tls = host.terminal_tls.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
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
        tokio::spawn(async move {
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
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let link = &host.config.terminal_link;
    let (reader, writer) = tokio::io::split(stream);
    let mut frames = FramedRead::new(reader, FrameCodec::new(link.max_frame_bytes));
    let (responses, mut outbox) = mpsc::channel::<Bytes>(link.max_in_flight_per_connection);
    let write_codec = FrameCodec::new(link.max_frame_bytes);
    let writer_task = tokio::spawn(async move {
        let mut sink = FramedWrite::new(writer, write_codec);
        while let Some(frame) = outbox.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(link.max_in_flight_per_connection));
    let known_keys = KnownKeys::default();
    let idle = Duration::from_millis(link.idle_timeout_ms);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle, frames.next()) => next,
            _ = shutdown.cancelled() => break,
        };
        let frame = match next {
            Err(_) => {
                info!("terminal idle too long: closing");
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(FrameError::Oversize { declared, max }))) => {
                host.metrics
                    .frames_rejected
                    .with_label_values(&["oversize"])
                    .inc();
                warn!(
                    declared,
                    max, "frame above the maximum size: closing the connection"
                );
                break;
            }
            Ok(Some(Err(error))) => {
                debug!(%error, "read failed");
                break;
            }
        };
        // Backpressure: at the limit, stop reading until a request completes.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let host = host.clone();
        let responses = responses.clone();
        let known_keys = known_keys.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            host.metrics.in_flight.inc();
            if let Some(response) = answer(&host, &known_keys, frame, started).await {
                let _ = responses.send(response).await;
            }
            host.metrics.in_flight.dec();
            drop(permit);
        });
    }
    // Let requests already started finish and be answered (SIGTERM drains).
    let _ = in_flight
        .acquire_many(link.max_in_flight_per_connection as u32)
        .await;
    drop(responses);
    let _ = writer_task.await;
}

/// Decides one frame and builds its response; `None` when there is nothing to answer.
async fn answer(
    host: &Arc<Host>,
    known_keys: &KnownKeys,
    frame: Bytes,
    started: Instant,
) -> Option<Bytes> {
    let request = match Message::parse(frame) {
        Ok(request) => request,
        Err(error) => return answer_unparsable(host, error).await,
    };
    let mti = request.mti();
    let terminal = request.terminal_id().and_then(TerminalId::parse);
    let keys = terminal.and_then(|id| lock(known_keys).get(&id).cloned());
    let prechecked = Prechecked::new(&request, keys);
    let policy = host.policy.clone();
    let now = now_ms();
    let gate = authorize::BankGate {
        link_up: host.bank.is_signed_on(),
        saf_depth_max: host.config.bank.saf_depth_max,
    };
    let decided = host
        .engine
        .execute(move |tx| {
            let (decision, bank_step) = authorize::terminal_request_with_bank(
                tx,
                &request,
                &prechecked,
                &policy,
                gate,
                now,
            );
            let learned = terminal
                .and_then(|id| tx.state().terminals.get(&id))
                .and_then(|terminal| prechecked.keys_to_learn(terminal));
            (request, decision, bank_step, learned)
        })
        .await;
    let (request, mut decision, bank_step, learned) = match decided {
        Ok(decided) => decided,
        Err(error) => {
            warn!(%error, "engine unavailable: request not answered");
            return None;
        }
    };
    if let (Some(id), Some(keys)) = (terminal, learned) {
        lock(known_keys).insert(id, keys);
    }
    // A top-up is answered with the bank's decision (bank::topup).
    if let Some(step) = bank_step {
        // Boxed: the bank's round trip would otherwise make every request's task larger.
        decision = Box::pin(crate::bank::topup::complete(host, step, decision.mac_key)).await?;
    }
    let code = std::str::from_utf8(&decision.reply.code)
        .unwrap_or("??")
        .to_owned();
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
    host.metrics
        .requests
        .with_label_values(&[mti.as_str(), &code])
        .inc();
    let response = respond::build(&request, &decision, &host.policy.currency);
    host.metrics
        .request_seconds
        .with_label_values(&[mti.as_str()])
        .observe(started.elapsed().as_secs_f64());
    match response {
        Ok(response) => Some(response),
        Err(error) => {
            warn!(%error, mti = %mti.as_str(), "could not build the response");
            None
        }
    }
}

async fn answer_unparsable(host: &Arc<Host>, error: codec::ParseError) -> Option<Bytes> {
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
            Some(response)
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
