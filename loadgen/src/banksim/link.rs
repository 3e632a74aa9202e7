//! The bank's side of the link: one task per connection from the host, answering its
//! requests (each after the delay the control port set, or not at all when told to drop),
//! and sending the bank's own 0800s (cutover) when asked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use codec::framing::FrameCodec;
use codec::{Field, Message, MessageBuilder, Mti};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::bank::Received;
use super::Sim;

/// Open connections from the host, by id: their writers, to push the bank's own requests
/// and to close them on `kill`.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, mpsc::Sender<Option<Bytes>>>>,
    stan: AtomicU32,
}

impl Connections {
    /// Sends `build(stan)` on every open connection; returns how many got it.
    pub fn broadcast(&self, build: impl Fn(u32) -> Bytes) -> usize {
        let open: Vec<_> = self.open.lock().expect("lock").values().cloned().collect();
        let mut sent = 0;
        for writer in open {
            let stan = 1 + self.stan.fetch_add(1, Ordering::Relaxed) % 999_999;
            if writer.try_send(Some(build(stan))).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Closes every open connection (the link "killed"); returns how many.
    pub fn kill_all(&self) -> usize {
        let open: Vec<_> = self.open.lock().expect("lock").drain().collect();
        for (_, writer) in &open {
            let _ = writer.try_send(None);
        }
        open.len()
    }
}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    sim: Arc<Sim>,
) -> anyhow::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        if sim.bank.lock().expect("lock").refuse_connections {
            sim.bank.lock().expect("lock").counters.connections_refused += 1;
            drop(socket);
            continue;
        }
        sim.bank.lock().expect("lock").counters.connections_accepted += 1;
        let _ = socket.set_nodelay(true);
        let sim = sim.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => {
                        println!("banksim: host connected from {peer} over TLS");
                        connection(stream, sim).await
                    }
                    Err(error) => {
                        sim.bank
                            .lock()
                            .expect("lock")
                            .counters
                            .tls_handshakes_failed += 1;
                        println!("banksim: TLS handshake with {peer} failed: {error}");
                    }
                },
                None => {
                    println!("banksim: host connected from {peer}");
                    connection(socket, sim).await
                }
            }
        });
    }
}

async fn connection<S>(stream: S, sim: Arc<Sim>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut frames = FramedRead::new(reader, FrameCodec::new(4096));
    let (outbox, mut outgoing) = mpsc::channel::<Option<Bytes>>(1024);
    let id = sim.connections.next_id.fetch_add(1, Ordering::Relaxed);
    sim.connections
        .open
        .lock()
        .expect("lock")
        .insert(id, outbox.clone());
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(writer, FrameCodec::new(4096));
        // `None` is the order to close the connection.
        while let Some(Some(frame)) = outgoing.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Ok(message) = Message::parse(frame) else {
                    println!("banksim: unparsable message from the host");
                    continue;
                };
                if message.mti().is_request() {
                    let sim = sim.clone();
                    let outbox = outbox.clone();
                    tokio::spawn(async move { answer(&sim, message, &outbox).await });
                } else {
                    record_response(&sim, &message);
                }
            }
            _ = outbox.closed() => break,
        }
        if writer.is_finished() {
            break;
        }
    }
    sim.connections.open.lock().expect("lock").remove(&id);
    writer.abort();
    println!("banksim: host connection closed");
}

fn record_response(sim: &Sim, message: &Message) {
    if message.mti() == Mti::NETWORK_RESPONSE {
        let code = message
            .get_str(Field::ResponseCode)
            .unwrap_or("")
            .to_owned();
        let f70 = message.network_code().unwrap_or(0);
        sim.bank
            .lock()
            .expect("lock")
            .network_answers
            .push((f70, code));
    }
}

async fn answer(sim: &Sim, request: Message, outbox: &mpsc::Sender<Option<Bytes>>) {
    let mti = request.mti().as_str().to_owned();
    let stan = request.stan().unwrap_or(0);
    let (answer_it, delay_ms) = sim.bank.lock().expect("lock").rule_for(&mti);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let original = request.get_str(Field::OriginalData).map(str::to_owned);
    if !answer_it {
        sim.bank.lock().expect("lock").received.push(Received {
            mti,
            stan,
            original,
            answered: None,
        });
        return;
    }
    let response = decide(sim, &request);
    let code = response
        .as_ref()
        .ok()
        .and_then(|b| Message::parse(b.clone()).ok())
        .and_then(|m| m.get_str(Field::ResponseCode).map(str::to_owned));
    sim.bank.lock().expect("lock").received.push(Received {
        mti,
        stan,
        original,
        answered: code,
    });
    match response {
        Ok(response) => {
            let _ = outbox.send(Some(response)).await;
        }
        Err(error) => println!("banksim: cannot answer: {error}"),
    }
}

fn decide(sim: &Sim, request: &Message) -> anyhow::Result<Bytes> {
    use Field::*;
    let f7 = request
        .get_str(TransmissionDateTime)
        .unwrap_or("")
        .to_owned();
    let stan = request.stan().unwrap_or(0);
    match request.mti() {
        Mti::NETWORK_REQUEST => {
            let mut b = MessageBuilder::response_to(
                request,
                &[
                    TransmissionDateTime,
                    Stan,
                    AcquiringInstitution,
                    NetworkCode,
                ],
            );
            if request.network_code() == Some(1) {
                sim.bank.lock().expect("lock").counters.sign_ons += 1;
            }
            b.set(ResponseCode, b"00")?;
            Ok(b.build()?)
        }
        Mti::FINANCIAL_REQUEST => {
            let echoed = [
                Pan,
                ProcessingCode,
                Amount,
                TransmissionDateTime,
                Stan,
                LocalTime,
                LocalDate,
                AcquiringInstitution,
                Rrn,
                TerminalId,
                MerchantId,
                Currency,
                AccountId1,
            ];
            let mut b = MessageBuilder::response_to(request, &echoed);
            if request.processing_code() != Some(400_000) {
                b.set(ResponseCode, b"12")?;
                return Ok(b.build()?);
            }
            let account = request.pan().unwrap_or("").to_owned();
            let amount = request.amount_minor().unwrap_or(0);
            let decision = sim
                .bank
                .lock()
                .expect("lock")
                .authorize(&account, amount, (stan, f7));
            b.set(ResponseCode, decision.code.as_bytes())?;
            if let Some(approval) = decision.approval {
                b.set(ApprovalCode, approval.as_bytes())?;
            }
            Ok(b.build()?)
        }
        Mti::REVERSAL_ADVICE | Mti::REVERSAL_ADVICE_REPEAT => {
            let mut b = MessageBuilder::response_to(
                request,
                &[
                    Pan,
                    ProcessingCode,
                    Amount,
                    TransmissionDateTime,
                    Stan,
                    AcquiringInstitution,
                    Rrn,
                    TerminalId,
                    MerchantId,
                    Currency,
                    OriginalData,
                    AccountId1,
                ],
            );
            if let Some(f90) = request.get_str(OriginalData).filter(|f| f.len() == 42) {
                let original_stan = f90[4..10].parse().unwrap_or(0);
                let original_f7 = f90[10..20].to_owned();
                sim.bank
                    .lock()
                    .expect("lock")
                    .reverse((original_stan, original_f7));
            }
            b.set(ResponseCode, b"00")?;
            Ok(b.build()?)
        }
        Mti::RECONCILIATION_REQUEST => {
            let mut b = MessageBuilder::response_to(
                request,
                &[
                    ProcessingCode,
                    TransmissionDateTime,
                    Stan,
                    SettlementDate,
                    AcquiringInstitution,
                    PrivateData,
                ],
            );
            let checked = super::clearing::check(&sim.outbox_dir, request);
            let mut bank = sim.bank.lock().expect("lock");
            let code: &[u8] = match &checked {
                Ok(name) => {
                    println!("banksim: clearing file {name} accepted");
                    bank.counters.clearing_accepted += 1;
                    b"00"
                }
                Err(reason) => {
                    println!("banksim: clearing hand-off rejected: {reason}");
                    bank.counters.clearing_rejected += 1;
                    b"95"
                }
            };
            b.set(ResponseCode, code)?;
            Ok(b.build()?)
        }
        other => {
            let mut b = MessageBuilder::response_to(request, &[Stan, TerminalId]);
            b.set(ResponseCode, b"12")?;
            println!("banksim: {} is not a bank link request", other.as_str());
            Ok(b.build()?)
        }
    }
}

/// The bank's own 0800 with network code F70 (201 cutover, 301 echo).
pub fn network_request(network_code: u64, stan: u32) -> Bytes {
    let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
    let f7 = crate::clock::WireTime::now().f7;
    b.set(Field::TransmissionDateTime, &f7)
        .and_then(|b| b.set_numeric(Field::Stan, stan as u64))
        .and_then(|b| b.set_numeric(Field::NetworkCode, network_code))
        .expect("valid fields");
    b.build().expect("small message")
}
