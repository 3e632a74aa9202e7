//! Parse and build the same 0200 purchase / 0210 response pair with our codec and with
//! iso8583_rs (configured from `codec/tests/data/iso8583_rs_campusnet.yaml`), then print
//! the ratio.
//!
//! Workloads, each for both implementations:
//! - `parse_0200`: parse the purchase request (the host's receive path);
//! - `build_0210`: build the approval from the parsed request, echoing its fields;
//! - `pair`: parse 0200, build 0210, parse 0210, build 0200: both messages each way.
//!
//! Criterion reports each; criterion has no ratios, so a plain timed loop over the same
//! closures follows (median of several rounds) and prints ours vs theirs.
//!
//! Run: `cargo bench -p bursar-benches --bench codec` (figures in docs/CODEC.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti, ResponseCode};
use criterion::Criterion;
use iso8583_rs::iso8583::iso_spec::{self, Spec};

/// The `purchase` vector of `shared/vectors/messages.json`.
const REQUEST_HEX: &str = "303230307238000000C08010313636323930303031323334353637383933303030303030303030303030303031323334313132323038333031353030303132333136333031353131323254303030303030314D3030303030303030303030303031313536303036303030303031";
/// The `purchase_response` vector: the approval of the purchase above.
const RESPONSE_HEX: &str = "30323130723A00000EC00410313636323930303031323334353637383933303030303030303030303030303031323334313132323038333031353030303132333136333031353131323231313232303030303030303030303432413030303432303054303030303030314D30303030303030303030303030313032303030303231353643303030303030303038373636303036303030303031";

const ECHO: [Field; 10] = [
    Field::Pan,
    Field::ProcessingCode,
    Field::Amount,
    Field::TransmissionDateTime,
    Field::Stan,
    Field::LocalTime,
    Field::LocalDate,
    Field::TerminalId,
    Field::MerchantId,
    Field::Batch,
];

/// The request's fields, as a terminal sets them.
const REQUEST_FIELDS: [(Field, &str); 11] = [
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
const APPROVAL_FIELDS: [(Field, &str); 5] = [
    (Field::SettlementDate, "1122"),
    (Field::Rrn, "000000000042"),
    (Field::ApprovalCode, "A00042"),
    (Field::ResponseCode, "00"),
    (Field::AdditionalAmounts, "0002156C000000008766"),
];

mod ours {
    use super::*;

    pub fn parse(bytes: &Bytes) -> Message {
        Message::parse(bytes.clone()).expect("the vector parses")
    }

    pub fn build_response(request: &Message) -> Bytes {
        let mut response = MessageBuilder::response_to(request, &ECHO);
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
        let response_bytes = build_response(&request);
        let response = parse(&response_bytes);
        let approved = response.response_code() == Some(ResponseCode::Approved);
        build_request().len() + usize::from(approved)
    }
}

mod theirs {
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

fn main() {
    let spec = theirs::spec();
    let request_bytes = Bytes::from(hex::decode(REQUEST_HEX).expect("hex"));
    let response_bytes = Bytes::from(hex::decode(RESPONSE_HEX).expect("hex"));
    let mut request_vec = request_bytes.to_vec();

    // Both implementations must produce the very same bytes, or the comparison is moot.
    let request = ours::parse(&request_bytes);
    assert_eq!(ours::build_response(&request), response_bytes);
    assert_eq!(ours::build_request(), request_bytes);
    let their_request = theirs::parse(spec, &mut request_vec);
    assert_eq!(
        theirs::build_response(spec, &their_request),
        response_bytes.to_vec()
    );
    assert_eq!(theirs::build_request(spec), request_bytes.to_vec());

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("parse_0200");
        group.bench_function("codec", |b| {
            b.iter(|| ours::parse(black_box(&request_bytes)))
        });
        group.bench_function("iso8583_rs", |b| {
            b.iter(|| theirs::parse(spec, black_box(&mut request_vec)))
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("build_0210");
        group.bench_function("codec", |b| {
            b.iter(|| ours::build_response(black_box(&request)))
        });
        group.bench_function("iso8583_rs", |b| {
            b.iter(|| theirs::build_response(spec, black_box(&their_request)))
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("pair");
        group.bench_function("codec", |b| {
            b.iter(|| ours::pair(black_box(&request_bytes)))
        });
        group.bench_function("iso8583_rs", |b| {
            b.iter(|| theirs::pair(spec, black_box(&mut request_vec)))
        });
        group.finish();
    }
    criterion.final_summary();

    // `cargo bench` passes --bench; `cargo test --benches` does not: then one quick round
    // only checks that the loops run.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, round_time) = if full {
        (7, Duration::from_millis(700))
    } else {
        (1, Duration::from_millis(20))
    };
    println!("\nratio (median ns per iteration over {rounds} rounds of {round_time:?}):");
    println!(
        "{:<12} {:>12} {:>12} {:>8}",
        "workload", "codec", "iso8583_rs", "ratio"
    );
    let rows: [(&str, f64, f64); 3] = [
        (
            "parse_0200",
            median_ns(rounds, round_time, || ours::parse(&request_bytes)),
            median_ns(rounds, round_time, || theirs::parse(spec, &mut request_vec)),
        ),
        (
            "build_0210",
            median_ns(rounds, round_time, || ours::build_response(&request)),
            median_ns(rounds, round_time, || {
                theirs::build_response(spec, &their_request)
            }),
        ),
        (
            "pair",
            median_ns(rounds, round_time, || ours::pair(&request_bytes)),
            median_ns(rounds, round_time, || theirs::pair(spec, &mut request_vec)),
        ),
    ];
    for (name, ours_ns, theirs_ns) in rows {
        println!(
            "{name:<12} {ours_ns:>10.0}ns {theirs_ns:>10.0}ns {:>7.1}x",
            theirs_ns / ours_ns
        );
    }
}

/// Median over `rounds` of the mean time per call of `f`, each round lasting about
/// `round_time`.
fn median_ns<T>(rounds: usize, round_time: Duration, mut f: impl FnMut() -> T) -> f64 {
    // Calibrate a batch size that takes about a millisecond, so the clock is read rarely.
    let mut batch = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        if start.elapsed() >= Duration::from_millis(1) || batch >= 1 << 24 {
            break;
        }
        batch *= 2;
    }
    let mut means: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let mut calls = 0u64;
            while start.elapsed() < round_time {
                for _ in 0..batch {
                    black_box(f());
                }
                calls += batch;
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}
