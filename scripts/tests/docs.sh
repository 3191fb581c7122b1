#!/usr/bin/env bash
# Doc checks, run by scripts/test.sh: every relative link in the Markdown resolves (anchors
# included) inside the repository; nothing cites a design document, description or issue number
# the repository does not have; the runbook names every metric of the manifest; every mermaid block parses with
# mermaid's own parser (@mermaid-js/mermaid-cli, pinned by tools/docs/package-lock.json, on
# Debian's chromium-headless-shell; both installed here when missing). Rendered diagrams land in
# target/docs/ (PNG), to look at.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

command -v npm >/dev/null || die "npm is missing: install Node.js 20+ (apt-get install nodejs npm)"
# mermaid-cli drives the system's Chromium: puppeteer must not download a browser of its own.
PUPPETEER_SKIP_DOWNLOAD=1 npm_ci tools/docs
ensure_chromium

step "relative links resolve" python3 scripts/tests/doc_checks.py links
step "the runbook names every metric of the manifest" python3 scripts/tests/doc_checks.py metrics
step "nothing refers outside the repository (links, design documents, issue numbers)" python3 scripts/tests/doc_checks.py references
step "the link and reference checks catch each planted break" python3 scripts/tests/doc_checks.py selftest

mermaid() {
  local out="$ROOT/target/docs" failed=0 diagram
  rm -rf "$out" && mkdir -p "$out"
  python3 scripts/tests/doc_checks.py extract "$out" >/dev/null
  for diagram in "$out"/*.mmd; do
    if ! PUPPETEER_EXECUTABLE_PATH="$(command -v chromium-headless-shell)" timeout 120 \
      tools/docs/node_modules/.bin/mmdc -q -p tools/docs/puppeteer.json -b white -w 1400 \
      -i "$diagram" -o "${diagram%.mmd}.png" >"${diagram%.mmd}.log" 2>&1; then
      printf '%s: %s\n' "${diagram##*/}" "$(grep -m1 -A2 'Error' "${diagram%.mmd}.log" | tr '\n' ' ')" >&2
      failed=1
    fi
  done
  return "$failed"
}
step "every mermaid block parses (mermaid-cli)" mermaid

step_summary
