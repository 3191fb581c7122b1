#!/usr/bin/env bash
# The JavaScript client (clients/js), run by scripts/test.sh:
#   unit  type-check and build the library (tsc), then its unit tests (fake socket, fake clock)
#   e2e   the library end to end against ws-local and moto: ws-connection-tail in Node and the
#         library in headless Chromium, 300 messages across 5 drops and the rollovers
#         (clients/js/e2e/delivery.test.mjs). Needs DYNAMODB_ENDPOINT and the debug binaries.
# Installs what it needs: the npm packages (lockfiles) and chromium-headless-shell.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

command -v node >/dev/null || die "node is missing: install Node.js 20+ (apt-get install nodejs npm)"
npm_ci clients/js

case "${1:-}" in
  unit)
    (cd clients/js && npx tsc -p tsconfig.json) || die "the client does not type-check (see above)"
    node_test clients/js/dist/test/
    ;;
  e2e)
    [[ -n "${DYNAMODB_ENDPOINT:-}" ]] || die "DYNAMODB_ENDPOINT is not set: run this through scripts/test.sh (it starts moto)"
    [[ -f clients/js/dist/src/index.js ]] || (cd clients/js && npx tsc -p tsconfig.json)
    npm_ci local/parity
    ensure_chromium
    node_test --test-concurrency=1 clients/js/e2e/
    ;;
  *) die "usage: scripts/tests/client.sh unit|e2e" ;;
esac
