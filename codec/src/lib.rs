//! ISO 8583:1987 for the CampusNet profile (`shared/PROTOCOL.md` sections 1, 2, 6 and 7).
//!
//! What it is for:
//! - [`Message::parse`]: validating a received message against the 128-field dictionary and
//!   reading its fields by name ([`Field::Pan`], [`Field::Stan`], ...) as slices of the
//!   received [`bytes::Bytes`]; errors say which field failed and why, and carry the MTI,
//!   F11 and F41 when they were readable so the switch can answer `30` ([`ParseError`]);
//! - [`MessageBuilder`]: building outgoing messages and responses, with their bitmaps and
//!   MACs;
//! - [`framing::FrameCodec`]: the 2-byte length prefix, as a `tokio_util` codec;
//! - [`security`]: ISO 9564 format-0 PIN blocks and the ISO 9797-1 retail MAC, over the
//!   table-driven DES of [`des`];
//! - [`mask`]: what a log may show of a message (`Display`/`Debug` never show a full PAN,
//!   a PIN block, track data, a MAC or a key).
//!
//! What it is not for: it does no I/O (the switch owns sockets), knows nothing of cards,
//! balances or terminals (the ledger and the switch decide what a message means), and does
//! not allocate per field: parsing allocates nothing, building allocates the output once
//! (and a buffer for the fields only when they outgrow the 256 bytes kept in the builder).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
pub mod builder;
pub mod des;
pub mod error;
pub mod field;
pub mod framing;
pub mod mask;
pub mod message;
pub mod mti;
pub mod response_code;
pub mod security;

pub use builder::MessageBuilder;
pub use error::{BuildError, ParseError, ParseErrorKind, Salvage};
pub use field::{Field, FieldSpec, Format, Length};
pub use framing::{FrameCodec, FrameError, DEFAULT_MAX_FRAME_LEN};
pub use mask::MaskedPan;
pub use message::{Message, MAX_MESSAGE_LEN};
pub use mti::{Mti, MtiError};
pub use response_code::ResponseCode;
pub use security::{
    decrypt_pin_block, encrypt_pin_block, pin_block_format0, retail_mac, verify_mac,
    verify_message_mac, DesKey, KeyError, Pin, PinError, TdesKey,
};
