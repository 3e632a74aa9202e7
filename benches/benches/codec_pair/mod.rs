//! The 0200 purchase / 0210 approval pair, and the calls that parse and build it with our
//! codec (`ours`) and with iso8583_rs (`theirs`), shared by the criterion benchmark
//! (`benches/codec.rs`) and the instruction-count harness (`examples/codec_instructions.rs`).

use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti, ResponseCode};
use iso8583_rs::iso8583::iso_spec::{self, Spec};

/// The `purchase` vector of `shared/vectors/messages.json`.
pub const REQUEST_HEX: &str = "303230307238000000C08010313636323930303031323334353637383933303030303030303030303030303031323334313132323038333031353030303132333136333031353131323254303030303030314D3030303030303030303030303031313536303036303030303031";
/// The `purchase_response` vector: the approval of the purchase above.
pub const RESPONSE_HEX: &str = "30323130723A00000EC00410313636323930303031323334353637383933303030303030303030303030303031323334313132323038333031353030303132333136333031353131323231313232303030303030303030303432413030303432303054303030303030314D30303030303030303030303030313032303030303231353643303030303030303038373636303036303030303031";

/// What the 0210 copies from the 0200: the list the host itself uses.
pub const ECHO: &[Field] = Mti::FINANCIAL_REQUEST.echoed_fields();

/// The request's fields, as a terminal sets them.
pub const REQUEST_FIELDS: [(Field, &str); 11] = [
    (Field::Pan, "6290001234567893"),
    (Field::ProcessingCode, "000000"),
    (Field::Amount, "000000001234"),
    (Field::TransmissionDateTime, "1122083015"),
    (Field::Stan, "000123"),
    (Field::LocalTime, "163015"),
    (Field::LocalDate, "1122"),
    (Field::TerminalId, "T0000001"),
    (Field::MerchantId, "M00000000000001"),
    (Field::Currency, "156"),
    (Field::Batch, "000001"),
];

/// What the host adds to the echoed fields in an approval.
pub const APPROVAL_FIELDS: [(Field, &str); 5] = [
    (Field::SettlementDate, "1122"),
    (Field::Rrn, "000000000042"),
    (Field::ApprovalCode, "A00042"),
    (Field::ResponseCode, "00"),
    (Field::AdditionalAmounts, "0002156C000000008766"),
];

pub mod ours {
    use super::*;

    pub fn parse(bytes: &Bytes) -> Message {
        Message::parse(bytes.clone()).expect("the vector parses")
    }

    pub fn build_response(request: &Message) -> Bytes {
        let mut response = MessageBuilder::response_to(request, ECHO);
        for (field, value) in APPROVAL_FIELDS {
            response.set_text(field, value).expect("valid field");
        }
        response.build().expect("fits")
    }

    pub fn build_request() -> Bytes {
        let mut request = MessageBuilder::new(Mti::FINANCIAL_REQUEST);
        for (field, value) in REQUEST_FIELDS {
            request.set_text(field, value).expect("valid field");
        }
        request.build().expect("fits")
    }

    pub fn pair(request_bytes: &Bytes) -> usize {
        let request = parse(request_bytes);
        // The bytes built are handed over, as a decoded frame is (no clone to keep).
        let response = Message::parse(build_response(&request)).expect("the 0210 parses");
        let approved = response.response_code() == Some(ResponseCode::Approved);
        build_request().len() + usize::from(approved)
    }
}

pub mod theirs {
    use super::*;
    use iso8583_rs::iso8583::iso_spec::IsoMsg;

    pub fn spec() -> &'static Spec {
        // iso8583_rs reads its spec from the file named by SPEC_FILE, once. Set before any
        // other thread exists (first thing in main).
        std::env::set_var(
            "SPEC_FILE",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../codec/tests/data/iso8583_rs_campusnet.yaml"
            ),
        );
        iso_spec::spec("")
    }

    /// iso8583_rs takes `&mut Vec<u8>` but does not modify it, so one buffer is reused.
    pub fn parse(spec: &'static Spec, bytes: &mut Vec<u8>) -> IsoMsg {
        spec.parse(bytes).expect("the vector parses")
    }

    pub fn build_response(spec: &'static Spec, request: &IsoMsg) -> Vec<u8> {
        let segment = spec.get_message_from_header("0210").expect("in the spec");
        let mut response = iso_spec::new_msg(spec, segment);
        response.set("message_type", "0210").expect("header");
        let positions: Vec<u32> = ECHO.iter().map(|f| u32::from(f.number())).collect();
        response.echo_from(request, &positions).expect("echo");
        for (field, value) in APPROVAL_FIELDS {
            response
                .set_on(u32::from(field.number()), value)
                .expect("field");
        }
        response.assemble().expect("assembles")
    }

    pub fn build_request(spec: &'static Spec) -> Vec<u8> {
        let segment = spec.get_message_from_header("0200").expect("in the spec");
        let mut request = iso_spec::new_msg(spec, segment);
        request.set("message_type", "0200").expect("header");
        for (field, value) in REQUEST_FIELDS {
            request
                .set_on(u32::from(field.number()), value)
                .expect("field");
        }
        request.assemble().expect("assembles")
    }

    pub fn pair(spec: &'static Spec, request_bytes: &mut Vec<u8>) -> usize {
        let request = parse(spec, request_bytes);
        let mut response_bytes = build_response(spec, &request);
        let response = parse(spec, &mut response_bytes);
        let approved = response.bmp_child_value(39).ok().as_deref() == Some("00");
        build_request(spec).len() + usize::from(approved)
    }
}
