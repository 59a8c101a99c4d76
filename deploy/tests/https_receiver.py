#!/usr/bin/env python3
"""A webhook receiver for tests: HTTPS on 127.0.0.1, answering by path.

    /ok...      204 No Content        -> the sender logs outcome "delivered"
    /reject...  400 Bad Request       -> permanent: "dead_lettered"
    /fail...    503 Service Unavail.  -> retryable: "retrying" (while attempts remain)

Every request is appended to --log as one JSON line (path, webhook-id,
body size), so a test can count what arrived; with --dump, also to that
file with its headers and raw body (base64), for signature checks.
"""

import base64

import argparse
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {"/ok": (204, b""), "/reject": (400, b"rejected by the test receiver"), "/fail": (503, b"try again later")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--dump", help="append each request's headers and raw body here")
    args = ap.parse_args()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sender's pool expects

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, answer = next((v for k, v in ANSWERS.items() if self.path.startswith(k)), (404, b"no such path"))
            with lock:
                with open(args.log, "a") as f:
                    f.write(json.dumps({"path": self.path, "webhook_id": self.headers.get("webhook-id"),
                                        "status": status, "bytes": len(body)}) + "\n")
                if args.dump:
                    with open(args.dump, "a") as f:
                        f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                            "body": base64.b64encode(body).decode()}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *a):  # quiet; the JSON log is the record
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"receiver listening on https://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
