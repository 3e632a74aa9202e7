//! A POS terminal for tests: builds requests with the codec, adds PIN blocks and MACs,
//! sends them framed over a real socket and reads the responses.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use codec::security::{encrypt_pin_block, retail_mac, verify_mac, TdesKey};
use codec::{Field, Message, MessageBuilder, Mti};

pub struct TestTerminal {
    pub stream: TcpStream,
    pub id: String,
    pub merchant: String,
    pub tpk: TdesKey,
    pub tak: Option<TdesKey>,
    pub batch: u32,
    stan: u32,
    clock: u64,
}

fn key(hex_key: &str) -> TdesKey {
    TdesKey::from_hex(hex_key).expect("32 hex digits")
}

impl TestTerminal {
    pub fn connect(addr: SocketAddr, id: &str, merchant: &str) -> TestTerminal {
        let stream = TcpStream::connect(addr).expect("connect to the terminal link");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        TestTerminal {
            stream,
            id: id.to_owned(),
            merchant: merchant.to_owned(),
            tpk: key(crate::demo::TPK),
            tak: None,
            batch: 1,
            stan: 0,
            clock: 1_122_080_000,
        }
    }

    /// Also MACs every request and checks every response's MAC.
    pub fn with_mac(mut self, tak_hex: &str) -> TestTerminal {
        self.tak = Some(key(tak_hex));
        self
    }

    pub fn next_stan(&mut self) -> u32 {
        self.stan += 1;
        self.stan
    }

    /// Gives back the STAN the last request built took: a 0320 carries its original's F11
    /// and uses no number of its own.
    pub fn give_back_stan(&mut self) {
        self.stan -= 1;
    }

    /// A fresh F7 (MMDDhhmmss) each call, so requests never look like retransmissions.
    pub fn next_f7(&mut self) -> String {
        self.clock += 1;
        format!("{:010}", self.clock)
    }

    pub fn send_frame(&mut self, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 2);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).expect("send frame");
    }

    /// Sends a request and reads one response, or `None` if the connection failed (the
    /// host was killed, say).
    pub fn try_exchange(&mut self, builder: MessageBuilder) -> Option<Message> {
        use std::io::{Read, Write};
        let bytes = self.finish(builder);
        let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        self.stream.write_all(&frame).ok()?;
        let mut length = [0u8; 2];
        self.stream.read_exact(&mut length).ok()?;
        let mut payload = vec![0u8; u16::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut payload).ok()?;
        Message::parse(Bytes::from(payload)).ok()
    }

    pub fn recv_raw(&mut self) -> Bytes {
        let mut length = [0u8; 2];
        self.stream
            .read_exact(&mut length)
            .expect("read response length");
        let mut payload = vec![0u8; u16::from_be_bytes(length) as usize];
        self.stream
            .read_exact(&mut payload)
            .expect("read response body");
        Bytes::from(payload)
    }

    /// Reads a response, checking its MAC when the terminal is MAC-enabled.
    pub fn recv(&mut self) -> Message {
        let raw = self.recv_raw();
        let message = Message::parse(raw).expect("the host's response parses");
        if let Some(tak) = &self.tak {
            let mac = message
                .mac()
                .expect("a MAC on every response to a MAC terminal");
            assert!(
                verify_mac(tak, message.mac_input().unwrap(), &mac),
                "response MAC verifies"
            );
        }
        message
    }

    pub fn finish(&self, builder: MessageBuilder) -> Bytes {
        match &self.tak {
            Some(tak) => builder
                .build_with_mac(|data| retail_mac(tak, data))
                .expect("build request"),
            None => builder.build().expect("build request"),
        }
    }

    pub fn exchange(&mut self, builder: MessageBuilder) -> Message {
        let bytes = self.finish(builder);
        self.send_frame(&bytes);
        self.recv()
    }

    pub fn network(&mut self, code: u16, f48: Option<&str>) -> Message {
        let b = self.network_request(code, f48);
        self.exchange(b)
    }

    /// An 0800 with F70 = `code` (and F48), not yet sent.
    pub fn network_request(&mut self, code: u16, f48: Option<&str>) -> MessageBuilder {
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        let f7 = self.next_f7();
        let stan = self.next_stan();
        b.set(Field::TransmissionDateTime, f7.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, stan as u64).unwrap();
        b.set(Field::TerminalId, self.id.as_bytes()).unwrap();
        b.set_numeric(Field::NetworkCode, code as u64).unwrap();
        if let Some(data) = f48 {
            b.set(Field::PrivateData, data.as_bytes()).unwrap();
        }
        b
    }

    pub fn sign_on(&mut self) -> Message {
        let response = self.network(1, None);
        assert_eq!(
            response.get_str(Field::ResponseCode),
            Some("00"),
            "sign-on approved"
        );
        response
    }

    /// A financial request of this terminal: F2, F3, F4 (if any), F7, F11, F12, F13, F41,
    /// F42, F60 and F52 when a PIN is given.
    pub fn financial(
        &mut self,
        mti: Mti,
        processing: u32,
        pan: &str,
        amount_minor: Option<u64>,
        pin: Option<&str>,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::new(mti);
        let f7 = self.next_f7();
        let stan = self.next_stan();
        b.set(Field::Pan, pan.as_bytes()).unwrap();
        b.set_numeric(Field::ProcessingCode, processing as u64)
            .unwrap();
        if let Some(amount) = amount_minor {
            b.set_numeric(Field::Amount, amount).unwrap();
        }
        b.set(Field::TransmissionDateTime, f7.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, stan as u64).unwrap();
        b.set(Field::LocalTime, b"120000").unwrap();
        b.set(Field::LocalDate, b"1122").unwrap();
        b.set(Field::TerminalId, self.id.as_bytes()).unwrap();
        b.set(Field::MerchantId, self.merchant.as_bytes()).unwrap();
        if let Some(pin) = pin {
            let block = encrypt_pin_block(&self.tpk, pan, pin).expect("PIN block");
            b.set(Field::PinBlock, &block).unwrap();
        }
        b.set_digits(Field::Batch, self.batch as u64, 6).unwrap();
        b
    }

    pub fn purchase(&mut self, pan: &str, amount_minor: u64, pin: Option<&str>) -> Message {
        let b = self.financial(Mti::FINANCIAL_REQUEST, 0, pan, Some(amount_minor), pin);
        self.exchange(b)
    }

    pub fn balance(&mut self, pan: &str, pin: Option<&str>) -> Message {
        let b = self.financial(Mti::AUTHORIZATION_REQUEST, 310_000, pan, None, pin);
        self.exchange(b)
    }

    pub fn refund(&mut self, pan: &str, amount_minor: u64, rrn: &str) -> Message {
        let mut b = self.financial(
            Mti::FINANCIAL_REQUEST,
            200_000,
            pan,
            Some(amount_minor),
            None,
        );
        b.set(Field::Rrn, rrn.as_bytes()).unwrap();
        self.exchange(b)
    }

    /// A reversal of the request whose F11 and F7 are given (F90 = 0200 + F11 + F7 + zeros).
    pub fn reversal(
        &mut self,
        pan: &str,
        amount_minor: u64,
        original_stan: u32,
        original_f7: &str,
    ) -> Message {
        let mut b = MessageBuilder::new(Mti::REVERSAL_REQUEST);
        let f7 = self.next_f7();
        let stan = self.next_stan();
        b.set(Field::Pan, pan.as_bytes()).unwrap();
        b.set_numeric(Field::ProcessingCode, 0).unwrap();
        b.set_numeric(Field::Amount, amount_minor).unwrap();
        b.set(Field::TransmissionDateTime, f7.as_bytes()).unwrap();
        b.set_numeric(Field::Stan, stan as u64).unwrap();
        b.set(Field::TerminalId, self.id.as_bytes()).unwrap();
        b.set(Field::MerchantId, self.merchant.as_bytes()).unwrap();
        b.set_digits(Field::Batch, self.batch as u64, 6).unwrap();
        let f90 = format!("0200{original_stan:06}{original_f7}{}", "0".repeat(22));
        b.set(Field::OriginalData, f90.as_bytes()).unwrap();
        self.exchange(b)
    }
}

pub fn code(message: &Message) -> &str {
    message
        .get_str(Field::ResponseCode)
        .expect("F39 in every response")
}
