//! Interoperability with an independent implementation, iso8583_rs, configured from
//! `tests/data/iso8583_rs_campusnet.yaml` (transcribed from PROTOCOL.md's field table):
//! messages packed by iso8583_rs parse identically in our codec, ours parse identically in
//! iso8583_rs, and both pack the same fields into the same bytes.

mod common;

use std::collections::BTreeMap;
use std::sync::Once;

use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti};
use common::{fields_of, strategy, vectors};
use iso8583_rs::iso8583::iso_spec::{self, IsoMsg, Spec};
use proptest::prelude::*;

const SPEC_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iso8583_rs_campusnet.yaml"
);

/// iso8583_rs reads its spec once, lazily, from the file named by the `SPEC_FILE`
/// environment variable. Every test of this binary sets the same value through this `Once`
/// before the first use, so the parallel tests never race on different values; `std::env`
/// serialises the write against the other readers in this process (all Rust code).
fn spec() -> &'static Spec {
    static SET: Once = Once::new();
    SET.call_once(|| std::env::set_var("SPEC_FILE", SPEC_FILE));
    iso_spec::spec("")
}

/// A message in the vectors' notation: `"t"` the MTI, then fields by number, binary as
/// upper-case hex.
type Notation = BTreeMap<String, String>;

fn their_parse(bytes: &[u8]) -> Notation {
    let message: IsoMsg = spec()
        .parse(&mut bytes.to_vec())
        .unwrap_or_else(|e| panic!("iso8583_rs rejects {}: {}", hex::encode(bytes), e.msg));
    let mut fields = Notation::new();
    let mti = message.get_field_value(&"message_type".to_owned()).unwrap();
    fields.insert("t".to_owned(), mti);
    for position in (2..=128u32).filter(|p| *p != 65) {
        if message.bmp.is_on(position) {
            let value = message.bmp_child_value(position).unwrap();
            let binary =
                Field::from_number(position as u8).unwrap().spec().format == codec::Format::B;
            let value = if binary { value.to_uppercase() } else { value };
            fields.insert(position.to_string(), value);
        }
    }
    fields
}

fn their_build(fields: &Notation) -> Vec<u8> {
    let spec = spec();
    let segment = spec.get_message_from_header(&fields["t"]).unwrap();
    let mut message = iso_spec::new_msg(spec, segment);
    message.set("message_type", &fields["t"]).unwrap();
    for (key, value) in fields.iter().filter(|(k, _)| *k != "t") {
        message.set_on(key.parse().unwrap(), value).unwrap();
    }
    message.assemble().unwrap()
}

fn notation_of(mti: Mti, fields: &[(Field, Vec<u8>)]) -> Notation {
    let mut map = Notation::new();
    map.insert("t".to_owned(), mti.as_str().to_owned());
    for (field, value) in fields {
        map.insert(field.number().to_string(), common::notation(*field, value));
    }
    map
}

#[test]
fn the_vectors_parse_identically_in_iso8583_rs() {
    for v in vectors() {
        assert_eq!(their_parse(&v.bytes), v.fields, "{}", v.name);
        let ours = Message::parse(Bytes::from(v.bytes.clone())).unwrap();
        assert_eq!(fields_of(&ours), v.fields, "{}", v.name);
    }
}

#[test]
fn iso8583_rs_packs_the_vectors_as_we_do() {
    for v in vectors() {
        let theirs = their_build(&v.fields);
        assert_eq!(
            hex::encode_upper(&theirs),
            hex::encode_upper(&v.bytes),
            "{}",
            v.name
        );
        let ours = common::builder_from(&v.fields).build().unwrap();
        assert_eq!(&ours[..], &theirs[..], "{}", v.name);
    }
}

/// Our reply to a purchase parses in iso8583_rs (the host's response path).
#[test]
fn our_responses_parse_in_iso8583_rs() {
    let request = common::parse(&common::vector("purchase").bytes);
    let mut response = MessageBuilder::response_to(
        &request,
        &[Field::Pan, Field::Stan, Field::TerminalId, Field::Batch],
    );
    response.set_text(Field::ResponseCode, "51").unwrap();
    let theirs = their_parse(&response.build().unwrap());
    assert_eq!(theirs["t"], "0210");
    assert_eq!(theirs["39"], "51");
    assert_eq!(theirs["41"], "T0000001");
    assert_eq!(theirs.len(), 6);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random valid messages over the whole dictionary: what we build, iso8583_rs reads as
    /// the same fields; what iso8583_rs builds from the same fields is the same bytes and
    /// we read it as the same fields.
    #[test]
    fn random_messages_agree(mti in strategy::mti(), fields in strategy::fields()) {
        let expected = notation_of(mti, &fields);
        let mut builder = MessageBuilder::new(mti);
        for (field, value) in &fields {
            builder.set(*field, value).unwrap();
        }
        let ours = builder.build().unwrap();
        prop_assert_eq!(&their_parse(&ours), &expected);

        let theirs = their_build(&expected);
        prop_assert_eq!(&theirs[..], &ours[..]);
        let parsed = Message::parse(Bytes::from(theirs)).unwrap();
        prop_assert_eq!(&fields_of(&parsed), &expected);
    }
}
