#!/usr/bin/env bash
# Tests of scripts/build-lambda.sh and lambda.manifest.json: every function bundles into a zip
# holding one executable bootstrap of the requested architecture, checksums verify, a build of
# the same sources from another path gives the same bytes, and every error has its message and
# exit status. Run by scripts/test.sh (it needs cargo-lambda on PATH or in .venv).
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

build="$ROOT/scripts/build-lambda.sh"
artifacts=(python3 "$ROOT/scripts/lambda_artifacts.py")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$1"; }
fail_test() { failed=$((failed + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

# expect NAME STATUS TEXT -- COMMAND…: COMMAND exits STATUS and its stderr contains TEXT.
expect() {
  local name="$1" status="$2" text="$3" out code
  shift 4
  out="$("$@" 2>&1 >/dev/null)"; code=$?
  if [[ "$code" != "$status" ]]; then fail_test "$name" "exit $code, expected $status; stderr: $out"
  elif [[ "$out" != *"$text"* ]]; then fail_test "$name" "stderr lacks '$text': $out"
  else pass "$name"; fi
}

# A copy of the checkout's files (tracked and untracked-but-not-ignored) at another path, with
# fresh mtimes, as a second clone would have.
copy_tree() {
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard | tar --null -c -T - | tar -x -m -C "$1"
}

functions() { "${artifacts[@]}" functions lambda.manifest.json | awk -F'\t' '$1 == "function" { print $2 }'; }

test_shellcheck_is_clean() {
  local out
  if out="$(shellcheck -x scripts/*.sh scripts/tests/*.sh .ci/run 2>&1)"; then pass shellcheck_is_clean
  else fail_test shellcheck_is_clean "$out"; fi
}

test_the_manifest_and_the_workspace_agree() {
  if "${artifacts[@]}" check-workspace lambda.manifest.json; then pass manifest_matches_workspace
  else fail_test manifest_matches_workspace "see above"; fi

  local tree="$work/disagree"
  copy_tree "$tree"
  python3 - "$tree/lambda.manifest.json" <<'PY'
import json, sys
path = sys.argv[1]
manifest = json.load(open(path))
manifest["functions"] = [f for f in manifest["functions"] if f["name"] != "disconnectWS"]
json.dump(manifest, open(path, "w"))
PY
  expect crate_missing_from_the_manifest_fails 2 "crate functions/disconnect is in the workspace but not in lambda.manifest.json" -- \
    "${artifacts[@]}" check-workspace "$tree/lambda.manifest.json"
  cp lambda.manifest.json "$tree/lambda.manifest.json"
  python3 - "$tree/lambda.manifest.json" <<'PY'
import json, sys
path = sys.argv[1]
manifest = json.load(open(path))
manifest["functions"].append(dict(manifest["functions"][0], name="Ghost", crate="functions/ghost"))
json.dump(manifest, open(path, "w"))
PY
  mkdir -p "$tree/functions/ghost"
  printf '[package]\nname = "ghost"\n' > "$tree/functions/ghost/Cargo.toml"
  expect function_missing_from_the_workspace_fails 2 "Ghost: crate functions/ghost is not a member of the Cargo workspace" -- \
    "${artifacts[@]}" check-workspace "$tree/lambda.manifest.json"

  # A function given as an "executable" runs in ws-local only: nothing to build or check.
  cp lambda.manifest.json "$tree/lambda.manifest.json"
  python3 - "$tree/lambda.manifest.json" <<'PY'
import json, sys
path = sys.argv[1]
manifest = json.load(open(path))
manifest["functions"].append({"name": "LocalOnly", "executable": "local/fixture/runtimes/echo.py",
                              "trigger": {"type": "route", "route": "localonly"}, "memory_mb": 128, "timeout_s": 3})
json.dump(manifest, open(path, "w"))
PY
  local listed
  if listed="$("${artifacts[@]}" functions "$tree/lambda.manifest.json")" && [[ "$listed" != *LocalOnly* ]] \
    && "${artifacts[@]}" check-workspace "$tree/lambda.manifest.json"; then pass an_executable_function_is_not_built
  else fail_test an_executable_function_is_not_built "listed: $listed"; fi
}

test_usage_errors() {
  expect no_service_is_a_usage_error 2 "--service is required" -- "$build"
  expect unknown_argument_is_a_usage_error 2 "unknown argument '--fast'" -- "$build" --service . --fast
  expect unknown_mode_is_a_usage_error 2 "unknown --mode 'zip'; use bundle or binary" -- "$build" --service . --mode zip
  expect unknown_arch_is_a_usage_error 2 "unknown --arch 'riscv64'; use arm64 or x86_64" -- "$build" --service . --arch riscv64
  expect unknown_function_is_a_usage_error 2 "unknown function 'Nope'; the manifest lists: ConnectFunction, disconnectWS, WebSocketResponder, WebSocketRoutes, ConnectAuthorizer" -- \
    "$build" --service . --function Nope
  mkdir -p "$work/empty"
  expect service_without_manifest_is_a_usage_error 2 "has no lambda.manifest.json" -- "$build" --service "$work/empty"
  expect missing_value_is_a_usage_error 2 "--out needs a value" -- "$build" --service . --out
}

test_missing_cargo_lambda_says_how_to_install_it() {
  local tree="$work/no-cargo-lambda" cargo_dir
  copy_tree "$tree"
  cargo_dir="$(dirname "$(command -v cargo)")"
  expect missing_cargo_lambda_says_how_to_install_it 1 "cargo-lambda is not installed: run 'pip install cargo-lambda'" -- \
    env PATH="$cargo_dir:/usr/bin:/bin" "$build" --service "$tree"
}

test_bundle_of_every_function() {
  if ! "$build" --service . --mode bundle; then fail_test bundle_of_every_function "the build failed"; return; fi
  local name dir ok=1
  for name in $(functions); do
    dir="dist/lambdas/ws-connection/$name"
    "${artifacts[@]}" check-zip "$dir/$name.zip" arm64 || ok=0
    (cd "$dir" && sha256sum --quiet -c "$name.zip.sha256") || ok=0
    python3 - "$name" <<'PY' || ok=0
import base64, json, sys
name = sys.argv[1]
entry = json.load(open("dist/lambdas/ws-connection/checksums.json"))[name]
hex_line = open(f"dist/lambdas/ws-connection/{name}/{name}.zip.sha256").read().split()[0]
assert entry["sha256"] == hex_line, (entry, hex_line)
assert base64.b64decode(entry["sha256_base64"]).hex() == hex_line
assert entry["architecture"] == "arm64" and entry["size"] > 0
PY
  done
  if ((ok)); then pass bundle_of_every_function_holds_one_arm64_bootstrap_and_verifies;
  else fail_test bundle_of_every_function "see above"; fi
  ok=1
  for name in $(functions); do
    python3 - "dist/lambdas/ws-connection/$name/$name.zip" "$ROOT" "$HOME" <<'PY' || ok=0
import sys, zipfile
data = zipfile.ZipFile(sys.argv[1]).read("bootstrap")
for path in sys.argv[2:]:
    if path.encode() + b"/" in data:
        sys.exit(f"{sys.argv[1]}: bootstrap contains the local path {path}")
PY
  done
  if ((ok)); then pass binaries_hold_no_local_path; else fail_test binaries_hold_no_local_path "see above"; fi
}

test_verify_bundle_catches_a_changed_zip() {
  local copy="$work/tampered"
  cp -r dist/lambdas/ws-connection "$copy"
  if ! "$ROOT/scripts/verify-bundle.sh" "$copy" >/dev/null; then
    fail_test verify_bundle_accepts_the_bundle "it refused the bundle just built"; return
  fi
  pass verify_bundle_accepts_the_bundle
  printf 'x' >> "$copy/disconnectWS/disconnectWS.zip"
  expect verify_bundle_refuses_a_changed_zip 1 "disconnectWS: disconnectWS/disconnectWS.zip does not match checksums.json" -- \
    "$ROOT/scripts/verify-bundle.sh" "$copy"
}

# The quick profile of the x86_64 and reproducibility checks: what they check (the architecture
# --arch selects; no path of the checkout in the bytes) does not depend on the release profile's
# fat LTO and size optimisation, which make each link take minutes. BUILD_REPRO=full (the nightly
# run) checks reproducibility on the arm64 release bundle itself.
quick_profile=(env CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)

test_binary_mode_and_x86_64() {
  if "$build" --service . --mode binary --function disconnectWS --out "$work/bin" \
      && [[ -x "$work/bin/ws-connection/disconnectWS/bootstrap" ]] \
      && [[ "$("${artifacts[@]}" elf-arch "$work/bin/ws-connection/disconnectWS/bootstrap")" == arm64 ]] \
      && [[ ! -e "$work/bin/ws-connection/ConnectFunction" ]]; then
    pass binary_mode_writes_only_the_requested_bootstrap
  else
    fail_test binary_mode_writes_only_the_requested_bootstrap "see above"
  fi
  # Built alone, a function must be the bundle's bytes (cargo unifies dependency features over the
  # packages of one build: build-lambda.sh compiles every function of the architecture together).
  if python3 - "$work/bin/ws-connection/disconnectWS/bootstrap" dist/lambdas/ws-connection/disconnectWS/disconnectWS.zip <<'PY'
import sys, zipfile
alone = open(sys.argv[1], "rb").read()
sys.exit(0 if alone == zipfile.ZipFile(sys.argv[2]).read("bootstrap") else "differs from the bundle's")
PY
  then pass a_function_built_alone_is_the_bundles_bytes
  else fail_test a_function_built_alone_is_the_bundles_bytes "see above"; fi
  if "${quick_profile[@]}" "$build" --service . --arch x86_64 --out "$work/x86" \
      && "${artifacts[@]}" check-zip "$work/x86/ws-connection/ConnectFunction/ConnectFunction.zip" x86_64; then
    pass arch_x86_64_builds_an_x86_64_bootstrap
  else
    fail_test arch_x86_64_builds_an_x86_64_bootstrap "see above"
  fi
}

test_another_clone_builds_the_same_bytes() {
  local tree="$work/clone" first="$work/x86/ws-connection" second="$work/clone-out" size=quick
  copy_tree "$tree"
  # Same target dir (dependencies are cached); the workspace crates rebuild from the new path.
  if [[ "${BUILD_REPRO:-}" == full ]]; then
    size=full first="dist/lambdas/ws-connection"
    CARGO_TARGET_DIR="$ROOT/target" "$build" --service "$tree" --mode bundle --out "$second"
  else
    "${quick_profile[@]}" CARGO_TARGET_DIR="$ROOT/target" "$build" --service "$tree" --arch x86_64 --out "$second"
  fi || { fail_test "another_clone_builds_the_same_bytes_$size" "the build in the copy failed"; return; }
  if cmp -s "$first/checksums.json" "$second/ws-connection/checksums.json"; then
    pass "another_clone_builds_the_same_bytes_$size"
  else
    fail_test "another_clone_builds_the_same_bytes_$size" "$(diff "$first/checksums.json" "$second/ws-connection/checksums.json")"
  fi
}

test_a_failed_compile_leaves_the_previous_output() {
  # The copy of the reproducibility test, broken: only the broken crate compiles again.
  local tree="$work/clone" out="$work/broken-out" before after
  [[ -d "$tree" ]] || copy_tree "$tree"
  mkdir -p "$out/ws-connection"
  cp -r dist/lambdas/ws-connection/ConnectFunction "$out/ws-connection/"
  before="$(cat "$out/ws-connection/ConnectFunction/ConnectFunction.zip.sha256")"
  echo 'compile_error!("deliberately broken by scripts/tests/build.sh");' >> "$tree/functions/connect/src/main.rs"

  expect a_failed_compile_exits_1_with_its_message 1 "for x86_64 failed" -- \
    "${quick_profile[@]}" CARGO_TARGET_DIR="$ROOT/target" "$build" --service "$tree" --function ConnectFunction \
    --arch x86_64 --out "$out"
  after="$(cat "$out/ws-connection/ConnectFunction/ConnectFunction.zip.sha256")"
  if [[ "$before" == "$after" ]] && (cd "$out/ws-connection/ConnectFunction" && sha256sum --quiet -c ConnectFunction.zip.sha256) \
      && [[ -z "$(find "$out" -name '.staging*' -o -name '*.partial')" ]]; then
    pass a_failed_compile_leaves_the_previous_output_whole
  else
    fail_test a_failed_compile_leaves_the_previous_output_whole "output changed or staging left behind"
  fi
}

test_shellcheck_is_clean
test_the_manifest_and_the_workspace_agree
test_usage_errors
test_missing_cargo_lambda_says_how_to_install_it
test_bundle_of_every_function
test_verify_bundle_catches_a_changed_zip
test_binary_mode_and_x86_64
test_another_clone_builds_the_same_bytes
test_a_failed_compile_leaves_the_previous_output

printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
