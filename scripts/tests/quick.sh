#!/usr/bin/env bash
# The quick loop (`scripts/test.sh --quick`): after a change, on a built tree, formatting, clippy
# and the tests of what changed, in minutes. What changed: the files that differ from HEAD (or
# from --since REV), tracked or new. docs/testing.md says what it leaves out; the whole
# `scripts/test.sh` runs before a push (CI runs it anyway).
#
#   Rust crate            nextest over the crate and every crate depending on it; a function or
#                         ws-shared also ws-local's tests (they run the functions' binaries)
#   Cargo.toml/.lock      every crate's tests
#   lambda.manifest.json  the manifest contract, ws-local, the stack module's tests
#   terraform/<dir>/…     that module's tests (and the stack's, which uses every module), or that
#                         root's validation; schema.json: the table module and the Rust tests
#   docs, *.md            the docs checks        .github/        the workflow checks
#   scripts/*.sh          shellcheck             clients/js/     the client's unit tests
#   build scripts         the build tests        local/parity/   the parity suite
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
trap stop_servers EXIT

since=HEAD
while (($#)); do
  case "$1" in
    --since) (($# >= 2)) || die "--since needs a revision, e.g. --since origin/main"; since="$2"; shift 2 ;;
    *) die "unknown argument '$1'; use --quick [--since REV]" ;;
  esac
done
git rev-parse --verify --quiet "$since^{commit}" >/dev/null || die "--since $since is not a commit here"
mapfile -t changed < <({ git diff --name-only "$since"; git ls-files --others --exclude-standard; } | sort -u)
ensure_venv
export PATH="$VENV/bin:$PATH"
log "changed since $since: ${#changed[@]} file(s)"

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# What to run, from the changed paths.
mapfile -t plan < <(python3 - "${changed[@]}" <<'PY'
import json, os, subprocess, sys

changed = sys.argv[1:]
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--no-deps", "--format-version", "1"]))
root = meta["workspace_root"]
crates = sorted(((os.path.relpath(os.path.dirname(p["manifest_path"]), root), p["name"]) for p in meta["packages"]),
                key=lambda c: -len(c[0]))
out = set()
for path in changed:
    crate = next((name for d, name in crates if path.startswith(d + "/")), None)
    if crate:
        out.add(f"crate {crate}")
        if crate.startswith("ws-") and crate not in ("ws-local", "ws-properties", "ws-local-fixture"):
            out.add("crate ws-local")  # its tests run the functions' binaries
    elif path in ("Cargo.toml", "Cargo.lock", ".config/nextest.toml"):
        out.add("all-crates")
    elif path == "lambda.manifest.json":
        out.update({"crate ws-properties", "crate ws-local", "terraform modules/stack"})
    elif path == "terraform/modules/table/schema.json":
        out.update({"crate ws-shared", "terraform modules/table", "terraform modules/stack"})
    elif path.startswith("terraform/modules/"):
        out.update({f"terraform modules/{path.split('/')[2]}", "terraform modules/stack"})
    elif path.startswith("terraform/envs/aws/"):
        out.update({"terraform envs/dev", "terraform envs/prod"})
    elif path.startswith("terraform/envs/") or path.startswith("terraform/bootstrap/"):
        parts = path.split("/")
        out.add("terraform " + ("/".join(parts[1:3]) if parts[1] == "envs" else "bootstrap"))
    elif path.startswith(".github/"):
        out.add("workflows")
    elif path.startswith("clients/js/"):
        out.add("client")
    elif path.startswith("local/parity/"):
        out.add("parity")
    elif path in ("scripts/build-lambda.sh", "scripts/lambda_artifacts.py", "scripts/tests/build.sh"):
        out.add("build")
    if path.endswith(".md") or path.startswith("docs/"):
        out.add("docs")
    if path.endswith(".sh") or path == ".ci/run":
        out.add("shellcheck")
print("\n".join(sorted(out)))
PY
)

crates=() terraform_dirs=() run_all_crates=0
for item in "${plan[@]}"; do
  case "$item" in
    "crate "*) crates+=("${item#crate }") ;;
    "terraform "*) terraform_dirs+=("${item#terraform }") ;;
    all-crates) run_all_crates=1 ;;
  esac
done
has() { [[ " ${plan[*]} " == *" $1 "* ]]; }

if ((run_all_crates || ${#crates[@]})); then
  start_moto
  export DYNAMODB_ENDPOINT="$MOTO_ENDPOINT"
  step "cargo build --bins" cargo build --workspace --bins --all-features --locked
  filter=()
  if ((!run_all_crates)); then
    expression="$(printf 'rdeps(%s) | ' "${crates[@]}")"
    filter=(-E "${expression% | }")
  fi
  step "cargo nextest ${filter[*]:-(every crate)}" cargo nextest run --workspace --all-features --locked --no-fail-fast "${filter[@]}"
fi
if ((${#terraform_dirs[@]})); then
  step "Terraform: ${terraform_dirs[*]}" scripts/tests/terraform.sh "${terraform_dirs[@]}"
fi
if has shellcheck; then step shellcheck shellcheck -x scripts/*.sh scripts/tests/*.sh .ci/run; fi
if has docs; then step "docs checks" scripts/tests/docs.sh; fi
if has workflows; then step "workflow checks" scripts/tests/workflows.sh; fi
if has build; then step "build tests" scripts/tests/build.sh; fi
if has client; then step "client unit tests" scripts/tests/client.sh unit; fi
if has parity; then
  [[ -n "${DYNAMODB_ENDPOINT:-}" ]] || { start_moto; export DYNAMODB_ENDPOINT="$MOTO_ENDPOINT"; }
  step "parity suite" scripts/tests/parity.sh
fi
((${#plan[@]})) || log "nothing but formatting and lints to check for these changes"
log "quick loop: ${SECONDS}s. Before pushing, run the whole scripts/test.sh (docs/testing.md)."
step_summary
