#!/usr/bin/python3
"""CMS delivery at scale: one content type with N published entries in one tenant (SQLite), read through the
delivery API with filters and sorts, every request a new query (no answer cache). Prints p50/p99 per query.

The entries are written straight into cms_db's published copies (the delivery API reads only those), in
batches, while the server runs: generating a million through the API would take most of an hour.
Usage: bench/cms_scale_bench.py [--entries 1000000] [--requests 100]
"""
import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_bench import call, start_cdx  # noqa: E402

INSERT = ("INSERT INTO published (entry_id, tenant_id, type_id, version, data, html, search, published_at, updated_at, "
          "s1, s2, n1) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
CATEGORIES = ["news", "guide", "release", "howto", "story", "update", "event", "note", "review", "other"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cdx-cms-scale-")
    procs = []
    try:
        base = start_cdx(tmp, "cdx", ["--access-log", "false"], procs)
        sa = call("POST", base + "/api/v1/auth/superadmin/login", {"username": "bench", "password": "bench-password"})
        sa_h = {"Authorization": "Bearer " + sa["access_token"]}
        call("POST", base + "/api/v1/plans", {"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000},
             sa_h)
        t = call("POST", base + "/api/v1/tenants", {"name": "Bench", "slug": "bench", "plan": "bench",
                                                    "admin_email": "a@bench.example.com",
                                                    "admin_password": "bench-pass-1"}, sa_h)
        h = {"X-API-Key": t["api_key"]}
        ct = call("POST", base + "/api/v1/cms/content-types", {"key": "article", "name": "Article", "fields": [
            {"key": "title", "type": "text", "required": True}, {"key": "views", "type": "integer"},
            {"key": "category", "type": "enum", "values": CATEGORIES}]}, h)
        pk = call("POST", base + "/api/v1/auth/api-keys", {"name": "web", "type": "publishable"}, h)["key"]

        t0 = time.time()
        db = sqlite3.connect(os.path.join(tmp, "cdx", "cms_db.sqlite"), timeout=60)
        rng = random.Random(7)
        batch = []
        for i in range(args.entries):
            day = 1 + i % 28
            at = f"2026-{1 + (i // 28) % 12:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}.{i % 1000000:06d}Z"
            data = {"title": f"Article {i}", "views": rng.randrange(1_000_000), "category": CATEGORIES[i % 10]}
            # The sort keys publishing writes: title → s1, category → s2, views → n1 (the type's field order).
            batch.append((str(uuid.uuid4()), t["id"], ct["id"], 1, json.dumps(data), "{}",
                          data["title"].lower(), at, at, data["title"], data["category"], float(data["views"])))
            if len(batch) == 20000:
                db.executemany(INSERT, batch)
                db.commit()
                batch.clear()
        if batch:
            db.executemany(INSERT, batch)
            db.commit()
        db.execute("ANALYZE")
        db.commit()
        db.close()
        print(f"{args.entries:,} published entries written in {time.time() - t0:.0f} s (SQLite)\n")

        session = requests.Session()
        n = [0]

        def page(params):
            n[0] += 1  # a new query each time: fields= with a growing run of commas (skipped by the reader)
            q = dict(params, fields="title,views,category" + "," * (n[0] % 1000), limit=50)
            t1 = time.perf_counter()
            r = session.get(base + "/api/v1/cms/published/article", params=q, headers={"X-API-Key": pk}, timeout=120)
            ms = (time.perf_counter() - t1) * 1000
            assert r.status_code == 200 and len(r.json()["data"]) == 50, r.text[:300]
            return ms

        queries = [
            ("newest first (default sort)", {}),
            ("filter[category]=guide, newest first", {"filter[category]": "guide"}),
            ("filter[views][gte]=500000, newest first", {"filter[views][gte]": "500000"}),
            ("sort=-views (a data field)", {"sort": "-views"}),
            ("filter[category]=guide, sort=-views", {"filter[category]": "guide", "sort": "-views"}),
        ]
        print("| query (page of 50) | p50 ms | p99 ms |")
        print("|---|---:|---:|")
        for name, params in queries:
            count = args.requests
            times = sorted(page(params) for _ in range(count))
            print(f"| {name} | {statistics.median(times):.1f} | {times[max(0, int(len(times) * 0.99) - 1)]:.1f} |")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
