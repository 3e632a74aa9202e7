//! Hostile input: truncations, lying lengths, bad bytes in typed fields, random bytes and
//! random mutations of valid messages. Every case must give an `Err` (or, for random input
//! that happens to be well-formed, an `Ok` that rebuilds to the same bytes), never a panic.
//! Rust's bounds checks rule out over-reads; a panic would be the symptom of one.
//!
//! The random cases use a fixed seed so that a failure replays; set `HOSTILE_SEED` to
//! explore other seeds.

mod common;

use bytes::{Bytes, BytesMut};
use codec::{
    Field, Format, FrameCodec, FrameError, Length, Message, MessageBuilder, Mti, ParseError,
    ParseErrorKind,
};
use common::vectors;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::codec::Decoder;

fn seed() -> u64 {
    std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0B0B_5A12)
}

/// Parses `input`; an `Ok` must rebuild to exactly `input`, an `Err` must be consistent.
/// Returns whether it parsed.
fn check(input: &[u8]) -> Result<Message, ParseError> {
    let result = Message::parse(Bytes::copy_from_slice(input));
    match &result {
        Ok(message) => {
            let rebuilt = MessageBuilder::from_message(message).build().unwrap();
            assert_eq!(&rebuilt[..], input, "parsed but does not rebuild");
            for (_, value) in message.fields() {
                let start = value.as_ptr() as usize - message.as_bytes().as_ptr() as usize;
                assert!(start + value.len() <= input.len());
            }
        }
        Err(error) => {
            let _ = error.to_string();
            if let Some(mti) = error.salvage.mti {
                assert_eq!(mti.as_bytes(), &input[..4]);
            }
            for part in [
                error.salvage.stan.as_ref().map(|s| &s[..]),
                error.salvage.terminal_id.as_ref().map(|t| &t[..]),
            ]
            .into_iter()
            .flatten()
            {
                assert!(input.windows(part.len()).any(|w| w == part));
            }
        }
    }
    result
}

/// Byte offsets of each field's length prefix and data in a valid message.
fn layout(message: &Message) -> Vec<(Field, usize, usize)> {
    let base = message.as_bytes().as_ptr() as usize;
    message
        .fields()
        .map(|(field, value)| {
            let data = value.as_ptr() as usize - base;
            let prefix = data - field.spec().length.prefix_digits();
            (field, prefix, data)
        })
        .collect()
}

#[test]
fn every_truncation_of_every_vector_is_truncated() {
    let mut cases = 0;
    for v in vectors() {
        for len in 0..v.bytes.len() {
            let error = check(&v.bytes[..len]).unwrap_err();
            assert!(
                matches!(error.kind, ParseErrorKind::Truncated { .. }),
                "{} cut at {len}: {error}",
                v.name
            );
            cases += 1;
        }
        // A truncated frame is not a frame.
        let mut codec = FrameCodec::default();
        for len in 0..v.framed.len() {
            let mut buffer = BytesMut::from(&v.framed[..len]);
            assert_eq!(codec.decode(&mut buffer).unwrap(), None);
        }
    }
    println!("{cases} truncations");
    assert!(cases > 1500);
}

/// Truncation inside a field still salvages the MTI, and F11/F41 when they came before.
#[test]
fn truncation_salvages_what_came_before() {
    for v in vectors() {
        let message = common::parse(&v.bytes);
        for (field, _, data) in layout(&message) {
            let error = check(&v.bytes[..data]).unwrap_err();
            assert_eq!(error.salvage.mti, Some(message.mti()), "{}", v.name);
            let stan_done = message.has(Field::Stan) && field > Field::Stan;
            assert_eq!(
                error.salvage.stan.is_some(),
                stan_done,
                "{} {field}",
                v.name
            );
            let tid_done = message.has(Field::TerminalId) && field > Field::TerminalId;
            assert_eq!(error.salvage.terminal_id.is_some(), tid_done);
        }
    }
}

/// Every value a length prefix can take, and every non-digit byte in each of its positions.
#[test]
fn lying_length_prefixes() {
    let mut cases = 0;
    for v in vectors() {
        let message = common::parse(&v.bytes);
        for (field, prefix, data) in layout(&message) {
            let digits = data - prefix;
            if digits == 0 {
                continue;
            }
            let max = field.spec().max_len();
            let truth = data_len(&message, field);
            for declared in 0..10usize.pow(digits as u32) {
                let mut input = v.bytes.clone();
                let text = format!("{declared:0digits$}");
                input[prefix..data].copy_from_slice(text.as_bytes());
                let result = check(&input);
                cases += 1;
                if declared > max {
                    let error = result.unwrap_err();
                    assert_eq!(error.field, Some(field));
                    assert_eq!(error.kind, ParseErrorKind::TooLong { len: declared, max });
                } else if declared == truth {
                    assert!(result.is_ok());
                }
            }
            for position in prefix..data {
                for byte in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                    let mut input = v.bytes.clone();
                    input[position] = byte;
                    let error = check(&input).unwrap_err();
                    assert_eq!(error.field, Some(field), "{}", v.name);
                    assert!(matches!(error.kind, ParseErrorKind::BadLengthPrefix { .. }));
                    assert_eq!(error.salvage.mti, Some(message.mti()));
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} lying or malformed length prefixes");
    assert!(cases > 10_000, "{cases}");
}

fn data_len(message: &Message, field: Field) -> usize {
    message.get(field).map_or(0, <[u8]>::len)
}

/// Every byte outside a field's class, at every position of every text field of every
/// vector: the error names the field and the position, and the walk goes on to salvage F11
/// and F41 (unless the bad byte is in them).
#[test]
fn bad_bytes_in_typed_fields() {
    let mut cases = 0;
    for v in vectors() {
        let message = common::parse(&v.bytes);
        for (field, _, data) in layout(&message) {
            let format = field.spec().format;
            if format == Format::B {
                continue;
            }
            let bad: Vec<u8> = (0..=255u8).filter(|b| !format.accepts(*b)).collect();
            for index in 0..data_len(&message, field) {
                // Every bad byte at the first position, a sample of them elsewhere.
                let sample: Vec<u8> = if index == 0 {
                    bad.clone()
                } else {
                    bad.iter().copied().step_by(17).collect()
                };
                for byte in sample {
                    let mut input = v.bytes.clone();
                    input[data + index] = byte;
                    let error = check(&input).unwrap_err();
                    let expected = match format {
                        Format::N => ParseErrorKind::NonDigit { index, byte },
                        _ => ParseErrorKind::NotText { index, byte },
                    };
                    assert_eq!(error.kind, expected, "{} {field}", v.name);
                    assert_eq!(error.field, Some(field));
                    assert_eq!(error.salvage.mti, Some(message.mti()));
                    let stan_ok = message.has(Field::Stan) && field != Field::Stan;
                    assert_eq!(error.salvage.stan.is_some(), stan_ok, "{} {field}", v.name);
                    let tid_ok = message.has(Field::TerminalId) && field != Field::TerminalId;
                    assert_eq!(error.salvage.terminal_id.is_some(), tid_ok);
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} bad bytes in typed fields");
    assert!(cases > 10_000, "{cases}");
}

#[test]
fn bad_mtis_and_bitmaps() {
    let v = common::vector("purchase");
    for byte in 0..=255u8 {
        let mut input = v.bytes.clone();
        input[1] = byte;
        let error = check(&input);
        if Mti::parse(&input[..4]).is_ok() {
            assert!(error.is_ok());
        } else if byte.is_ascii_digit() {
            let error = error.unwrap_err();
            assert!(matches!(error.kind, ParseErrorKind::UnknownMti { .. }));
            assert_eq!(error.salvage.stan, Some(*b"000123"));
            assert!(!error.salvage.is_answerable());
        } else {
            assert!(matches!(
                error.unwrap_err().kind,
                ParseErrorKind::BadMti { .. }
            ));
        }
    }
    // Bit 65 set in the reversal's secondary bitmap.
    let v = common::vector("reversal");
    let mut input = v.bytes.clone();
    input[12] |= 0x80;
    assert_eq!(
        check(&input).unwrap_err().kind,
        ParseErrorKind::TertiaryBitmap
    );
    // A bit for a field that is not there.
    let mut input = common::vector("purchase").bytes;
    input[11] |= 0x01; // F64
    assert!(matches!(
        check(&input).unwrap_err().kind,
        ParseErrorKind::Truncated { .. }
    ));
}

/// 100k+ seeded random cases: random bytes, random bytes behind a valid MTI and bitmap,
/// and random mutations (byte changes, insertions, deletions) of the vectors.
#[test]
fn random_inputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(seed());
    let vectors = vectors();
    let mut cases = 0usize;
    let mut parsed = 0usize;
    let mut count = |result: Result<Message, ParseError>| {
        cases += 1;
        parsed += usize::from(result.is_ok());
    };

    // Pure noise.
    for _ in 0..40_000 {
        let len = rng.gen_range(0..160);
        let input: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        count(check(&input));
    }

    // A valid MTI and a random bitmap, then noise biased to digits so fields get read.
    for _ in 0..40_000 {
        let mut input = Vec::new();
        let mti = Mti::ALL[rng.gen_range(0..Mti::ALL.len())];
        input.extend_from_slice(mti.as_bytes());
        let mut bitmap: u128 = rng.gen::<u128>() & rng.gen::<u128>() & rng.gen::<u128>();
        if rng.gen_bool(0.9) {
            bitmap &= !(1u128 << 63); // usually no F65, to get past the bitmap
        }
        input.extend_from_slice(&bitmap.to_be_bytes());
        let len = rng.gen_range(0..400);
        for _ in 0..len {
            let byte = match rng.gen_range(0..10) {
                0 => rng.gen(),
                1..=3 => rng.gen_range(0x20..=0x7E),
                _ => rng.gen_range(b'0'..=b'9'),
            };
            input.push(byte);
        }
        count(check(&input));
    }

    // Mutations of valid messages.
    for _ in 0..40_000 {
        let v = &vectors[rng.gen_range(0..vectors.len())];
        let mut input = v.bytes.clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..input.len());
            match rng.gen_range(0..4) {
                0 => input[at] = rng.gen(),
                1 => input[at] = rng.gen_range(b'0'..=b'9'),
                2 => input.insert(at, rng.gen_range(b'0'..=b'9')),
                _ => {
                    input.remove(at);
                }
            }
            if input.is_empty() {
                break;
            }
        }
        count(check(&input));
    }

    println!("{cases} random inputs, {parsed} of them well-formed");
    assert!(cases >= 120_000, "{cases}");
    // Most noise is rejected, but digit-heavy mutations do produce valid messages.
    assert!(
        parsed > 0 && parsed < cases / 2,
        "{parsed} of {cases} parsed"
    );
}

/// Random streams into the frame decoder: frames come out, or `Oversize`; never a panic,
/// never a frame above the maximum, never an empty frame.
#[test]
fn random_streams_into_the_frame_decoder() {
    let mut rng = StdRng::seed_from_u64(seed() ^ 0xF4A3E);
    let mut cases = 0;
    for _ in 0..30_000 {
        let max = rng.gen_range(1..300);
        let mut codec = FrameCodec::new(max);
        let mut buffer = BytesMut::new();
        'stream: for _ in 0..rng.gen_range(1..20) {
            let chunk: Vec<u8> = (0..rng.gen_range(0..64))
                .map(|_| if rng.gen_bool(0.3) { 0 } else { rng.gen() })
                .collect();
            buffer.extend_from_slice(&chunk);
            loop {
                cases += 1;
                match codec.decode(&mut buffer) {
                    Ok(Some(frame)) => assert!(!frame.is_empty() && frame.len() <= max),
                    Ok(None) => break,
                    Err(FrameError::Oversize { declared, max: m }) => {
                        assert!(declared > m && m == max);
                        break 'stream;
                    }
                    Err(other) => panic!("{other}"),
                }
            }
        }
    }
    println!("{cases} decoder calls on random streams");
    assert!(cases > 30_000, "{cases}");
}

/// Each fixed `n` field of the dictionary is exactly its length: a message claiming one
/// with a byte short is truncated or misaligned, never accepted as the shorter value.
#[test]
fn fixed_fields_are_exact() {
    for field in Field::ALL {
        let spec = field.spec();
        let Length::Fixed(len) = spec.length else {
            continue;
        };
        if field.is_bitmap() {
            continue;
        }
        let mut builder = MessageBuilder::new(Mti::NETWORK_REQUEST);
        let value = vec![if spec.format == Format::B { 0xEE } else { b'7' }; len as usize];
        builder.set(field, &value).unwrap();
        let bytes = builder.build().unwrap();
        let error = check(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(error.field, Some(field));
        let mut longer = bytes.to_vec();
        longer.push(b'7');
        assert_eq!(
            check(&longer).unwrap_err().kind,
            ParseErrorKind::TrailingBytes { count: 1 }
        );
    }
}
