//! `loadgen echo-host`: the baseline for "how close to the wire is Bursar". It reads frames
//! with the same codec and framing, answers every request with a fixed approval shaped like
//! the host's (response MTI, the fields a host echoes, F39 = `00`, and F15/F37/F38/F54 where
//! the host sets them, MACed for a request that carries a MAC), and does nothing else: no
//! state, no checks, no disk.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use codec::security::{retail_mac, TdesKey};
use codec::{BuildError, Field, FrameCodec, Message, MessageBuilder, Mti};
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use crate::clock::WireTime;
use crate::fleet::LOADGEN_TAK;

#[derive(Debug, Args)]
pub struct EchoHostArgs {
    /// Listen on HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8583")]
    pub addr: SocketAddr,
    /// MAC key for responses to requests that carry a MAC (32 hex digits); loadgen's
    /// terminals use this one.
    #[arg(long, default_value = LOADGEN_TAK)]
    pub tak: String,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The balance every approval reports (F54): 1,000.00.
const BALANCE_F54: &[u8] = b"0002156C000000100000";

pub fn main(args: EchoHostArgs) -> anyhow::Result<()> {
    let tak = TdesKey::from_hex(&args.tak).map_err(|e| anyhow::anyhow!("--tak: {e}"))?;
    let runtime = crate::runtime(args.threads)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        eprintln!("echo host listening on {}", listener.local_addr()?);
        serve(listener, tak).await
    })
}

pub async fn serve(listener: TcpListener, tak: TdesKey) -> anyhow::Result<()> {
    let host = Arc::new(EchoHost {
        tak,
        next_rrn: AtomicU64::new(1),
    });
    loop {
        let (socket, _) = listener.accept().await.context("accept")?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(host.clone().connection(socket));
    }
}

struct EchoHost {
    tak: TdesKey,
    next_rrn: AtomicU64,
}

impl EchoHost {
    async fn connection(self: Arc<Self>, socket: TcpStream) {
        let mut framed = Framed::new(socket, FrameCodec::new(codec::DEFAULT_MAX_FRAME_LEN));
        while let Some(Ok(frame)) = framed.next().await {
            let mut frame = frame;
            // Answer every request already read, then write them all at once.
            loop {
                if let Some(response) = self.answer(frame) {
                    if framed.feed(response).await.is_err() {
                        return;
                    }
                }
                match framed.next().now_or_never() {
                    Some(Some(Ok(next))) => frame = next,
                    Some(_) => return,
                    None => break,
                }
            }
            if SinkExt::<Bytes>::flush(&mut framed).await.is_err() {
                return;
            }
        }
    }

    /// The approval of a request; `None` for what cannot be parsed or is not a request.
    fn answer(&self, frame: Bytes) -> Option<Bytes> {
        let request = Message::parse(frame).ok()?;
        let response = approval(&request, || self.next_rrn.fetch_add(1, Ordering::Relaxed));
        let built = response.and_then(|response| match request.mac() {
            Some(_) => response.build_with_mac(|data| retail_mac(&self.tak, data)),
            None => response.build(),
        });
        built.ok()
    }
}

fn approval(
    request: &Message,
    next_rrn: impl FnOnce() -> u64,
) -> Result<MessageBuilder, BuildError> {
    let mti = request.mti();
    let mut response = MessageBuilder::try_response_to(request, mti.echoed_fields())?;
    response.set(Field::ResponseCode, b"00")?;
    let today = WireTime::now();
    match mti {
        Mti::NETWORK_REQUEST => {
            if request.network_code() == Some(1) {
                response.set(Field::SettlementDate, today.local_date())?;
            }
        }
        Mti::AUTHORIZATION_REQUEST => {
            response.set(Field::AdditionalAmounts, BALANCE_F54)?;
        }
        Mti::FINANCIAL_REQUEST | Mti::FINANCIAL_ADVICE | Mti::FINANCIAL_ADVICE_REPEAT => {
            let rrn = next_rrn() % 1_000_000_000_000;
            response
                .set(Field::SettlementDate, today.local_date())?
                .set(Field::Rrn, format!("{rrn:012}").as_bytes())?
                .set(
                    Field::ApprovalCode,
                    format!("A{:05}", rrn % 100_000).as_bytes(),
                )?
                .set(Field::AdditionalAmounts, BALANCE_F54)?;
        }
        _ => {
            response.set(Field::SettlementDate, today.local_date())?;
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approves_a_purchase_like_the_host() {
        let mut request = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        request
            .set(Field::Pan, b"6290001234567893")
            .unwrap()
            .set_numeric(Field::ProcessingCode, 0)
            .unwrap()
            .set_numeric(Field::Amount, 1250)
            .unwrap()
            .set(Field::TransmissionDateTime, b"0101120000")
            .unwrap()
            .set_numeric(Field::Stan, 17)
            .unwrap()
            .set_text(Field::TerminalId, "T0000001")
            .unwrap();
        let request = Message::parse(request.build().unwrap()).unwrap();
        let response = approval(&request, || 42).unwrap().build().unwrap();
        let response = Message::parse(response).unwrap();
        assert_eq!(response.mti(), Mti::FINANCIAL_RESPONSE);
        assert_eq!(response.get_str(Field::ResponseCode), Some("00"));
        assert_eq!(response.stan(), Some(17));
        assert_eq!(response.amount_minor(), Some(1250));
        assert_eq!(response.rrn(), Some("000000000042"));
        assert_eq!(response.approval_code(), Some("A00042"));
        assert_eq!(response.pan(), Some("6290001234567893"));
    }

    #[test]
    fn refuses_a_response_as_request() {
        let mut message = MessageBuilder::new(Mti::FINANCIAL_RESPONSE);
        message.set_numeric(Field::Stan, 1).unwrap();
        let message = Message::parse(message.build().unwrap()).unwrap();
        assert!(approval(&message, || 1).is_err());
    }
}
