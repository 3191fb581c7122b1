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
# Each step says when it started, so a slow run shows where its time went (aim: under 25 minutes).
step() { log "[$(printf '%4d' "$SECONDS")s] $*"; }

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs)"
cargo nextest --version >/dev/null 2>&1 || {
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest || die "could not install cargo-nextest"
}
ensure_venv
export PATH="$VENV/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "build tests (scripts/tests/build.sh)"
scripts/tests/build.sh

step "GitHub Actions checks (scripts/tests/workflows.sh)"
scripts/tests/workflows.sh

step "docs checks (scripts/tests/docs.sh)"
scripts/tests/docs.sh

step "Terraform checks (scripts/tests/terraform.sh)"
scripts/tests/terraform.sh

step "moto launcher (scripts/tests/moto_server_test.py)"
python3 scripts/tests/moto_server_test.py

start_moto
export DYNAMODB_ENDPOINT="$MOTO_ENDPOINT"
if [[ "${CI:-}" == "true" ]]; then export INSTA_UPDATE=no; fi

# ws-local's tests run the functions' real binaries and its fixture function: build every binary first.
step "cargo build --bins"
cargo build --workspace --bins --all-features --locked

step "cargo nextest"
cargo nextest run --workspace --all-features --locked --no-fail-fast

step "ws-local parity suite and console in a browser (scripts/tests/parity.sh)"
scripts/tests/parity.sh

step "local stack (scripts/tests/dev.sh)"
scripts/tests/dev.sh

step "all passed"
