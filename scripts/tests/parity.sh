#!/usr/bin/env bash
# ws-local from outside, run by scripts/test.sh after the debug binaries are built and with moto
# running (DYNAMODB_ENDPOINT): the parity suite (local/parity/parity.test.mjs: Node custom-runtime
# handlers and the npm ws client, pinned by local/parity/package-lock.json) and the console in
# headless Chromium (local/parity/browser.test.mjs, which saves target/parity/console.png).
# Installs what it needs: the npm packages, and chromium-headless-shell with apt-get.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

[[ -n "${DYNAMODB_ENDPOINT:-}" ]] || die "DYNAMODB_ENDPOINT is not set: run this through scripts/test.sh (it starts moto)"
command -v node >/dev/null || die "node is missing: install Node.js 20+ (apt-get install nodejs npm)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "node $(node --version) is too old: the parity suite needs Node.js 20+"
npm_ci local/parity
ensure_chromium

node_test --test-concurrency=1 local/parity/parity.test.mjs local/parity/browser.test.mjs
