#!/usr/bin/env bash
# Builds the Lambda functions a lambda.manifest.json lists, reproducibly.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/build-lambda.sh --service DIR [--mode bundle|binary] [--function NAME]...
                               [--arch arm64|x86_64] [--out DIR]

Builds every function that DIR/lambda.manifest.json lists (or only the --function ones) in
release mode with cargo-lambda (zig cross-compiles), and writes, per function:

  --mode bundle (default)  <out>/<service>/<Function>/<Function>.zip       one entry: bootstrap, 0755
                           <out>/<service>/<Function>/<Function>.zip.sha256 sha256sum format
                           <out>/<service>/checksums.json  hex + base64 SHA-256 and size per function
  --mode binary            <out>/<service>/<Function>/bootstrap             the executable only

  --service DIR    folder holding lambda.manifest.json (and the Cargo workspace)
  --function NAME  a function's Lambda name from the manifest; repeatable; default: all (the
                   others of its architecture are compiled too, so its bytes are the bundle's)
  --arch ARCH      arm64 or x86_64 for every function built; default: each one's manifest entry
  --out DIR        where to write; default: DIR/dist/lambdas

The same commit gives the same zip bytes in any clone: paths are remapped out of the binary,
and zips have fixed timestamps, permissions and order. Output appears only when every function
built; a failure leaves the previous output as it was.

Exit status: 0 built, 1 build failure or missing tool, 2 usage error.
USAGE
}

prog="build-lambda"
usage_error() { printf '%s: %s\nTry: scripts/build-lambda.sh --help\n' "$prog" "$1" >&2; exit 2; }
fail() { printf '%s: %s\n' "$prog" "$1" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
artifacts=("python3" "$here/lambda_artifacts.py")

service="" mode="bundle" arch="" out=""
functions=()
while (($#)); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --service|--mode|--function|--arch|--out)
      (($# >= 2)) || usage_error "$1 needs a value"
      case "$1" in
        --service) service="$2" ;;
        --mode) mode="$2" ;;
        --function) functions+=("$2") ;;
        --arch) arch="$2" ;;
        --out) out="$2" ;;
      esac
      shift 2 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

[[ -n "$service" ]] || usage_error "--service is required (the folder holding lambda.manifest.json)"
[[ -d "$service" ]] || usage_error "--service $service is not a folder"
service="$(cd "$service" && pwd)"
[[ -f "$service/lambda.manifest.json" ]] || usage_error "--service $service has no lambda.manifest.json"
case "$mode" in bundle|binary) ;; *) usage_error "unknown --mode '$mode'; use bundle or binary" ;; esac
case "$arch" in ""|arm64|x86_64) ;; *) usage_error "unknown --arch '$arch'; use arm64 or x86_64" ;; esac

listing="$("${artifacts[@]}" functions "$service/lambda.manifest.json" "${functions[@]}")" || exit $?
# Every function of an architecture is compiled together, whichever ones were asked for: cargo
# unifies dependency features over the packages of one build, so a function built alone can come
# out in other bytes than the same function built with the rest. Only the asked-for ones are
# packaged; after a full build, a build of one is a cache hit.
everything="$("${artifacts[@]}" functions "$service/lambda.manifest.json")" || exit $?
"${artifacts[@]}" check-workspace "$service/lambda.manifest.json" || exit $?
service_name="$(awk -F'\t' '$1 == "service" { print $2 }' <<<"$listing")"
out="${out:-$service/dist/lambdas}"
dest="$out/$service_name"

# The project's own .venv (where scripts/test.sh installs it) counts as installed.
[[ -x "$service/.venv/bin/cargo-lambda" ]] && PATH="$service/.venv/bin:$PATH"
cargo lambda --version >/dev/null 2>&1 \
  || fail "cargo-lambda is not installed: run 'pip install cargo-lambda' (it brings zig for cross-compiling)"

# No machine-specific path may end up in a binary. Cargo compiles the workspace's own crates
# with paths relative to the workspace root; dependencies and the standard library carry the
# registry's and toolchain's absolute paths, mapped here to fixed ones. The flags name no path of
# the checkout, so every clone shares one dependency cache (RUSTFLAGS are part of its key).
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
remap="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$remap"

mkdir -p "$dest"
staging="$(mktemp -d "$dest/.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

declare -A triple=([arm64]=aarch64-unknown-linux-gnu [x86_64]=x86_64-unknown-linux-gnu)
built=()
for want_arch in arm64 x86_64; do
  packages=() names=() bins=()
  while IFS=$'\t' read -r kind _name _crate package fn_arch; do
    if [[ "$kind" == "function" && "${arch:-$fn_arch}" == "$want_arch" ]]; then packages+=(--package "$package"); fi
  done <<<"$everything"
  while IFS=$'\t' read -r kind name _crate package fn_arch; do
    [[ "$kind" == "function" && "${arch:-$fn_arch}" == "$want_arch" ]] || continue
    names+=("$name"); bins+=("$package")
  done <<<"$listing"
  ((${#names[@]})) || continue

  printf '==> building %s for %s\n' "${names[*]}" "$want_arch" >&2
  # --disable-optimizations: the workspace's release profile decides, not cargo-lambda's defaults.
  (cd "$service" && cargo lambda build --release --disable-optimizations --locked \
      --target "${triple[$want_arch]}" --lambda-dir "$staging/.bin" "${packages[@]}") \
    || fail "compiling ${names[*]} for $want_arch failed (see cargo's output above)"

  for i in "${!names[@]}"; do
    name="${names[$i]}"
    binary="$staging/.bin/${bins[$i]}/bootstrap"
    [[ -f "$binary" ]] || fail "cargo-lambda reported success but $binary is missing"
    mkdir -p "$staging/$name"
    if [[ "$mode" == "bundle" ]]; then
      "${artifacts[@]}" zip "$binary" "$staging/$name/$name.zip" || fail "could not write $name.zip"
    else
      install -m 0755 "$binary" "$staging/$name/bootstrap"
    fi
    built+=("$name")
  done
done

# Every function built: swap each one's folder in, then describe the whole set.
for name in "${built[@]}"; do
  rm -rf "${dest:?}/$name"
  mv "$staging/$name" "$dest/$name"
done
if [[ "$mode" == "bundle" ]]; then
  "${artifacts[@]}" checksums "$dest" || fail "could not write $dest/checksums.json"
  (cd "$dest" && for name in "${built[@]}"; do cat "$name/$name.zip.sha256"; done)
fi
printf '==> %s: %s in %s\n' "$mode" "${built[*]}" "$dest" >&2
