#!/usr/bin/env python3
"""ragctl benchmarks: runs ragctl (and, where a reference exists, Debian's docker-compose 1.29.2) side by side
and prints min / median / max per figure. Figures are never asserted; targets are printed beside them.

    python3 bench/bench.py [--rounds N] [--smoke] [--ragctl PATH] [--markdown]

--smoke runs every figure once (CI keeps the script working, not the numbers). Figures that need a Docker
engine (cold/no-op `up`, `ps`, `down`, `doctor`) join this script with the engine commands (issue 7).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARGEST = "app,weaviate,pg_cluster,monitoring"


def timed(cmd, cwd, env=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()}")
    return elapsed


def series(label, cmd, cwd, rounds, target, env=None, setup=None):
    samples = []
    for _ in range(rounds):
        if setup:
            setup()
        samples.append(timed(cmd, cwd, env))
    return {
        "figure": label,
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
        "n": len(samples),
        "target": target,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--smoke", action="store_true", help="one round of everything; for CI")
    ap.add_argument("--ragctl", default=os.path.join(REPO, "target", "release", "ragctl"))
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    rounds = 1 if args.smoke else args.rounds
    ragctl = args.ragctl
    if not os.path.isfile(ragctl):
        sys.exit(f"{ragctl} does not exist: run `cargo build --release` first (or pass --ragctl)")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCTL_", "COMPOSE_"))}
    work = tempfile.mkdtemp(prefix="ragctl-bench-")
    try:
        with open(os.path.join(work, "ragctl.yaml"), "w") as f:
            f.write(f"project: bench\nshape: full\nprofiles: [{LARGEST}]\n")
        subprocess.run([ragctl, "secret", "gen", "-q"], cwd=work, env=env, check=True)

        def clean_render():
            for name in ("docker-compose.yaml", "config"):
                path = os.path.join(work, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)

        results = [
            series(f"render {LARGEST} (full), files written", [ragctl, "render", "-q"], work, rounds, "≤ 20 ms",
                   env, setup=clean_render),
            series(f"render {LARGEST} (full), nothing to write", [ragctl, "render", "-q"], work, rounds, "≤ 20 ms",
                   env),
            series("render --check (CI drift check)", [ragctl, "render", "--check", "-q"], work, rounds, "—", env),
            series("secret check", [ragctl, "secret", "check"], work, rounds, "—", env),
            series("--version", [ragctl, "--version"], work, rounds, "≤ 5 ms", env),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    size = os.path.getsize(ragctl) / 1e6
    print(f"# ragctl benchmarks ({'smoke' if args.smoke else f'{rounds} rounds'}), {time.strftime('%Y-%m-%d')}")
    print(f"# machine: {os.cpu_count()} cores, {platform_line()}")
    if args.markdown:
        print("| figure | min ms | median ms | max ms | target |")
        print("|---|---|---|---|---|")
        for r in results:
            print(f"| {r['figure']} | {r['min']:.1f} | {r['median']:.1f} | {r['max']:.1f} | {r['target']} |")
        print(f"| release binary size | {size:.1f} MB | | | ≤ 15 MB (stripped) |")
    else:
        for r in results:
            print(f"{r['figure']:<60} min {r['min']:7.1f} ms  median {r['median']:7.1f} ms  max {r['max']:7.1f} ms"
                  f"  (n={r['n']}, target {r['target']})")
        print(f"{'release binary size (stripped)':<60} {size:.1f} MB (target ≤ 15 MB)")


def platform_line():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown cpu")
    except OSError:
        model = "unknown cpu"
    return model


if __name__ == "__main__":
    main()
