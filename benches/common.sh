# Sourced by the end-to-end benchmark scripts (e2e.sh, offline_catchup.sh, bank_down.sh):
# the build, a work directory whose processes are stopped on exit, free ports, and starting
# the echo host and bursar the same way in every script.

TOKEN=bench-admin-token-0123456789

# e2e_load: the load of e2e.sh and of the scripts that look into its runs, unless the caller's
# environment sets it: TERMINALS terminals with DEPTH requests in flight each (closed loop),
# DURATION per run, the MIX of requests and CARDS cards.
e2e_load() {
    TERMINALS=${TERMINALS:-64}
    DEPTH=${DEPTH:-8}
    DURATION=${DURATION:-15s}
    MIX=${MIX:-purchase=80,balance=10,refund=5,reversal=5}
    CARDS=${CARDS:-1024}
}

# build PROFILE: builds bursar, loadgen and banksim (release or debug); sets BIN.
build() {
    if [[ $1 == release ]]; then
        cargo build --release --locked -p switch -p loadgen --bins
    else
        cargo build --locked -p switch -p loadgen --bins
    fi
    BIN="${CARGO_TARGET_DIR:-target}/$1"
    # One descriptor per connection, on both sides: as many as the hard limit allows.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

WORK=$(mktemp -d)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
HOST_PID=      # the host under load (echo host or bursar), stopped between runs
PIDS=()        # helpers that live for the whole script (banksim)
cleanup() {
    for pid in $HOST_PID "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK/data" "$WORK/outbox"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_host() {
    kill "$HOST_PID"
    wait "$HOST_PID" 2>/dev/null || true
    HOST_PID=
}

# start_echo_host: the echo host on a free port, ECHO_ADDR.
start_echo_host() {
    ECHO_ADDR=127.0.0.1:$(free_port)
    "$BIN/loadgen" echo-host --addr "$ECHO_ADDR" 2>>"$WORK/echo.log" &
    HOST_PID=$!
    sleep 0.5
}

# start_bursar [TOML [ARGS...]]: bursar (durable WAL, fresh data directory in $WORK, the bench
# token) with TOML added to its configuration and ARGS to its command line, once it is
# ready. Sets TERMINAL_ADDR, ADMIN_ADDR and BURSAR, loadgen's arguments to reach it.
start_bursar() {
    local toml=${1:-}
    shift || true
    TERMINAL_ADDR=127.0.0.1:$(free_port)
    ADMIN_ADDR=127.0.0.1:$(free_port)
    rm -rf "$WORK/data" "$WORK/outbox" # an earlier bursar's, in scripts that start several
    printf '[admin.tokens]\nbench = "%s"\n%s\n' "$TOKEN" "$toml" >"$WORK/bursar.toml"
    RUST_LOG=${RUST_LOG:-warn} "$BIN/bursar" --config "$WORK/bursar.toml" --data-dir "$WORK/data" \
        --outbox-dir "$WORK/outbox" --terminal-addr "$TERMINAL_ADDR" --admin-addr "$ADMIN_ADDR" \
        "$@" 2>"$WORK/bursar.log" &
    HOST_PID=$!
    for _ in $(seq 100); do
        curl -sf "http://$ADMIN_ADDR/readyz" >/dev/null && break
        sleep 0.1
    done
    BURSAR=(--addr "$TERMINAL_ADDR" --admin-addr "$ADMIN_ADDR" --admin-token "$TOKEN")
}

# field NAME JQ: a value from the report $OUT/NAME.json.
field() { jq -r "$2" "$OUT/$1.json"; }
