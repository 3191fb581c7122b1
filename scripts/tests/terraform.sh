#!/usr/bin/env bash
# Offline Terraform checks, run by scripts/test.sh: fmt; init + validate of every root; the
# native tests of every module (mocked provider); the apply test of envs/local against moto's
# server; checkov over terraform/ with zero failed checks. Needs the build's
# dist/lambdas/ws-connection (the apply test uploads the zips).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT/terraform"
trap stop_servers EXIT
terraform_env

init() { (cd "$1" && terraform init -input=false -backend=false -no-color >/dev/null); }
validate() { (cd "$1" && terraform validate -no-color >/dev/null); }
native_tests() { (cd "$1" && terraform test -no-color); }

step fmt terraform fmt -check -recursive -diff .

roots=(envs/dev envs/prod envs/local envs/multi-region bootstrap) # envs/aws holds the files dev and prod link to
modules=(modules/table modules/function modules/api modules/edge modules/fanout modules/sweep modules/stack)
for dir in "${roots[@]}"; do
  step "init $dir" init "$dir"
  step "validate $dir" validate "$dir"
done
# Modules are validated by their own tests (a module that declares configuration_aliases, like
# edge and stack, cannot be validated on its own).
for dir in "${modules[@]}" bootstrap; do
  [[ " ${roots[*]} " == *" $dir "* ]] || step "init $dir" init "$dir"
  step "test $dir" native_tests "$dir"
done

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
assert not s.diagnostics("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}")'
start_moto_shim
step "test envs/local (apply to moto)" env TF_VAR_aws_endpoint="$MOTO_ENDPOINT" TF_VAR_shim_endpoint="$SHIM_ENDPOINT" \
  bash -c 'cd envs/local && terraform test -no-color'

step checkov checkov --quiet --compact --framework terraform --config-file "$ROOT/terraform/.checkov.yaml" --directory .

step_summary
