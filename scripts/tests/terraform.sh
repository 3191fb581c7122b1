#!/usr/bin/env bash
# Offline Terraform checks, run by scripts/test.sh: fmt; init + validate of every root; the
# native tests of every module (mocked provider); the apply test of envs/local against moto's
# server; checkov over terraform/ with zero failed checks. Needs the build's
# dist/lambdas/ws-connection (the apply test uploads the zips).
#
#   scripts/tests/terraform.sh                      everything
#   scripts/tests/terraform.sh --no-apply           everything but the apply to moto (it needs the
#                                                   build's zips: scripts/test.sh runs this part
#                                                   while the build runs, and envs/local after it)
#   scripts/tests/terraform.sh modules/fanout envs/dev   fmt, and those folders' tests or validation only
#                                                   (the quick loop); envs/local includes the apply
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT/terraform"
trap stop_servers EXIT
terraform_env

init() { (cd "$1" && terraform init -input=false -backend=false -no-color >/dev/null); }
validate() { init "$1" && (cd "$1" && terraform validate -no-color >/dev/null); }
native_tests() { init "$1" && (cd "$1" && terraform test -no-color); }

step fmt terraform fmt -check -recursive -diff .

roots=(envs/dev envs/prod envs/local envs/multi-region bootstrap) # envs/aws holds the files dev and prod link to
# Modules are validated by their own tests (a module that declares configuration_aliases, like
# edge and stack, cannot be validated on its own). The slowest first: the pool then ends sooner.
modules=(modules/stack modules/edge modules/api modules/table modules/function modules/fanout modules/events modules/sweep bootstrap)

no_apply=0
if [[ "${1:-}" == "--no-apply" ]]; then no_apply=1; shift; fi
only=("$@")
wanted() {
  if [[ "$1" == envs/local-apply ]]; then
    ((no_apply == 0)) && { ((${#only[@]} == 0)) || [[ " ${only[*]} " == *" envs/local "* ]]; }
  else
    ((${#only[@]} == 0)) || [[ " ${only[*]} " == *" $1 "* ]]
  fi
}

if wanted envs/local-apply; then
[[ -f "$ROOT/dist/lambdas/ws-connection/checksums.json" ]] \
  || die "no build output: run scripts/build-lambda.sh --service . --mode bundle first"
export MOTO_IAM_LOAD_MANAGED_POLICIES=true # the stack attaches AWS managed policies
start_moto
# The shim answers what moto lacks for Step Functions; its check of a definition must be real.
step "moto shim: broken state machine definitions fail, a sound one passes" python3 -c '
import sys; sys.path.insert(0, "../scripts"); import moto_shim as s
assert s.diagnostics("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"Next\": \"B\"}}}")
assert s.diagnostics("{\"StartAt\": \"B\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}")
assert s.diagnostics("not json")
assert s.diagnostics("{\"StartAt\": \"M\", \"States\": {\"M\": {\"Type\": \"Map\", \"End\": true, \"ItemProcessor\": {\"StartAt\": \"X\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}}}}")
assert not s.diagnostics("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}")'
start_moto_shim
apply_to_moto() {
  validate envs/local && env TF_VAR_aws_endpoint="$MOTO_ENDPOINT" TF_VAR_shim_endpoint="$SHIM_ENDPOINT" \
    bash -c 'cd envs/local && terraform test -no-color'
}
fi

# Every check below is independent of the others (each root and module has its own .terraform),
# and terraform's CPU use leaves part of the second core idle: three at a time, each one's output
# in its own log, printed when it fails.
# (Each run its own logs: scripts/test.sh runs two at once.)
mkdir -p "$ROOT/target/test-logs"
logs="$(mktemp -d "$ROOT/target/test-logs/terraform.XXXXXX")"
checks=()
# envs/local is validated by the apply's check, or (no apply) by itself unless an apply run beside
# this one owns its .terraform folder (--no-apply with no folders named).
if wanted envs/local-apply; then checks+=("validate and apply envs/local to moto|apply_to_moto")
elif wanted envs/local && ((${#only[@]} > 0 || no_apply == 0)); then checks+=("validate envs/local|validate envs/local"); fi
for dir in "${modules[@]}"; do if wanted "$dir"; then checks+=("test $dir|native_tests $dir"); fi; done
for dir in "${roots[@]}"; do
  if [[ "$dir" != envs/local ]] && wanted "$dir"; then checks+=("validate $dir|validate $dir"); fi
done
pool=()
for check in "${checks[@]}"; do
  name="${check%%|*}" command="${check#*|}"
  # Only the pool's own jobs are waited for (moto and the shim run until the end).
  while (($(jobs -pr | grep -cxFf <(printf '%s\n' "${pool[@]:-0}")) >= 3)); do sleep 0.5; done
  # shellcheck disable=SC2086 # the command is a function name and its one argument
  ( started=$SECONDS
    if $command >"$logs/${name//[ \/]/_}.log" 2>&1; then echo "PASS $((SECONDS - started))" >"$logs/${name//[ \/]/_}.status"
    else echo "FAIL $((SECONDS - started))" >"$logs/${name//[ \/]/_}.status"; fi ) &
  pool+=("$!")
done
((${#pool[@]} == 0)) || wait "${pool[@]}"
# The pool's results, as step prints them, with each check's own time.
for check in "${checks[@]}"; do
  name="${check%%|*}"
  file="$logs/${name//[ \/]/_}"
  read -r status seconds <"$file.status"
  printf '%s %s (%ss)\n' "$status" "$name" "$seconds"
  if [[ "$status" == PASS ]]; then STEPS_PASSED=$((STEPS_PASSED + 1))
  else STEPS_FAILED=$((STEPS_FAILED + 1)); cat "$file.log"; fi
done

((${#only[@]})) || step checkov checkov --skip-download --quiet --compact --framework terraform --config-file "$ROOT/terraform/.checkov.yaml" --directory .

step_summary
