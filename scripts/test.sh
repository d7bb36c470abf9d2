#!/usr/bin/env bash
# Runs every check and test of aether on a fresh machine: installs and starts the services the
# tests need (a NATS server binary and image, a PostgreSQL server), then runs formatting,
# clippy, docs and all tests. CI runs exactly this script.
#
# Environment:
#   DATABASE_URL        use this PostgreSQL server instead of starting one
#   AETHER_NATS_IMAGE   NATS image for the container tests (see scripts/nats-image.sh)
#   AETHER_SKIP_DOCKER  set to 1 on machines without Docker: only the binary-based NATS
#                       fixtures can run there, and the container suites fail loudly
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

# Services -------------------------------------------------------------------------------------
step "NATS server binary and image"
if [ "${AETHER_SKIP_DOCKER:-0}" = 1 ]; then
    nats_bin=$(scripts/nats-image.sh --no-docker | tail -n 1)
else
    nats_bin=$(scripts/nats-image.sh | tail -n 1)
fi
export AETHER_NATS_BIN="$nats_bin"
echo "nats-server: $AETHER_NATS_BIN"

step "PostgreSQL server"
if [ -z "${DATABASE_URL:-}" ]; then
    eval "$(scripts/postgres.sh start)"
    # The server was started here, so it is stopped here, by its data folder.
    trap 'scripts/postgres.sh stop || true' EXIT
fi
echo "PostgreSQL: ${DATABASE_URL}"

# Checks ---------------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast

step "done"
