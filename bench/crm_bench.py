#!/usr/bin/python3
"""CRM benchmarks (issue 5): a 100 000-row contacts CSV import, and contact-list latency over many tenants.

  bench/crm_bench.py                                   # both backends, full scale (1 000 tenants x 10 000)
  bench/crm_bench.py --backend sqlite --tenants 20 --per-tenant 2000 --requests 300   # a quick smoke run

Each backend gets a fresh `cdx serve`: SQLite in a temporary data directory, PostgreSQL on a fresh
database of --database-url (or of a throwaway server from scripts/pg-temp when none is given).

import: one tenant, one POST /api/v1/crm/contacts/import of --import-rows rows (about 10 MiB of CSV),
  wall time of the request, --import-runs times (a new tenant each time).
list: --tenants tenants created through the API, --per-tenant contacts each imported through the import
  endpoint (one request per tenant: the data goes in the way a customer's would). Then single-client,
  keep-alive GET /api/v1/crm/contacts?limit=50&lifecycle_stage=customer, plain and with q (a last name,
  a first-name fragment, an email fragment), --requests requests per kind spread over --query-tenants
  tenants, after a warm-up. Latency is measured at the client (Python requests included).
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import CDX, Server, drop_database, percentile, pg_temp_stop, storage_env  # noqa: E402

STAGES = ["lead"] * 40 + ["qualified"] * 25 + ["customer"] * 25 + ["churned"] * 10
FIRST = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gina", "Hugo", "Ida", "Jon", "Kira", "Liam", "Mia", "Nils",
         "Olga", "Paul", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Vic", "Wes", "Xena", "Yuri", "Zoe"]
SYLLABLES = ["ba", "ker", "mo", "ri", "son", "tal", "ve", "lin", "dor", "ga", "ne", "sto", "wu", "pel", "kas",
             "tri", "mon", "es", "ha", "lo"]
# 20^3 = 8 000 last names: a last name matches about 1 contact in 8 000 (one or two per tenant).
LAST = [(a + b + c).capitalize() for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]


def contacts_csv(n, seed, tag):
    rnd = random.Random(seed)
    out = ["first_name,last_name,email,phone,title,lifecycle_stage,tags,custom.source"]
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        out.append(f"{first},{last},{first.lower()}.{last.lower()}.{tag}{i}@{last.lower()[:4]}{i % 97}.example.com,"
                   f"+49 30 {rnd.randrange(10**6, 10**7)},{rnd.choice(['CEO', 'CTO', 'Buyer', 'Engineer'])},"
                   f"{rnd.choice(STAGES)},{rnd.choice(['vip', 'fair', 'web'])};{rnd.choice(['a', 'b', 'c'])},"
                   f"{rnd.choice(['fair', 'web', 'referral'])}")
    return ("\n".join(out) + "\n").encode()


def post_import(server, key, body, timeout=600):
    t0 = time.perf_counter()
    r = requests.post(server.url + "/api/v1/crm/contacts/import", data=body, timeout=timeout,
                      headers={"X-API-Key": key, "Content-Type": "text/csv"})
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        sys.exit(f"import answered {r.status_code}: {r.text[:500]}")
    return elapsed, r.json()


def bench_import(server, args):
    body = contacts_csv(args.import_rows, 1, "imp")
    times = []
    for run in range(args.import_runs):
        key = server.tenant(f"imp-{run}-{os.urandom(3).hex()}")
        elapsed, report = post_import(server, key, body)
        assert report["created"] == args.import_rows, report["created"]
        times.append(elapsed)
        print(f"  import run {run + 1}: {args.import_rows} rows, {len(body) / 2**20:.1f} MiB: {elapsed:.2f} s",
              flush=True)
    return {"rows": args.import_rows, "mib": len(body) / 2**20, "runs": times, "best": min(times),
            "median": statistics.median(times)}


def bench_list(server, args, pg_url=None):
    t0 = time.perf_counter()
    keys = []
    for t in range(args.tenants):
        keys.append(server.tenant(f"list-{t}-{os.urandom(3).hex()}"))
    t_tenants = time.perf_counter() - t0
    print(f"  {args.tenants} tenants created in {t_tenants:.1f} s", flush=True)
    t1 = time.perf_counter()
    for t, key in enumerate(keys):
        post_import(server, key, contacts_csv(args.per_tenant, 1000 + t, f"t{t}x"))
        if (t + 1) % max(1, args.tenants // 20) == 0:
            done = (t + 1) * args.per_tenant
            el = time.perf_counter() - t1
            print(f"  imported {done:,} contacts in {el:.0f} s ({done / el:,.0f} rows/s)", flush=True)
    t_import = time.perf_counter() - t1
    total = args.tenants * args.per_tenant
    print(f"  {total:,} contacts imported in {t_import:.0f} s ({total / t_import:,.0f} rows/s)", flush=True)
    if pg_url:  # what autovacuum would do after a bulk load, done now so every run measures the same state
        subprocess.run(["psql", pg_url, "-q", "-c", "VACUUM (ANALYZE) crm_db.contacts"], check=True)

    rnd = random.Random(7)
    chosen = rnd.sample(keys, min(args.query_tenants, len(keys)))
    kinds = {
        "customer, no q": lambda: {},
        "customer, q=last name": lambda: {"q": rnd.choice(LAST).lower()},
        "customer, q=first-name fragment": lambda: {"q": rnd.choice(FIRST).lower()[:3]},
        "customer, q=email fragment": lambda: {"q": rnd.choice(SYLLABLES) + rnd.choice(SYLLABLES) + "."},
    }
    sessions = {k: requests.Session() for k in chosen}
    for s, k in zip(sessions.values(), chosen):
        s.headers.update({"X-API-Key": k})
    results = {}
    for name, extra in kinds.items():
        lat = []
        for i in range(args.requests + args.warmup):
            key = chosen[i % len(chosen)]
            params = {"limit": "50", "lifecycle_stage": "customer", **extra()}
            t = time.perf_counter()
            r = sessions[key].get(server.url + "/api/v1/crm/contacts", params=params, timeout=30)
            ms = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                sys.exit(f"list answered {r.status_code}: {r.text[:300]}")
            if i >= args.warmup:
                lat.append(ms)
        lat.sort()
        results[name] = {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                         "max": lat[-1], "n": len(lat)}
        print(f"  {name:34s} p50 {results[name]['p50']:6.2f} ms  p90 {results[name]['p90']:6.2f}  "
              f"p99 {results[name]['p99']:6.2f}  max {results[name]['max']:6.2f}  (n={len(lat)})", flush=True)
    return {"tenants": args.tenants, "per_tenant": args.per_tenant, "tenants_s": t_tenants, "import_s": t_import,
            "latency": results}


def run_backend(backend, args):
    workdir = tempfile.mkdtemp(prefix=f"cdx-crm-bench-{backend}-", dir=args.workdir)
    storage, pg_dir = storage_env(backend, workdir, args.database_url, "cdx_crm_bench_")
    pg_url = storage.get("CDX_DATABASE_URL")
    print(f"=== {backend}", flush=True)
    server = Server(args.binary, storage, workdir)
    out = {}
    try:
        if not args.skip_import:
            out["import"] = bench_import(server, args)
        if not args.skip_list:
            out["list"] = bench_list(server, args, pg_url)
    finally:
        server.stop()
        if not args.keep:
            if pg_url and not pg_dir:
                drop_database(args.database_url, pg_url)
            shutil.rmtree(workdir, ignore_errors=True)
        if pg_dir and not args.keep:
            pg_temp_stop(pg_dir)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=CDX)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--database-url", help="PostgreSQL server to create the bench database on (default: pg-temp)")
    p.add_argument("--import-rows", type=int, default=100_000)
    p.add_argument("--import-runs", type=int, default=3)
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--per-tenant", type=int, default=10_000)
    p.add_argument("--query-tenants", type=int, default=5)
    p.add_argument("--requests", type=int, default=2000, help="measured requests per query kind")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--skip-import", action="store_true")
    p.add_argument("--skip-list", action="store_true")
    p.add_argument("--workdir", default=None, help="where the SQLite data and the server log go (default: /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the data (and the PostgreSQL server) afterwards")
    args = p.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {b: run_backend(b, args) for b in backends}
    print("\n=== summary")
    for b, r in results.items():
        if "import" in r:
            i = r["import"]
            print(f"{b}: import {i['rows']:,} rows ({i['mib']:.1f} MiB): best {i['best']:.2f} s, "
                  f"median {i['median']:.2f} s (target < 5 s)")
        if "list" in r:
            l = r["list"]
            print(f"{b}: list over {l['tenants']:,} tenants x {l['per_tenant']:,} contacts "
                  f"(generated in {l['tenants_s'] + l['import_s']:.0f} s):")
            for name, v in l["latency"].items():
                print(f"    {name:34s} p50 {v['p50']:.2f} ms, p99 {v['p99']:.2f} ms (target p99 < 10 ms)")


if __name__ == "__main__":
    main()
