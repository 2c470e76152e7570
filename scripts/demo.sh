#!/usr/bin/env bash
# Starts guts-hub with synthetic events and the live demo page at http://127.0.0.1:7800/.
# Builds the browser package (examples/web/pkg/) first when it is missing, installing the wasm
# tools it needs. Extra arguments go to guts-hub (e.g. --listen 127.0.0.1:8080).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/wasm-tools.sh
if [ ! -f examples/web/pkg/guts_realtime.js ]; then
  echo "== building the browser package (first run)"
  wasm_tools_target
  [ -d sdk-wasm/js/node_modules/esbuild ] || wasm_tools_npm
  scripts/build-npm.sh
fi
exec cargo run --release -p guts-realtime-examples --bin guts-hub -- --demo "$@"
