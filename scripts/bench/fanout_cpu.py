#!/usr/bin/env python3
"""CPU per post of a fan-out, side by side: each contestant is a Lambda bootstrap started fresh
per round (rounds interleaved, the order rotated each round) against one Runtime API stand-in,
the same moto table and the same Management API stand-in (every post answered 200 at once).

  fanout_cpu.py --moto URL --table NAME --endpoint URL/prod --connections 3000 --fanouts 10 \\
      --rounds 3 --contestant 'ours=/path/bootstrap' --contestant 'node=node bench/node-reference/dist/fanout.cjs'

The table gets CONNECTIONS connected records in one conversation. Per round and contestant:
start, one warm-up fan-out (init, first connections, JIT), then FANOUTS fan-outs, each checked
(every connection posted); the process's CPU time (user + system, every thread, from
/proc/PID/stat) over those fan-outs ÷ the posts is the CPU per post. Also each fan-out's wall
time and the peak RSS. Prints one JSON object with every sample.
"""

import argparse
import http.client
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coldstart import RuntimeApi, fail, lambda_env, respond, send_event, stop  # noqa: E402

CONVERSATION = "cpu-bench"
TICK = os.sysconf("SC_CLK_TCK")


def seed(endpoint, table, count):
    """COUNT connected records of CONVERSATION, as ConnectFunction writes them (no apiId: the
    event's wsEndpoint is the route)."""
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    ids = [f"cpu{n:012d}=" for n in range(count)]
    for start in range(0, count, 25):
        requests = [{"PutRequest": {"Item": {
            "pk": {"S": f"CONN#{i}"}, "sk": {"S": "CONNECTION"}, "connectionId": {"S": i},
            "conversationId": {"S": CONVERSATION}, "status": {"S": "CONNECTED"},
            "connectedAt": {"S": "2026-11-30T12:00:00.000Z"}, "updatedAt": {"S": "2026-11-30T12:00:00.000Z"},
            "ttl": {"N": str(int(time.time()) + 86400)}, "stage": {"S": "prod"},
            "gsi1pk": {"S": f"CONV#{CONVERSATION}"}, "gsi1sk": {"S": f"CONN#{i}"},
        }}} for i in ids[start:start + 25]]
        body = json.dumps({"RequestItems": {table: requests}})
        conn.request("POST", "/", body, {
            "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem", "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        })
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200 and not answer.get("UnprocessedItems"), answer


def cpu_seconds(pid):
    """(user, system) seconds of every thread so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime (fields 14 and 15)


def posted(body):
    answer = json.loads(body)
    if isinstance(answer.get("body"), str):
        try:
            answer = {**answer, **json.loads(answer["body"])}
        except ValueError:
            pass
    return answer.get("posted")


def one_round(api, argv, env, event, fanouts, connections):
    api.close_connections()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.perf_counter() + 600
    walls, cpu_before = [], None
    try:
        answers = 0
        while answers < fanouts + 1:
            conn, method, path, body = api.next_request(deadline, proc)
            if method == "GET" and path.endswith("/invocation/next"):
                if answers == 1:
                    cpu_before = cpu_seconds(proc.pid)
                sent = time.perf_counter()
                send_event(conn, event, f"req-{answers}")
            elif method == "POST" and "/invocation/" in path:
                wall = time.perf_counter() - sent
                respond(conn, "202 Accepted")
                if path.endswith("/error") or posted(body) != connections:
                    raise RuntimeError(f"fan-out {answers} did not post to all {connections}: {body[:500]!r}")
                if answers > 0:
                    walls.append(wall * 1000)
                answers += 1
            else:
                respond(conn, "404 Not Found")
        # The last answer is in: the process waits for its next event, spending nothing.
        user, system = (after - before for after, before in zip(cpu_seconds(proc.pid), cpu_before))
    except Exception as error:
        fail(proc, argv, error)
    peak_mib, _ = stop(proc)
    proc.stderr.close()
    posts = fanouts * connections
    return {"cpu_us_per_post": (user + system) * 1e6 / posts, "user_us_per_post": user * 1e6 / posts,
            "system_us_per_post": system * 1e6 / posts, "fanout_ms": walls, "peak_rss_mib": peak_mib}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moto", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--endpoint", required=True, help="the Management API stand-in, with the stage")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--fanouts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--contestant", action="append", required=True, metavar="NAME=COMMAND")
    args = parser.parse_args()
    contestants = [(name, shlex.split(command)) for name, command in (c.split("=", 1) for c in args.contestant)]
    seed(args.moto, args.table, args.connections)
    api = RuntimeApi()
    env = lambda_env(api.port, args.moto, args.table, 1024, {"FANOUT_CONCURRENCY": str(args.concurrency)})
    event = {"conversationId": CONVERSATION, "messageType": "progress", "sequence": 1, "isFinal": False,
             "payload": {"text": "Processando…", "step": 3}, "wsEndpoint": args.endpoint}
    rounds = {name: [] for name, _ in contestants}
    for n in range(args.rounds):
        order = contestants[n % len(contestants):] + contestants[: n % len(contestants)]
        for name, argv in order:
            rounds[name].append(one_round(api, argv, env, event, args.fanouts, args.connections))
    out = {"connections": args.connections, "fanouts": args.fanouts, "rounds": args.rounds,
           "concurrency": args.concurrency, "contestants": {}}
    for name, rs in rounds.items():
        cpu = [r["cpu_us_per_post"] for r in rs]
        walls = [w for r in rs for w in r["fanout_ms"]]
        out["contestants"][name] = {
            "cpu_us_per_post": {"median": statistics.median(cpu), "samples": cpu},
            "user_us_per_post": {"median": statistics.median(r["user_us_per_post"] for r in rs)},
            "system_us_per_post": {"median": statistics.median(r["system_us_per_post"] for r in rs)},
            "fanout_ms": {"median": statistics.median(walls), "samples": walls},
            "peak_rss_mib": {"median": statistics.median(r["peak_rss_mib"] for r in rs)},
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
