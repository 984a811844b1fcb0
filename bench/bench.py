#!/usr/bin/env python3
"""ragctl benchmarks, side by side with Debian's docker-compose 1.29.2 on the very same compose file and .env.

    python3 bench/bench.py [--rounds N] [--smoke] [--ragctl PATH] [--markdown] [--no-docker]

Stack: PostgreSQL (health-gated) -> nginx, Redis, a Weaviate stand-in, from the local test images
(tests/setup.sh builds them). ragctl renders the compose file; both tools then run it, alternating A B A B:

  cold up to all healthy   ragctl `up` (waits by itself)  vs  `docker-compose up -d` + polling health (1.29 has no --wait)
  no-op up                 ragctl `up`                    vs  `docker-compose up -d`
  ps                       ragctl `ps`                    vs  `docker-compose ps`
  down                     ragctl `down`                  vs  `docker-compose down`

and ragctl alone: render of the largest profile combination, `--version`, `secret check`. It also measures the
physical critical path: each container's own create+start through the Engine API and its own time to ready
(its healthcheck command exec'd every 20 ms), composed along the dependency graph: the floor for any tool;
and the engine's floor of `down`: the same containers stopped (dependents first) and removed, and their network
removed, straight through the API from one process. Both floors are measured in every round, after A and B.
Also: stripped release binary size and ragctl's peak RSS during a cold `up` (/usr/bin/time -v).

Backup and restore (--data-mb N, default 1024; --smoke: 16): with N MB of rows in PostgreSQL and N MB in the
Weaviate stand-in's volume, ragctl `backup` against the same work by hand (`docker exec … pg_dump -Fc -Z 0` piped
through `zstd`, and `tar` of the volume from a helper container through `zstd`), and `restore` against the same
data put back by hand (`zstd -dc | docker exec -i … pg_restore`, and `zstd -dc | tar -x` into the volume), with
ragctl's peak RSS during both (/usr/bin/time -v). --no-backup skips it.

Figures are printed, never asserted. --smoke runs one round of everything (CI keeps the script working).
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARGEST = "app,weaviate,pg_cluster,monitoring"
PROJECT = "ragbench"
DOCKER_SOCK = "/var/run/docker.sock"

RAGCTL_YAML = """project: ragbench
profiles: [weaviate, bench]
images:
  db_postgres: ragctl-test/postgres:15
  redis: ragctl-test/redis:7
  weaviate: ragctl-test/weaviate-standin:1
  nginx: ragctl-test/nginx:1
  sandbox: ragctl-test/app-standin:1
  plugin_daemon: ragctl-test/app-standin:1
  ssrf_proxy: ragctl-test/squid:5
ports:
  EXPOSE_POSTGRES_PORT: 25432
  EXPOSE_REDIS_PORT: 26379
  EXPOSE_WEAVIATE_PORT: 28080
  EXPOSE_WEAVIATE_GRPC_PORT: 25051
  EXPOSE_SSRF_PROXY_PORT: 23128
  EXPOSE_SANDBOX_PORT: 28194
  EXPOSE_PLUGIN_DAEMON_PORT: 25002
  EXPOSE_PLUGIN_DEBUGGING_PORT: 25003
"""

# Benchmark-only profile: nginx gated on PostgreSQL's health, as the app's nginx is in the full stack.
BENCH_PROFILE = """name: bench
description: nginx gated on PostgreSQL health (benchmark only)
services:
  nginx:
    image: nginx:1.27-alpine
    depends_on: {db_postgres: healthy}
    ports:
      - {target: 80, env: EXPOSE_BENCH_NGINX_PORT, default: 28081}
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/ || exit 1"]
      interval: 5s
      timeout: 3s
      retries: 30
      start_period: 5s
    ready: {http: {port: 80, path: /}}
"""


# ---------------------------------------------------------------------------------------------- helpers


def run(cmd, cwd, env, check=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return proc


def timed(cmd, cwd, env):
    start = time.perf_counter()
    run(cmd, cwd, env)
    return (time.perf_counter() - start) * 1000.0


def stats(samples):
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples), "n": len(samples)}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.unix_path)
        self.sock = sock


def api(method, url, body=None):
    """One Docker Engine API call (v1.41, what Engine 20.10 speaks)."""
    conn = UnixHTTPConnection(DOCKER_SOCK)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, "/v1.41" + url, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 400:
        raise RuntimeError(f"{method} {url}: HTTP {resp.status} {data[:300]!r}")
    return json.loads(data) if data and resp.getheader("Content-Type", "").startswith("application/json") else None


def project_containers():
    flt = json.dumps({"label": [f"com.docker.compose.project={PROJECT}"]})
    return api("GET", "/containers/json?all=1&filters=" + urlquote(flt))


def urlquote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def wait_all_healthy(deadline_s=300):
    """Poll every 100 ms until every project container is running and healthy (compose 1.29 has no --wait)."""
    end = time.time() + deadline_s
    while time.time() < end:
        cs = project_containers()
        if cs and all("(healthy)" in c.get("Status", "") for c in cs):
            return
        time.sleep(0.1)
    sys.exit("docker-compose stack did not become healthy in time")


# ------------------------------------------------------------------------------------ critical path


def exec_ok(cid, cmd):
    ex = api("POST", f"/containers/{cid}/exec", {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    conn = UnixHTTPConnection(DOCKER_SOCK)
    conn.request("POST", f"/v1.41/exec/{ex['Id']}/start", body=json.dumps({"Detach": False, "Tty": False}),
                 headers={"Content-Type": "application/json"})
    conn.getresponse().read()  # returns when the command has finished
    conn.close()
    return api("GET", f"/exec/{ex['Id']}/json").get("ExitCode") == 0


def critical_path(snapshots):
    """Replay the containers ragctl created, service by service in dependency order, straight through the
    API: create+start, then exec its healthcheck command every 20 ms until it succeeds. Returns
    (critical path ms, per-service costs)."""
    net = f"{PROJECT}_cp"
    api("POST", "/networks/create", {"Name": net, "Driver": "bridge", "Labels": {"org.ragctl.bench": "cp"}})
    cost, done, order = {}, {}, []
    ids = []
    try:
        remaining = dict(snapshots)
        while remaining:
            ready = [s for s, snap in remaining.items() if all(d in done for d in snap["deps"])]
            if not ready:
                sys.exit("dependency cycle in benchmark stack")
            for svc in ready:
                snap = remaining.pop(svc)
                cfg = dict(snap["config"])
                cfg["Labels"] = {"org.ragctl.bench": "cp"}
                host = dict(snap["host"])
                host["NetworkMode"] = net
                host["Binds"] = [b.replace(f"{PROJECT}_", f"{PROJECT}_cp_", 1) if not b.startswith("/") else b
                                 for b in (host.get("Binds") or [])]
                cfg["HostConfig"] = host
                cfg["NetworkingConfig"] = {"EndpointsConfig": {net: {"Aliases": [svc]}}}
                t0 = time.perf_counter()
                cid = api("POST", f"/containers/create?name={PROJECT}-cp-{svc}", cfg)["Id"]
                ids.append(cid)
                api("POST", f"/containers/{cid}/start")
                t1 = time.perf_counter()
                test = (cfg.get("Healthcheck") or {}).get("Test") or []
                cmd = ["sh", "-c", test[1]] if test[:1] == ["CMD-SHELL"] else test[1:]
                while cmd and not exec_ok(cid, cmd):
                    time.sleep(0.02)
                t2 = time.perf_counter()
                cost[svc] = {"create_start_ms": (t1 - t0) * 1000, "ready_ms": (t2 - t1) * 1000}
                done[svc] = max([done[d] for d in snap["deps"]], default=0.0) + (t2 - t0) * 1000
                order.append(svc)
        # The engine's floor of `down`: the same containers stopped and removed straight through the API, each
        # as soon as its dependents have stopped (all others at once), then the network removed. The engine
        # serialises each container's teardown (network endpoint, published-port rules) and the bridge's
        # removal, so this is what any client needs, however it orders its calls.
        dependents = {s: [d for d, snap in snapshots.items() if s in snap["deps"]] for s in snapshots}
        stopped = {svc: threading.Event() for svc in order}
        errors = []

        def stop_and_remove(svc):
            try:
                for d in dependents[svc]:
                    stopped[d].wait()
                api("POST", f"/containers/{PROJECT}-cp-{svc}/stop?t=10")
                stopped[svc].set()
                api("DELETE", f"/containers/{PROJECT}-cp-{svc}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                stopped[svc].set()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=stop_and_remove, args=(svc,)) for svc in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        api("DELETE", f"/networks/{net}")
        cost["_down_floor_ms"] = (time.perf_counter() - t0) * 1000
        if errors:
            sys.exit(f"engine floor of down failed: {errors[0]}")
    finally:
        for cid in ids:
            try:
                api("DELETE", f"/containers/{cid}?force=1&v=1")
            except RuntimeError:
                pass
        try:
            api("DELETE", f"/networks/{net}")
        except RuntimeError:
            pass
        for v in api("GET", "/volumes").get("Volumes") or []:
            if v["Name"].startswith(f"{PROJECT}_cp_"):
                try:
                    api("DELETE", f"/volumes/{v['Name']}")
                except RuntimeError:
                    pass
    return max(done.values()), cost


def snapshot_containers():
    snaps = {}
    for c in project_containers():
        info = api("GET", f"/containers/{c['Id']}/json")
        svc = info["Config"]["Labels"]["com.docker.compose.service"]
        deps = [d.split(":")[0] for d in info["Config"]["Labels"].get("com.docker.compose.depends_on", "").split(",") if d]
        snaps[svc] = {"config": info["Config"], "host": info["HostConfig"], "deps": deps}
    return snaps


# -------------------------------------------------------------------------------- backup / restore

BACKUP_PROJECT = "ragbenchbk"
BACKUP_YAML = """project: ragbenchbk
profiles: [weaviate]
images:
  db_postgres: ragctl-test/postgres:15
  redis: ragctl-test/redis:7
  weaviate: ragctl-test/weaviate-standin:1
  sandbox: ragctl-test/app-standin:1
  plugin_daemon: ragctl-test/app-standin:1
  ssrf_proxy: ragctl-test/squid:5
ports:
  EXPOSE_POSTGRES_PORT: 25442
  EXPOSE_REDIS_PORT: 26389
  EXPOSE_WEAVIATE_PORT: 28090
  EXPOSE_SSRF_PROXY_PORT: 23138
  EXPOSE_SANDBOX_PORT: 28204
  EXPOSE_PLUGIN_DAEMON_PORT: 25012
  EXPOSE_PLUGIN_DEBUGGING_PORT: 25013
  EXPOSE_WEAVIATE_GRPC_PORT: 25061
"""


def timed_rss(cmd, cwd, env):
    """Wall time (ms) and peak RSS (KiB) of one command, through /usr/bin/time -v."""
    start = time.perf_counter()
    proc = run(["/usr/bin/time", "-v", *cmd], cwd, env)
    ms = (time.perf_counter() - start) * 1000.0
    rss = next((int(l.split(":")[1]) for l in proc.stderr.splitlines() if "Maximum resident set size" in l), 0)
    return ms, rss


def shell(script, cwd, env):
    """Time a shell pipeline (`set -o pipefail`: a failing stage fails it)."""
    return timed(["bash", "-c", "set -euo pipefail; " + script], cwd, env)


def bench_backup(ragctl, env, data_mb, rounds):
    """ragctl backup / restore against the same work by hand, on `data_mb` MB in PostgreSQL and in a volume."""
    stack = tempfile.mkdtemp(prefix="ragctl-bench-backup-")
    rg = lambda *a: [ragctl, "-q", "--progress", "quiet", *a]  # noqa: E731
    db, wv = f"{BACKUP_PROJECT}-db_postgres-1", f"{BACKUP_PROJECT}-weaviate-1"
    volume = f"{BACKUP_PROJECT}_weaviate_data"
    out = {}
    try:
        with open(os.path.join(stack, "ragctl.yaml"), "w") as f:
            f.write(BACKUP_YAML)
        run(rg("down", "--volumes", "-y"), stack, env, check=False)
        run(rg("up"), stack, env)
        # ~512 random hex characters per row (what zstd can halve, not erase), ~600 bytes on disk with overhead.
        rows_n = max(1, data_mb * 1024 * 1024 // 600)
        body = " || ".join(["md5(random()::text)"] * 16)
        run(["docker", "exec", db, "psql", "-U", "postgres", "-d", "dify", "-qc",
             f"create table bench(id bigint primary key, body text); "
             f"insert into bench select g, {body} from generate_series(1, {rows_n}) g"], stack, env)
        # Vectors: random bytes, as incompressible as embeddings are.
        run(["docker", "exec", wv, "sh", "-c",
             f"head -c {data_mb * 1024 * 1024} /dev/urandom > /var/lib/weaviate/blob.bin"], stack, env)
        size = run(["docker", "exec", db, "psql", "-U", "postgres", "-d", "dify", "-tAc",
                    "select pg_database_size('dify')"], stack, env).stdout.strip()
        out["pg_bytes"] = int(size)
        out["volume_bytes"] = data_mb * 1024 * 1024
        work = os.path.join(stack, "out")
        os.makedirs(work)
        b_r, b_h, r_r, r_h, rss_b, rss_r = ([] for _ in range(6))
        helper = f"docker run --rm -v {volume}:/v ragctl-test/base:bookworm"
        for i in range(rounds):
            archive = os.path.join(work, f"a{i}.tar.zst")
            ms, rss = timed_rss(rg("backup", "--output", archive), stack, env)
            b_r.append(ms)
            rss_b.append(rss)
            out["archive_bytes"] = os.path.getsize(archive)
            # By hand: the same dump and the same tar, each through zstd (its default level, as ragctl). `-Z 0` as
            # ragctl: pg_dump -Fc compresses with gzip by default, and compressing twice is slower than either.
            b_h.append(shell(
                f"docker exec {db} pg_dump -U postgres -Fc -Z 0 dify | zstd -q -3 -o {work}/dify.dump.zst -f; "
                f"docker pause {wv} >/dev/null; "
                f"{helper} tar -C /v -cf - . | zstd -q -3 -o {work}/vol.tar.zst -f; "
                f"docker unpause {wv} >/dev/null", stack, env))
            # ragctl restore: volumes re-created, data put back, the stack up, row counts compared.
            run(rg("down"), stack, env)
            ms, rss = timed_rss(rg("restore", "--yes", archive), stack, env)
            r_r.append(ms)
            rss_r.append(rss)
            os.remove(archive)
            # By hand, from the same starting point (the stack down, its data volumes to be replaced): fresh
            # volumes and an initialised server (`down --volumes`, `up`), then pg_restore and untar.
            run(rg("down"), stack, env)
            r_h.append(shell(
                f"{ragctl} -q --progress quiet down --volumes -y; {ragctl} -q --progress quiet up; "
                f"zstd -dc {work}/dify.dump.zst | docker exec -i {db} pg_restore -U postgres -d dify --no-owner; "
                f"docker stop {wv} >/dev/null; "
                f"zstd -dc {work}/vol.tar.zst | docker run --rm -i -v {volume}:/v ragctl-test/base:bookworm tar -C /v -xf -; "
                f"docker start {wv} >/dev/null", stack, env))
        out.update(backup_r=b_r, backup_h=b_h, restore_r=r_r, restore_h=r_h, rss_backup=max(rss_b),
                   rss_restore=max(rss_r))
    finally:
        subprocess.run([ragctl, "-q", "down", "--volumes", "-y"], cwd=stack, env=env, capture_output=True)
        shutil.rmtree(stack, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the Docker figures (render figures: x6)")
    ap.add_argument("--smoke", action="store_true", help="one round of everything; for CI")
    ap.add_argument("--ragctl", default=os.path.join(REPO, "target", "release", "ragctl"))
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--no-docker", action="store_true", help="only the figures that need no Docker engine")
    ap.add_argument("--data-mb", type=int, default=None,
                    help="MB in PostgreSQL and in a volume for backup/restore (default 1024; --smoke: 16)")
    ap.add_argument("--backup-rounds", type=int, default=1, help="rounds of backup/restore")
    ap.add_argument("--no-backup", action="store_true", help="skip backup/restore")
    ap.add_argument("--only-backup", action="store_true", help="only backup/restore")
    args = ap.parse_args()
    rounds = 1 if args.smoke else args.rounds
    ragctl = os.path.abspath(args.ragctl)
    if not os.path.isfile(ragctl):
        sys.exit(f"{ragctl} does not exist: run `cargo build --release` first (or pass --ragctl)")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCTL_", "COMPOSE_"))}
    rows = []

    def row(figure, ragctl_samples, compose_samples=None, target="", vs="compose"):
        r = {"figure": figure, "ragctl": stats(ragctl_samples), "target": target, "vs": vs}
        if compose_samples:
            r["compose"] = stats(compose_samples)
        rows.append(r)

    # ragctl alone: render, --version, secret check
    work = tempfile.mkdtemp(prefix="ragctl-bench-")
    try:
        with open(os.path.join(work, "ragctl.yaml"), "w") as f:
            f.write(f"project: bench\nshape: full\nprofiles: [{LARGEST}]\n")
        run([ragctl, "secret", "gen", "-q"], work, env)
        n = rounds * 6

        def clean_render():
            for name in ("docker-compose.yaml", "config"):
                p = os.path.join(work, name)
                shutil.rmtree(p) if os.path.isdir(p) else (os.remove(p) if os.path.exists(p) else None)

        samples = []
        for _ in range(n):
            clean_render()
            samples.append(timed([ragctl, "render", "-q"], work, env))
        row(f"render {LARGEST} (full), all files written", samples, target="≤ 20 ms")
        row(f"render {LARGEST} (full), unchanged", [timed([ragctl, "render", "-q"], work, env) for _ in range(n)],
            target="≤ 20 ms")
        row("--version", [timed([ragctl, "--version"], work, env) for _ in range(n)], target="≤ 5 ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    compose = shutil.which("docker-compose")
    cp_ms = None
    cp_ratio = None
    down_floor_ms = None
    rss_kb = None
    if not args.no_docker and not args.no_backup:
        data_mb = args.data_mb or (16 if args.smoke else 1024)
        bk = bench_backup(ragctl, env, data_mb, 1 if args.smoke else args.backup_rounds)
        note = f"{bk['pg_bytes'] / 2**20:.0f} MiB in PostgreSQL, {bk['volume_bytes'] / 2**20:.0f} MiB in a volume"
        row(f"backup ({note}; archive {bk['archive_bytes'] / 2**20:.0f} MiB)", bk["backup_r"], bk["backup_h"],
            target="≤ 1.1 × by hand", vs="by hand")
        row("restore (ragctl: + volumes re-created, up, row counts; by hand: down -v, up, pg_restore, untar)",
            bk["restore_r"], bk["restore_h"], target="≤ 1.1 × by hand", vs="by hand")
        rows.append({"figure": "peak RSS of ragctl during backup / restore", "ragctl": None,
                     "value": f"{bk['rss_backup'] / 1024:.1f} / {bk['rss_restore'] / 1024:.1f} MB", "target": "≤ 50 MB"})
    if not args.no_docker and not args.only_backup:
        if not compose:
            sys.exit("docker-compose is not installed (tests/setup.sh installs it); use --no-docker to skip")
        stack = tempfile.mkdtemp(prefix="ragctl-bench-stack-")
        try:
            with open(os.path.join(stack, "ragctl.yaml"), "w") as f:
                f.write(RAGCTL_YAML)
            os.makedirs(os.path.join(stack, "profiles"))
            with open(os.path.join(stack, "profiles", "bench.yaml"), "w") as f:
                f.write(BENCH_PROFILE.replace("nginx:1.27-alpine", "ragctl-test/nginx:1"))
            run([ragctl, "secret", "gen", "-q"], stack, env)
            run([ragctl, "render", "-q"], stack, env)
            rg = lambda *a: [ragctl, "-q", "--progress", "quiet", *a]  # noqa: E731
            dc = [compose, "-p", PROJECT, "-f", "docker-compose.yaml"]
            run(rg("down", "--volumes", "-y"), stack, env, check=False)
            run(dc + ["down", "-v"], stack, env, check=False)

            cold_r, cold_c, noop_r, noop_c, ps_r, ps_c, down_r, down_c, cps = ([] for _ in range(9))
            for i in range(rounds):
                # A: ragctl
                cold_r.append(timed(rg("up"), stack, env))
                noop_r.append(timed(rg("up"), stack, env))
                ps_r.append(timed(rg("ps"), stack, env))
                if i == 0:
                    snaps = snapshot_containers()
                    # doctor on the healthy stack, then with one endpoint that accepts but never answers:
                    # the bound is that check's own timeout + 0.5 s.
                    run(rg("up"), stack, env)  # Docker's first healthcheck may not have run: let ragctl settle
                    doctor_ok = [timed([ragctl, "doctor", "-q"], stack, env) for _ in range(max(rounds, 3))]
                    # Freeze Weaviate's process from the host (SIGSTOP): Docker still says "running" and the
                    # kernel still accepts connections, but nothing answers: a hung endpoint, not a stopped one.
                    pid = run(["docker", "inspect", "-f", "{{.State.Pid}}", f"{PROJECT}-weaviate-1"], stack, env).stdout.strip()
                    run(["kill", "-STOP", pid], stack, env)
                    try:
                        t0 = time.perf_counter()
                        proc = run([ragctl, "doctor", "--format", "json"], stack, env, check=False)
                        doctor_dead = (time.perf_counter() - t0) * 1000
                        doctor_report = json.loads(proc.stdout)
                        slow = max(doctor_report["checks"], key=lambda c: c["duration_ms"])
                        dead_note = f"slowest check {slow['id']} {slow['duration_ms']} ms ({slow['status']})"
                    finally:
                        run(["kill", "-CONT", pid], stack, env)
                down_r.append(timed(rg("down"), stack, env))
                run(rg("down", "--volumes", "-y"), stack, env)
                # B: docker-compose on the same file and .env
                t0 = time.perf_counter()
                run(dc + ["up", "-d"], stack, env)
                wait_all_healthy()
                cold_c.append((time.perf_counter() - t0) * 1000)
                noop_c.append(timed(dc + ["up", "-d"], stack, env))
                ps_c.append(timed(dc + ["ps"], stack, env))
                down_c.append(timed(dc + ["down"], stack, env))
                run(dc + ["down", "-v"], stack, env)
                # C: the physical floors, in the same round so that they see the same machine state.
                cps.append(critical_path(snaps))

            # The critical path varies with PostgreSQL's initdb like `up` does: take its median over the rounds.
            cp_ms = statistics.median([c[0] for c in cps])
            # Each round's cold up against the same round's critical path: machine drift between rounds cancels.
            per_round = sorted(r / c[0] for r, c in zip(cold_r, cps))
            cp_ratio = (statistics.median(per_round), per_round[0], per_round[-1])
            down_floor_ms = statistics.median([c[1]["_down_floor_ms"] for c in cps])
            row("cold up to all healthy", cold_r, cold_c, target="≤ 1.1 × critical path, < compose")
            row("no-op up", noop_r, noop_c, target="≤ 50 ms, ≤ 0.1 × compose")
            row("ps", ps_r, ps_c, target="≤ 50 ms")
            row("down", down_r, down_c, target="≤ 0.4 × compose")
            row("doctor, healthy stack", doctor_ok, target="≤ 1 s")
            row(f"doctor, Weaviate hung (SIGSTOP): {dead_note}", [doctor_dead], target="≤ that check's timeout + 0.5 s")

            # Peak RSS of a cold up.
            if shutil.which("/usr/bin/time") or os.path.exists("/usr/bin/time"):
                proc = run(["/usr/bin/time", "-v", *rg("up")], stack, env)
                for line in proc.stderr.splitlines():
                    if "Maximum resident set size" in line:
                        rss_kb = int(line.split(":")[1])
                run(rg("down", "--volumes", "-y"), stack, env)
        finally:
            subprocess.run([ragctl, "-q", "down", "--volumes", "-y"], cwd=stack, env=env, capture_output=True)
            shutil.rmtree(stack, ignore_errors=True)

    size_mb = os.path.getsize(ragctl) / 1e6
    report(rows, cp_ms, cp_ratio, down_floor_ms, size_mb, rss_kb, args, rounds)


def report(rows, cp_ms, cp_ratio, down_floor_ms, size_mb, rss_kb, args, rounds):
    print(f"# ragctl benchmarks ({'smoke, 1 round' if args.smoke else f'{rounds} rounds'}), {time.strftime('%Y-%m-%d')}")
    print(f"# machine: {os.cpu_count()} cores, {cpu_model()}, docker-compose {compose_version()}")
    fmt = lambda s: f"{s['min']:.0f} / {s['median']:.0f} / {s['max']:.0f}"  # noqa: E731
    if args.markdown:
        print("| figure | ragctl min / median / max ms | docker-compose (backup, restore: by hand) min / median / max ms | ratio (median) | target |")
        print("|---|---|---|---|---|")
    for r in rows:
        if r["ragctl"] is None:
            if args.markdown:
                print(f"| {r['figure']} | {r['value']} | — | — | {r['target']} |")
            else:
                print(f"{r['figure']:<55} {r['value']}   [{r['target']}]")
            continue
        c = r.get("compose")
        ratio = f"{r['ragctl']['median'] / c['median']:.2f}" if c else ""
        if r["figure"].startswith("cold up") and cp_ms:
            ratio += f" (× critical path: {r['ragctl']['median'] / cp_ms:.2f}"
            if cp_ratio:
                ratio += f"; per round {cp_ratio[0]:.2f}, {cp_ratio[1]:.2f}–{cp_ratio[2]:.2f}"
            ratio += ")"
        if r["figure"] == "down" and down_floor_ms:
            ratio += f" (× engine floor: {r['ragctl']['median'] / down_floor_ms:.2f}; floor = {down_floor_ms / c['median']:.2f} × compose)"
        if args.markdown:
            print(f"| {r['figure']} | {fmt(r['ragctl'])} | {fmt(c) if c else '—'} | {ratio or '—'} | {r['target']} |")
        else:
            line = f"{r['figure']:<55} ragctl {fmt(r['ragctl']):>22} ms"
            if c:
                line += f"   {r['vs']} {fmt(c):>22} ms   ratio {ratio}"
            print(line + f"   [{r['target']}]")
    extra = []
    if cp_ms:
        extra.append(("physical critical path (create+start+own readiness, composed)", f"{cp_ms:.0f} ms", ""))
    if down_floor_ms:
        extra.append(("engine floor of down (the same stops, removals, network removal straight through the API)",
                      f"{down_floor_ms:.0f} ms", ""))
    extra.append(("release binary size (stripped)", f"{size_mb:.1f} MB", "≤ 15 MB"))
    if rss_kb:
        extra.append(("peak RSS during cold up", f"{rss_kb / 1024:.1f} MB", "≤ 40 MB"))
    for name, value, target in extra:
        if args.markdown:
            print(f"| {name} | {value} | — | — | {target or '—'} |")
        else:
            print(f"{name:<55} {value}" + (f"   [{target}]" if target else ""))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown cpu")
    except OSError:
        return "unknown cpu"


def compose_version():
    exe = shutil.which("docker-compose")
    if not exe:
        return "not installed"
    out = subprocess.run([exe, "version", "--short"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
