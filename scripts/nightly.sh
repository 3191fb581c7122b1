#!/usr/bin/env bash
# The property and fault suites at the size the reliability goal names, run nightly by
# .github/workflows/nightly.yml (and by hand before a change to $connect, $disconnect or the
# store): the fault tests at FAULT_CASES cases for each seed in FAULT_SEEDS, then the generated
# histories and hostile events at PROPTEST_CASES cases, and this round's properties (streams,
# segments, presence, membership) in memory at ROUND_CASES cases. Installs what it needs (as scripts/test.sh
# does), starts moto on a free port and stops it. A failed fault run leaves the proxy's whole log
# and its seed in $FAULT_LOG_DIR (default target/nightly). Then the checks that scripts/test.sh
# runs smaller: the ws-local fan-out with FANOUT_CLIENTS real clients (CI: 2,000) and the build's
# reproducibility on the arm64 release bundle (CI: the x86_64 build without LTO).
#
#   scripts/nightly.sh                              1,000 faults x seeds 1-10, 100,000 proptest cases
#   FAULT_SEEDS="12 101" FAULT_CASES=200 scripts/nightly.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap stop_servers EXIT

FAULT_CASES="${FAULT_CASES:-1000}"
FAULT_SEEDS="${FAULT_SEEDS:-1 2 3 4 5 6 7 8 9 10}"
PROPTEST_CASES="${PROPTEST_CASES:-100000}"
ROUND_CASES="${ROUND_CASES:-5000}"
FANOUT_CLIENTS="${FANOUT_CLIENTS:-10000}"
export FAULT_LOG_DIR="${FAULT_LOG_DIR:-$ROOT/target/nightly}"
mkdir -p "$FAULT_LOG_DIR"

cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest || die "could not install cargo-nextest"
ensure_venv
export PATH="$VENV/bin:$PATH"
start_moto
export DYNAMODB_ENDPOINT="$MOTO_ENDPOINT"

log "building the property tests"
cargo nextest run -p ws-properties --locked --no-run

fault_seed() {
  local seed="$1" out="$FAULT_LOG_DIR/run-seed$1.txt" rc=0
  FAULT_SEED="$seed" FAULT_CASES="$FAULT_CASES" cargo nextest run -p ws-properties --locked --test faults \
    --no-fail-fast --no-capture -E 'test(/^faulted_/)' >"$out" 2>&1 || rc=$?
  # The fault tests print one summary line each (requests, faults injected, answers 500).
  grep -E '^seed [0-9]+:|panicked|^error' "$out" || true
  return "$rc"
}
for seed in $FAULT_SEEDS; do
  step "faults seed $seed x $FAULT_CASES" fault_seed "$seed"
done

step "histories and hostile events x $PROPTEST_CASES" env PROPTEST_CASES="$PROPTEST_CASES" \
  cargo nextest run -p ws-properties --locked --test histories --test hostile --no-fail-fast

# Each of these runs a few hundred cases in CI; in memory a case takes 1-100 ms (segments the most).
step "streams, segments, presence and membership in memory x $ROUND_CASES" env PROPTEST_CASES="$ROUND_CASES" \
  cargo nextest run -p ws-properties --locked --no-fail-fast \
  -E '(binary(streams) | binary(segments) | binary(presence) | binary(membership)) & test(/_in_memory$/)'

# The checks scripts/test.sh runs at a smaller size, at full size.
cargo build --workspace --bins --locked
step "ws-local fan-out to $FANOUT_CLIENTS real clients" env WS_LOCAL_FANOUT_CLIENTS="$FANOUT_CLIENTS" \
  cargo nextest run -p ws-local --locked --test fanout --no-fail-fast
step "reproducible arm64 release bundle from another path" env BUILD_REPRO=full scripts/tests/build.sh

step_summary
