#!/usr/bin/env bash
# Verifies a bundle before anything deploys it: every <Function>/<Function>.zip matches its
# .sha256 file and checksums.json (hex, base64, size), and every function lambda.manifest.json
# lists is there.
#
#   scripts/verify-bundle.sh [DIR]     default: dist/lambdas/ws-connection
#
# Exit status: 0 verified, 1 a mismatch or a missing file (each one named), 2 usage error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../dist/lambdas/ws-connection}"
[[ $# -le 1 ]] || { echo "usage: scripts/verify-bundle.sh [DIR]" >&2; exit 2; }
[[ -f "$dir/checksums.json" ]] || { echo "verify-bundle: $dir/checksums.json is missing" >&2; exit 1; }
python3 - "$dir" "$here/../lambda.manifest.json" <<'PY'
import base64, hashlib, json, os, sys
directory, manifest_path = sys.argv[1], sys.argv[2]
checksums = json.load(open(os.path.join(directory, "checksums.json")))
problems = []
for function in json.load(open(manifest_path))["functions"]:
    if function["name"] not in checksums:
        problems.append(f"{function['name']}: not in checksums.json")
for name, entry in sorted(checksums.items()):
    path = os.path.join(directory, entry["zip"])
    try:
        data = open(path, "rb").read()
    except OSError as e:
        problems.append(f"{name}: {entry['zip']} cannot be read ({e.strerror})")
        continue
    digest = hashlib.sha256(data).digest()
    if digest.hex() != entry["sha256"] or base64.b64encode(digest).decode() != entry["sha256_base64"]:
        problems.append(f"{name}: {entry['zip']} does not match checksums.json")
    if len(data) != entry["size"]:
        problems.append(f"{name}: {entry['zip']} is {len(data)} bytes, checksums.json says {entry['size']}")
    try:
        line = open(path + ".sha256").read().split()
        if line[:2] != [digest.hex(), os.path.basename(path)]:
            problems.append(f"{name}: {entry['zip']}.sha256 does not match the zip")
    except OSError:
        problems.append(f"{name}: {entry['zip']}.sha256 is missing")
for p in problems:
    print(f"verify-bundle: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"verify-bundle: {len(checksums)} functions verified in {directory}")
PY
