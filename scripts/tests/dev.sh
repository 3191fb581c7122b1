#!/usr/bin/env bash
# scripts/dev.sh as a developer meets it, run by scripts/test.sh: a missing tool and a taken
# port are clear errors; the stack comes up (build, moto, the table from its schema, ws-local),
# the three printed examples work as printed (scripts/tests/dev_client.py), and Ctrl-C — sent to
# the whole process group, as a terminal does — stops everything it started after the
# connections still open got their $disconnect.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
work="$(mktemp -d)"
DEV_PID=""
cleanup() {
  [[ -z "$DEV_PID" ]] || kill -TERM "$DEV_PID" 2>/dev/null || true
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT

missing_tool_is_named() {
  local rc=0
  env PATH=/nonexistent /bin/bash scripts/dev.sh >"$work/missing.out" 2>&1 || rc=$?
  [[ $rc -eq 1 ]] && grep -q '^error: cargo is missing: install Rust' "$work/missing.out"
}

taken_port_is_named() {
  local port rc=0
  # The holder picks its own free port and says which: choosing one first and binding it after
  # races with the ephemeral ports of other connections (a CI run saw it: the bind failed, dev.sh
  # found the port free and ran until stopped).
  "$VENV/bin/python" -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$work/held.port" &
  SERVER_PIDS+=("$!")
  local until_bound=$((SECONDS + 10))
  until [[ -s "$work/held.port" ]]; do ((SECONDS < until_bound)) || return 1; sleep 0.1; done
  port="$(cat "$work/held.port")"
  WS_LOCAL_PORT="$port" MOTO_PORT="$(free_port)" timeout 120 scripts/dev.sh >"$work/taken.out" 2>&1 || rc=$?
  stop_servers
  [[ $rc -eq 1 ]] && grep -q "^error: port $port is taken" "$work/taken.out"
}

the_stack_comes_up_and_the_examples_work() {
  local out="$work/dev.out" ws_port moto_port
  ws_port="$(free_port)"
  moto_port="$(free_port)"
  # As from a terminal: SIGINT is not ignored (a background job of a script would ignore it), and
  # dev.sh leads its own process group, so a Ctrl-C can reach the whole group as a terminal's does.
  WS_LOCAL_PORT="$ws_port" MOTO_PORT="$moto_port" "$VENV/bin/python" -c \
    'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setpgrp(); os.execv(sys.argv[1], sys.argv[1:])' \
    "$ROOT/scripts/dev.sh" >"$out" 2>&1 &
  DEV_PID=$!
  local deadline=$((SECONDS + 900))
  until grep -q '^Logs follow' "$out"; do
    if ! kill -0 "$DEV_PID" 2>/dev/null || ((SECONDS > deadline)); then
      cat "$out"
      return 1
    fi
    sleep 1
  done
  local id
  id="$("$VENV/bin/python" scripts/tests/dev_client.py "$out")" || { cat "$out"; return 1; }
  # The client's close (4000) reached $disconnect before the stop.
  local until_closed=$((SECONDS + 20))
  until grep -q "\[ws-local\] closed $id (4000 example done)" "$out" && grep -q '"svc":"ws-disconnect".*"closeCode":4000' "$out"; do
    ((SECONDS < until_closed)) || { cat "$out"; return 1; }
    sleep 0.2
  done
  # A client still connected when Ctrl-C comes: its closing $disconnect must still reach moto.
  "$VENV/bin/python" scripts/tests/dev_client.py "$out" --hold >"$work/held.out" 2>&1 &
  local held=$! until_held=$((SECONDS + 20))
  until grep -q '^held' "$work/held.out"; do
    ((SECONDS < until_held)) || { cat "$work/held.out" "$out"; return 1; }
    sleep 0.2
  done
  # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
  kill -INT -- "-$DEV_PID"
  local rc=0
  wait "$DEV_PID" || rc=$?
  DEV_PID=""
  wait "$held" 2>/dev/null || true
  grep -q '^==> stopped' "$out" || { echo "dev.sh exited $rc without stopping what it started"; cat "$out"; return 1; }
  grep -q '"svc":"ws-disconnect".*"closeCode":1001' "$out" \
    || { echo "the connection open at Ctrl-C got no \$disconnect (1001) recorded"; cat "$out"; return 1; }
  ! grep -q '"level":"ERROR"' "$out" || { echo "an ERROR while stopping:"; grep '"level":"ERROR"' "$out"; return 1; }
  if ! port_is_free "$ws_port" || ! port_is_free "$moto_port"; then
    echo "a port is still in use after Ctrl-C"
    return 1
  fi
  ! pgrep -f "ws-local serve --port $ws_port" >/dev/null || { echo "ws-local still runs"; return 1; }
  ! pgrep -f "moto_server.py -H 127.0.0.1 -p $moto_port" >/dev/null || { echo "moto still runs"; return 1; }
}

step "a missing tool is named" missing_tool_is_named
step "a taken port is named" taken_port_is_named
step "the stack comes up, the examples work, Ctrl-C stops it" the_stack_comes_up_and_the_examples_work

step_summary
