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
//! closures follows (median of several rounds) and prints ours vs theirs. That loop counts
//! the thread's CPU time where Linux reports it (`/proc/thread-self/schedstat`), not the
//! wall clock: on a loaded machine the wall clock also counts the time other processes
//! held the core, which swings the ratio far more than the code does.
//!
//! Run: `cargo bench -p bursar-benches --bench codec` (figures in docs/CODEC.md).

mod codec_pair;

use std::hint::black_box;
use std::time::Duration;

use bursar_benches::{median_ns, print_ratios, ratio_rounds};
use bytes::Bytes;
use codec_pair::{ours, theirs, REQUEST_HEX, RESPONSE_HEX};
use criterion::Criterion;

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

    let (rounds, round_time) = ratio_rounds();
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
    print_ratios(rounds, round_time, "iso8583_rs", &rows);
}
