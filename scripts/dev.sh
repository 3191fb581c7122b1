#!/usr/bin/env bash
# The local stack: the whole service on this machine, no AWS account.
#
#   scripts/dev.sh
#
# Builds the functions and ws-local, starts moto's server (DynamoDB), creates the connections
# table in it from terraform/modules/table/schema.json (the schema Terraform builds it from),
# starts ws-local (API Gateway + Lambda) in front of the functions' real binaries, prints the
# endpoints and three examples, and streams the logs. Ctrl-C stops everything it started.
#
# Settings (environment): WS_LOCAL_PORT (default 3001), MOTO_PORT (default 5055),
# WS_LOCAL_STAGE (default local), WS_LOCAL_ARGS (more `ws-local serve` options, e.g.
# "--idle-timeout 30 --env LOG_LEVEL=DEBUG").
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

WS_LOCAL_PORT="${WS_LOCAL_PORT:-3001}"
MOTO_PORT="${MOTO_PORT:-5055}"
WS_LOCAL_STAGE="${WS_LOCAL_STAGE:-local}"

need() {
  command -v "$1" >/dev/null || die "$1 is missing: $2"
}
need cargo "install Rust (https://rustup.rs)"
need python3 "install Python 3 (apt-get install python3 python3-venv)"
need curl "install curl (apt-get install curl)"

for port in "$WS_LOCAL_PORT" "$MOTO_PORT"; do
  [[ "$port" =~ ^[0-9]+$ ]] || die "port '$port' is not a number (WS_LOCAL_PORT, MOTO_PORT)"
done
[[ "$WS_LOCAL_PORT" != "$MOTO_PORT" ]] || die "WS_LOCAL_PORT and MOTO_PORT are both $MOTO_PORT: pick two ports"
port_is_free "$WS_LOCAL_PORT" || die "port $WS_LOCAL_PORT is taken (is another scripts/dev.sh running?): stop what uses it or set WS_LOCAL_PORT"
port_is_free "$MOTO_PORT" || die "port $MOTO_PORT is taken: stop what uses it or set MOTO_PORT"

cd "$ROOT"
ensure_venv
export PATH="$VENV/bin:$PATH"

log "building the functions and ws-local (debug)"
cargo build --workspace --bins --locked

WS_LOCAL_PID=""
stop_all() {
  trap - INT TERM EXIT
  if [[ -n "$WS_LOCAL_PID" ]] && kill -0 "$WS_LOCAL_PID" 2>/dev/null; then
    kill -TERM "$WS_LOCAL_PID" 2>/dev/null || true # closes the sockets, runs $disconnect, stops instances
    wait "$WS_LOCAL_PID" 2>/dev/null || true
  fi
  stop_servers
  log "stopped"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Only the table is applied: moto need not load the AWS managed policies (seconds of start-up).
start_moto "$MOTO_PORT"

# The table from the schema the Terraform module builds it from (terraform/modules/table/
# schema.json): all ws-local needs from AWS, as it plays API Gateway and Lambda itself. The
# whole stack's apply to moto is the apply test's job (scripts/tests/terraform.sh).
table=ws-connection-local-connections
python3 scripts/local_table.py --endpoint "$MOTO_ENDPOINT" --name "$table" >/dev/null \
  || die "could not create the table in moto at $MOTO_ENDPOINT"
log "table $table (from terraform/modules/table/schema.json)"

base="http://127.0.0.1:$WS_LOCAL_PORT"
# shellcheck disable=SC2086 # WS_LOCAL_ARGS is a list of options
target/debug/ws-local serve --port "$WS_LOCAL_PORT" --stage "$WS_LOCAL_STAGE" \
  --dynamodb-endpoint "$MOTO_ENDPOINT" --table "$table" ${WS_LOCAL_ARGS:-} &
WS_LOCAL_PID=$!
wait_http "$base/" 30 || die "ws-local did not start on port $WS_LOCAL_PORT"

cat <<EXAMPLES

Local stack is up.
  WebSocket       ws://127.0.0.1:$WS_LOCAL_PORT/$WS_LOCAL_STAGE
  Management API  $base/$WS_LOCAL_STAGE/@connections/{connectionId}
  Invoke API      $base/2015-03-31/functions/{name}/invocations
  Token issuer    $base/issuer   (JWKS at /issuer/.well-known/jwks.json)
  Console         $base/_console   (live connections, their messages, post/invoke forms, logs)
  DynamoDB        $MOTO_ENDPOINT  table $table

In another terminal: export WS=$base   (the docs' commands read it; docs/tutorial.md is the first hour)

1. Connect (Ctrl-D to close). A message is answered by its route ({"action":"ping"}, {"action":"resume"}),
   else {"message": "Forbidden"}, as API Gateway answers; a client that survives reconnects is
   clients/js's ws-connection-tail (docs/client.md):
  \$ TOKEN=\$(target/debug/ws-local token --sub alice --url $base)
  \$ .venv/bin/python -m websockets "ws://127.0.0.1:$WS_LOCAL_PORT/$WS_LOCAL_STAGE?token=\$TOKEN&correlationId=conv-demo"

2. Post to that connection (its id is in the console, in the log: "[ws-local] \$connect <id> accepted",
   and in the console's JSON: curl -s $base/_console/api/state):
  \$ curl -sS -X POST --data 'Olá from the Management API' $base/$WS_LOCAL_STAGE/@connections/CONNECTION_ID

3. Invoke the responder (a fan-out to every connection of conv-demo):
  \$ curl -sS $base/2015-03-31/functions/WebSocketResponder/invocations -d '{"conversationId":"conv-demo","messageType":"system","sequence":1,"isFinal":true,"payload":{"text":"Processando…"}}'

Logs follow. Ctrl-C stops ws-local, moto and every function instance (started in the background from a
script, stop it with kill -TERM <its pid>: such a job ignores SIGINT).
EXAMPLES

wait "$WS_LOCAL_PID" || true
WS_LOCAL_PID=""
