"""TEST STAND-IN for the Grafana and cAdvisor images used by ragctl's tests.
NOT GRAFANA, NOT CADVISOR (neither is packaged by Debian).

One python3 HTTP server on both services' ports:
  :3000  GET /api/health -> 200 {"database": "ok", ...}   (Grafana's health endpoint)
  :8080  GET /healthz    -> 200 ok                         (cAdvisor's health endpoint)
         GET /metrics    -> Prometheus text format: a standin_info gauge and, when the Docker API is
                            reachable (/var/run/docker.sock, the cadvisor service mounts /var/run
                            read-only), cAdvisor's container_memory_working_set_bytes and
                            container_spec_memory_limit_bytes for every running container of this
                            container's compose project, from REAL data: the engine's cgroup memory stats
                            (working set = usage - inactive_file, cAdvisor's definition) and the
                            container's configured limit (0 when it has none). Labels as cAdvisor's:
                            id="/docker/<id>", name, image and the whitelisted
                            container_label_com_docker_compose_{project,service}. Unlike cAdvisor it
                            reports only its own project's containers, not the host's.
Any other path answers 404. Arguments (the services' command lines) are ignored.
"""

import http.client
import json
import os
import socket
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS = b"# HELP standin_info ragctl-test/monitoring-standin (TEST STAND-IN, NOT CADVISOR).\n" \
          b"# TYPE standin_info gauge\nstandin_info 1\n"


DOCKER_SOCKET = "/var/run/docker.sock"


class DockerConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=8)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(8)
        self.sock.connect(DOCKER_SOCKET)


def docker_get(path):
    conn = DockerConnection()
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError("docker %s: %d %s" % (path, resp.status, body[:200]))
        return json.loads(body)
    finally:
        conn.close()


def escape(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def container_metrics():
    """cAdvisor's two memory series for the running containers of this container's compose project."""
    if not os.path.exists(DOCKER_SOCKET):
        return b""
    me = docker_get("/containers/%s/json" % socket.gethostname())
    project = me["Config"]["Labels"].get("com.docker.compose.project", "")
    filters = json.dumps({"label": ["com.docker.compose.project=%s" % project], "status": ["running"]})
    listed = docker_get("/containers/json?filters=" + urllib.parse.quote(filters))
    results = [None] * len(listed)

    def one(i, c):
        info = docker_get("/containers/%s/json" % c["Id"])
        stats = docker_get("/containers/%s/stats?stream=false&one-shot=true" % c["Id"])
        mem = stats.get("memory_stats", {})
        inner = mem.get("stats", {})
        inactive = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        working = max(mem.get("usage", 0) - inactive, 0)
        labels = info["Config"]["Labels"]
        label_text = ",".join('%s="%s"' % (k, escape(v)) for k, v in [
            ("container_label_com_docker_compose_project", labels.get("com.docker.compose.project", "")),
            ("container_label_com_docker_compose_service", labels.get("com.docker.compose.service", "")),
            ("id", "/docker/" + c["Id"]),
            ("image", info["Config"]["Image"]),
            ("name", info["Name"].lstrip("/")),
        ])
        results[i] = (label_text, working, info["HostConfig"].get("Memory", 0) or 0)

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(listed)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = ["# HELP container_memory_working_set_bytes Current working set in bytes (TEST STAND-IN, from the Docker API).",
           "# TYPE container_memory_working_set_bytes gauge"]
    out += ["container_memory_working_set_bytes{%s} %d" % (l, w) for l, w, _ in filter(None, results)]
    out += ["# HELP container_spec_memory_limit_bytes Memory limit for the container (TEST STAND-IN, from the Docker API).",
            "# TYPE container_spec_memory_limit_bytes gauge"]
    out += ["container_spec_memory_limit_bytes{%s} %d" % (l, m) for l, _, m in filter(None, results)]
    return ("\n".join(out) + "\n").encode()


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
            try:
                body = METRICS + container_metrics()
            except (OSError, ValueError, KeyError) as e:
                self.log_message("container metrics: %s", e)
                self.send(500, "text/plain", ("container metrics: %s\n" % e).encode())
                return
            self.send(200, "text/plain; version=0.0.4", body)
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
