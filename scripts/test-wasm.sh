#!/usr/bin/env bash
# Builds and tests the browser SDK (sdk-wasm, npm package @guts/realtime, demo page) on a fresh
# Debian machine: installs the wasm32 target, nightly rust-src, Chromium (apt) and the npm
# tooling (npm ci), then runs
#   1. clippy for wasm32, the generated TypeScript types check and the ABI constants check,
#   2. the package build with its size budget (scripts/build-npm.sh),
#   3. node:test over the `npm pack`ed package in Node 20 against a real guts-hub on 127.0.0.1
#      (the live client; the shared wire vectors against a test copy built with feature
#      `vectors`) + tsc --noEmit, and the conformance scenarios of the JS fake hub
#      (conformance/js) against the package's client,
#   4. Playwright tests in Chromium (screenshots: artifacts/): the package, its React entry, its
#      shared worker, the demo page, the admin page, and the packed package in apps built by Vite (dev server and
#      build) and webpack 5, and run by Node 20 with `ws` (sdk-wasm/js/consumers/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never
source scripts/wasm-tools.sh
T0=$SECONDS
step() { echo "== [$((SECONDS - T0))s] $*"; }
PORT=${GUTS_WASM_TEST_PORT:-17820}
SECRET=wasm-test-secret-0123456789abcdef-0
KEY=wasm-test-publish-key

step "tools: wasm32 target, nightly rust-src, Chromium, npm packages"
wasm_tools_target
wasm_tools_nightly
wasm_tools_chromium
wasm_tools_npm

step "clippy (wasm32) and generated TypeScript types"
cargo clippy --locked -p guts-realtime-wasm --target wasm32-unknown-unknown -- -D warnings
cargo clippy --locked -p guts-realtime-wasm --no-default-features --target wasm32-unknown-unknown \
  -- -D warnings
cargo clippy --locked -p guts-realtime-wasm --no-default-features --features vectors \
  --target wasm32-unknown-unknown -- -D warnings
cargo test --locked -p guts-realtime-wasm --features ts --test ts_types --test abi_tags

step "build the npm package (size budget)"
scripts/build-npm.sh

step "build guts-hub"
cargo build --locked -p guts-realtime-examples --bin guts-hub
export GUTS_HUB_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/guts-hub

step "start guts-hub on 127.0.0.1:$PORT"
LOG=$(mktemp)
"$GUTS_HUB_BIN" --listen "127.0.0.1:$PORT" --token-secret "$SECRET" --publish-key "$KEY" --repo-access public >"$LOG" 2>&1 &
HUB_PID=$!
WORK=$(mktemp -d)
cleanup() { kill "$HUB_PID" 2>/dev/null || true; rm -rf "$WORK" "$LOG"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
grep -q "listening on http://127.0.0.1:$PORT" "$LOG" || { cat "$LOG"; exit 1; }

export GUTS_TEST_HUB=127.0.0.1:$PORT GUTS_TEST_PUBLISH_KEY=$KEY
GUTS_TEST_TOKEN=$(node sdk-wasm/js/jwt.mjs "$SECRET" alice)
GUTS_TEST_TOKEN_BOB=$(node sdk-wasm/js/jwt.mjs "$SECRET" bob)
export GUTS_TEST_TOKEN GUTS_TEST_TOKEN_BOB

step "the wire-vector hooks: a test copy with feature vectors (not in the package)"
scripts/build-npm.sh --vectors "$WORK/vectors-pkg"
export GUTS_VECTORS_PKG=$WORK/vectors-pkg

step "npm pack, install the tarball, node:test + tsc --noEmit over the installed package"
(cd npm && rm -f guts-realtime-*.tgz && npm pack --loglevel=error --pack-destination "$WORK" >/dev/null)
mkdir -p "$WORK/app" && cd "$WORK/app"
echo '{"name":"guts-realtime-pkgtest","private":true,"type":"module"}' >package.json
npm install --no-audit --no-fund --loglevel=error "$WORK"/guts-realtime-*.tgz
cp -r "$ROOT/npm/test" "$ROOT/npm/example" .
ln -s "$ROOT/sdk-wasm/js/node_modules/typescript" node_modules/typescript
mkdir -p node_modules/@types && ln -s "$ROOT/sdk-wasm/js/node_modules/@types/react" node_modules/@types/react
GUTS_VECTORS=$ROOT/protocol/tests/vectors node --experimental-websocket --test test/
"$ROOT/sdk-wasm/js/node_modules/.bin/tsc" -p example/tsconfig.json
echo "tsc --noEmit: the examples (app, narrowing of every kind, React) type-check against the packed package"
cd "$ROOT"

step "the JS fake hub: every conformance scenario against the package's client (Node + ws)"
GUTS_REALTIME_CLIENT=$ROOT/npm/dist/node.js node --test conformance/js/test/

step "Playwright-core + Chromium: the package, React, the shared worker, the demo page, the admin page, consumers"
export GUTS_PACKAGE_TGZ
GUTS_PACKAGE_TGZ=$(ls "$WORK"/guts-realtime-*.tgz)
(cd sdk-wasm/js && node --test --test-concurrency=1 browser.test.mjs react.test.mjs shared.test.mjs \
  demo.test.mjs admin.test.mjs consumers.test.mjs)

step "done"
