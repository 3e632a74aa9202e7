#!/usr/bin/env bash
# The test command of the README: every unit, property, interop and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
