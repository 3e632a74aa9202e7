#!/usr/bin/env bash
# Where the open loop's tail comes from, second by second: e2e.sh's half-peak run on one bursar,
# with each second's p99 (loadgen's progress line) beside the CPU time each kind of thread got
# in that second and the time it spent runnable but waiting for a CPU (bursar's threads,
# loadgen's, and the kernel's own workers), and the moments snapshots were written.
#
#   benches/tail_by_second.sh                    # closed loop 15 s, then half of its rate 15 s
#   RATE=60000 benches/tail_by_second.sh         # the open loop at a fixed rate instead
#   BURSAR_TOML=$'[ledger]\nsnapshot_every_records = 100000000' benches/tail_by_second.sh
#
# Output: one line per second, "p99=<ms>  <kind>=<CPU ms>/<waiting ms> ...", kinds under 5 ms
# of either left out; b: bursar, lg: loadgen, k: kernel threads. The seconds are counted from
# loadgen's start, so its progress lines (counted from the end of sign-on) lead by the
# sign-on's few milliseconds. docs/BENCHMARKS.md has readings.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-} # empty: half of the closed loop's throughput, as e2e.sh

source benches/common.sh
e2e_load
build release

RUST_LOG=warn,ledger=info start_bursar "${BURSAR_TOML:-}"
LOADGEN=("$BIN/loadgen" run "${BURSAR[@]}" --terminals "$TERMINALS" --cards "$CARDS" --mix "$MIX"
    --duration "$DURATION" --json)
"${LOADGEN[@]}" --depth "$DEPTH" >"$OUT/peak.json" 2>"$OUT/peak.err"
PEAK=$(field peak '.throughput_per_s | floor')
RATE=${RATE:-$((PEAK / 2))}
echo "closed loop: $PEAK/s; open loop at $RATE/s" >&2

"${LOADGEN[@]}" --rate "$RATE" >"$OUT/half.json" 2>"$OUT/half.err" &
LOADGEN_PID=$!
python3 - "$HOST_PID" "$LOADGEN_PID" >"$OUT/threads" <<'PY'
import sys, time

sys.path.insert(0, "benches")
from thread_times import by_kind

host, loadgen = sys.argv[1], sys.argv[2]

def sample():
    """(CPU ns, waiting ns) by thread kind: bursar's, loadgen's and the kernel's workers'."""
    return {**by_kind(host, "b:"), **by_kind(loadgen, "lg:"), **by_kind("*", "k:", kernel_only=True)}

def running(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

before = sample()
while running(loadgen):
    time.sleep(1)
    now = sample()
    line = []
    for kind in sorted(now):
        ran = (now[kind][0] - before.get(kind, (0, 0))[0]) / 1e6
        waited = (now[kind][1] - before.get(kind, (0, 0))[1]) / 1e6
        if ran >= 5 or waited >= 5:
            line.append(f"{kind}={ran:.0f}/{waited:.0f}")
    print(time.strftime("%H:%M:%S", time.gmtime()), " ".join(line), flush=True)
    before = now
PY
wait "$LOADGEN_PID"

grep -o 'p99 *[0-9.]* ms' "$OUT/half.err" | awk '{ print $2 }' >"$OUT/p99s" || true
echo "open loop at $RATE/s: p99 $(field half '.latency_us.p99') us over the run; per second:"
paste -d'|' "$OUT/p99s" "$OUT/threads" | awk -F'|' '{ printf "p99=%-7s %s\n", ($1 == "" ? "-" : $1), $2 }'
echo "snapshots written (UTC end time, ms taken):"
grep -h "snapshot written" "$WORK/bursar.log" | sed -E 's/^[0-9-]+T([0-9:]+)\.[0-9]+Z.*seq=([0-9]+).* ms=([0-9]+).*/  \1 seq \2, \3 ms/' || echo "  none"
