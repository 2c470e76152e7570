#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust tests (protocol, hub server, native
# SDK, CLIs, conformance suite, fault tests, multi-node tests on a real redis-server, benchmark
# smoke run), then the browser SDK
# (scripts/test-wasm.sh: the npm package's tests in Node 20, Playwright tests of the package and
# the demo page in headless Chromium). Installs what it needs on a fresh Debian machine (rust
# components and targets, redis-server, python3, Chromium, npm packages).
# Used by .ci/run.
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

step "cargo doc (warnings are errors: broken or private links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

step "protocol crate for wasm32-unknown-unknown (no default features)"
cargo build -p guts-realtime --no-default-features --target wasm32-unknown-unknown

step "every feature combination a user can pick, per crate"
for f in "" std json hub ts; do
  cargo check --quiet -p guts-realtime --no-default-features ${f:+--features $f}
done
cargo check --quiet -p guts-realtime-native
cargo check --quiet -p guts-realtime-server --no-default-features
cargo check --quiet -p guts-realtime-server --features redis

step "redis-server for the multi-node tests (each test starts its own on 127.0.0.1), python3 for the conformance hooks test"
if ! command -v redis-server >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server python3 >/dev/null
fi
redis-server --version
export GUTS_REQUIRE_REDIS=1

step "cargo test"
ulimit -n 20000 2>/dev/null || true
cargo test --workspace --all-features

step "browser SDK, npm package and demo page"
scripts/test-wasm.sh

step "done"
