#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, native tests, the wasm build of the protocol
# crate. Installs what it needs on a fresh machine (rust components and targets). Used by .ci/run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never
T0=$SECONDS
step() { echo "== [$((SECONDS - T0))s] $*"; }

step "toolchain: rustfmt, clippy, wasm32 target"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "protocol crate for wasm32-unknown-unknown (no default features)"
cargo build -p guts-realtime --no-default-features --target wasm32-unknown-unknown

step "cargo test"
cargo test --workspace --all-features

step "done"
