#!/usr/bin/env python3
"""Cold and warm starts of Lambda bootstraps, side by side: each contestant is started fresh
RUNS times, interleaved (run i starts them in an order rotated by i, so neither always goes
first on a warm cache), against one Runtime API stand-in and the same DynamoDB (moto).

  coldstart.py --runs 30 --warm 50 --event events/connect.json --moto URL --table NAME \\
      --contestant 'rust=/path/to/bootstrap' --contestant 'node=node bench/node-reference/dist/bootstrap.cjs'

Per start: init (exec → first GET /invocation/next), first invoke (that GET answered → the
first POST /response), cold total (exec → the first response), then WARM more invocations each
timed from the event sent to the response received, the peak RSS and the CPU time (user +
system) of the whole process (init and every invocation). Every invocation gets its own connection id, so each is one
successful conditional PutItem. The moto floor is that PutItem timed directly from here, on
one keep-alive connection. Prints one JSON object: per contestant, the summaries and every start.

The stand-in is one thread with non-blocking sockets and a minimal HTTP/1.1 parser: what a
threaded Python HTTP server would add to every round trip (a thread hand-off under the GIL) is
not charged to the contestants.
"""

import argparse
import copy
import http.client
import json
import os
import selectors
import shlex
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid


class RuntimeApi:
    """The Lambda Runtime API for one process at a time, driven step by step."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.buffers = {}

    def close_connections(self):
        for conn in list(self.buffers):
            self.selector.unregister(conn)
            conn.close()
        self.buffers.clear()

    def next_request(self, deadline, proc):
        """Waits for one complete request: (connection, method, path, body)."""
        while True:
            for conn, data in self.buffers.items():
                request = parse(data)
                if request:
                    method, path, body, rest = request
                    self.buffers[conn] = rest
                    return conn, method, path, body
            left = deadline - time.perf_counter()
            if left <= 0 or proc.poll() is not None:
                raise TimeoutError(f"no request from the bootstrap (exit {proc.poll()})")
            for key, _ in self.selector.select(timeout=min(left, 0.5)):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.selector.register(conn, selectors.EVENT_READ)
                    self.buffers[conn] = b""
                else:
                    chunk = key.fileobj.recv(65536)
                    if not chunk:
                        self.selector.unregister(key.fileobj)
                        del self.buffers[key.fileobj]
                        key.fileobj.close()
                    else:
                        self.buffers[key.fileobj] += chunk


def parse(data):
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = data[:head_end].decode("latin-1").split("\r\n")
    method, path, _ = head[0].split(" ", 2)
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    end = head_end + 4 + length
    if len(data) < end:
        return None
    return method, path, data[head_end + 4 : end], data[end:]


def respond(conn, status, body=b"", headers=()):
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    conn.setblocking(True)
    conn.sendall("\r\n".join(lines).encode() + body)
    conn.setblocking(False)


def send_event(conn, event, request_id):
    body = json.dumps(event).encode()
    respond(
        conn,
        "200 OK",
        body,
        [
            "Content-Type: application/json",
            f"Lambda-Runtime-Aws-Request-Id: {request_id}",
            f"Lambda-Runtime-Deadline-Ms: {int(time.time() * 1000) + 30000}",
            "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:bench",
            f"Lambda-Runtime-Trace-Id: Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
        ],
    )


def fresh_event(template):
    event = copy.deepcopy(template)
    context = event.setdefault("requestContext", {})
    connection_id = uuid.uuid4().hex[:15] + "="
    if "connectionId" in context:
        context["connectionId"] = connection_id
    if "connectionId" in event:
        event["connectionId"] = connection_id
    return event


def stop(proc):
    """Kills the process: its peak RSS (MiB: VmHWM, which exec resets; wait4's ru_maxrss keeps
    the forking parent's) and CPU time (user + system, ms: wait4 counts to the microsecond where
    /proc's counters tick every 10 ms)."""
    with open(f"/proc/{proc.pid}/status") as f:
        hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return hwm_kib / 1024, (usage.ru_utime + usage.ru_stime) * 1000


def fail(proc, argv, error):
    """Ends the bench: the bootstrap killed, the error and the end of its stderr."""
    proc.kill()
    _, stderr = proc.communicate()
    sys.exit(f"{' '.join(argv)}: {error}\n{stderr.decode(errors='replace')[-3000:]}")


def one_start(api, argv, env, template, warm, expect):
    """One fresh process: its timings, peak RSS and CPU."""
    api.close_connections()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + 30
    try:
        init = first_sent = None
        warm_ms, answers = [], 0
        while answers < warm + 1:
            conn, method, path, body = api.next_request(deadline, proc)
            now = time.perf_counter()
            if method == "GET" and path.endswith("/invocation/next"):
                if init is None:
                    init = now - started
                sent = time.perf_counter()
                send_event(conn, fresh_event(template), f"req-{answers}")
                if first_sent is None:
                    first_sent = sent
            elif method == "POST" and "/invocation/" in path:
                respond(conn, "202 Accepted")
                if path.endswith("/error") or expect not in body.decode(errors="replace"):
                    raise RuntimeError(f"invocation {answers} failed: {path} {body[:500]!r}")
                if answers == 0:
                    first_invoke, cold_total = now - first_sent, now - started
                else:
                    warm_ms.append((now - sent) * 1000)
                answers += 1
            else:
                respond(conn, "404 Not Found")
    except Exception as error:
        fail(proc, argv, error)
    peak_mib, cpu_ms = stop(proc)
    proc.stderr.close()
    return {
        "init_ms": init * 1000,
        "first_invoke_ms": first_invoke * 1000,
        "cold_total_ms": cold_total * 1000,
        "warm_median_ms": statistics.median(warm_ms),
        "warm_p90_ms": quantile(warm_ms, 0.9),
        "peak_rss_mib": peak_mib,
        "cpu_ms": cpu_ms,
    }


def moto_floor(endpoint, table, template, calls=50):
    """The PutItem alone: median milliseconds over `calls`, on one keep-alive connection."""
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    times = []
    for _ in range(calls + 5):
        connection_id = uuid.uuid4().hex[:15] + "="
        item = {
            "pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONNECTION"}, "connectionId": {"S": connection_id},
            "conversationId": {"S": "conv-123"}, "userId": {"S": "u-42"}, "status": {"S": "CONNECTED"},
            "connectedAt": {"S": "2024-02-09T18:23:27.396Z"}, "updatedAt": {"S": "2024-02-09T18:23:27.400Z"},
            "ttl": {"N": "1707513808"}, "gsi1pk": {"S": "CONV#conv-123"}, "gsi1sk": {"S": f"CONN#{connection_id}"},
            "gsi2pk": {"S": "USER#u-42"}, "gsi2sk": {"S": f"CONN#{connection_id}"},
            "ip": {"S": "198.51.100.23"}, "userAgent": {"S": template["requestContext"]["identity"]["userAgent"]},
            "domainName": {"S": "abcd1234.execute-api.us-east-1.amazonaws.com"}, "stage": {"S": "prod"},
        }
        body = json.dumps({
            "TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": "pk"}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        })
        started = time.perf_counter()
        conn.request("POST", "/", body, {
            "X-Amz-Target": "DynamoDB_20120810.PutItem", "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        })
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[5:])


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def summary(values):
    return {
        "median": statistics.median(values),
        "p10": quantile(values, 0.1),
        "p90": quantile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


def lambda_env(runtime_port, moto, table, memory_mb, more):
    """A bootstrap's environment, as Lambda sets it, with DynamoDB at moto and `more` on top."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL_DYNAMODB": moto,
        "TABLE_CONNECTIONS": table,
        "TZ": ":UTC",
        **more,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--event", required=True)
    parser.add_argument("--moto", required=True, help="moto's endpoint (AWS_ENDPOINT_URL_DYNAMODB)")
    parser.add_argument("--table", required=True)
    parser.add_argument("--expect", default='"statusCode":200', help="text every answer must hold")
    parser.add_argument("--contestant", action="append", required=True, metavar="NAME=COMMAND")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="more environment")
    parser.add_argument("--no-floor", action="store_true", help="skip the direct PutItem timing")
    args = parser.parse_args()
    contestants = [(name, shlex.split(command)) for name, command in (c.split("=", 1) for c in args.contestant)]
    with open(args.event) as f:
        template = json.load(f)
    api = RuntimeApi()
    env = lambda_env(api.port, args.moto, args.table, 128, dict(kv.split("=", 1) for kv in args.env))
    results = {name: [] for name, _ in contestants}
    for run in range(args.runs):
        order = contestants[run % len(contestants):] + contestants[: run % len(contestants)]
        for name, argv in order:
            results[name].append(one_start(api, argv, env, template, args.warm, args.expect))
    out = {"runs": args.runs, "warm": args.warm, "contestants": {}}
    if not args.no_floor:
        out["moto_floor_ms"] = moto_floor(args.moto, args.table, template)
    for name, starts in results.items():
        out["contestants"][name] = {key: summary([s[key] for s in starts]) for key in starts[0]}
        out["contestants"][name]["samples"] = starts
    print(json.dumps(out))


if __name__ == "__main__":
    main()
