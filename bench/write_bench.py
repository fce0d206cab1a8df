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
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import CDX, ROOT, drop_database, pg_temp, pg_temp_stop, rotated, storage_env, table_head  # noqa: E402

LUA = os.path.join(ROOT, "bench/write_bench.lua")


class Server(benchlib.Server):
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
    return {"rps": benchlib.wrk_rps(out), "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": benchlib.wrk_latency_ms(out, "50"), "p99": benchlib.wrk_latency_ms(out, "99")}


def one_run(label, binary, backend, args, pg_base):
    workdir = tempfile.mkdtemp(prefix=f"cdx-write-bench-{backend}-")
    storage, _ = storage_env(backend, workdir, pg_base, "cdx_write_bench_")
    pg_url = storage.get("CDX_DATABASE_URL")
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
            drop_database(pg_base, pg_url)
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
    for b in args.binary or [CDX]:
        label, _, path = b.rpartition("=")
        binaries.append((label or "cdx", path))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {}
    for backend in backends:
        pg_dir, pg_base = None, None
        if backend == "postgres":
            pg_base = args.database_url
            if not pg_base:
                pg_dir, pg_base = pg_temp(fsync=True)
        print(f"=== {backend}: wrk -t1 -c64 -d{args.duration}s POST /api/v1/crm/companies, {args.rounds} rounds",
              flush=True)
        try:
            for rnd in range(args.rounds):
                for label, path in rotated(binaries, rnd):
                    results.setdefault((backend, label), []).append(one_run(label, path, backend, args, pg_base))
        finally:
            if pg_dir:
                pg_temp_stop(pg_dir)
    print(f"\nmedians of {args.rounds} rounds (wrk -t1 -c64 -d{args.duration}s, cdx serve with default threads "
          f"and workers):")
    table_head("backend", "build", "req/s", "p50 ms", "p99 ms", left=2)
    for (backend, label), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        print(f"| {backend} | {label} | {med['rps']:,.0f} | {med['p50']:.2f} | {med['p99']:.2f} |")


if __name__ == "__main__":
    main()
