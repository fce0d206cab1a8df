#!/usr/bin/python3
"""Durable creates (issue 10): POST /api/v1/crm/companies under wrk -t1 -c64, every create acknowledged only
after its commit is on disk (SQLite synchronous=FULL; PostgreSQL fsync=on, synchronous_commit=on).

  bench/write_bench.py                                  # both backends, build/release/cdx
  bench/write_bench.py --backend sqlite --binary before=/tmp/cdx-old --binary after=build/release/cdx

Each backend and binary gets a fresh `cdx serve` with its default threads and workers (access log off):
SQLite in a temporary data directory, PostgreSQL on a fresh database of a throwaway server started by
scripts/pg-temp with fsync on (CDX_PG_FSYNC=on). One tenant on a plan whose rate limit does not bind, one
secret API key; wrk posts a company with a unique name and no domain per request (bench/write_bench.lua)
for --duration seconds after a warm-up, --rounds times with the binaries' order rotated each round;
medians. Afterwards the bench counts the tenant's companies: every 201 must have stored one, nothing more.
"""
import argparse
import base64
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPERADMIN = ("bench", "bench-password-1")
LUA = os.path.join(ROOT, "bench/write_bench.lua")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, storage, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
        env.update({"CDX_HOST": "127.0.0.1", "CDX_PORT": str(self.port), "CDX_ACCESS_LOG": "false",
                    "CDX_BOOTSTRAP_SUPERADMIN": f"{SUPERADMIN[0]}:{SUPERADMIN[1]}", "CDX_LOG_LEVEL": "warn",
                    "CDX_KEK": base64.b64encode(os.urandom(32)).decode()})  # the key of a throwaway database
        env.update(storage)
        self.log = open(os.path.join(workdir, "server.log"), "ab")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"cdx exited with {self.proc.returncode}; see {self.log.name}")
            try:
                requests.get(self.url + "/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        r = requests.post(self.url + "/api/v1/auth/superadmin/login",
                          json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=30)
        r.raise_for_status()
        self.sa = {"Authorization": "Bearer " + r.json()["access_token"]}
        r = requests.post(self.url + "/api/v1/plans", headers=self.sa, timeout=30,
                          json={"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000})
        r.raise_for_status()

    def tenant(self, slug):
        r = requests.post(self.url + "/api/v1/tenants", headers=self.sa, timeout=60,
                          json={"name": slug, "slug": slug, "plan": "bench", "admin_email": f"ops@{slug}.example.com",
                                "admin_password": "Bench-pass-2026"})
        r.raise_for_status()
        return r.json()["api_key"]

    def companies(self, key):
        n, cursor = 0, None
        while True:
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            r = requests.get(self.url + "/api/v1/crm/companies", params=params, headers={"X-API-Key": key},
                             timeout=60)
            r.raise_for_status()
            n += len(r.json()["data"])
            cursor = r.json()["next_cursor"]
            if not cursor:
                return n

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url, key, duration, prefix):
    cmd = ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency", "-s", LUA, url + "/api/v1/crm/companies",
           "--", key, prefix]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    time.sleep(1)  # the creates wrk left in flight settle before anyone counts
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{errors.group(1)} answers were not 201:\n{out}")
    if "Socket errors" in out:
        sys.exit(f"socket errors:\n{out}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()),
            "p99": ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())}


def pg_temp():
    env = dict(os.environ, CDX_PG_FSYNC="on")
    out = subprocess.run([os.path.join(ROOT, "scripts/pg-temp"), "start"], check=True, capture_output=True,
                         text=True, env=env).stdout
    env = dict(line.replace("export ", "", 1).split("=", 1) for line in out.splitlines() if line.startswith("export"))
    return env["CDX_PG_DIR"], env["CDX_TEST_DATABASE_URL"]


def one_run(label, binary, backend, args, pg_base):
    workdir = tempfile.mkdtemp(prefix=f"cdx-write-bench-{backend}-")
    pg_url = None
    if backend == "sqlite":
        storage = {"CDX_DATA_DIR": os.path.join(workdir, "data")}
    else:
        name = "cdx_write_bench_" + os.urandom(4).hex()
        subprocess.run(["psql", pg_base, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
        pg_url = pg_base.rsplit("/", 1)[0] + "/" + name
        storage = {"CDX_DATABASE_URL": pg_url}
    server = Server(binary, storage, workdir)
    try:
        key = server.tenant("w" + os.urandom(4).hex())
        wrk(server.url, key, args.warmup, "warm")
        before = server.companies(key)
        r = wrk(server.url, key, args.duration, "run")
        stored = server.companies(key) - before
        # wrk counts answers it read; a create still in flight when it stopped may have committed unanswered.
        if not r["requests"] <= stored <= r["requests"] + 64:
            sys.exit(f"{label}: wrk saw {r['requests']} creates answered, the tenant gained {stored} companies")
        print(f"  {backend:8s} {label:8s} {r['rps']:9,.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
              f"({r['requests']} answered, {stored} stored)", flush=True)
        return r
    finally:
        server.stop()
        if pg_url:
            subprocess.run(["psql", pg_base, "-q", "-c", f"DROP DATABASE {pg_url.rsplit('/', 1)[1]}"])
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", default=[],
                   help="LABEL=PATH or PATH; repeat to compare builds in the same run (default: build/release/cdx)")
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--database-url", help="PostgreSQL server to create the bench databases on (default: pg-temp, "
                                          "fsync on)")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    binaries = []
    for b in args.binary or [os.path.join(ROOT, "build/release/cdx")]:
        label, _, path = b.rpartition("=")
        binaries.append((label or "cdx", path))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {}
    for backend in backends:
        pg_dir, pg_base = None, None
        if backend == "postgres":
            pg_base = args.database_url
            if not pg_base:
                pg_dir, pg_base = pg_temp()
        print(f"=== {backend}: wrk -t1 -c64 -d{args.duration}s POST /api/v1/crm/companies, {args.rounds} rounds",
              flush=True)
        try:
            for rnd in range(args.rounds):
                order = binaries[rnd % len(binaries):] + binaries[:rnd % len(binaries)]
                for label, path in order:
                    results.setdefault((backend, label), []).append(one_run(label, path, backend, args, pg_base))
        finally:
            if pg_dir:
                subprocess.run([os.path.join(ROOT, "scripts/pg-temp"), "stop", pg_dir])
    print(f"\nmedians of {args.rounds} rounds (wrk -t1 -c64 -d{args.duration}s, cdx serve with default threads "
          f"and workers):")
    print(f"| backend | build | req/s | p50 ms | p99 ms |\n|---|---|---:|---:|---:|")
    for (backend, label), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        print(f"| {backend} | {label} | {med['rps']:,.0f} | {med['p50']:.2f} | {med['p99']:.2f} |")


if __name__ == "__main__":
    main()
