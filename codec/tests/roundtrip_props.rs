//! Round trip: any valid message the builder makes parses back to the same MTI and fields,
//! and re-serialises to the same bytes; the same through a MAC and through framing.

mod common;

use bytes::{Bytes, BytesMut};
use codec::{Field, FrameCodec, Length, Message, MessageBuilder};
use common::strategy;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn builder_with(mti: codec::Mti, fields: &[(Field, Vec<u8>)]) -> MessageBuilder {
    let mut builder = MessageBuilder::new(mti);
    for (field, value) in fields {
        builder.set(*field, value).unwrap();
    }
    builder
}

proptest! {
    // Failures print their minimal input; no regression files are written into the tree.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn build_parse_rebuild(mti in strategy::mti(), fields in strategy::fields()) {
        let bytes = builder_with(mti, &fields).build().unwrap();
        let message = Message::parse(bytes.clone()).unwrap();
        prop_assert_eq!(message.mti(), mti);
        let parsed: Vec<(Field, Vec<u8>)> =
            message.fields().map(|(f, v)| (f, v.to_vec())).collect();
        prop_assert_eq!(&parsed, &fields);
        for (field, value) in &fields {
            prop_assert_eq!(message.get(*field), Some(&value[..]));
            let shared = message.get_bytes(*field);
            prop_assert_eq!(shared.as_deref(), Some(&value[..]));
        }
        let secondary = fields.iter().any(|(f, _)| f.number() > 64);
        prop_assert_eq!(message.has(Field::SecondaryBitmap), secondary);
        let rebuilt = MessageBuilder::from_message(&message).build().unwrap();
        prop_assert_eq!(rebuilt, bytes);
    }

    /// Setting fields in any order, and some twice, gives the same bytes.
    #[test]
    fn order_and_resets_do_not_matter(
        mti in strategy::mti(),
        fields in strategy::fields(),
        seed in any::<u64>(),
    ) {
        let expected = builder_with(mti, &fields).build().unwrap();
        let mut shuffled = fields.clone();
        let n = shuffled.len().max(1) as u64;
        for i in 0..shuffled.len() {
            let j = ((seed.wrapping_mul(i as u64 + 1) >> 7) % n) as usize;
            shuffled.swap(i, j);
        }
        let mut builder = MessageBuilder::new(mti);
        for (field, value) in &shuffled {
            builder.set(*field, value).unwrap();
        }
        // Before any reset, fields set out of order may still wait to be put in place: the
        // builder reads, builds and MACs as if they were.
        let in_order = builder_with(mti, &fields);
        prop_assert_eq!(builder.fields().collect::<Vec<_>>(), in_order.fields().collect::<Vec<_>>());
        for (field, value) in &fields {
            prop_assert_eq!(builder.get(*field), Some(&value[..]));
        }
        prop_assert_eq!(builder.build().unwrap(), expected.clone());
        let mac = |data: &[u8]| [data.len() as u8; 8];
        prop_assert_eq!(builder.build_with_mac(mac).unwrap(), in_order.build_with_mac(mac).unwrap());
        // Set a few twice, with the final value last.
        for (field, value) in shuffled.iter().take(3) {
            builder.unset(*field);
            builder.set(*field, value).unwrap();
        }
        prop_assert_eq!(builder.build().unwrap(), expected);
    }

    #[test]
    fn mac_round_trip(mti in strategy::mti(), fields in strategy::fields(), mac in any::<[u8; 8]>()) {
        let builder = builder_with(mti, &fields);
        let mut seen = Vec::new();
        let bytes = builder.build_with_mac(|data| { seen = data.to_vec(); mac }).unwrap();
        let message = Message::parse(bytes.clone()).unwrap();
        prop_assert_eq!(message.mac(), Some(mac));
        prop_assert_eq!(message.mac_input(), Some(&seen[..]));
        prop_assert_eq!(&bytes[..bytes.len() - 8], &seen[..]);
        let expected = if message.has(Field::SecondaryBitmap) { Field::Mac2 } else { Field::Mac };
        prop_assert_eq!(message.mac_field(), expected);
        prop_assert!(!(message.has(Field::Mac) && message.has(Field::Mac2)));
    }

    /// Fixed `an`/`ans` fields shorter than their length come back space-filled.
    #[test]
    fn short_text_is_space_filled(text in "[ -~]{0,8}") {
        let mut builder = MessageBuilder::new(codec::Mti::NETWORK_REQUEST);
        builder.set_text(Field::TerminalId, &text).unwrap();
        let message = Message::parse(builder.build().unwrap()).unwrap();
        let expected = format!("{text:<8}");
        prop_assert_eq!(message.terminal_id(), Some(expected.as_str()));
    }

    #[test]
    fn numbers_are_zero_filled(value in 0u64..1_000_000_000_000, field in strategy::field()) {
        let spec = field.spec();
        let mut builder = MessageBuilder::new(codec::Mti::FINANCIAL_REQUEST);
        match builder.set_numeric(field, value) {
            Ok(_) => {
                let message = Message::parse(builder.build().unwrap()).unwrap();
                let digits = message.get(field).unwrap();
                let tail = &digits[digits.len().saturating_sub(19)..];
                prop_assert!(digits[..digits.len() - tail.len()].iter().all(|&b| b == b'0'));
                prop_assert_eq!(std::str::from_utf8(tail).unwrap().parse::<u64>().ok(), Some(value));
                if let Length::Fixed(n) = spec.length {
                    prop_assert_eq!(message.get(field).map(<[u8]>::len), Some(n as usize));
                }
            }
            Err(_) => prop_assert!(
                spec.format != codec::Format::N
                    || value.to_string().len() > spec.max_len()
            ),
        }
    }

    /// Frames survive any split of the stream into reads.
    #[test]
    fn framing_round_trip(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..10),
        cuts in proptest::collection::vec(1usize..64, 1..50),
    ) {
        let mut codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        for frame in &frames {
            codec.encode(Bytes::from(frame.clone()), &mut wire).unwrap();
        }
        let mut buffer = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &wire[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buffer.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(frame) = codec.decode(&mut buffer).unwrap() {
                out.push(frame.to_vec());
            }
        }
        // Empty frames are keep-alives: they vanish.
        let expected: Vec<Vec<u8>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        prop_assert_eq!(out, expected);
    }
}
