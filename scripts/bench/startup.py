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
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Run:
    """One start of the bootstrap: what the Runtime API saw, and when."""

    def __init__(self, event):
        self.event = event
        self.cond = threading.Condition()
        self.first_next = None
        self.answered_at = None
        self.answer = None
        self.served = False
        self.done = threading.Event()


def make_handler(current):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            run = current[0]
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            with run.cond:
                if run.first_next is None:
                    run.first_next = time.perf_counter()
                second = run.served
                run.served = True
            if second:
                # One invocation per process: hold the next poll until the bench kills it.
                run.done.wait(timeout=30)
                self.close_connection = True
                return
            body = json.dumps(run.event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            run = current[0]
            payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with run.cond:
                run.answer = {"path": self.path, "body": payload.decode(errors="replace")}
                run.answered_at = time.perf_counter()
                run.cond.notify_all()

    return Handler


def main():
    bootstrap, event_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = dict(kv.split("=", 1) for kv in sys.argv[4:])
    with open(event_path) as f:
        event = json.load(f)
    current = [Run(event)]
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(current))
    server.daemon_threads = True
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
        run = current[0] = Run(event)
        started = time.perf_counter()
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            with run.cond:
                run.cond.wait_for(lambda: run.answered_at is not None or proc.poll() is not None, timeout=30)
            proc.kill()
            proc.wait()
            run.done.set()
            if run.answered_at is None:
                stderr.seek(0)
                sys.exit(f"{bootstrap} did not answer (exit {proc.returncode}): {stderr.read().decode(errors='replace')[-2000:]}")
        inits.append((run.first_next - started) * 1000)
        firsts.append((run.answered_at - started) * 1000)
        answer = run.answer
    server.shutdown()

    def summary(values):
        ordered = sorted(values)
        return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1)}

    print(json.dumps({"runs": runs, "init_ms": summary(inits), "first_answer_ms": summary(firsts), "answer": answer}))


if __name__ == "__main__":
    main()
