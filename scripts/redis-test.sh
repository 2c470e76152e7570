#!/usr/bin/env bash
# Multi-node tests against a real redis-server: installs it if missing (Debian package
# redis-server), then runs the tests with GUTS_REQUIRE_REDIS=1 so a missing redis-server is a
# failure, not a skip. Each test starts its own redis-server on 127.0.0.1 (free port, temporary
# directory) and its own guts-hub processes, and stops them when it ends. Usage: scripts/redis-test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "== installing redis-server"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends redis-server
fi
redis-server --version
export GUTS_REQUIRE_REDIS=1

cargo test -p guts-realtime --test hub_sequenced
cargo test -p guts-realtime-server --features redis --lib broker
cargo test -p guts-realtime-examples --test redis_cluster
