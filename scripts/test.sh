#!/usr/bin/env bash
# The one test command: installs what it needs, starts moto on a free port, and runs formatting,
# lints and every test. Stops what it started, and exits non-zero on any failure.
#
#   scripts/test.sh            everything
#   CI=true scripts/test.sh    the same, and a missing insta snapshot fails instead of being written
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap stop_servers EXIT

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs)"
cargo nextest --version >/dev/null 2>&1 || {
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest || die "could not install cargo-nextest"
}
ensure_venv
export PATH="$VENV/bin:$PATH"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "build tests (scripts/tests/build.sh)"
scripts/tests/build.sh

log "GitHub Actions checks (scripts/tests/workflows.sh)"
scripts/tests/workflows.sh

log "docs checks (scripts/tests/docs.sh)"
scripts/tests/docs.sh

log "Terraform checks (scripts/tests/terraform.sh)"
scripts/tests/terraform.sh

start_moto
export DYNAMODB_ENDPOINT="$MOTO_ENDPOINT"
if [[ "${CI:-}" == "true" ]]; then export INSTA_UPDATE=no; fi

# ws-local's tests run the functions' real binaries and its fixture function: build every binary first.
log "cargo build --bins"
cargo build --workspace --bins --all-features --locked

log "cargo nextest"
cargo nextest run --workspace --all-features --locked --no-fail-fast

log "ws-local parity suite and console in a browser (scripts/tests/parity.sh)"
scripts/tests/parity.sh

log "local stack (scripts/tests/dev.sh)"
scripts/tests/dev.sh
