//! The literal vectors of `shared/vectors/messages.json`, made by an independent
//! implementation (pyiso8583, pycryptodome): every message decodes into exactly its
//! `fields`, builds back to exactly its bytes and frames to exactly `framed_hex`; the PIN
//! block and MAC vectors match.

mod common;

use bytes::{Bytes, BytesMut};
use codec::{
    decrypt_pin_block, encrypt_pin_block, pin_block_format0, retail_mac, verify_message_mac, Field,
    FrameCodec, Message, MessageBuilder, Mti, ResponseCode, TdesKey,
};
use common::{builder_from, fields_of, keys, parse, vector, vectors};
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn every_vector_decodes_into_exactly_its_fields() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 16);
    for v in &vectors {
        let message = Message::parse(Bytes::from(v.bytes.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(fields_of(&message), v.fields, "{}", v.name);
        assert_eq!(message.as_bytes(), &v.bytes[..], "{}", v.name);
    }
}

#[test]
fn every_vector_builds_from_its_fields() {
    for v in vectors() {
        let built = builder_from(&v.fields).build().unwrap();
        assert_eq!(
            hex::encode_upper(&built),
            hex::encode_upper(&v.bytes),
            "{}",
            v.name
        );
    }
}

#[test]
fn every_vector_frames_and_unframes() {
    for v in vectors() {
        let mut codec = FrameCodec::default();
        let mut framed = BytesMut::new();
        codec
            .encode(Bytes::from(v.bytes.clone()), &mut framed)
            .unwrap();
        assert_eq!(&framed[..], &v.framed[..], "{}", v.name);
        codec.encode(&v.bytes[..], &mut framed).unwrap();
        let mut stream = BytesMut::from(&framed[..]);
        for _ in 0..2 {
            let frame = codec.decode(&mut stream).unwrap().unwrap();
            assert_eq!(&frame[..], &v.bytes[..], "{}", v.name);
        }
        assert_eq!(codec.decode(&mut stream).unwrap(), None);
    }
}

/// All vectors back to back with keep-alives between them, fed one byte at a time.
#[test]
fn a_stream_of_vectors_byte_by_byte() {
    let vectors = vectors();
    let mut wire = Vec::new();
    for v in &vectors {
        wire.extend_from_slice(&v.framed);
        wire.extend_from_slice(&[0, 0]);
    }
    let mut codec = FrameCodec::default();
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for byte in wire {
        buffer.extend_from_slice(&[byte]);
        while let Some(frame) = codec.decode(&mut buffer).unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(frames.len(), vectors.len());
    for (frame, v) in frames.iter().zip(&vectors) {
        assert_eq!(&frame[..], &v.bytes[..]);
        Message::parse(frame.clone()).unwrap();
    }
}

#[test]
fn typed_accessors_on_the_purchase() {
    let message = parse(&vector("purchase").bytes);
    assert_eq!(message.mti(), Mti::FINANCIAL_REQUEST);
    assert_eq!(message.pan(), Some("6290001234567893"));
    assert_eq!(message.processing_code(), Some(0));
    assert_eq!(message.amount_minor(), Some(1234));
    assert_eq!(message.transmission_time(), Some("1122083015"));
    assert_eq!(message.stan(), Some(123));
    assert_eq!(message.local_time(), Some("163015"));
    assert_eq!(message.local_date(), Some("1122"));
    assert_eq!(message.terminal_id(), Some("T0000001"));
    assert_eq!(message.merchant_id(), Some("M00000000000001"));
    assert_eq!(message.currency(), Some(156));
    assert_eq!(message.batch(), Some(1));
    assert_eq!(message.pin_block(), None);
    assert_eq!(message.mac(), None);
    assert_eq!(
        message.get_bytes(Field::Stan).as_deref(),
        Some(&b"000123"[..])
    );
    assert!(!message.has(Field::SecondaryBitmap));

    let response = parse(&vector("purchase_response").bytes);
    assert_eq!(response.response_code(), Some(ResponseCode::Approved));
    assert_eq!(response.rrn(), Some("000000000042"));
    assert_eq!(response.approval_code(), Some("A00042"));
    assert_eq!(response.settlement_date(), Some("1122"));
    assert_eq!(
        response.get_str(Field::AdditionalAmounts),
        Some("0002156C000000008766")
    );

    let reversal = parse(&vector("reversal").bytes);
    assert_eq!(
        reversal.original_data(),
        Some("020000012311220830150000000000000000000000")
    );
    let topup = parse(&vector("bank_topup").bytes);
    assert_eq!(topup.account_id1(), Some("6290001234567893"));
    assert_eq!(topup.get_u64(Field::AcquiringInstitution), Some(1));
    let batch = parse(&vector("batch_close").bytes);
    assert_eq!(batch.get_u64(Field::DebitsAmount), Some(3123));
    assert_eq!(batch.get_u64(Field::CreditsCount), Some(1));
    let sign_on = parse(&vector("sign_on").bytes);
    assert_eq!(sign_on.network_code(), Some(1));
}

/// The host's answer to the purchase vector, built with `response_to`, is byte for byte the
/// `purchase_response` vector.
#[test]
fn response_to_the_purchase_is_the_response_vector() {
    let request = parse(&vector("purchase").bytes);
    let echo = Mti::FINANCIAL_REQUEST.echoed_fields();
    let mut response = MessageBuilder::response_to(&request, echo);
    assert_eq!(response.mti(), Mti::FINANCIAL_RESPONSE);
    response
        .set_text(Field::SettlementDate, "1122")
        .unwrap()
        .set_text(Field::Rrn, "000000000042")
        .unwrap()
        .set_text(Field::ApprovalCode, "A00042")
        .unwrap()
        .set_text(Field::ResponseCode, ResponseCode::Approved.as_str())
        .unwrap()
        .set_text(Field::AdditionalAmounts, "0002156C000000008766")
        .unwrap();
    let built = response.build().unwrap();
    assert_eq!(
        hex::encode_upper(&built),
        hex::encode_upper(vector("purchase_response").bytes)
    );
}

#[test]
fn sign_on_response_from_the_request() {
    let request = parse(&vector("sign_on").bytes);
    let echo = Mti::NETWORK_REQUEST.echoed_fields();
    let mut response = MessageBuilder::try_response_to(&request, echo).unwrap();
    response
        .set_numeric(Field::SettlementDate, 1122)
        .unwrap()
        .set_text(Field::ResponseCode, "00")
        .unwrap();
    assert_eq!(
        &response.build().unwrap()[..],
        &vector("sign_on_response").bytes[..]
    );
    let response = parse(&vector("sign_on_response").bytes);
    assert!(MessageBuilder::try_response_to(&response, echo).is_err());
}

#[test]
fn pin_block_vectors() {
    let keys = keys();
    let tpk = TdesKey::from_hex(&keys["tpk"]).unwrap();
    let clear = pin_block_format0(&keys["pan"], &keys["pin"]).unwrap();
    assert_eq!(hex::encode_upper(clear), keys["pin_block_clear"]);
    let encrypted = encrypt_pin_block(&tpk, &keys["pan"], &keys["pin"]).unwrap();
    assert_eq!(hex::encode_upper(encrypted), keys["pin_block_under_tpk"]);

    let message = parse(&vector("purchase_with_pin").bytes);
    let block = message.pin_block().unwrap();
    assert_eq!(hex::encode_upper(block), keys["pin_block_under_tpk"]);
    let pin = decrypt_pin_block(&tpk, message.pan().unwrap(), block).unwrap();
    assert_eq!(pin.digits(), keys["pin"]);
}

#[test]
fn mac_vector() {
    let keys = keys();
    let tak = TdesKey::from_hex(&keys["tak"]).unwrap();
    let v = vector("purchase_with_mac");
    let message = parse(&v.bytes);
    let input = message.mac_input().unwrap();
    assert_eq!(input, &v.bytes[..v.bytes.len() - 8]);
    // 106 bytes: not a multiple of 8, so padding method 1 zero-fills the last block.
    assert_eq!(input.len() % 8, 2);
    assert_eq!(hex::encode_upper(retail_mac(&tak, input)), v.fields["64"]);
    assert!(verify_message_mac(&tak, &message));
    let tpk = TdesKey::from_hex(&keys["tpk"]).unwrap();
    assert!(!verify_message_mac(&tpk, &message));
    assert!(!verify_message_mac(&tak, &parse(&vector("purchase").bytes)));

    // The builder's MAC path produces the vector from the fields without F64.
    let mut fields = v.fields.clone();
    fields.remove("64");
    let built = builder_from(&fields)
        .build_with_mac(|data| retail_mac(&tak, data))
        .unwrap();
    assert_eq!(&built[..], &v.bytes[..]);
}

#[test]
fn display_never_shows_secrets() {
    for v in vectors() {
        let message = parse(&v.bytes);
        let shown = format!("{message} {message:?} {:?}", builder_from(&v.fields));
        for pan in [
            "6290001234567893",
            "6222020200112233446",
            "6290009876543213",
        ] {
            assert!(!shown.contains(pan), "{}: {shown}", v.name);
        }
        for secret in ["7886F2179A0694B3", "7BA1B6A9F7F35B9F"] {
            assert!(!shown.to_uppercase().contains(secret), "{}", v.name);
        }
    }
    let message = parse(&vector("purchase_with_pin").bytes);
    assert_eq!(
        message.to_string(),
        "0200 F2=629000******7893 F3=000000 F4=000000015000 F7=1122083015 F11=000124 \
         F12=163015 F13=1122 F41=T0000001 F42=M00000000000001 F52=[redacted] F60=000001"
    );
    let blacklist = parse(&vector("blacklist_response").bytes);
    assert!(blacklist
        .to_string()
        .contains("F48=0000000000070+629000******7893;+629000******3213"));
    let debug = format!("{:?}", parse(&vector("purchase_with_mac").bytes));
    assert!(
        debug.starts_with("Message { mti: Mti(0200), fields: {F2: \"629000******7893\""),
        "{debug}"
    );
    assert!(debug.contains("F64: [redacted]"), "{debug}");
}
