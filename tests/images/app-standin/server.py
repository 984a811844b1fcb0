"""TEST STAND-IN for the Dify api/worker/web images used by ragctl's tests.
NOT DIFY.

MODE=api (default) or web, or anything else not listed below:
    HTTP server on env PORT (default 5001):
      GET /health -> 200 {"status": "ok", ...}
      GET /       -> 200 JSON describing the stand-in
      otherwise   -> 404 JSON
MODE=worker or beat:
    no server; stays alive until SIGTERM/SIGINT (like a Celery worker would).
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("MODE", "api")
PORT = int(os.environ.get("PORT", "5001"))
VERSION = os.environ.get("APP_STANDIN_VERSION", "0.0.0-standin")


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

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_json(200, {"status": "ok", "mode": MODE, "version": VERSION, "pid": os.getpid()})
        elif path == "/":
            self.send_json(200, {"standin": "ragctl-test/app-standin", "not": "dify", "mode": MODE})
        else:
            self.send_json(404, {"code": "not_found", "message": "not found (app test stand-in)"})

    do_HEAD = do_GET


def main():
    stop = threading.Event()
    # PID 1 has no default signal dispositions: exit promptly on TERM/INT.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if MODE in ("worker", "beat"):
        sys.stderr.write("app-standin (TEST STAND-IN, NOT DIFY) mode=%s: idle\n" % MODE)
        while not stop.wait(3600):
            pass
        return
    httpd = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    httpd.daemon_threads = True
    sys.stderr.write("app-standin (TEST STAND-IN, NOT DIFY) mode=%s listening on :%d\n" % (MODE, PORT))
    httpd.serve_forever()


if __name__ == "__main__":
    main()
