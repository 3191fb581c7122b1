# shellcheck shell=bash
# Helpers sourced by the scripts in this folder: a local Python venv, free ports, and
# background servers that are always stopped.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Creates $VENV and installs scripts/requirements-test.txt into it, once per change of that file.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$ROOT/scripts/requirements-test.txt" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  command -v python3 >/dev/null || die "python3 is missing: install it (apt-get install python3 python3-venv)"
  log "installing Python test tools into $VENV"
  python3 -m venv "$VENV" || die "could not create a venv at $VENV (apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements-test.txt" \
    || die "pip could not install scripts/requirements-test.txt"
  echo "$want" > "$stamp"
}

# Installs Debian's chromium-headless-shell when it is missing (the browser test and the docs'
# mermaid check drive it headless).
ensure_chromium() {
  command -v chromium-headless-shell >/dev/null && return 0
  log "installing chromium-headless-shell (apt-get)"
  command -v apt-get >/dev/null || die "chromium-headless-shell is missing and there is no apt-get: install it (or set CHROMIUM to a headless Chromium)"
  local sudo_if_needed=()
  [[ "$(id -u)" -eq 0 ]] || sudo_if_needed=(sudo)
  "${sudo_if_needed[@]}" apt-get install -y -qq chromium-headless-shell >/dev/null \
    || { "${sudo_if_needed[@]}" apt-get update -qq && "${sudo_if_needed[@]}" apt-get install -y -qq chromium-headless-shell >/dev/null; } \
    || die "apt-get could not install chromium-headless-shell"
}

# npm_ci DIR: npm ci in DIR once per change of its lockfile (extra environment passes through).
npm_ci() {
  local dir="$1" sum
  sum="$(sha256sum "$ROOT/$dir/package-lock.json" | cut -d' ' -f1)"
  [[ "$(cat "$ROOT/$dir/node_modules/.lock.sha256" 2>/dev/null)" == "$sum" ]] && return 0
  log "installing $dir's npm packages (npm ci)"
  npm ci --prefix "$ROOT/$dir" --silent --no-audit --no-fund || die "npm could not install $dir's packages"
  echo "$sum" > "$ROOT/$dir/node_modules/.lock.sha256"
}

# node_test ARGS…: Node's test runner with a time limit per test and an exit when the tests are
# done, so a test that hangs, or leaves a child running, fails with its name instead of holding
# the run until CI's own limit.
node_test() {
  node --test --test-force-exit --test-timeout="${NODE_TEST_TIMEOUT_MS:-240000}" "$@"
}

# Prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# PIDs of the servers this shell started; stop_servers kills exactly these.
SERVER_PIDS=()
stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}

# wait_http URL SECONDS: waits until URL answers anything over HTTP.
wait_http() {
  local url="$1" deadline=$((SECONDS + $2))
  until python3 -c 'import sys,urllib.request,urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass' "$url" 2>/dev/null; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

# port_is_free PORT: true when a server could listen on 127.0.0.1:PORT (SO_REUSEADDR, as servers
# bind: connections of a stopped server lingering in TIME_WAIT do not count).
port_is_free() {
  python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}

# start_moto_shim: starts scripts/moto_shim.py on a free loopback port in front of $MOTO_ENDPOINT
# and sets SHIM_ENDPOINT (the Step Functions and Application Auto Scaling actions the AWS provider
# calls and moto lacks; see the script).
start_moto_shim() {
  local port
  port="$(free_port)"
  python3 "$ROOT/scripts/moto_shim.py" --port "$port" --upstream "$MOTO_ENDPOINT" >"$ROOT/target/moto-shim-$port.log" 2>&1 &
  SERVER_PIDS+=("$!")
  SHIM_ENDPOINT="http://127.0.0.1:$port"
  wait_http "$SHIM_ENDPOINT/" 30 || die "the moto shim did not start (see $ROOT/target/moto-shim-$port.log)"
}

# start_moto [PORT]: starts moto's server on PORT (default: a free one) on loopback and sets
# MOTO_ENDPOINT. It inherits the environment (e.g. MOTO_IAM_LOAD_MANAGED_POLICIES). Its log goes
# to $ROOT/target/moto-<port>.log.
start_moto() {
  local port="${1:-}" logfile
  [[ -n "$port" ]] || port="$(free_port)"
  mkdir -p "$ROOT/target"
  logfile="$ROOT/target/moto-$port.log"
  # Its own session: a Ctrl-C in the terminal (SIGINT to the whole foreground group) must not
  # stop moto before ws-local's closing $disconnects have written to it; stop_servers stops it.
  # scripts/moto_server.py: moto_server with its per-item projection cost taken out.
  setsid "$VENV/bin/python3" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  SERVER_PIDS+=("$!")
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  wait_http "$MOTO_ENDPOINT/moto-api/" 60 || die "moto did not start on port $port (see $logfile)"
  log "moto on $MOTO_ENDPOINT"
}

# terraform_env: when this machine has a local mirror of the hashicorp/aws provider (no
# registry reachable), writes a CLI config that installs from it and exports TF_CLI_CONFIG_FILE.
# Elsewhere Terraform uses the public registry as usual.
terraform_env() {
  command -v terraform >/dev/null || die "terraform is missing: install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
  local plugin root config="$ROOT/target/terraform.rc"
  plugin="$(find /opt /usr/local/share /usr/share "$HOME/.terraform.d" -name 'terraform-provider-aws_*' -type f 2>/dev/null | head -n1 || true)"
  [[ -n "$plugin" ]] || plugin="$(find / -path /proc -prune -o -name 'terraform-provider-aws_*' -type f -print 2>/dev/null | head -n1 || true)"
  [[ -n "$plugin" && "$plugin" == */registry.terraform.io/hashicorp/aws/* ]] || return 0
  root="${plugin%%/registry.terraform.io/*}"
  mkdir -p "$ROOT/target"
  cat > "$config" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$root"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
RC
  export TF_CLI_CONFIG_FILE="$config"
  log "terraform: provider mirror at $root"
}

# apply_local_stack STATE_FILE: applies terraform/envs/local to the moto at MOTO_ENDPOINT (started
# with MOTO_IAM_LOAD_MANAGED_POLICIES=true), keeping the state in STATE_FILE (moto starts empty,
# so any old state there is dropped), and sets LOCAL_TABLE to the table it created. Terraform's
# output goes to STATE_FILE's folder, apply.log.
apply_local_stack() {
  local state="$1" dir
  dir="$(dirname "$state")"
  mkdir -p "$dir"
  rm -f "$state" "$state.backup"
  terraform_env
  (
    cd "$ROOT/terraform/envs/local"
    terraform init -input=false -no-color >/dev/null
    terraform apply -input=false -auto-approve -no-color -state="$state" -var "aws_endpoint=$MOTO_ENDPOINT" >"$dir/apply.log"
  ) || die "terraform apply of terraform/envs/local failed (see $dir/apply.log)"
  export LOCAL_TABLE
  LOCAL_TABLE="$(cd "$ROOT/terraform/envs/local" && terraform output -state="$state" -raw table_name)"
}

# step NAME COMMAND...: runs one check of a test script and counts it; step_summary prints the
# counts and fails when any check failed.
STEPS_PASSED=0 STEPS_FAILED=0
step() {
  local name="$1" started=$SECONDS
  shift
  if "$@"; then STEPS_PASSED=$((STEPS_PASSED + 1)); printf 'PASS %s (%ds)\n' "$name" $((SECONDS - started))
  else STEPS_FAILED=$((STEPS_FAILED + 1)); printf 'FAIL %s (%ds)\n' "$name" $((SECONDS - started)); fi
}
step_summary() {
  printf '%d passed, %d failed\n' "$STEPS_PASSED" "$STEPS_FAILED"
  ((STEPS_FAILED == 0))
}

# background NAME COMMAND...: runs COMMAND (a function of this shell or a program) in the
# background, its output in target/test-logs/NAME.log; await NAME waits for it and fails with
# that log when it failed.
declare -A BACKGROUND_PIDS=()
background() {
  local name="$1"
  shift
  mkdir -p "$ROOT/target/test-logs"
  "$@" >"$ROOT/target/test-logs/$name.log" 2>&1 &
  BACKGROUND_PIDS[$name]=$!
}
await() {
  local name="$1"
  if ! wait "${BACKGROUND_PIDS[$name]}"; then
    cat "$ROOT/target/test-logs/$name.log" >&2
    die "$name failed (its output is above, and in target/test-logs/$name.log)"
  fi
  unset "BACKGROUND_PIDS[$name]"
}
