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
TOKEN=bench-admin-token-0123456789

if [[ $PROFILE == release ]]; then
    cargo build --release --locked -p switch -p loadgen --bins
else
    cargo build --locked -p switch -p loadgen --bins
fi
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
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
TERMINAL_ADDR=127.0.0.1:$(free_port)
ADMIN_ADDR=127.0.0.1:$(free_port)
"$BIN/banksim" --listen "127.0.0.1:$BANK_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --outbox-dir "$WORK/outbox" >"$WORK/banksim.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/bursar.toml" <<TOML
[admin.tokens]
bench = "$TOKEN"
[bank]
timeout_ms = 500
echo_interval_ms = 1000
reconnect_min_ms = 100
reconnect_max_ms = 1000
TOML
RUST_LOG=warn "$BIN/bursar" --config "$WORK/bursar.toml" --data-dir "$WORK/data" --outbox-dir "$WORK/outbox" \
    --terminal-addr "$TERMINAL_ADDR" --admin-addr "$ADMIN_ADDR" --bank-addr "127.0.0.1:$BANK_PORT" \
    2>"$WORK/bursar.log" &
PIDS+=($!)
for _ in $(seq 300); do
    [[ $(link_state) == 1 ]] && break
    sleep 0.1
done
[[ $(link_state) == 1 ]] || { echo "bank link never signed on" >&2; exit 1; }

run() { # run NAME MIX: one loadgen run, its report as $WORK/NAME.json
    echo "== $1 (bank link signed_on=$(link_state))" >&2
    "$BIN/loadgen" run --addr "$TERMINAL_ADDR" --admin-addr "$ADMIN_ADDR" --admin-token "$TOKEN" \
        --terminals "$TERMINALS" --depth "$DEPTH" --duration "$DURATION" --mix "$2" --json >"$WORK/$1.json"
    jq -r '"   \(.answered) answered, \(.throughput_per_s | floor)/s, p50 \(.latency_us.p50) us, p99 \(.latency_us.p99) us; codes \(.codes | tostring); errors \(.errors | tostring)"' "$WORK/$1.json" >&2
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

UP=$(jq -r '.throughput_per_s | floor' "$WORK/link_up.json")
DOWN=$(jq -r '.throughput_per_s | floor' "$WORK/link_down.json")
cat <<REPORT

machine: $(nproc) CPUs; $TERMINALS terminals, depth $DEPTH, $DURATION per run, $PROFILE build
purchases, bank link up:   $UP/s
purchases, bank link down: $DOWN/s = $(jq -n "$DOWN * 100 / $UP | floor") % of the link-up rate
link down with 10 % top-ups: codes $(jq -c '.codes' "$WORK/link_down_topups.json") (top-ups 91 at once)
REPORT
