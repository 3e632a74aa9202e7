//! codec's table-driven DES (codec/src/des.rs) against the `des` crate it replaced, in the
//! same run:
//! - `mac_0200`: the retail MAC (ISO 9797-1 algorithm 3) over the 0200 purchase vector's
//!   bytes, what the host does for every request and response of a MAC terminal;
//! - `mac_0200_x2`: two such MACs, as two calls or as one `retail_macs` (the two CBC chains
//!   interleaved); `mac_0200_x4`: four, as four calls or one `retail_macs`;
//! - `tdes_block`: one two-key TDES block encryption, as for a PIN block.
//!
//! Criterion reports each; then a plain timed loop (median of several rounds) prints ours
//! vs theirs, as benches/codec.rs does.
//!
//! Run: `cargo bench -p bursar-benches --bench des` (figures in docs/CODEC.md).

#[path = "../../codec/tests/reference/mod.rs"]
mod reference;

use std::hint::black_box;
use std::time::Duration;

use bursar_benches::{median_ns, print_ratios, ratio_rounds};
use codec::security::{retail_mac, retail_macs, TdesKey};
use criterion::Criterion;
use reference::Reference;

/// The TAK of the shared vectors (any key costs the same).
const KEY: [u8; 16] = *b"\x89\xAB\xCD\xEF\x01\x23\x45\x67\x76\x54\x32\x10\xFE\xDC\xBA\x98";

#[allow(dead_code)] // Only the request vector is used here.
#[path = "codec_pair/mod.rs"]
mod codec_pair;

fn main() {
    let data = hex::decode(codec_pair::REQUEST_HEX).expect("hex");
    let ours = TdesKey::from_bytes(&KEY);
    let theirs = Reference::new(&KEY);
    let block = *b"\x04\x12\x34\xFE\xDC\xBA\x98\x76";
    // The same answers, or the comparison is moot.
    assert_eq!(retail_mac(&ours, &data), theirs.retail_mac(&data));
    assert_eq!(
        ours.encrypt(&block),
        reference::encrypt(&theirs.tdes, block)
    );

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("mac_0200");
        group.bench_function("codec", |b| b.iter(|| retail_mac(&ours, black_box(&data))));
        group.bench_function("des", |b| b.iter(|| theirs.retail_mac(black_box(&data))));
        group.finish();
    }
    {
        // Two MACs (two responses written together): two calls, or the pair interleaved.
        let mut group = criterion.benchmark_group("mac_0200_x2");
        group.bench_function("two_calls", |b| {
            b.iter(|| {
                (
                    retail_mac(&ours, black_box(&data)),
                    retail_mac(&ours, black_box(&data)),
                )
            })
        });
        group.bench_function("together", |b| {
            b.iter(|| retail_macs([(&ours, black_box(&data[..])), (&ours, black_box(&data[..]))]))
        });
        group.finish();
    }
    {
        // Four responses written together: four calls, or all four interleaved.
        let mut group = criterion.benchmark_group("mac_0200_x4");
        group.bench_function("four_calls", |b| {
            b.iter(|| [(); 4].map(|()| retail_mac(&ours, black_box(&data))))
        });
        group.bench_function("together", |b| {
            b.iter(|| retail_macs([(&ours, black_box(&data[..])); 4]))
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("tdes_block");
        group.bench_function("codec", |b| b.iter(|| ours.encrypt(black_box(&block))));
        group.bench_function("des", |b| {
            b.iter(|| reference::encrypt(&theirs.tdes, black_box(block)))
        });
        group.finish();
    }
    criterion.final_summary();

    let (rounds, round_time) = ratio_rounds();
    let rows: [(&str, f64, f64); 2] = [
        (
            "mac_0200",
            median_ns(rounds, round_time, || retail_mac(&ours, black_box(&data))),
            median_ns(rounds, round_time, || theirs.retail_mac(black_box(&data))),
        ),
        (
            "tdes_block",
            median_ns(rounds, round_time, || ours.encrypt(black_box(&block))),
            median_ns(rounds, round_time, || {
                reference::encrypt(&theirs.tdes, black_box(block))
            }),
        ),
    ];
    print_ratios(rounds, round_time, "des", &rows);
}
