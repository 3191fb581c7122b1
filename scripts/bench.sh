#!/usr/bin/env bash
# Benchmarks, written into BENCHMARKS.md (each section between its markers is replaced).
#
#   scripts/bench.sh                 every section
#   scripts/bench.sh build coldstart only these
#
# Sections:
#   build    the arm64 bundle built cold in two fresh clones: per function binary and zip size and
#            zip hash, whether both clones agree, and the cold build time
#   coldstart ConnectFunction side by side with the same $connect in Node.js 20 + AWS SDK v3
#            (bench/node-reference, npm-installed and esbuild-bundled here), interleaved, fresh
#            process per start (COLDSTART_RUNS, default 30), one Runtime API stand-in and moto:
#            init, first invoke, cold total, warm median/p90 of 50, the moto floor, peak RSS, CPU,
#            and their ratios; then the same for the other three functions, ours only
#   fanout   WebSocketResponder fan-out to 1,000 connections (moto + the Management API stand-in
#            of the responder's tests, all on loopback), appended to its stream and (STREAMS=false)
#            not, interleaved; median of 5 runs each: the stream's added latency and CPU per message.
#            Target ≤ 0.5 s.
#   resume   WebSocketRoutes answering a resume of 300 messages from moto: time and read units.
#   client   the client library (clients/js/e2e/bench.mjs) against debug ws-local: time from a
#            network drop to `resumed` (p50, p90 of 20), and the messages per second it delivers
#            in a headless Chromium tab.
#   fanout-cpu WebSocketResponder's CPU per post side by side with the same fan-out in Node.js 20 +
#            AWS SDK v3 (bench/node-reference/src/fanout.js): 3,000 connections in moto, a Management
#            API stand-in that answers at once, 32 posts in flight, fresh process per round, rounds
#            interleaved (scripts/bench/fanout_cpu.py). Target ≤ 0.1× Node's (aim 0.05×).
#   fanout-quota  WebSocketResponder against a Management API stand-in with an account quota (a token
#            bucket, burst a tenth of a second; 30 ms per post), the conversation in the in-memory
#            table adapter (moto's pages would bound the rate), FANOUT_CONCURRENCY 4× what the quota
#            takes at 30 ms per post (at least 128): 20,000
#            connections (QUOTA_CONNECTIONS) at 500 and 5,000 posts/s; posts/s ÷ quota, refused
#            share, invocations. Target ≥ 0.8× the quota with ≤ 15 % refused.
#   segments a broadcast to 100,000 connections (SEGMENTS_CONNECTIONS; in-memory listing) in 1, 2, 4
#            and 8 segments at once against a stand-in quota of 10,000 posts/s (SEGMENTS_RATE):
#            time, share of the quota, refused, slowest ÷ fastest segment, CPU per post; and the
#            projection to 1,000,000 connections on Lambda at 256 MB and 1,769 MB.
#   local    the local stack (release ws-local + release function binaries + moto with the table
#            from terraform/envs/local), driven by local/examples/load.rs: connect → record
#            latency p50/p99 (authorizer + ConnectFunction + the DynamoDB put); posts/s through
#            @connections (target ≥ 20,000/s); a responder fan-out to 1,000 clients through the
#            Invoke API until every client has it (target ≤ 0.5 s); a fan-out to 10,000 clients
#            on a table of its own, continued by its cursor until every client has it (total,
#            posts/s, target ≤ 5 s; its ratio to the 1,000's, target ≤ 12; the responder's peak
#            memory from ws-local's REPORT lines, target ≤ 64 MiB); 10,000 idle sockets and
#            ws-local's memory for them.
#
# Each section keeps its raw numbers in bench/results/ and draws its chart from them into
# bench/charts/ (scripts/bench/charts.py, matplotlib from scripts/requirements-bench.txt);
# BENCHMARKS.md embeds the charts.
#
# Numbers from a shared 2-core machine are noisy: compare figures from one run, side by side.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap 'stop_servers; rm -rf "$work"' EXIT
work="$(mktemp -d)"
ensure_venv
export PATH="$VENV/bin:$PATH"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-bench.txt \
  || die "pip could not install scripts/requirements-bench.txt"
results="$ROOT/bench/results" charts="$ROOT/bench/charts"
mkdir -p "$results" "$charts"
# chart NAME: draws bench/charts/NAME.svg from bench/results and prints the Markdown that embeds it.
chart() {
  python3 scripts/bench/charts.py "$1" "$results" "$charts/$1.svg" || die "scripts/bench/charts.py $1 failed"
  printf '\n![%s](bench/charts/%s.svg)\n' "$2" "$1"
}

sections=("$@")
((${#sections[@]})) || sections=(build coldstart fanout resume fanout-cpu fanout-quota segments local client)
artifacts=(python3 "$ROOT/scripts/lambda_artifacts.py")
functions() { "${artifacts[@]}" functions lambda.manifest.json | awk -F'\t' '$1 == "function" { print $2 }'; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1048576:.2f} MiB')" "$1"; }

# write_section NAME FILE: replaces NAME's block in BENCHMARKS.md with FILE's contents.
write_section() {
  python3 - "$ROOT/BENCHMARKS.md" "$1" "$2" <<'PY'
import os, sys
path, name, body_file = sys.argv[1:]
begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\nWritten by `scripts/bench.sh`; see it for what each section measures.\n"
block = f"{begin}\n{open(body_file).read().rstrip()}\n{end}"
if begin in text:
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
}

machine() { printf '%s, %s cores, rustc %s, %s' "$(uname -m)" "$(nproc)" "$(rustc --version | cut -d' ' -f2)" "$(date -u +%Y-%m-%d)"; }

bench_build() {
  local out="$work/build.md" name a b start
  # Two fresh clones of HEAD at different paths, each built cold (its own empty target dir):
  # the cold build time, and the proof that the bytes do not depend on the checkout.
  local -a times=()
  for clone in a b; do
    git clone --quiet "$ROOT" "$work/clone-$clone"
    log "cold bundle in clone $clone"
    start=$SECONDS
    CARGO_TARGET_DIR="$work/target-$clone" "$work/clone-$clone/scripts/build-lambda.sh" \
      --service "$work/clone-$clone" --mode bundle --out "$work/dist-$clone" >&2
    times+=($((SECONDS - start)))
    CARGO_TARGET_DIR="$work/target-$clone" "$work/clone-$clone/scripts/build-lambda.sh" \
      --service "$work/clone-$clone" --mode binary --out "$work/bin-$clone" >&2
  done
  a="$work/dist-a/ws-connection/checksums.json" b="$work/dist-b/ws-connection/checksums.json"
  {
    echo "## Build (arm64, release)"
    echo
    echo "$(machine), commit $(git rev-parse --short HEAD). The whole bundle built cold (empty target"
    echo "dir, every dependency compiled) in two fresh clones at different paths: ${times[0]} s and ${times[1]} s."
    echo "Target: every arm64 zip ≤ 2.5 MB. Identical bytes in both clones: $(cmp -s "$a" "$b" && echo yes || echo NO)."
    echo
    echo "| Function | bootstrap | zip | ≤ 2.5 MB | zip SHA-256 (clone a) | same in clone b |"
    echo "|---|---:|---:|:---:|---|:---:|"
  } > "$out"
  for name in $(functions); do
    python3 - "$name" "$a" "$b" "$(stat -c %s "$work/bin-a/ws-connection/$name/bootstrap")" >> "$out" <<'PY'
import json, sys
name, a, b, binary = sys.argv[1], json.load(open(sys.argv[2]))[sys.argv[1]], json.load(open(sys.argv[3]))[sys.argv[1]], int(sys.argv[4])
mib = lambda n: f"{n / 1048576:.2f} MiB"
print(f"| {name} | {mib(binary)} | {mib(a['size'])} | {'yes' if a['size'] <= 2_500_000 else 'NO'} | `{a['sha256']}` | {'yes' if a['sha256'] == b['sha256'] else 'NO'} |")
PY
  done
  write_section build "$out"
}

# The Node references (bench/node-reference): npm ci and their esbuild bundles, once per run.
node_reference() {
  [[ -z "${node_reference_built:-}" ]] || return 0
  command -v node >/dev/null || die "node is missing: install Node.js 20+ (apt-get install nodejs npm)"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "the Node reference needs Node.js 20+"
  log "the Node references: npm ci and the esbuild bundles (bench/node-reference)"
  npm ci --prefix bench/node-reference --silent --no-audit --no-fund || die "npm could not install bench/node-reference"
  npm run --prefix bench/node-reference --silent build >&2
  node_reference_built=1
}

# moto_and_stand_ins TABLE: moto with the connections table TABLE, and scripts/bench/stand_ins.py
# (the Management API and the token issuer), whose environment is in $work/stand_ins.json.
moto_and_stand_ins() {
  start_moto
  python3 scripts/local_table.py --endpoint "$MOTO_ENDPOINT" --name "$1" >/dev/null
  python3 scripts/bench/stand_ins.py "$work" >"$work/stand_ins.json" &
  SERVER_PIDS+=("$!")
  for _ in $(seq 50); do [[ -s "$work/stand_ins.json" ]] && break; sleep 0.1; done
  [[ -s "$work/stand_ins.json" ]] || die "scripts/bench/stand_ins.py did not start"
}

bench_coldstart() {
  local out="$work/coldstart.md" bins="$work/x86/ws-connection" runs="${COLDSTART_RUNS:-30}" env_args=() name
  node_reference
  scripts/build-lambda.sh --service . --mode binary --arch x86_64 --out "$work/x86" >&2
  moto_and_stand_ins bench-connections
  mapfile -t env_args < <(python3 -c 'import json,sys
for k, v in json.load(open(sys.argv[1])).items(): print(f"--env={k}={v}")' "$work/stand_ins.json")
  local common=(--runs "$runs" --warm 50 --moto "$MOTO_ENDPOINT" --table bench-connections "${env_args[@]}")
  log "cold starts: ConnectFunction and the Node reference, interleaved, $runs each"
  python3 scripts/bench/coldstart.py "${common[@]}" --event events/connect.json \
    --contestant "ConnectFunction=$bins/ConnectFunction/bootstrap" \
    --contestant "Node 20 + SDK v3=node bench/node-reference/dist/bootstrap.cjs" >"$work/connect.json"
  cp "$work/connect.json" "$results/coldstart-connect.json"
  for name in disconnectWS WebSocketResponder ConnectAuthorizer; do
    log "cold starts: $name, $runs"
    local event=events/disconnect.json expect='"statusCode":200'
    [[ "$name" != WebSocketResponder ]] || event="$work/responder.json"
    [[ "$name" != ConnectAuthorizer ]] || { event="$work/authorizer.json"; expect='"Effect":"Allow"'; }
    python3 scripts/bench/coldstart.py "${common[@]}" --no-floor --event "$event" --expect "$expect" \
      --contestant "$name=$bins/$name/bootstrap" >"$work/$name.json"
  done
  python3 - "$work" "$(machine)" "$runs" >"$out" <<'PY'
import json, os, sys
work, machine, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
connect = json.load(open(os.path.join(work, "connect.json")))
ours, node = connect["contestants"]["ConnectFunction"], connect["contestants"]["Node 20 + SDK v3"]
floor = connect["moto_floor_ms"]
def cell(s, unit="ms", digits=1):
    return f"{s['median']:.{digits}f} {unit} ({s['p10']:.{digits}f}–{s['p90']:.{digits}f})"
rows = [("init (exec → first `/next`)", "init_ms"), ("first invoke", "first_invoke_ms"),
        ("**cold total** (init + first invoke)", "cold_total_ms"), ("warm, median of 50", "warm_median_ms"),
        ("warm, p90 of 50", "warm_p90_ms"), ("peak RSS", "peak_rss_mib"), ("CPU, init + 51 invokes", "cpu_ms")]
print("## Cold start, side by side with Node.js\n")
print(f"{machine}. `scripts/bench/coldstart.py`: each start a fresh process, {runs} starts each, interleaved")
print("(the order rotates every run), against one Runtime API stand-in and moto on loopback; every invocation is")
print("one conditional `PutItem` of a new connection. Ours: the release `bootstrap` built for x86_64 by")
print("`scripts/build-lambda.sh`; Node: `bench/node-reference` (the same item and condition, `@aws-sdk/client-dynamodb`,")
print("esbuild bundle, a minimal custom-runtime loop) on Node " + os.popen("node --version").read().strip() + ".")
print("Cells: median (p10–p90) over the starts. Lambda's arm64 figures differ; the ratios are the claim.\n")
print("| ConnectFunction | ours (Rust) | Node 20 + SDK v3 | ratio of medians |")
print("|---|---:|---:|---:|")
for label, key in rows:
    unit = "MiB" if key == "peak_rss_mib" else "ms"
    print(f"| {label} | {cell(ours[key], unit)} | {cell(node[key], unit)} | {ours[key]['median'] / node[key]['median']:.3f}× |")
cold = ours["cold_total_ms"]["median"] / node["cold_total_ms"]["median"]
cold_lo = ours["cold_total_ms"]["p10"] / node["cold_total_ms"]["p90"]
cold_hi = ours["cold_total_ms"]["p90"] / node["cold_total_ms"]["p10"]
over = lambda c: c["warm_median_ms"]["median"] - floor
print(f"\nmoto floor (the same `PutItem` timed directly, keep-alive, median of 50): {floor:.2f} ms. Warm overhead above it:")
print(f"ours {over(ours):.2f} ms = **{over(ours) / floor:.2f}×** the floor, Node {over(node):.2f} ms = {over(node) / floor:.2f}×.\n")
print("| target | figure | met |")
print("|---|---:|:---:|")
print(f"| cold total ≤ 0.05× Node's | {cold:.3f}× (spread {cold_lo:.3f}–{cold_hi:.3f}: our p10/p90 over Node's p90/p10) | {'yes' if cold <= 0.05 else 'no'} |")
print(f"| warm overhead above the moto floor ≤ 0.5× | {over(ours) / floor:.2f}× | {'yes' if over(ours) / floor <= 0.5 else 'no'} |")
print(f"| peak RSS ≤ 8 MiB | {ours['peak_rss_mib']['median']:.1f} MiB | {'yes' if ours['peak_rss_mib']['median'] <= 8 else 'no'} |")
print("| arm64 zip ≤ 2.5 MB | see Build | |")
print("\n### Ours only\n")
print("The same measure for the other functions (no Node reference). disconnectWS: one `UpdateItem` that creates a")
print("tombstone (moto's `UpdateItem` on this table is slower than its `PutItem`); WebSocketResponder: one post to a")
print("Management API stand-in; ConnectAuthorizer: an ES256 token, its JWKS fetched once by the first invoke and cached.\n")
print("| function | init | first invoke | cold total | warm median | warm p90 | peak RSS | CPU |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in ["ConnectFunction", "disconnectWS", "WebSocketResponder", "ConnectAuthorizer"]:
    c = ours if name == "ConnectFunction" else json.load(open(os.path.join(work, f"{name}.json")))["contestants"][name]
    m = lambda key: c[key]["median"]
    print(f"| {name} | {m('init_ms'):.1f} ms | {m('first_invoke_ms'):.1f} ms | {m('cold_total_ms'):.1f} ms | "
          f"{m('warm_median_ms'):.2f} ms | {m('warm_p90_ms'):.2f} ms | {m('peak_rss_mib'):.1f} MiB | {m('cpu_ms'):.1f} ms |")
PY
  chart coldstart "ConnectFunction's cold starts, ours and Node's: every start of this run" >>"$out"
  write_section coldstart "$out"
}

bench_fanout() {
  local out="$work/fanout.md" times
  start_moto
  log "fan-out to 1,000 connections, streamed and not, 5 runs each (release test build)"
  times="$(DYNAMODB_ENDPOINT="$MOTO_ENDPOINT" FANOUT_RUNS=5 cargo test --release -p ws-responder --test responder \
    a_fan_out_to_a_thousand_connections_reaches_them_all -- --nocapture 2>/dev/null | grep '^fanout-1000 run')"
  [[ -n "$times" ]] || die "the fan-out benchmark printed no times"
  python3 - "$(machine)" "$times" > "$out" <<'PY'
import re, statistics, sys
machine, lines = sys.argv[1], sys.argv[2].splitlines()
runs = [re.findall(r"(streamed|plain) ([0-9.]+) ms ([0-9.]+) us-cpu", line) for line in lines]
def column(name, i):
    return [float(r[i]) for run in runs for r in run if r[0] == name]
s_ms, p_ms = statistics.median(column("streamed", 1)), statistics.median(column("plain", 1))
s_cpu, p_cpu = statistics.median(column("streamed", 2)), statistics.median(column("plain", 2))
print("## Fan-out to 1,000 connections, with its stream and without\n")
print(f"{machine}. One `WebSocketResponder` invocation (release build, FANOUT_CONCURRENCY=32): a GSI1")
print("query of 1,000 CONNECTED records in moto, then 1,000 SigV4-signed posts to the Management API")
print("stand-in, both on loopback; `streamed` first appends the message to the conversation's stream")
print("(a consistent head read and one 3-item transaction), `plain` is the same with `STREAMS=false`,")
print("each on its own table, interleaved. CPU: the test thread's (responder and stand-in). Target ≤ 0.5 s.\n")
print("| | runs | median time | median CPU | ≤ 0.5 s |\n|---|---:|---:|---:|:---:|")
for name, ms, cpu in (("streamed", s_ms, s_cpu), ("plain (`STREAMS=false`)", p_ms, p_cpu)):
    print(f"| {name} | {len(runs)} | {ms:.0f} ms | {cpu / 1000:.1f} ms | {'yes' if ms <= 500 else 'NO'} |")
print(f"\nWhat the stream adds to a published message: **{s_ms - p_ms:+.0f} ms** of latency and **{(s_cpu - p_cpu) / 1000:+.2f} ms** of CPU")
print("(per message, not per connection: the append is once per publish; moto's transaction is most of the time).")
PY
  write_section fanout "$out"
}

bench_client() {
  local out="$work/client.md"
  start_moto
  log "the client library in headless Chromium against ws-local (debug binaries, as the e2e tests run them)"
  cargo build --locked --workspace --bins >&2
  npm_ci clients/js
  (cd clients/js && npx tsc -p tsconfig.json)
  npm_ci local/parity
  ensure_chromium
  DYNAMODB_ENDPOINT="$MOTO_ENDPOINT" node clients/js/e2e/bench.mjs >"$results/client.json" \
    || die "clients/js/e2e/bench.mjs failed"
  python3 - "$(machine)" "$results/client.json" > "$out" <<'PY'
import json, sys
machine, r = sys.argv[1], json.load(open(sys.argv[2]))
print("## The client library in a browser\n")
print(f"{machine}. `clients/js/e2e/bench.mjs`: `@ws-connection/client` in headless Chromium against ws-local.")
print(f"{r['drops']} network drops (ws-local cuts the TCP connection, the page sees 1006): time from the drop to the")
print("library's `resumed` event on its new connection, each drop 1.2 s after the last resume (the client runs with")
print("`resetBackoffAfter: 1000`, so every drop is a first retry: a random wait of 0–500 ms, then connect and resume). Then")
print(f"{r['messages']:,} stream envelopes handed to the library by a socket in the page, every tenth also twice (a resume's")
print("duplicate): the library's own parse, order and dispatch, from the first frame to the last delivery.\n")
print("| drop → resumed, p50 | p90 | messages delivered per second in the tab |\n|---:|---:|---:|")
print(f"| {r['dropToResumedP50']:.0f} ms | {r['dropToResumedP90']:.0f} ms | {r['deliveredPerSecond']:,} |")
PY
  write_section client "$out"
}

bench_resume() {
  local out="$work/resume.md" times
  start_moto
  log "resume of 300 messages from DynamoDB (moto), 5 runs (release test build)"
  times="$(DYNAMODB_ENDPOINT="$MOTO_ENDPOINT" RESUME_RUNS=5 cargo test --release -p ws-routes --test resume_dynamodb \
    -- --nocapture 2>/dev/null | grep '^resume-300 run')"
  [[ -n "$times" ]] || die "the resume benchmark printed no times"
  python3 - "$(machine)" "$times" > "$out" <<'PY'
import re, statistics, sys
machine, lines = sys.argv[1], sys.argv[2].splitlines()
runs = [re.search(r"([0-9.]+) ms, ([0-9]+) bytes answered, about ([0-9]+) read units", l).groups() for l in lines]
ms = [float(r[0]) for r in runs]
print("## Resume of 300 messages\n")
print(f"{machine}. `WebSocketRoutes` answering `resume` from offset 0 of a stream of 300 progress messages")
print("(~200 bytes each) in moto (release build): the connection's record, the stream's head and the")
print("entries, read consistently, answered in one frame. Read units are DynamoDB's (1 per 4 KB read")
print("consistently), computed from the items' sizes: moto reports none.\n")
print("| runs | median | min | max | answer | read units |\n|---:|---:|---:|---:|---:|---:|")
print(f"| {len(runs)} | {statistics.median(ms):.0f} ms | {min(ms):.0f} ms | {max(ms):.0f} ms | {int(runs[0][1]) / 1024:.0f} KB | {runs[0][2]} |")
PY
  write_section resume "$out"
}

bench_fanout_cpu() {
  local out="$work/fanout-cpu.md" count="${CPU_CONNECTIONS:-3000}"
  node_reference
  log "release build of the functions (the whole workspace: the same build the local section uses)"
  cargo build --release --locked --workspace --bins >&2
  moto_and_stand_ins bench-fanout
  log "CPU per post: WebSocketResponder and the Node fan-out, $count connections, interleaved"
  python3 scripts/bench/fanout_cpu.py --moto "$MOTO_ENDPOINT" --table bench-fanout --connections "$count" \
    --fanouts "${CPU_FANOUTS:-10}" --rounds "${CPU_ROUNDS:-3}" \
    --endpoint "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["WS_ENDPOINT"])' "$work/stand_ins.json")" \
    --contestant "WebSocketResponder=target/release/ws-responder" \
    --contestant "Node 20 + SDK v3=node bench/node-reference/dist/fanout.cjs" >"$results/fanout-cpu.json"
  python3 - "$(machine)" "$results/fanout-cpu.json" > "$out" <<'PY'
import json, os, sys
machine, r = sys.argv[1], json.load(open(sys.argv[2]))
ours, node = r["contestants"]["WebSocketResponder"], r["contestants"]["Node 20 + SDK v3"]
ratio = ours["cpu_us_per_post"]["median"] / node["cpu_us_per_post"]["median"]
print("## Fan-out CPU per post, side by side with Node.js\n")
print(f"{machine}. `scripts/bench/fanout_cpu.py`: a conversation of {r['connections']:,} `CONNECTED` records in moto;")
print("each contestant fans one message out to all of them: GSI1 pages of 1,000 (the same projection and filter),")
print(f"then one SigV4-signed `PostToConnection` each, {r['concurrency']} in flight, to a Management API stand-in that")
print("answers 200 at once. Ours: the release `WebSocketResponder` (x86_64); Node: `bench/node-reference/src/fanout.js`")
print("(`@aws-sdk/client-dynamodb` + `@aws-sdk/client-apigatewaymanagementapi`, esbuild bundle) on Node "
      + os.popen("node --version").read().strip() + ".")
print(f"Fresh process per round, {r['rounds']} rounds interleaved; after one warm-up fan-out, the CPU (user + system, every")
print(f"thread) of {r['fanouts']} fan-outs ÷ their posts. Moto's and the stand-in's CPU are not counted.\n")
print("| | ours (Rust) | Node 20 + SDK v3 | ratio |\n|---|---:|---:|---:|")
print(f"| CPU per post, median of rounds | {ours['cpu_us_per_post']['median']:.1f} µs | {node['cpu_us_per_post']['median']:.1f} µs | **{ratio:.3f}×** |")
for key, label in (("user_us_per_post", "of which user"),
                   ("system_us_per_post", "of which system (loopback TCP on both ends, charged to the sender)")):
    print(f"| {label} | {ours[key]['median']:.1f} µs | {node[key]['median']:.1f} µs | {ours[key]['median'] / node[key]['median']:.3f}× |")
print(f"| one fan-out (wall), median | {ours['fanout_ms']['median']:.0f} ms | {node['fanout_ms']['median']:.0f} ms | "
      f"{ours['fanout_ms']['median'] / node['fanout_ms']['median']:.2f}× |")
print(f"| peak RSS | {ours['peak_rss_mib']['median']:.1f} MiB | {node['peak_rss_mib']['median']:.1f} MiB | "
      f"{ours['peak_rss_mib']['median'] / node['peak_rss_mib']['median']:.3f}× |")
print(f"\nTarget ≤ 0.1× Node's CPU per post (aim 0.05×): {ratio:.3f}×, {'met' if ratio <= 0.1 else 'NOT met'}.")
print("The wall time is bounded by the stand-ins (moto's Query pages, a Python HTTP server), not by either contestant.")
PY
  chart fanout-cpu "CPU per post and fan-out time, ours and Node's: every round of this run" >>"$out"
  write_section fanout-cpu "$out"
}

bench_segments() {
  local out="$work/segments.md" n count="${SEGMENTS_CONNECTIONS:-100000}" rate="${SEGMENTS_RATE:-10000}"
  rm -f "$results"/segments-*.json
  for n in 1 2 4 8; do
    log "a broadcast to $count connections in $n segments against a quota of $rate posts/s (release test build)"
    SEGMENTS="$n" SEGMENTS_RATE="$rate" SEGMENTS_CONNECTIONS="$count" SEGMENTS_RESULT="$results/segments-$n.json" \
      cargo test --release -p ws-responder --test responder segments_at_once -- --nocapture 2>/dev/null \
      | grep '^segments-bench ' >&2 || die "the segments benchmark with $n segments failed"
  done
  python3 - "$(machine)" "$results" > "$out" <<'PY'
import json, math, os, sys
machine, results = sys.argv[1], sys.argv[2]
runs = sorted((json.load(open(os.path.join(results, f))) for f in os.listdir(results) if f.startswith("segments-")),
              key=lambda r: r["segments"])
print("## A broadcast in segments at the account's quota\n")
print(f"{machine}. `{{\"all\": true}}` to {runs[0]['connections']:,} connections listed from the in-memory table adapter,")
print(f"split into n segments that run at once (release test build, one process), each continued with its cursor")
print(f"(invocations of 3 s, at most 128 posts in flight per segment), against one stand-in quota of {runs[0]['rate']:,} posts/s")
print("(burst a fifth of a second) at 30 ms per post, as an account's Management API. Every connection got the broadcast")
print("exactly once in each run (the test asserts it). CPU per post is the whole process's (user + system): the")
print("responder, the stand-in (which verifies each request's SigV4 signature) and the in-memory listing, so an upper")
print("bound for the responder's own.\n")
print("| segments | time | posts/s ÷ quota | refused | slowest ÷ fastest segment | CPU per post (process) | invocations |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    times = r["segment_seconds"]
    print(f"| {r['segments']} | {r['seconds']:.1f} s | {r['ratio']:.2f}× | {r['refused']:,} ({r['share'] * 100:.1f} %) | "
          f"{max(times) / min(times):.2f} | {r['cpu_us_per_post']:.0f} µs | {r['invocations']} |")
process_cpu = min(r["cpu_us_per_post"] for r in runs)
busy = [r["cpu_us_per_post"] * r["connections"] / r["seconds"] / 1e6 for r in runs]
refused = sorted(r["refused"] for r in runs)
print(f"\nThe quota hardly refused anything ({refused[0]}–{refused[-1]} requests): what bounds the rate here is the one process")
print("that holds every segment")
print(f"and the stand-in (its loopback connections, the stand-in's own work), busy {min(busy):.2f}–{max(busy):.2f} of the 2 cores,")
print("not the quota; one segment alone is also bound by its 128 posts in flight at 30 ms (at most 4,267/s). On Lambda")
print("each segment has its own CPU and connections: the projection below is what to plan with.")
fanout_cpu = os.path.join(results, "fanout-cpu.json")
own = json.load(open(fanout_cpu))["contestants"]["WebSocketResponder"]["cpu_us_per_post"]["median"] \
    if os.path.exists(fanout_cpu) else None
print("\n### Projection: 1,000,000 connections on Lambda\n")
print("Each segment is bounded by its CPU (Lambda gives a function memory/1,769 MB of one vCPU) and by its posts in")
print("flight (128 at 30 ms: 4,267/s); together by the quota (10,000/s per account and region; 5,000 burst, 2,500 in")
print("newer regions). Time = 1,000,000 ÷ the lowest of n × per-segment rate and the quota; n = what reaches the quota;")
print("Lambda cost at $0.0000166667 per GB-s (x86; arm64 is 20 % less), every segment running the whole time. Two CPU")
print("figures: the responder's own (the fan-out CPU section, `fanout-cpu.json`, when present) and this run's whole")
print("process (an upper bound).\n")
print("| CPU per post | memory | per segment | n to reach 10,000/s | time with n = 1 | time with that n | GB-s (that n) | Lambda cost |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
figures = ([(f"{own:.0f} µs (responder)", own)] if own else []) + [(f"{process_cpu:.0f} µs (process)", process_cpu)]
for label, cpu in figures:
    for memory in (256, 1769):
        per_segment = min(memory / 1769 / (cpu / 1e6), 128 / 0.030)
        n = math.ceil(10_000 / per_segment)
        t1 = 1_000_000 / min(per_segment, 10_000)
        tn = 1_000_000 / min(n * per_segment, 10_000)
        gbs = n * tn * memory / 1024
        print(f"| {label} | {memory:,} MB | {per_segment:,.0f} posts/s | {n} | {t1:,.0f} s | {tn:,.0f} s | {gbs:,.0f} | "
              f"${gbs * 0.0000166667:.4f} |")
PY
  chart segments "A broadcast in 1, 2, 4 and 8 segments: each segment's end and the share of the quota reached" >>"$out"
  write_section segments "$out"
}

bench_fanout_quota() {
  local out="$work/fanout-quota.md" lines="" rate count="${QUOTA_CONNECTIONS:-20000}"
  for rate in 500 5000; do
    log "fan-out of $count connections against a quota of $rate posts/s (release test build)"
    lines+="$(QUOTA_RATE="$rate" QUOTA_BURST=$((rate / 10)) QUOTA_CONNECTIONS="$count" \
      QUOTA_TIMELINE="$results/fanout-quota-$rate.json" \
      QUOTA_CONCURRENCY=$((rate * 3 * 4 / 100 > 128 ? rate * 3 * 4 / 100 : 128)) \
      cargo test --release -p ws-responder --test responder a_fan_out_offered_far_more_concurrency -- --nocapture 2>/dev/null \
      | grep '^quota-bench ')"$'\n'
  done
  [[ -n "${lines//$'\n'/}" ]] || die "the quota benchmark printed nothing"
  python3 - "$(machine)" "$lines" > "$out" <<'PY'
import sys
machine, lines = sys.argv[1], [l for l in sys.argv[2].splitlines() if l.strip()]
print("## Fan-out at the Management API quota\n")
print(f"{machine}. One fan-out (release build, FANOUT_CONCURRENCY four times what the quota can take at 30 ms per")
print("post, at least 128: 128 at 500/s, 600 at 5,000/s) to a")
print("conversation listed from the in-memory table adapter (the test's default; moto's Query pages cost O(table)")
print("each, which at 20,000 connections would bound the rate below 5,000/s; see docs/local-stack.md), posting to a")
print("stand-in that, like an account, takes a token bucket of posts/s (burst a tenth of a second) at 30 ms per")
print("post and answers the rest 429 LimitExceededException. Time from the first invocation to the last answer,")
print("ramp-up included. Every connection got the message exactly once in each run (the test asserts it).")
print("Target: ≥ 0.8× the quota, ≤ 15 % refused. RSS is the test process's (VmRSS before the fan-out, VmHWM")
print("after): the responder, the stand-in (which keeps every post it took) and the in-memory table together.\n")
print("| quota | connections | time | posts/s | ÷ quota | refused | invocations | RSS before → peak | target |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for line in lines:
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    ok = float(f["ratio"]) >= 0.8 and float(f["share"]) <= 0.15
    print(f"| {int(f['rate']):,}/s | {int(f['connections']):,} | {float(f['seconds']):.1f} s | {float(f['posts_per_second']):,.0f} | "
          f"{float(f['ratio']):.2f}× | {int(f['refused']):,} ({float(f['share']) * 100:.1f} %) | {f['invocations']} | "
          f"{f['rss_before_mib']} → {f['peak_rss_mib']} MiB | {'met' if ok else 'NOT met'} |")
PY
  chart fanout-quota "Posts taken and refused per 100 ms against each quota, from the stand-in's own log of this run" >>"$out"
  write_section fanout-quota "$out"
}

# serve_local TABLE LOG: starts release ws-local on a free port for TABLE (in moto), logging to LOG;
# sets pid and base (its URL).
serve_local() {
  local port
  port="$(free_port)"
  target/release/ws-local serve --port "$port" --bin-dir target/release --dynamodb-endpoint "$MOTO_ENDPOINT" \
    --table "$1" --max-instances 8 >"$2" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  base="http://127.0.0.1:$port"
  wait_http "$base/" 30 || die "ws-local did not start (see $2)"
}

bench_local() {
  local out="$work/local.md" pid base load=target/release/examples/load
  log "release build of the functions, ws-local and the load tool"
  cargo build --release --locked --workspace --bins >&2
  cargo build --release --locked -p ws-local --example load >&2
  [[ -f dist/lambdas/ws-connection/checksums.json ]] || scripts/build-lambda.sh --service . --mode bundle >&2
  MOTO_IAM_LOAD_MANAGED_POLICIES=true start_moto
  apply_local_stack "$work/tf/terraform.tfstate"
  serve_local "$LOCAL_TABLE" "$work/ws-local.log"
  log "connect latency (200 sequential connects)"
  "$load" --base "$base" connect --count 200 >"$work/connect.json"
  log "posts through @connections (200,000 to 64 sockets)"
  "$load" --base "$base" posts --sockets 64 --senders 64 --total 200000 --dynamodb "$MOTO_ENDPOINT" --table "$LOCAL_TABLE" >"$work/posts.json"
  log "fan-out to 1,000 clients (5 runs)"
  "$load" --base "$base" fanout --count 1000 --runs 5 >"$work/fanout.json"
  log "10,000 idle sockets"
  "$load" --base "$base" idle --count 10000 --concurrency 64 --pid "$pid" >"$work/idle.json"
  # Last: its 10,000 closing sockets would otherwise load ws-local and moto during the idle test.
  # On a table of its own: the measures before leave some 16,000 records (the idle sockets'
  # DISCONNECTED ones among them), and moto sorts and walks a whole table for every index page
  # (docs/local-stack.md): on the shared table the figure measured them (47 s), not the fan-out.
  log "fan-out to 10,000 clients, continued by its cursor (3 runs), on a fresh table and ws-local"
  kill "$pid" && wait "$pid" 2>/dev/null || true
  python3 scripts/local_table.py --endpoint "$MOTO_ENDPOINT" --name "$LOCAL_TABLE-fanout" >/dev/null
  serve_local "$LOCAL_TABLE-fanout" "$work/ws-local-fanout.log"
  "$load" --base "$base" fanout --count 10000 --runs 3 >"$work/fanout10k.json"
  cat "$work/ws-local-fanout.log" >>"$work/ws-local.log"
  grep -o '\[WebSocketResponder\] REPORT .*Max Memory Used: [0-9]* MB' "$work/ws-local.log" \
    | sed 's/.*Max Memory Used: \([0-9]*\) MB/\1/' | sort -n | tail -n1 >"$work/responder-peak-mb.txt" || true
  python3 - "$(machine)" "$work" "$results/local.json" > "$out" <<'PY'
import json, sys
machine, work, keep = sys.argv[1], sys.argv[2], sys.argv[3]
r = {name: json.load(open(f"{work}/{name}.json")) for name in ("connect", "posts", "fanout", "fanout10k", "idle")}
json.dump(r, open(keep, "w"))
peak = open(f"{work}/responder-peak-mb.txt").read().strip() or "?"
c, p, f, i = r["connect"], r["posts"], r["fanout"], r["idle"]
print("## The local stack (ws-local)\n")
print(f"{machine}. Release `ws-local` and release function binaries (x86_64), moto's DynamoDB with the")
print("table from `terraform/envs/local`; clients from `local/examples/load.rs` (tokio-tungstenite,")
print("hyper) on the same two cores. Every connect runs the real authorizer (token from the local issuer)")
print("and ConnectFunction's put into moto.\n")
print("| measure | figure | target |\n|---|---:|---|")
print(f"| connect → record (handshake incl. authorizer + put), {c['connects']} sequential | p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms | — |")
ok = "met" if p["posts_per_second"] >= 20000 else "NOT met"
print(f"| posts through `@connections` ({p['posts']:,} to {p['sockets']} sockets, {p['senders']} keep-alive callers, until all delivered) | {p['posts_per_second']:,.0f} /s | ≥ 20,000/s: {ok} |")
ok = "met" if f["median_ms"] <= 500 else "NOT met"
print(f"| responder fan-out to {f['connections']:,} clients via the Invoke API, until every client has it ({f['runs']} runs) | median {f['median_ms']:.0f} ms (min {f['min_ms']:.0f}, max {f['max_ms']:.0f}) | ≤ 0.5 s: {ok} |")
g = r["fanout10k"]
ok = "met" if g["median_ms"] <= 5000 else "NOT met"
print(f"| responder fan-out to {g['connections']:,} clients on a table of its own, continued by its cursor until every client has it ({g['runs']} runs; invocations per run {g['invocations']}) | median {g['median_ms'] / 1000:.2f} s (min {g['min_ms'] / 1000:.2f}, max {g['max_ms'] / 1000:.2f}), {g['posts_per_second']:,.0f} posts/s | ≤ 5 s: {ok} |")
ratio = g["median_ms"] / f["median_ms"]
ok = "met" if ratio <= 12 else "NOT met"
print(f"| the two fan-outs' time ratio (10× the audience) | {ratio:.1f}× | ≤ 12: {ok} |")
ok = "met" if peak != "?" and int(peak) <= 64 else "NOT met"
print(f"| the responder's peak RSS over the whole run (ws-local's REPORT `Max Memory Used`) | {peak} MB | ≤ 64 MiB: {ok} |")
ok = "met" if i["alive"] >= 10000 else "NOT met"
print(f"| idle sockets held open (each answered a ping after 3 s) | {i['alive']:,} of {i['sockets']:,} | 10,000: {ok} |")
print(f"| ws-local's memory for them (VmRSS) | {i['rss_before_mib']} → {i['rss_after_mib']} MiB, {i['kib_per_socket']} KiB per socket | — |")
print(f"| opening them (authorizer + $connect each, 64 at a time) | {i['open_seconds']} s, {i['connects_per_second']:,.0f} connects/s | — |")
PY
  chart local "ws-local: connect latencies, fan-out times at 1,000 and 10,000 clients, memory for idle sockets" >>"$out"
  write_section local "$out"
}

for section in "${sections[@]}"; do
  case "$section" in
    build) bench_build ;;
    coldstart) bench_coldstart ;;
    fanout) bench_fanout ;;
    resume) bench_resume ;;
    client) bench_client ;;
    fanout-cpu) bench_fanout_cpu ;;
    fanout-quota) bench_fanout_quota ;;
    segments) bench_segments ;;
    local) bench_local ;;
    *) die "unknown section '$section'; use: build coldstart fanout resume fanout-cpu fanout-quota segments local client" ;;
  esac
  # Each section's servers stop with it: an idle moto holding 20,000 items, or one still
  # taking the $disconnects of 10,000 closed sockets, would load the next section's measures.
  stop_servers
done
log "wrote BENCHMARKS.md"
