#!/usr/bin/python3
"""CMS delivery at scale: one content type with N published entries in one tenant, read through the delivery
API with filters, sorts and full-text queries, every request a new query (no answer cache). Prints p50/p99 per
query, on SQLite or PostgreSQL.

The entries are written straight into cms_db's published copies (the delivery API reads only those), in
batches, while the server runs: generating a million through the API would take most of an hour. Each title
holds three words of a 2,000-word vocabulary (each word in about 1,500 entries of a million).
Usage: bench/cms_scale_bench.py [--backend sqlite|postgres] [--entries 1000000] [--requests 100]
       [--database-url URL]   (PostgreSQL: a server to create the bench database on; default a scripts/pg-temp one)
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (call, create_database, pg_temp, pg_temp_stop, setup_tenant, start_cdx, stop_procs,  # noqa: E402
                      table_head)

COLUMNS = "entry_id, tenant_id, type_id, version, data, html, search, published_at, updated_at, s1, s2, n1"
CATEGORIES = ["news", "guide", "release", "howto", "story", "update", "event", "note", "review", "other"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "qu", "ba", "de", "fi", "go", "hu",
             "ja", "ke", "li", "mo", "nu", "pe", "ri", "so", "tu", "va", "we", "xi", "yo", "zu"]
VOCABULARY = sorted({a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES})[:2000]


def rows(tenant_id, type_id, n):
    rng = random.Random(7)
    for i in range(n):
        day = 1 + i % 28
        at = f"2026-{1 + (i // 28) % 12:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}.{i % 1000000:06d}Z"
        words = " ".join(rng.choice(VOCABULARY) for _ in range(3))
        data = {"title": f"Article {i} {words}", "views": rng.randrange(1_000_000), "category": CATEGORIES[i % 10]}
        # What publishing writes: the search words, and the sort keys title → s1, category → s2, views → n1.
        yield (str(uuid.uuid4()), tenant_id, type_id, 1, json.dumps(data), "{}", data["title"].lower(), at, at,
               data["title"], data["category"], float(data["views"]))


def fill_sqlite(path, tenant_id, type_id, n):
    db = sqlite3.connect(path, timeout=60)
    insert = f"INSERT INTO published ({COLUMNS}, search_id) VALUES ({', '.join('?' * 13)})"
    batch = []
    for i, r in enumerate(rows(tenant_id, type_id, n)):
        batch.append(r + (i + 1,))  # the full-text index's row id (its triggers index the row)
        if len(batch) == 20000:
            db.executemany(insert, batch)
            db.commit()
            batch.clear()
    if batch:
        db.executemany(insert, batch)
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


def fill_postgres(url, tenant_id, type_id, n):
    copy = subprocess.Popen(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c",
                             f"COPY cms_db.published ({COLUMNS}) FROM STDIN"], stdin=subprocess.PIPE, text=True)
    for r in rows(tenant_id, type_id, n):
        copy.stdin.write("\t".join(str(x) for x in r) + "\n")
    copy.stdin.close()
    if copy.wait() != 0:
        raise SystemExit("COPY failed")
    subprocess.run(["psql", url, "-q", "-c", "VACUUM ANALYZE cms_db.published, cms_db.published_words"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cdx-cms-scale-")
    procs = []
    pg_dir = None
    try:
        env = {}
        if args.backend == "postgres":
            if not args.database_url:
                pg_dir, args.database_url = pg_temp()
            env["CDX_DATABASE_URL"] = create_database(args.database_url, "cdx_cms_scale_")
        base = start_cdx(tmp, "cdx", ["--access-log", "false"], procs, env_extra=env)
        _, t = setup_tenant(base, password="bench-pass-1")
        h = {"X-API-Key": t["api_key"]}
        ct = call("POST", base + "/api/v1/cms/content-types", {"key": "article", "name": "Article", "fields": [
            {"key": "title", "type": "text", "required": True}, {"key": "views", "type": "integer"},
            {"key": "category", "type": "enum", "values": CATEGORIES}]}, h)
        pk = call("POST", base + "/api/v1/auth/api-keys", {"name": "web", "type": "publishable"}, h)["key"]

        t0 = time.time()
        if args.backend == "sqlite":
            fill_sqlite(os.path.join(tmp, "cdx", "cms_db.sqlite"), t["id"], ct["id"], args.entries)
        else:
            fill_postgres(env["CDX_DATABASE_URL"], t["id"], ct["id"], args.entries)
        print(f"{args.entries:,} published entries written in {time.time() - t0:.0f} s ({args.backend})\n")

        session = requests.Session()
        n = [0]

        rng = random.Random(11)

        def page(params):
            n[0] += 1  # a new query each time: fields= with a growing run of commas (skipped by the reader)
            q = {k: (v() if callable(v) else v) for k, v in params.items()}
            q.update(fields="title,views,category" + "," * (n[0] % 1000), limit=50)
            t1 = time.perf_counter()
            r = session.get(base + "/api/v1/cms/published/article", params=q, headers={"X-API-Key": pk}, timeout=120)
            ms = (time.perf_counter() - t1) * 1000
            assert r.status_code == 200 and len(r.json()["data"]) >= (1 if "q" in q else 50), r.text[:300]
            return ms

        word = lambda: rng.choice(VOCABULARY)

        queries = [
            ("newest first (default sort)", {}),
            ("filter[category]=guide, newest first", {"filter[category]": "guide"}),
            ("filter[views][gte]=500000, newest first", {"filter[views][gte]": "500000"}),
            ("sort=-views (a data field)", {"sort": "-views"}),
            ("filter[category]=guide, sort=-views", {"filter[category]": "guide", "sort": "-views"}),
            ("q=<a word> (about 1,500 matches), newest first", {"q": word}),
            ("q=<a word's first 5 letters>, sort=-views", {"q": lambda: word()[:-1], "sort": "-views"}),
            ("q=article <a word> (every entry and 1,500)", {"q": lambda: "article " + word()}),
            ("q=<a word>, filter[category]=guide", {"q": word, "filter[category]": "guide"}),
            ("q=article (every entry matches), newest first", {"q": "article"}),
        ]
        table_head("query (page of 50)", "p50 ms", "p99 ms")
        for name, params in queries:
            count = args.requests
            times = sorted(page(params) for _ in range(count))
            print(f"| {name} | {statistics.median(times):.1f} | {times[max(0, int(len(times) * 0.99) - 1)]:.1f} |")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_dir:
            pg_temp_stop(pg_dir)


if __name__ == "__main__":
    main()
