#!/usr/bin/python3
"""The tenant overview at scale (issue 12): a tenant gets --rows contacts by one CSV import; reported are how long
after the import's answer the overview shows them all (the relay and the aggregates subscriber catching up on
--rows events), and the overview's read latency (GET /api/v1/tenants/{id}/overview as the SUPERADMIN, one request
in flight on a keep-alive connection, --reads requests: p50, p99, max at the client, Python requests included).

  bench/overview_bench.py                              # SQLite, 100 000 contacts
  bench/overview_bench.py --backend postgres           # a throwaway scripts/pg-temp server
  bench/overview_bench.py --rows 20000 --reads 500     # a quick run
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import CDX, FIXED_KEK, Server, percentile, pg_temp_stop, storage_env  # noqa: E402
from crm_bench import contacts_csv, post_import  # noqa: E402


def logged_events(storage, tenant_id):
    """crm.contact.created events of the tenant in the log, read from the database itself (the bench's view)."""
    q = f"SELECT COUNT(*) FROM cdx_db.events WHERE tenant_id = '{tenant_id}' AND type = 'crm.contact.created'"
    if "CDX_DATABASE_URL" in storage:
        return int(subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-At", "-c", q], capture_output=True,
                                  text=True).stdout.strip() or 0)
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "cdx_db.sqlite"), timeout=10)
    try:
        return db.execute(q.replace("cdx_db.", "")).fetchone()[0]
    finally:
        db.close()


def run(args):
    workdir = tempfile.mkdtemp(prefix="cdx-overview-bench-")
    storage, pg_dir = storage_env(args.backend, workdir, None, "cdx_overview_bench_", data_dir=True)
    server = Server(args.binary, storage, workdir, kek=FIXED_KEK)
    try:
        slug = "ov-" + os.urandom(3).hex()
        key = server.tenant(slug)
        sa = requests.Session()
        sa.headers.update(server.sa)
        path = f"{server.url}/api/v1/tenants/{slug}/overview"
        body = contacts_csv(args.rows, 7, "ov")
        elapsed, report = post_import(server, key, body)
        answered = time.perf_counter()
        assert report["created"] == args.rows, report
        tenant_id = sa.get(f"{server.url}/api/v1/tenants/{slug}", timeout=30).json()["id"]
        logged = None  # when the event log held every created event (the relay's part)
        while True:
            o = sa.get(path, timeout=30).json()
            if logged is None and logged_events(storage, tenant_id) >= args.rows:
                logged = time.perf_counter() - answered
            if o["contacts"] == args.rows:
                break
            if time.perf_counter() - answered > 300:
                sys.exit(f"the overview shows {o['contacts']} contacts 300 s after the import")
            time.sleep(0.05)
        visible = time.perf_counter() - answered
        logged = visible if logged is None else logged
        print(f"{args.backend}: import of {args.rows} contacts answered in {elapsed:.2f} s; the log held their events "
              f"{logged:.2f} s after the answer, the overview showed them {visible:.2f} s after it", flush=True)
        for _ in range(50):  # warm-up
            sa.get(path, timeout=30)
        lat = []
        for _ in range(args.reads):
            t = time.perf_counter()
            r = sa.get(path, timeout=30)
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.json()["contacts"] == args.rows
        lat.sort()
        print(f"{args.backend}: overview read with {args.rows} contacts, {args.reads} requests: "
              f"p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms, max {lat[-1]:.2f} ms", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if pg_dir:
            pg_temp_stop(pg_dir)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=CDX)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--reads", type=int, default=2000)
    run(p.parse_args())


if __name__ == "__main__":
    main()
