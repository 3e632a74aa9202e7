#!/usr/bin/env bash
# Catch-up after an outage (issue 8): TERMINALS offline terminals, each holding SALES offline
# sales, all upload at once (0220 advices, some re-sent as 0221, some lost and found by the
# batch upload), then close their batches (0500, and 0320 + 0500 960000 when out of
# balance). Against `bursar` (release build, durable WAL, fresh data directory), and the same
# upload against the echo host (answers everything `00` and keeps nothing) as the baseline.
#
#   benches/offline_catchup.sh                     # 300 terminals x 2,000 sales
#   TERMINALS=50 SALES=500 benches/offline_catchup.sh
#
# The time is loadgen's: from the first advice to the last batch closed. Afterwards loadgen
# reads every card's balance back through the admin API and compares it with what it sold
# (every advice posted exactly once), and asks whether the book balances. Exits 1 if the
# catch-up takes longer than TARGET_S (20 s) or any sale was lost, posted twice or left in
# an open batch. Reports as JSON are kept in $OUT (default: a temp directory).
set -euo pipefail
cd "$(dirname "$0")/.."

TERMINALS=${TERMINALS:-300}
SALES=${SALES:-2000}
CARDS=${CARDS:-4096}
DEPTH=${DEPTH:-32}
DUPLICATES=${DUPLICATES:-1}
BLOCKED=${BLOCKED:-1}
OVERDRAFT=${OVERDRAFT:-0.1}
# Lost advices, percent: 0 closes every batch at the first 0500; 0.05 (one of 2,000) makes
# every terminal's close fail (95) and upload its whole batch (0320) before 0500 960000.
LOST=${LOST:-0}
TARGET_S=${TARGET_S:-20}

source benches/common.sh
build release

offline() { # offline NAME ARGS...: one catch-up, its report kept as $OUT/NAME.json
    local name=$1
    shift
    echo "== $name" >&2
    "$BIN/loadgen" offline --terminals "$TERMINALS" --sales "$SALES" --cards "$CARDS" --depth "$DEPTH" \
        --duplicate-percent "$DUPLICATES" --blocked-percent "$BLOCKED" --overdraft-percent "$OVERDRAFT" \
        --lost-percent "$LOST" --json "$@" >"$OUT/$name.json"
    jq -r '"   \(.sales.total) sales, \(.advices_acknowledged) advices acknowledged, \(.duplicates_detected)/\(.sales.resent) duplicates recognised; batches \(.batches | tostring); \(.elapsed_s * 100 | floor / 100) s, \(.answered_per_s | floor) responses/s; codes \(.codes_by_mti | tostring); errors \(.errors | tostring)"' "$OUT/$name.json" >&2
}

# 1. The echo host: what loadgen and the machine take for the same messages.
start_echo_host
offline echo --addr "$ECHO_ADDR"
stop_host

# 2. Bursar.
start_bursar
offline bursar "${BURSAR[@]}"
stop_host

ECHO_S=$(field echo '.elapsed_s')
BURSAR_S=$(field bursar '.elapsed_s')
cat <<REPORT

machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
settings: $TERMINALS terminals x $SALES offline sales, $DEPTH in flight each, $CARDS cards;
  re-sent $DUPLICATES %, blocked cards $BLOCKED %, overdrafts $OVERDRAFT %, lost advices $LOST %
echo host: $(printf %.2f "$ECHO_S") s ($(field echo '.answered_per_s | floor') responses/s)
bursar:    $(printf %.2f "$BURSAR_S") s ($(field bursar '.answered_per_s | floor') responses/s) = $(jq -n "$BURSAR_S / $ECHO_S * 10 | floor / 10")x the echo host (target <= $TARGET_S s)
bursar: $(field bursar '.advices_acknowledged') advices acknowledged of $(field bursar '.sales.total - .sales.advice_lost') sent, \
$(field bursar '.duplicates_detected') of $(field bursar '.sales.resent') duplicates recognised, \
batches $(field bursar '.batches | tostring'), \
cards as expected $(field bursar '.verification.cards_as_expected') of $(field bursar '.verification.cards_checked'), \
book balanced $(field bursar '.verification.ledger_balanced')
reports: $OUT/{echo,bursar}.json
REPORT
missed=0
if [[ $(jq -n "$BURSAR_S > $TARGET_S") == true ]]; then
    echo "MISSED: catch-up took $(printf %.2f "$BURSAR_S") s > $TARGET_S s"
    missed=1
fi
RECONCILED=$(field bursar '.batches.not_closed == 0 and .errors == {}
    and .advices_acknowledged == .sales.total - .sales.advice_lost
    and .duplicates_detected == .sales.resent
    and .verification.ledger_balanced
    and .verification.cards_as_expected == .verification.cards_checked')
if [[ $RECONCILED != true ]]; then
    echo "MISSED: not every sale was posted exactly once in a closed batch (see $OUT/bursar.json)"
    missed=1
fi
exit $missed
