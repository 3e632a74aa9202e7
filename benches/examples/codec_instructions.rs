//! Runs one workload of the codec benchmark a given number of times, to count its
//! instructions under callgrind: unlike time, an instruction count does not depend on the
//! load of a shared machine. `benches/codec_instructions.sh` runs every workload twice (two
//! counts of calls) and prints instructions per call and the ratio (docs/CODEC.md).
//!
//!     cargo build --release -p bursar-benches --example codec_instructions
//!     valgrind --tool=callgrind target/release/examples/codec_instructions pair codec 1000
//!
//! Arguments: workload (`parse_0200`, `build_0210` or `pair`), implementation (`codec` or
//! `iso8583_rs`), number of calls; or workload `mac_0200` (retail MAC over the 0200's bytes)
//! or `tdes_block` (one TDES block), implementation `codec` or `des` (the `des` crate).

#[path = "../benches/codec_pair/mod.rs"]
mod codec_pair;
#[path = "../../codec/tests/reference/mod.rs"]
mod reference;

use std::hint::black_box;
use std::process::ExitCode;

use bytes::Bytes;
use codec::security::{retail_mac, TdesKey};
use codec_pair::{ours, theirs, REQUEST_HEX, RESPONSE_HEX};
use reference::Reference;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, implementation, calls] = &args[..] else {
        eprintln!(
            "usage: codec_instructions <parse_0200|build_0210|pair> <codec|iso8583_rs> <calls>\n       codec_instructions <mac_0200|tdes_block> <codec|des> <calls>"
        );
        return ExitCode::FAILURE;
    };
    let Ok(calls) = calls.parse::<u64>() else {
        eprintln!("calls: not a number: {calls}");
        return ExitCode::FAILURE;
    };
    let spec = theirs::spec();
    let request_bytes = Bytes::from(hex::decode(REQUEST_HEX).expect("hex"));
    let mut request_vec = request_bytes.to_vec();
    let request = ours::parse(&request_bytes);
    let their_request = theirs::parse(spec, &mut request_vec);
    // Both build the very same bytes, or the counts compare different work.
    let response_bytes = hex::decode(RESPONSE_HEX).expect("hex");
    assert_eq!(ours::build_response(&request), response_bytes);
    assert_eq!(theirs::build_response(spec, &their_request), response_bytes);

    let key = [0x5Au8; 16];
    let (tak, reference) = (TdesKey::from_bytes(&key), Reference::new(&key));
    assert_eq!(
        retail_mac(&tak, &request_bytes),
        reference.retail_mac(&request_bytes)
    );
    let block = [0x42u8; 8];

    let mut call: Box<dyn FnMut() -> usize> = match (workload.as_str(), implementation.as_str()) {
        ("parse_0200", "codec") => {
            Box::new(|| ours::parse(black_box(&request_bytes)).as_bytes().len())
        }
        ("parse_0200", "iso8583_rs") => Box::new(|| {
            theirs::parse(spec, black_box(&mut request_vec))
                .fd_map
                .len()
        }),
        ("build_0210", "codec") => Box::new(|| ours::build_response(black_box(&request)).len()),
        ("build_0210", "iso8583_rs") => {
            Box::new(|| theirs::build_response(spec, black_box(&their_request)).len())
        }
        ("pair", "codec") => Box::new(|| ours::pair(black_box(&request_bytes))),
        ("pair", "iso8583_rs") => Box::new(|| theirs::pair(spec, black_box(&mut request_vec))),
        ("mac_0200", "codec") => Box::new(|| retail_mac(&tak, black_box(&request_bytes))[0].into()),
        ("mac_0200", "des") => {
            Box::new(|| reference.retail_mac(black_box(&request_bytes))[0].into())
        }
        ("tdes_block", "codec") => Box::new(|| tak.encrypt(black_box(&block))[0].into()),
        ("tdes_block", "des") => {
            Box::new(|| reference::encrypt(&reference.tdes, black_box(block))[0].into())
        }
        _ => {
            eprintln!("unknown workload or implementation: {workload} {implementation}");
            return ExitCode::FAILURE;
        }
    };
    let mut total = 0usize;
    for _ in 0..calls {
        total = total.wrapping_add(call());
    }
    println!("{total}");
    ExitCode::SUCCESS
}
