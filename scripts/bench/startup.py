#!/usr/bin/env python3
"""Measures a Lambda bootstrap's start-up on this machine: the time from exec to its first
`GET /runtime/invocation/next` (init: config, logging, SDK config), and to its first answer
(the first invocation, including the first DynamoDB call against DYNAMODB_ENDPOINT).

  startup.py BOOTSTRAP EVENT.json RUNS [ENV=VALUE ...]

Serves the Lambda Runtime API on a free loopback port, starts BOOTSTRAP RUNS times, and prints
one JSON object: medians and p90s in milliseconds, and the first answer it got.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Runtime:
    def __init__(self, event):
        self.event = event
        self.lock = threading.Condition()
        self.reset()

    def reset(self):
        self.first_next = None
        self.answer = None
        self.answered_at = None
        self.served = False


def make_handler(runtime):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            with runtime.lock:
                if runtime.first_next is None:
                    runtime.first_next = time.perf_counter()
                    runtime.lock.notify_all()
                if runtime.served:
                    # Only one invocation per process; the bench kills it after the answer.
                    runtime.lock.wait(timeout=30)
                    self.send_error(503)
                    return
                runtime.served = True
            body = json.dumps(runtime.event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            payload = self.rfile.read(length)
            with runtime.lock:
                runtime.answer = {"path": self.path, "body": payload.decode(errors="replace")}
                runtime.answered_at = time.perf_counter()
                runtime.lock.notify_all()
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    bootstrap, event_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = dict(kv.split("=", 1) for kv in sys.argv[4:])
    with open(event_path) as f:
        runtime = Runtime(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(runtime))
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        **extra,
    }
    inits, firsts, answer = [], [], None
    for _ in range(runs):
        runtime.reset()
        started = time.perf_counter()
        proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with runtime.lock:
            ok = runtime.lock.wait_for(lambda: runtime.answered_at is not None or proc.poll() is not None, timeout=30)
        proc.kill()
        proc.wait()
        with runtime.lock:
            runtime.lock.notify_all()
        if not ok or runtime.answered_at is None:
            sys.exit(f"{bootstrap} did not answer (exit {proc.returncode})")
        inits.append((runtime.first_next - started) * 1000)
        firsts.append((runtime.answered_at - started) * 1000)
        answer = runtime.answer
    server.shutdown()

    def summary(values):
        ordered = sorted(values)
        return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1)}

    print(json.dumps({"runs": runs, "init_ms": summary(inits), "first_answer_ms": summary(firsts), "answer": answer}))


if __name__ == "__main__":
    main()
