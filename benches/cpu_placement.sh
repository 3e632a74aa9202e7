#!/usr/bin/env bash
# Where the CPUs' idle time goes under load: `perf sched record` of the whole machine for
# WINDOW seconds in the middle of a run of bursar under loadgen (e2e.sh's closed loop, or an
# open loop at RATE), then benches/sched_waits.py on it: how idle the CPUs were, and per kind
# of thread of bursar and loadgen the time it ran, the time it was runnable but waited for a
# CPU, how much of that wait fell while another CPU was idle (a thread queued on a busy CPU
# while another could have run it), and whose runs it waited behind.
#
#   benches/cpu_placement.sh                      # closed loop, e2e.sh's settings
#   RATE=70000 benches/cpu_placement.sh           # open loop at 70,000/s
#   BURSAR_TOML=$'[host]\ncpu_scheduling = "normal"' benches/cpu_placement.sh
#   HOST=echo benches/cpu_placement.sh            # the echo host under the same load
#
# Needs perf (Debian's linux-perf) and the kernel's sched tracepoints; run as root. The
# recording itself costs some throughput (each context switch is traced). docs/BENCHMARKS.md
# has readings.
set -euo pipefail
cd "$(dirname "$0")/.."

WINDOW=${WINDOW:-1}
RATE=${RATE:-}   # empty: closed loop with DEPTH in flight; a number: open loop at that rate
command -v perf >/dev/null || { echo "cpu_placement.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }

source benches/common.sh
e2e_load
build release
if [[ -n $RATE ]]; then PACE=(--rate "$RATE"); else PACE=(--depth "$DEPTH"); fi

if [[ ${HOST:-bursar} == echo ]]; then
    start_echo_host
    TARGET=(--addr "$ECHO_ADDR")
else
    start_bursar "${BURSAR_TOML:-}"
    TARGET=("${BURSAR[@]}")
fi
"$BIN/loadgen" run "${TARGET[@]}" --terminals "$TERMINALS" --cards "$CARDS" --mix "$MIX" \
    --duration $((WINDOW + 10))s "${PACE[@]}" --json >"$OUT/run.json" 2>"$OUT/run.err" &
LOADGEN_PID=$!
PIDS+=("$LOADGEN_PID") # stopped on exit if the recording fails
sleep 5 # provisioning, sign-on, and the load settling
perf sched record -a -o "$WORK/sched.data" -- sleep "$WINDOW" >/dev/null 2>"$WORK/perf.err" ||
    { cat "$WORK/perf.err" >&2; exit 1; }
wait "$LOADGEN_PID"
echo "loadgen: $(field run '.throughput_per_s | floor')/s over the whole run, p99 $(field run '.latency_us.p99') us"
perf sched timehist --state -i "$WORK/sched.data" >"$WORK/timehist" 2>/dev/null
python3 benches/sched_waits.py "$WORK/timehist" "$HOST_PID" "$LOADGEN_PID" "${HOST:-bursar}"
