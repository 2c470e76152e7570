#!/usr/bin/env bash
# Builds the npm package @guts/realtime into npm/dist/ (and a copy for the demo page in
# examples/web/pkg/): cargo (profile wasm-release, no std) → wasm-opt -Oz (npm binaryen, never
# Debian's) → the JavaScript (sdk-wasm/js/src/) bundled by esbuild and minified by terser
# (sdk-wasm/js/bundle.mjs) → size budget check. Needs the wasm32 target, nightly with rust-src
# and `npm ci` in sdk-wasm/js (scripts/test-wasm.sh installs all).
#
# Env: GUTS_WASM_BUDGET_GZ — budget in bytes for gzip -9 of .wasm + JS (default below).
# With --vectors DIR: builds the test copy instead (wasm with feature `vectors`, JS entry
# src/testing.js) into DIR; no budget, no demo copy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/npm/dist
FEATURES_ARG=() ENTRY=sdk-wasm/js/src/index.js
if [ "${1:-}" = "--vectors" ]; then
  OUT=$2 FEATURES_ARG=(--features vectors) ENTRY=sdk-wasm/js/src/testing.js
fi
WASM_OPT=$ROOT/sdk-wasm/js/node_modules/.bin/wasm-opt
# The issue's budget: 22 KB (22 528 B) for gzip -9 of wasm + JS. Anything over it fails the
# build (figures in docs/benchmarks.md, "wasm SDK").
BUDGET=${GUTS_WASM_BUDGET_GZ:-22528}

[ -x "$WASM_OPT" ] && [ -d sdk-wasm/js/node_modules/esbuild ] ||
  (cd sdk-wasm/js && npm ci --no-audit --no-fund --loglevel=error)

# Without default features: no std (the crate brings a trapping panic handler). Nightly rebuilds
# core and alloc with panic=immediate-abort, no panic locations and no `Debug` formatting, so
# the wasm carries no panic message, file name or formatter at all; and MIR inlining, which
# opt-level z leaves off (−0.55 KB gzip: the session's small accessors vanish before LLVM sees
# them; docs/benchmarks.md). Its own target directory:
# the stable builds of the tests keep theirs. The test copy (std, serde_json) builds with stable.
if [ ${#FEATURES_ARG[@]} -eq 0 ]; then
  source "$ROOT/scripts/wasm-tools.sh"
  wasm_tools_nightly
  BUNDLE_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/wasm-bundle
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Zinline-mir=yes" \
    cargo +nightly build --locked -p guts-realtime-wasm --no-default-features \
    --target wasm32-unknown-unknown --profile wasm-release --target-dir "$BUNDLE_TARGET" \
    -Zbuild-std=core,alloc -Zbuild-std-features=optimize_for_size
else
  BUNDLE_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  cargo build --locked -p guts-realtime-wasm --no-default-features "${FEATURES_ARG[@]}" \
    --target wasm32-unknown-unknown --profile wasm-release
fi
rm -rf "$OUT" && mkdir -p "$OUT"
# -Oz to a fixed point, then -O3 (its inlining leaves code gzip compresses better: −0.2 KB gzip,
# docs/benchmarks.md); --low-memory-unused: nothing lives below address 1024 (Rust's data
# starts at 1 MiB), so constant offsets fold into loads; --zero-filled-memory: a fresh memory is
# zeros, so zero data segments go. Then drop the producers and target-features sections
# (nothing reads them at run time).
FEATURES="--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-reference-types --enable-multivalue --enable-mutable-globals"
# shellcheck disable=SC2086
"$WASM_OPT" -Oz --converge -O3 --low-memory-unused --zero-filled-memory --strip-producers \
  --strip-target-features $FEATURES \
  "$BUNDLE_TARGET/wasm32-unknown-unknown/wasm-release/guts_realtime_wasm.wasm" \
  -o "$OUT/guts_realtime_bg.wasm"
# shared.js (a tab's side of `shared: true`) stays a file of its own, loaded only when asked for.
node sdk-wasm/js/bundle.mjs "$ENTRY" "$OUT/guts_realtime.js" ./shared.js
[ "$ENTRY" = sdk-wasm/js/src/index.js ] || exit 0
node sdk-wasm/js/bundle.mjs sdk-wasm/js/src/shared.js "$OUT/shared.js"
node sdk-wasm/js/bundle.mjs sdk-wasm/js/src/shared_worker.js "$OUT/shared_worker.js"
# The React entry imports the core by the package's name, so both share one module instance.
node sdk-wasm/js/bundle.mjs sdk-wasm/js/src/react.js "$OUT/react.js" react,@guts/realtime
cp npm/src/index.d.ts "$OUT/guts_realtime.d.ts"
cp npm/src/node.js npm/src/types.d.ts npm/src/react.d.ts "$OUT/"

# The demo page (served by guts-hub from examples/web/) loads the built package from pkg/.
rm -rf examples/web/pkg && mkdir -p examples/web/pkg && cp "$OUT"/* examples/web/pkg/

wasm=$(stat -c%s "$OUT/guts_realtime_bg.wasm")
js=$(stat -c%s "$OUT/guts_realtime.js")
wasm_gz=$(gzip -9c "$OUT/guts_realtime_bg.wasm" | wc -c)
js_gz=$(gzip -9c "$OUT/guts_realtime.js" | wc -c)
total=$((wasm_gz + js_gz))
echo "bundle: wasm ${wasm} B (gzip -9 ${wasm_gz} B) + JS ${js} B (gzip -9 ${js_gz} B) = ${total} B gzip -9; budget ${BUDGET} B"
gz() { gzip -9c "$OUT/$1" | wc -c; }
echo "separate entries: react.js $(stat -c%s "$OUT/react.js") B (gzip -9 $(gz react.js) B);" \
  "shared.js $(stat -c%s "$OUT/shared.js") B (gzip -9 $(gz shared.js) B);" \
  "shared_worker.js $(stat -c%s "$OUT/shared_worker.js") B (gzip -9 $(gz shared_worker.js) B)"
if [ "$total" -gt "$BUDGET" ]; then
  echo "FAIL: bundle ${total} B gzip -9 exceeds the budget of ${BUDGET} B" >&2
  exit 1
fi
