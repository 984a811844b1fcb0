"""TEST STAND-IN for the Grafana and cAdvisor images used by ragctl's tests.
NOT GRAFANA, NOT CADVISOR (neither is packaged by Debian).

One python3 HTTP server on both services' ports:
  :3000  GET /api/health -> 200 {"database": "ok", ...}   (Grafana's health endpoint)
  :8080  GET /healthz    -> 200 ok                         (cAdvisor's health endpoint)
         GET /metrics    -> Prometheus text format: one standin_info gauge and no container series,
                            so the scrape target is up but no container alert can fire from it
Any other path answers 404. Arguments (the services' command lines) are ignored.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS = b"# HELP standin_info ragctl-test/monitoring-standin (TEST STAND-IN, NOT CADVISOR).\n" \
          b"# TYPE standin_info gauge\nstandin_info 1\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "monitoring-standin/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("monitoring-standin: %s %s\n" % (self.address_string(), fmt % args))

    def send(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        port = self.server.server_address[1]
        path = self.path.split("?", 1)[0]
        if port == 3000 and path == "/api/health":
            body = {"database": "ok", "version": "0.0.0-standin", "standin": "not grafana"}
            self.send(200, "application/json", json.dumps(body).encode())
        elif port == 8080 and path == "/healthz":
            self.send(200, "text/plain", b"ok")
        elif port == 8080 and path == "/metrics":
            self.send(200, "text/plain; version=0.0.4", METRICS)
        else:
            self.send(404, "text/plain", b"not found\n")

    do_HEAD = do_GET


def main():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    for port in (3000, 8080):
        httpd = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sys.stderr.write("monitoring-standin (TEST STAND-IN, NOT GRAFANA OR CADVISOR) listening on :3000, :8080\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
