//! Helpers shared by the integration tests: the reference vectors of
//! `shared/vectors/messages.json` (copied into `tests/data/`) and conversions between their
//! `fields` maps and the codec's types.

#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use codec::{Field, Format, Message, MessageBuilder, Mti};

/// The vectors file, embedded so the tests do not depend on the working directory.
pub const VECTORS_JSON: &str = include_str!("../data/messages.json");

/// One message of the vectors.
pub struct Vector {
    pub name: String,
    /// `fields` as in the file: `"t"` is the MTI, binary fields are upper-case hex.
    pub fields: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
    pub framed: Vec<u8>,
}

pub fn vectors() -> Vec<Vector> {
    let json: serde_json::Value = serde_json::from_str(VECTORS_JSON).unwrap();
    json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Vector {
            name: m["name"].as_str().unwrap().to_owned(),
            fields: m["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            bytes: hex::decode(m["hex"].as_str().unwrap()).unwrap(),
            framed: hex::decode(m["framed_hex"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

pub fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap()
}

/// The `keys` object of the vectors.
pub fn keys() -> BTreeMap<String, String> {
    let json: serde_json::Value = serde_json::from_str(VECTORS_JSON).unwrap();
    json["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// A field's value in the vectors' notation: text as is, binary as upper-case hex.
pub fn notation(field: Field, value: &[u8]) -> String {
    if field.spec().format == Format::B {
        hex::encode_upper(value)
    } else {
        String::from_utf8(value.to_vec()).unwrap()
    }
}

/// A parsed message in the vectors' notation.
pub fn fields_of(message: &Message) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    map.insert("t".to_owned(), message.mti().as_str().to_owned());
    for (field, value) in message.fields() {
        map.insert(field.number().to_string(), notation(field, value));
    }
    map
}

/// A builder holding the vectors' `fields`.
pub fn builder_from(fields: &BTreeMap<String, String>) -> MessageBuilder {
    let mti = Mti::parse(fields["t"].as_bytes()).unwrap();
    let mut builder = MessageBuilder::new(mti);
    for (key, value) in fields {
        if key == "t" {
            continue;
        }
        let field = Field::from_number(key.parse().unwrap()).unwrap();
        let raw = if field.spec().format == Format::B {
            hex::decode(value).unwrap()
        } else {
            value.as_bytes().to_vec()
        };
        builder.set(field, &raw).unwrap();
    }
    builder
}

pub fn parse(bytes: &[u8]) -> Message {
    Message::parse(Bytes::copy_from_slice(bytes)).unwrap()
}

/// Proptest strategies for valid messages: any MTI of the profile, any set of data
/// elements (never F1 or F65), each value drawn from its dictionary rule.
pub mod strategy {
    use codec::{Field, Format, Length, Mti};
    use proptest::prelude::*;

    pub fn mti() -> impl Strategy<Value = Mti> {
        proptest::sample::select(Mti::ALL.to_vec())
    }

    /// Any data element: F2-F128 except F65.
    pub fn field() -> impl Strategy<Value = Field> {
        (2u8..=128)
            .prop_filter("F65 is forbidden", |n| *n != 65)
            .prop_map(|n| Field::from_number(n).unwrap())
    }

    pub fn byte(format: Format) -> BoxedStrategy<u8> {
        match format {
            Format::N => (b'0'..=b'9').boxed(),
            Format::An | Format::Ans => (0x20u8..=0x7E).boxed(),
            Format::B => any::<u8>().boxed(),
        }
    }

    /// A valid value of `field`, at its exact length when fixed.
    pub fn value(field: Field) -> impl Strategy<Value = Vec<u8>> {
        let spec = field.spec();
        let len = match spec.length {
            Length::Fixed(n) => (n as usize)..=(n as usize),
            Length::Ll(max) | Length::Lll(max) => 0..=(max as usize),
        };
        proptest::collection::vec(byte(spec.format), len)
    }

    /// Up to 40 fields (at most ~40 kB, under the 65535-byte limit), in wire order.
    pub fn fields() -> impl Strategy<Value = Vec<(Field, Vec<u8>)>> {
        proptest::collection::btree_map(field(), Just(()), 0..40).prop_flat_map(|chosen| {
            chosen
                .into_keys()
                .map(|field| value(field).prop_map(move |v| (field, v)))
                .collect::<Vec<_>>()
        })
    }
}
