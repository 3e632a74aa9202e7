#!/bin/sh
# Instructions per call of each codec benchmark workload, ours and iso8583_rs's, counted by
# callgrind (independent of the machine's load), and their ratio. Each is run for two
# numbers of calls and the difference divided, so start-up and set-up cancel out. Then the
# same for the retail MAC and a TDES block, ours against the `des` crate.
#
#     benches/codec_instructions.sh        (needs valgrind; builds the example in release)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p bursar-benches --example codec_instructions
bin="${CARGO_TARGET_DIR:-target}/release/examples/codec_instructions"

# Instructions counted by callgrind for `calls` calls of a workload.
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

# Instructions per call: the difference between 3n and n calls, divided by 2n.
per_call() {
    few=$(count "$1" "$2" "$3")
    many=$(count "$1" "$2" $(($3 * 3)))
    echo $(((many - few) / ($3 * 2)))
}

printf '%-12s %12s %12s %8s\n' workload codec iso8583_rs ratio
for workload in parse_0200 build_0210 pair; do
    ours=$(per_call "$workload" codec 2000)
    theirs=$(per_call "$workload" iso8583_rs 200)
    ratio=$(awk "BEGIN { printf \"%.1f\", $theirs / $ours }")
    printf '%-12s %12s %12s %7sx\n' "$workload" "$ours" "$theirs" "$ratio"
done

printf '\n%-12s %12s %12s %8s\n' workload codec des ratio
for workload in mac_0200 tdes_block; do
    ours=$(per_call "$workload" codec 2000)
    theirs=$(per_call "$workload" des 2000)
    ratio=$(awk "BEGIN { printf \"%.1f\", $theirs / $ours }")
    printf '%-12s %12s %12s %7sx\n' "$workload" "$ours" "$theirs" "$ratio"
done
