//! The bank link's connection task (PROTOCOL.md 4.1): connect, sign on, then serve the
//! connection (responses to their waiters, the bank's own 0800s answered, echoes while idle)
//! until it dies: dropped socket, unreadable frame, or three echoes unanswered. Then back off
//! and start again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use codec::framing::FrameCodec;
use codec::{Field, Message, Mti, ResponseCode};
use futures::{SinkExt, StreamExt};
use rand::SeedableRng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::messages::{self, CUTOVER, ECHO, SIGN_ON};
use super::LinkState;
use crate::clock::now_ms;
use crate::host::Host;

/// Echoes sent without any frame from the bank in between that mark the link dead.
const ECHOES_UNANSWERED_MAX: u32 = 3;

pub async fn run(host: Arc<Host>, tls: Option<TlsConnector>, shutdown: CancellationToken) {
    let config = &host.config.bank;
    let Some(addr) = config.addr.clone() else {
        return;
    };
    let mut backoff = Backoff::new(config.reconnect_min_ms, config.reconnect_max_ms);
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        host.bank.set_state(LinkState::Connecting, &host.metrics);
        let ended = tokio::select! {
            ended = connect_and_serve(&host, &addr, tls.as_ref(), &mut backoff) => ended,
            _ = shutdown.cancelled() => break,
        };
        host.bank.set_writer(None);
        host.bank.drop_waiters();
        host.bank.set_state(LinkState::Down, &host.metrics);
        let reason = ended.err().unwrap_or_else(|| anyhow!("connection ended"));
        let delay = backoff.next_delay(&mut rng);
        host.metrics.bank_reconnects.inc();
        warn!(addr = %addr, reason = %format!("{reason:#}"), delay_ms = delay.as_millis() as u64, "bank link down: reconnecting after back-off");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    host.bank.set_writer(None);
    host.bank.drop_waiters();
    host.bank.set_state(LinkState::Down, &host.metrics);
}

async fn connect_and_serve(
    host: &Arc<Host>,
    addr: &str,
    tls: Option<&TlsConnector>,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(host.config.bank.timeout_ms);
    let socket = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connect timed out"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    if is_connected_to_itself(&socket) {
        bail!("connected to itself: nothing listens on {addr}");
    }
    let _ = socket.set_nodelay(true);
    match tls {
        Some(connector) => {
            let name = super::tls::server_name(&host.config.bank, addr)?;
            let stream = tokio::time::timeout(timeout, connector.connect(name, socket))
                .await
                .map_err(|_| anyhow!("TLS handshake timed out"))?
                .context("TLS handshake with the bank failed")?;
            serve(host, stream, backoff).await
        }
        None => serve(host, socket, backoff).await,
    }
}

/// Whether the connection is TCP's self-connect: with the bank down and its port in the
/// local ephemeral range, a connect to a loopback address can be given that very port as its
/// source and "succeed" (simultaneous open). The link would then sign on to itself and hold
/// the port the bank needs to listen on.
fn is_connected_to_itself(socket: &TcpStream) -> bool {
    matches!((socket.local_addr(), socket.peer_addr()), (Ok(local), Ok(peer)) if local == peer)
}

/// Aborts the connection's writer when the session ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve<S>(host: &Arc<Host>, stream: S, backoff: &mut Backoff) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let config = &host.config.bank;
    let max_frame = host.config.terminal_link.max_frame_bytes;
    let institution = host.policy.institution_id.clone();
    let (reader, writer) = tokio::io::split(stream);
    let mut frames = FramedRead::new(reader, FrameCodec::new(max_frame));
    let (outbox, mut outgoing) = mpsc::channel::<Bytes>(config.max_in_flight + 16);
    let _writer = AbortOnDrop(tokio::spawn(async move {
        let mut sink = FramedWrite::new(writer, FrameCodec::new(max_frame));
        while let Some(frame) = outgoing.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    }));

    // Sign on: no financial traffic before the bank's 0810 `00` (4.1).
    let sign_on_stan = host.bank.next_network_stan();
    outbox
        .send(messages::network_request(
            SIGN_ON,
            sign_on_stan,
            &institution,
            now_ms(),
        )?)
        .await
        .map_err(|_| anyhow!("connection closed before sign-on"))?;
    let deadline = tokio::time::sleep(Duration::from_millis(config.timeout_ms));
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = &mut deadline => bail!("no answer to sign-on"),
        };
        let message = read(frame)?;
        let Some(message) = message else { continue };
        if message.mti() == Mti::NETWORK_RESPONSE && message.stan() == Some(sign_on_stan) {
            let code = message.get_str(Field::ResponseCode).unwrap_or("");
            if code != ResponseCode::Approved.as_str() {
                bail!("sign-on refused by the bank with {code:?}");
            }
            break;
        }
        if message.mti().is_request() {
            answer_bank_request(host, &message, &outbox, &institution).await?;
        }
    }
    host.bank.set_writer(Some(outbox.clone()));
    host.bank.set_state(LinkState::SignedOn, &host.metrics);
    backoff.reset();
    host.bank.saf_wakeup.notify_one();

    let mut echo = tokio::time::interval(Duration::from_millis(config.echo_interval_ms));
    echo.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    echo.tick().await;
    let mut heard_since_tick = false;
    let mut echoes_unanswered = 0u32;
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(message) = read(frame)? else { continue };
                heard_since_tick = true;
                echoes_unanswered = 0;
                if message.mti().is_request() {
                    answer_bank_request(host, &message, &outbox, &institution).await?;
                } else if message.mti() == Mti::NETWORK_RESPONSE {
                    debug!(stan = message.stan().unwrap_or(0), "bank answered a network message");
                } else if !host.bank.deliver(message) {
                    info!("response from the bank that nobody waits for (late or unknown): ignored");
                }
            }
            _ = echo.tick() => {
                if heard_since_tick {
                    heard_since_tick = false;
                    continue;
                }
                if echoes_unanswered >= ECHOES_UNANSWERED_MAX {
                    bail!("{ECHOES_UNANSWERED_MAX} echoes unanswered: link dead");
                }
                let stan = host.bank.next_network_stan();
                outbox
                    .send(messages::network_request(ECHO, stan, &institution, now_ms())?)
                    .await
                    .map_err(|_| anyhow!("connection closed"))?;
                echoes_unanswered += 1;
            }
        }
    }
}

/// The next message, `None` for one that cannot be parsed (logged, skipped), or the reason
/// the connection is over.
fn read(
    frame: Option<Result<Bytes, codec::framing::FrameError>>,
) -> anyhow::Result<Option<Message>> {
    let frame = match frame {
        None => bail!("the bank closed the connection"),
        Some(Err(error)) => bail!("bank link read failed: {error}"),
        Some(Ok(frame)) => frame,
    };
    match Message::parse(frame) {
        Ok(message) => Ok(Some(message)),
        Err(error) => {
            warn!(%error, "unparsable message from the bank: skipped");
            Ok(None)
        }
    }
}

/// The bank's own 0800s are answered `00` (4.1); a cutover also closes the business day.
async fn answer_bank_request(
    host: &Arc<Host>,
    request: &Message,
    outbox: &mpsc::Sender<Bytes>,
    institution: &str,
) -> anyhow::Result<()> {
    if request.mti() != Mti::NETWORK_REQUEST {
        warn!(mti = %request.mti().as_str(), "request from the bank that this host does not take: ignored");
        return Ok(());
    }
    let response = messages::network_response(request, institution)?;
    outbox
        .send(response)
        .await
        .map_err(|_| anyhow!("connection closed"))?;
    if request.network_code() == Some(CUTOVER) {
        info!("cutover from the bank: closing the business day");
        let host = host.clone();
        tokio::spawn(async move {
            if let Err(error) = crate::day::close_current(&host, crate::day::Trigger::Bank).await {
                warn!(%error, "day close on the bank's cutover failed");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_to_itself_is_told_from_a_connection_to_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to_listener = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!is_connected_to_itself(&to_listener));

        // A socket bound to a free port and connected to that same port: the self-connect a
        // bank link can fall into by chance, made on purpose.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(port).unwrap();
        let to_itself = socket.connect(port).await.unwrap();
        assert!(is_connected_to_itself(&to_itself));
    }
}
