#!/usr/bin/env bash
# CPU time per request of each of bursar's threads, in a closed-loop run: A/B of two or more
# bursar binaries under the same loadgen, alternated, so that each sees the same machine.
#
#   benches/cpu_per_request.sh OLD_BURSAR NEW_BURSAR [MORE...]   # each given binary, ROUNDS times
#   benches/cpu_per_request.sh                                   # just this tree's release build
#   RATE=34000 benches/cpu_per_request.sh                        # open loop at RATE requests/s
#
# For each run: bursar (durable WAL, fresh data directory) under `loadgen run` (TERMINALS
# terminals, DEPTH in flight each, the e2e mix); once the load is flowing, WINDOW seconds of
# CPU time by thread kind (benches/thread_times.py: /proc/<bursar>/task/*/schedstat), divided
# by the requests bursar counted in the same window (bursar_requests_total on /metrics).
# Thread CPU leaves out time waiting for fsync, and includes what loadgen's load makes the
# kernel do on bursar's behalf (socket system calls). In brackets, the time its threads were
# runnable but waited for a CPU, per request: on a machine with fewer cores than busy threads,
# each hand-off between threads waits there. docs/BENCHMARKS.md has figures.
set -euo pipefail
cd "$(dirname "$0")/.."

WINDOW=${WINDOW:-6}
ROUNDS=${ROUNDS:-2}
RATE=${RATE:-}   # empty: closed loop with DEPTH in flight; a number: open loop at that rate

source benches/common.sh
e2e_load
build release
BINARIES=("$@")
((${#BINARIES[@]})) || BINARIES=("$BIN/bursar")
LOADGEN=$BIN/loadgen
if [[ -n $RATE ]]; then PACE=(--rate "$RATE"); else PACE=(--depth "$DEPTH"); fi

requests() { # requests answered so far, as bursar counts them
    curl -sf "http://$ADMIN_ADDR/metrics" |
        awk '/^bursar_requests_total[{ ]/ { n += $NF } END { printf "%d\n", n }'
}

# threads PID: per kind of thread of process PID, "<kind> <ns on a CPU> <ns runnable but
# waiting for a CPU>"
threads() {
    python3 benches/thread_times.py "$1"
}

printf '%-40s %10s %12s %10s  %s\n' binary req/s total_us window_req "us per request by thread kind: CPU (waiting for a CPU)"
for round in $(seq "$ROUNDS"); do
    for binary in "${BINARIES[@]}"; do
        BIN_SAVED=$BIN
        mkdir -p "$WORK/bin"
        ln -sf "$(realpath "$binary")" "$WORK/bin/bursar"
        BIN=$WORK/bin
        start_bursar
        BIN=$BIN_SAVED
        "$LOADGEN" run --terminals "$TERMINALS" --cards "$CARDS" --mix "$MIX" \
            --duration $((WINDOW + 8))s "${PACE[@]}" "${BURSAR[@]}" --json \
            >"$WORK/run.json" 2>"$WORK/loadgen.log" &
        LOAD_PID=$!
        # Wait for the load proper (after provisioning and sign-on), then 2 s to settle.
        before=$(requests)
        while sleep 0.5; do
            now=$(requests)
            ((now - before > 2000)) && break
            before=$now
        done
        sleep 2
        r0=$(requests)
        { threads "$HOST_PID"; threads "$LOAD_PID" | sed 's/^[^ ]*/loadgen/'; } >"$WORK/t0"
        sleep "$WINDOW"
        r1=$(requests)
        { threads "$HOST_PID"; threads "$LOAD_PID" | sed 's/^[^ ]*/loadgen/'; } >"$WORK/t1"
        wait "$LOAD_PID"
        stop_host
        n=$((r1 - r0))
        awk -v n="$n" -v bin="$binary" -v w="$WINDOW" '
            FNR == NR { t0[$1] += $2; q0[$1] += $3; next }
            { t1[$1] += $2; q1[$1] += $3 }
            END {
                for (k in t1) { us = (t1[k] - t0[k]) / 1e3 / n; if (k != "loadgen") total += us
                    wait_us = (q1[k] - q0[k]) / 1e3 / n
                    if (us >= 0.05 || wait_us >= 0.05) line = line sprintf(" %s=%.1f(%.1f)", k, us, wait_us) }
                printf "%-40s %10d %12.1f %10d %s\n", bin, n / w, total, n, line
            }' "$WORK/t0" "$WORK/t1"
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
