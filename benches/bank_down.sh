#!/usr/bin/env bash
# Do purchases keep flowing while the bank link is down? The same closed-loop loadgen run
# against one bursar (bank link to banksim) twice: link signed on, then the bank gone
# (banksim refuses and drops the link). Then a mix with top-ups while the link is down: the
# top-ups get 91 at once and the purchases still flow. Prints the throughput ratio.
#
#   benches/bank_down.sh                 # release build
#   PROFILE=debug DURATION=5s benches/bank_down.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TERMINALS=${TERMINALS:-32}
DEPTH=${DEPTH:-4}
DURATION=${DURATION:-10s}
PROFILE=${PROFILE:-release}

source benches/common.sh
build "$PROFILE"

control() { # one banksim control command
    python3 - "$CONTROL_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall((sys.argv[2] + "\n").encode())
print(s.makefile().readline().strip())
PY
}
link_state() {
    curl -s "http://$ADMIN_ADDR/metrics" | grep '^bursar_bank_link_state{state="signed_on"}' | awk '{print $2}'
}

BANK_PORT=$(free_port)
CONTROL_PORT=$(free_port)
"$BIN/banksim" --listen "127.0.0.1:$BANK_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --outbox-dir "$WORK/outbox" >"$WORK/banksim.log" 2>&1 &
PIDS+=($!)
start_bursar "$(printf '[bank]\ntimeout_ms = 500\necho_interval_ms = 1000\nreconnect_min_ms = 100\nreconnect_max_ms = 1000')" \
    --bank-addr "127.0.0.1:$BANK_PORT"
for _ in $(seq 300); do
    [[ $(link_state) == 1 ]] && break
    sleep 0.1
done
[[ $(link_state) == 1 ]] || { echo "bank link never signed on" >&2; exit 1; }

run() { # run NAME MIX: one loadgen run, its report as $OUT/NAME.json
    echo "== $1 (bank link signed_on=$(link_state))" >&2
    "$BIN/loadgen" run "${BURSAR[@]}" \
        --terminals "$TERMINALS" --depth "$DEPTH" --duration "$DURATION" --mix "$2" --json >"$OUT/$1.json"
    jq -r '"   \(.answered) answered, \(.throughput_per_s | floor)/s, p50 \(.latency_us.p50) us, p99 \(.latency_us.p99) us; codes \(.codes | tostring); errors \(.errors | tostring)"' "$OUT/$1.json" >&2
}

run link_up purchase=100
control "refuse on" >/dev/null
control "kill" >/dev/null
for _ in $(seq 100); do
    [[ $(link_state) != 1 ]] && break
    sleep 0.1
done
run link_down purchase=100
run link_down_topups purchase=90,topup=10

UP=$(field link_up '.throughput_per_s | floor')
DOWN=$(field link_down '.throughput_per_s | floor')
cat <<REPORT

machine: $(nproc) CPUs; $TERMINALS terminals, depth $DEPTH, $DURATION per run, $PROFILE build
purchases, bank link up:   $UP/s
purchases, bank link down: $DOWN/s = $(jq -n "$DOWN * 100 / $UP | floor") % of the link-up rate
link down with 10 % top-ups: codes $(field link_down_topups '.codes | tostring') (top-ups 91 at once)
REPORT
