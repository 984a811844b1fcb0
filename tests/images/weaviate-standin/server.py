"""TEST STAND-IN for Weaviate used by ragctl's end-to-end tests. NOT WEAVIATE.

HTTP on :8080 (env PORT overrides):
  GET /v1/.well-known/ready  -> 200 (no auth, like Weaviate)
  GET /v1/.well-known/live   -> 200 (no auth)
  GET /v1/meta               -> {"hostname", "modules": {}, "version"}
      version from env WEAVIATE_STANDIN_VERSION (default 1.27.0).
      When AUTHENTICATION_APIKEY_ENABLED=true the request needs
      "Authorization: Bearer <key>" with a key listed in the comma-separated
      AUTHENTICATION_APIKEY_ALLOWED_KEYS, else 401. A request with no
      Authorization header is let through only if
      AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true.
  anything else              -> 404 JSON
TCP on :50051 (env GRPC_PORT overrides): gRPC placeholder, accepts and closes.
"""

import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("WEAVIATE_STANDIN_VERSION", "1.27.0")
HTTP_PORT = int(os.environ.get("PORT", "8080"))
GRPC_PORT = int(os.environ.get("GRPC_PORT", "50051"))


def env_true(name):
    return os.environ.get(name, "").strip().lower() == "true"


APIKEY_ENABLED = env_true("AUTHENTICATION_APIKEY_ENABLED")
ANON_ENABLED = env_true("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED")
ALLOWED_KEYS = {
    k.strip()
    for k in os.environ.get("AUTHENTICATION_APIKEY_ALLOWED_KEYS", "").split(",")
    if k.strip()
}


class Handler(BaseHTTPRequestHandler):
    server_version = "weaviate-standin/" + VERSION
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("weaviate-standin: %s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def authorized(self):
        if not APIKEY_ENABLED:
            return True
        header = self.headers.get("Authorization")
        if header is None:
            return ANON_ENABLED
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "bearer" and key.strip() in ALLOWED_KEYS

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path in ("/v1/.well-known/ready", "/v1/.well-known/live"):
            self.send_empty(200)
        elif path == "/v1/meta":
            if not self.authorized():
                self.send_json(401, {"code": 401, "message": "unauthorized: invalid or missing api key"})
                return
            self.send_json(200, {
                "hostname": "http://[::]:%d" % HTTP_PORT,
                "modules": {},
                "version": VERSION,
            })
        else:
            self.send_json(404, {"error": [{"message": "not found (weaviate test stand-in)"}]})

    do_HEAD = do_GET


def grpc_placeholder():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", GRPC_PORT))
    sock.listen(16)
    while True:
        conn, _ = sock.accept()
        conn.close()


def main():
    # PID 1 has no default signal dispositions: exit promptly on TERM/INT.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    threading.Thread(target=grpc_placeholder, daemon=True).start()
    httpd = ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Handler)
    httpd.daemon_threads = True
    sys.stderr.write("weaviate-standin (TEST STAND-IN, NOT WEAVIATE) %s listening on :%d, grpc placeholder :%d, apikey auth %s\n"
                     % (VERSION, HTTP_PORT, GRPC_PORT, "on" if APIKEY_ENABLED else "off"))
    httpd.serve_forever()


if __name__ == "__main__":
    main()
