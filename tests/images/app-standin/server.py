"""TEST STAND-IN for the Dify api/worker/web images used by ragctl's tests.
NOT DIFY.

MODE=api (default) or web, or anything else not listed below:
    HTTP server on env PORT, or when PORT is unset on every port a Dify service
    listens on (api 5001, web 3000, plugin_daemon 5002 and 5003, sandbox 8194),
    so one image stands in for all of them:
      GET /health, /health/check -> 200 {"status": "ok", ...}
      GET /slow?ms=N             -> 200 after N milliseconds (at most 60000), or after the
                                    override's milliseconds while one is set:
      PUT /slow?ms=M             -> sets that override (a test makes a slow endpoint fast
                                    again without changing its URL); DELETE /slow drops it
      GET /status/N              -> answers with status N
      any method, any other path -> 200 JSON echo: method, path, port,
                                    headers, body length (POST/PUT bodies read)
MODE=worker or beat:
    no server; stays alive until SIGTERM/SIGINT. PID 1's command line reads
    "... celery worker" / "... celery beat", as the profiles' healthchecks expect.
"""

import json
import os
import signal
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("MODE", "api")
DIFY_PORTS = (5001, 3000, 5002, 5003, 8194)
PORTS = (int(os.environ["PORT"]),) if os.environ.get("PORT") else DIFY_PORTS
VERSION = os.environ.get("APP_STANDIN_VERSION", "0.0.0-standin")
# PUT /slow?ms=M: the delay every later GET /slow answers with, whatever its ms (None: the request's own ms).
SLOW_OVERRIDE_MS = None


class Handler(BaseHTTPRequestHandler):
    server_version = "app-standin/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("app-standin[%s]: %s %s\n" % (MODE, self.address_string(), fmt % args))

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        return length

    def handle_any(self):
        global SLOW_OVERRIDE_MS
        url = urlsplit(self.path)
        path = url.path
        body = self.read_body() if self.command in ("POST", "PUT", "PATCH") else 0
        if path in ("/health", "/health/check"):
            self.send_json(200, {"status": "ok", "mode": MODE, "version": VERSION, "pid": os.getpid()})
        elif path == "/slow" and self.command in ("PUT", "DELETE"):
            ms = parse_qs(url.query).get("ms")
            SLOW_OVERRIDE_MS = min(int(ms[0]), 60000) if self.command == "PUT" and ms else None
            self.send_json(200, {"slow_override_ms": SLOW_OVERRIDE_MS})
        elif path == "/slow":
            if SLOW_OVERRIDE_MS is not None:
                ms = SLOW_OVERRIDE_MS
            else:
                ms = min(int(parse_qs(url.query).get("ms", ["1000"])[0]), 60000)
            time.sleep(ms / 1000.0)
            self.send_json(200, {"slept_ms": ms})
        elif path.startswith("/status/"):
            self.send_json(int(path.rsplit("/", 1)[1]), {"status": path.rsplit("/", 1)[1]})
        else:
            self.send_json(200, {
                "standin": "ragctl-test/app-standin", "not": "dify", "mode": MODE,
                "method": self.command, "path": self.path, "port": self.server.server_address[1],
                "headers": {k.lower(): v for k, v in self.headers.items()}, "body_length": body,
            })

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    stop = threading.Event()
    # PID 1 has no default signal dispositions: exit promptly on TERM/INT.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if MODE in ("worker", "beat"):
        if "celery" not in sys.argv[1:]:
            # Re-exec so that /proc/1/cmdline names the role the way a Celery process does.
            os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), "celery", MODE])
        sys.stderr.write("app-standin (TEST STAND-IN, NOT DIFY) mode=%s: idle\n" % MODE)
        while not stop.wait(3600):
            pass
        return
    servers = []
    for port in PORTS:
        httpd = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        httpd.daemon_threads = True
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sys.stderr.write("app-standin (TEST STAND-IN, NOT DIFY) mode=%s listening on %s\n"
                     % (MODE, ", ".join(":%d" % p for p in PORTS)))
    stop.wait()


if __name__ == "__main__":
    main()
