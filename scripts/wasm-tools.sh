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

# wasm-bindgen-cli of exactly the wasm-bindgen version in Cargo.lock.
wasm_tools_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock")
  if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $want" ]; then
    # --locked fails when the registry mirror lags a crate of the CLI's lockfile: retry unlocked.
    cargo install wasm-bindgen-cli --version "$want" --locked || cargo install wasm-bindgen-cli --version "$want"
  fi
}

# npm tooling of the SDK (binaryen's wasm-opt, playwright-core, typescript).
wasm_tools_npm() {
  (cd "$ROOT/sdk-wasm/js" && npm ci --no-audit --no-fund --loglevel=error)
}

# Debian's Chromium and its matching driver (for wasm-bindgen-test and Playwright).
wasm_tools_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}
