#!/usr/bin/env bash
# The README's run command: the demo host with its partner bank simulated, so top-ups work.
# banksim: bank link on 127.0.0.1:9583, control on 127.0.0.1:9584, clearing files checked in
# ./outbox; bursar: terminal link 127.0.0.1:8583, admin API 127.0.0.1:8080, data in ./data.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p switch --bin bursar -p loadgen --bin banksim
target="${CARGO_TARGET_DIR:-target}/release"
"$target/banksim" --listen 127.0.0.1:9583 --control 127.0.0.1:9584 --outbox-dir outbox &
banksim=$!
trap 'kill "$banksim" 2>/dev/null || true' EXIT
"$target/bursar" --config config/bursar.toml --demo --bank-addr 127.0.0.1:9583 "$@"
