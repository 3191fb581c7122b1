"""What moto lacks, in front of moto, for Terraform's apply test of terraform/envs/local.

Step Functions:

The AWS provider (>= 5.67) validates a state machine's definition with
ValidateStateMachineDefinition before creating it, and lists its versions with
ListStateMachineVersions when reading it; moto 5.2.5 implements neither (it answers 500 and the
apply stalls in retries). This loopback proxy answers those two actions — the first with a real
check that the definition is an Amazon States Language document whose StartAt and every Next name
a state, the second with no versions (the module publishes none) — and forwards every other
request to moto unchanged, so the state machine itself is created, read and deleted by moto.

Application Auto Scaling: the provider reads a scalable target's tags with ListTagsForResource,
which moto 5.2.5 lacks (the table module tags no target): answered with no tags.

    python3 scripts/moto_shim.py --port 5056 --upstream http://127.0.0.1:5055
"""

import argparse
import http.client
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALIDATE = "AWSStepFunctions.ValidateStateMachineDefinition"
# The provider also lists a state machine's published versions when it reads one; ours publishes
# none, and moto 5.2.5 lacks this action too.
LIST_VERSIONS = "AWSStepFunctions.ListStateMachineVersions"
SCALING_TAGS = "AnyScaleFrontendService.ListTagsForResource"


def diagnostics(definition: str) -> list:
    """What is wrong with an ASL definition, as ValidateStateMachineDefinition reports it."""
    try:
        machine = json.loads(definition)
    except ValueError as err:
        return [{"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": str(err)}]
    return machine_problems(machine, "")


def machine_problems(machine, where: str) -> list:
    """The problems of one state machine, or of a Map's or Parallel's nested one (`where` names it)."""
    states = machine.get("States") if isinstance(machine, dict) else None
    if not isinstance(states, dict) or not states:
        return [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": f"{where}States is missing"}]
    problems = []
    if machine.get("StartAt") not in states:
        problems.append({"severity": "ERROR", "code": "MISSING_TRANSITION_TARGET",
                         "message": f"{where}StartAt names no state"})
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")] + [c.get("Next") for c in state.get("Choices", [])]
        for target in filter(None, targets):
            if target not in states:
                problems.append({"severity": "ERROR", "code": "MISSING_TRANSITION_TARGET",
                                 "message": f"{where}{name} goes to {target}, which is not a state"})
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor", state.get("Iterator"))
            problems += machine_problems(processor, f"{where}{name} > ")
        for i, branch in enumerate(state.get("Branches", []) if state.get("Type") == "Parallel" else []):
            problems += machine_problems(branch, f"{where}{name}[{i}] > ")
    return problems


class Shim(BaseHTTPRequestHandler):
    upstream: urllib.parse.SplitResult

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("X-Amz-Target") == VALIDATE:
            problems = diagnostics(json.loads(body).get("definition", ""))
            self.answer(200, {"result": "FAIL" if problems else "OK", "diagnostics": problems, "truncated": False})
            return
        if self.headers.get("X-Amz-Target") == LIST_VERSIONS:
            self.answer(200, {"stateMachineVersions": []})
            return
        if self.headers.get("X-Amz-Target") == SCALING_TAGS:
            self.answer(200, {"Tags": {}})
            return
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        connection.request("POST", self.path, body, headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 — readiness probe
        self.answer(200, {"shim": "moto", "upstream": self.upstream.geturl()})

    def answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="moto's endpoint, http://127.0.0.1:PORT")
    args = parser.parse_args()
    Shim.upstream = urllib.parse.urlsplit(args.upstream)
    ThreadingHTTPServer(("127.0.0.1", args.port), Shim).serve_forever()


if __name__ == "__main__":
    main()
