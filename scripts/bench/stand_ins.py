#!/usr/bin/env python3
"""What the responder's and the authorizer's cold-start benches need besides moto, on loopback:
a Management API stand-in (every POST to @connections/{id} is 200) and a token issuer (an ES256
key, its JWKS at /.well-known/jwks.json, and one token for `sub` u-42). Writes the events the
benches send into OUT_DIR and prints one JSON line with the environment each function needs;
then serves until killed.

  stand_ins.py OUT_DIR
"""

import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
AUDIENCE = "bench-client"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    out_dir = sys.argv[1]
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwks = {"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "bench", "alg": "ES256", "use": "sig",
        "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")),
    }]}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.endswith("/.well-known/jwks.json"):
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200 if "/@connections/" in self.path else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(ThreadingHTTPServer):
        # A fan-out opens dozens of connections at once; the default backlog of 5 drops some.
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    issuer = f"{base}/issuer"

    now = int(time.time())
    header = b64url(json.dumps({"alg": "ES256", "kid": "bench", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"iss": issuer, "aud": AUDIENCE, "sub": "u-42", "iat": now, "exp": now + 86400}).encode())
    r, s = decode_dss_signature(key.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{header}.{claims}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    with open(os.path.join(ROOT, "events", "authorizer.json")) as f:
        authorizer = json.load(f)
    authorizer["queryStringParameters"]["token"] = token
    authorizer["multiValueQueryStringParameters"]["token"] = [token]
    with open(os.path.join(out_dir, "authorizer.json"), "w") as f:
        json.dump(authorizer, f)
    with open(os.path.join(ROOT, "events", "responder.json")) as f:
        responder = json.load(f)
    responder["wsEndpoint"] = f"{base}/prod"
    with open(os.path.join(out_dir, "responder.json"), "w") as f:
        json.dump(responder, f)

    print(json.dumps({"JWT_ISSUER": issuer, "JWT_AUDIENCE": AUDIENCE, "WS_ENDPOINT": f"{base}/prod"}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
