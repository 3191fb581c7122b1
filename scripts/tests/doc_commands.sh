#!/usr/bin/env bash
# The docs' commands as printed, run by scripts/test.sh: scripts/dev.sh on ports that are not the
# defaults, then every bash block marked `<!-- doc-test -->` in docs/tutorial.md and
# docs/local-stack.md (the two-region example), in order, in one shell, from a scratch folder
# that sees the checkout's target/, clients/ and scripts/. Each block must succeed, and what the
# tutorial promises must have happened: both progress messages delivered once, the drop
# recovered, the ban obeyed; and each region's post reaching both regions' clients.
# shellcheck disable=SC2016 # the checks are evaluated later, in the commands' folder
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv

work="$(mktemp -d)"
DEV_PID="" RUN_PID=""
cleanup() {
  # What the commands left running (the client, two ws-local): their own process group.
  [[ -z "$RUN_PID" ]] || kill -TERM -- "-$RUN_PID" 2>/dev/null || true
  [[ -z "$DEV_PID" ]] || { kill -TERM "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; }
  rm -rf "$work"
  DEV_PID="" RUN_PID=""
}
trap cleanup EXIT
# The checkout as the commands see it, but what they write (logs, the clients' output) lands here.
for path in "$ROOT"/* "$ROOT"/.venv; do ln -s "$path" "$work/${path##*/}"; done

# Not the defaults (3001, 5055, 3002, 3003): the commands must take the ports from the variables.
export WS_LOCAL_PORT MOTO_PORT REGION_A_PORT REGION_B_PORT
WS_LOCAL_PORT="$(free_port)" MOTO_PORT="$(free_port)" REGION_A_PORT="$(free_port)" REGION_B_PORT="$(free_port)"
export PATH="$VENV/bin:$PATH"
setsid scripts/dev.sh >"$work/dev.log" 2>&1 &
DEV_PID=$!
deadline=$((SECONDS + 900))
until grep -q '^Logs follow' "$work/dev.log"; do
  if ! kill -0 "$DEV_PID" 2>/dev/null || ((SECONDS > deadline)); then cat "$work/dev.log"; die "scripts/dev.sh did not come up"; fi
  sleep 1
done

python3 scripts/tests/doc_checks.py commands docs/tutorial.md docs/local-stack.md >"$work/commands.sh"
blocks="$(grep -c '^echo .###' "$work/commands.sh")"
log "running the docs' $blocks marked blocks as printed (ports $WS_LOCAL_PORT, $MOTO_PORT, $REGION_A_PORT, $REGION_B_PORT)"
setsid bash -c 'cd "$0" && exec bash -euo pipefail commands.sh' "$work" >"$work/commands.out" 2>&1 &
RUN_PID=$!
if ! wait "$RUN_PID"; then
  cat "$work/commands.out"
  die "a documented command failed (the last '###' line above names its block)"
fi
cat "$work/commands.out"

passed=0 failed=0
check() {
  if (cd "$work" && eval "$2"); then passed=$((passed + 1)); printf 'PASS %s\n' "$1"
  else failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; fi
}
offsets() { python3 -c 'import json, sys; print(" ".join(str(json.loads(l).get("offset")) for l in open(sys.argv[1]) if l.strip()))' "$1"; }
check "the tutorial's client got offsets 1 and 2 once each, and the direct post" \
  '[[ "$(offsets alice.jsonl)" == "1 2 None" ]]'
check "the tutorial's drop was a reconnect and a resume" 'grep -q "\"event\":\"reconnecting\"" alice.events && [[ "$(grep -c "\"event\":\"resumed\"" alice.events)" -ge 2 ]]'
check "the tutorial's ban stopped the client" 'grep -q "stopped: 1000 Connection deleted" alice.events'
check "each region's post reached the clients of both regions" \
  'for f in ana.jsonl bea.jsonl; do grep -q "from us-east-1" $f && grep -q "from eu-west-1" $f || exit 1; done'
check "each region appended to its own stream" 'grep -q "conv/us-east-1/conv-world" ana.jsonl && grep -q "conv/eu-west-1/conv-world" ana.jsonl'
check "the AWS CLI invoked the responder through ws-local" 'grep -q "\"statusCode\": *200" answer.json'
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
