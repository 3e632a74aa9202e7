#!/usr/bin/env bash
# Installs what a fresh machine needs beyond the Rust toolchain. Idempotent.
set -euo pipefail
if ! rustup component list --installed 2>/dev/null | grep -q '^rustfmt'; then rustup component add rustfmt; fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then rustup component add clippy; fi
# The TLS end-to-end tests make their certificates with the openssl command line.
if ! command -v openssl >/dev/null; then apt-get install -y openssl; fi
# bursar's allocator, jemalloc, is built from C (tikv-jemalloc-sys runs make and cc).
if ! command -v make >/dev/null || ! command -v cc >/dev/null; then apt-get install -y make gcc; fi
