# Sourced by scripts/build-npm.sh users (test-wasm.sh, demo.sh): installs what the wasm SDK needs
# on a fresh Debian machine, skipping what is already right. Functions only; no side effects.

# The wasm32 target.
wasm_tools_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
}

# The bundle's toolchain: nightly with rust-src, because only a core and alloc rebuilt with
# panic=immediate-abort drop every panic message, location and formatter from the wasm
# (scripts/build-npm.sh; docs/benchmarks.md "wasm SDK"). Tests build with stable.
wasm_tools_nightly() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed | grep -qx rust-src ||
    rustup component add rust-src --toolchain nightly
}

# npm tooling of the SDK (binaryen's wasm-opt, esbuild, terser, playwright-core, typescript).
wasm_tools_npm() {
  (cd "$ROOT/sdk-wasm/js" && npm ci --no-audit --no-fund --loglevel=error)
  (cd "$ROOT/conformance/js" && npm ci --no-audit --no-fund --loglevel=error)
}

# Debian's Chromium (for Playwright).
wasm_tools_chromium() {
  if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}
