#!/usr/bin/python3
"""Bulk work against everyone else (issue 14 item 6): what a large CSV import costs in memory, and what it
does to another tenant's writes.

  bench/bulk_bench.py                                          # SQLite, the current build, 3 runs
  bench/bulk_bench.py --binary before=/tmp/cdx-old --binary after=build/release/cdx --runs 3
  bench/bulk_bench.py --backend postgres --imports 3           # three imports at once (three tenants)

Each binary gets its storage (SQLite in a temporary data directory, or a fresh PostgreSQL database of
--database-url / a throwaway scripts/pg-temp server), and each run a fresh `cdx serve` on it. Per run: --imports tenants each POST one
--rows-row contacts CSV to /api/v1/crm/contacts/import at the same moment, while another tenant creates one
contact at a time (POST /api/v1/crm/contacts, keep-alive, one request in flight) from the moment the
imports start until they all answered.

Reported per run (then the first tenant's rows are exported: time to the first and the last byte, and the
server's peak RSS growth during the export):
- import: wall time of the slowest import request, the body size;
- memory: the server's peak RSS during the imports (VmHWM after resetting it through
  /proc/<pid>/clear_refs, and a 5 ms poll of VmRSS as a check) less its RSS just before, and that growth
  over the body size (all bodies together with --imports > 1);
- the other tenant's writes during the imports: count, p50, p99 and max latency at the client (Python
  requests included), and the same writes on an idle server before the imports for reference.
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CDX, FIXED_KEK, Server, percentile, pg_temp, pg_temp_stop, reset_peak_rss,  # noqa: E402
                      rss_kib, storage_env)
from crm_bench import FIRST, LAST, STAGES, contacts_csv  # noqa: E402


def wide_csv(n, seed, tag):
    """The bench's contacts with a long title and a note: about 320 bytes a row, 30 MiB for 100 000 rows."""
    rnd = random.Random(seed)
    out = ["first_name,last_name,email,title,lifecycle_stage,tags,custom.source,custom.note"]
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        title = " ".join(rnd.choice(LAST) for _ in range(20))[:180]
        note = "".join(rnd.choice("abcdefghij klmnop") for _ in range(60))
        out.append(f"{first},{last},{first.lower()}.{last.lower()}.{tag}{i}@{last.lower()[:4]}{i % 97}.example.com,"
                   f"{title},{rnd.choice(STAGES)},vip;{rnd.choice(['a', 'b', 'c'])},fair,{note}")
    return ("\n".join(out) + "\n").encode()


def writes(session, url, stop, out, tag):
    """One contact at a time until stop is set; latencies in ms into out."""
    i = 0
    while not stop.is_set():
        i += 1
        t = time.perf_counter()
        r = session.post(url + "/api/v1/crm/contacts", timeout=120,
                         json={"first_name": "Other", "last_name": f"Writer{i}", "email": f"w{tag}.{i}@other.example.com"})
        ms = (time.perf_counter() - t) * 1000
        if r.status_code != 201:
            sys.exit(f"the other tenant's write answered {r.status_code}: {r.text[:300]}")
        out.append(ms)


def one_run(server, args, run):
    make = wide_csv if args.wide else contacts_csv
    bodies = [make(args.rows, 100 + run * 10 + k, f"r{run}k{k}x") for k in range(args.imports)]
    keys = [server.tenant(f"bulk-{run}-{k}-{os.urandom(3).hex()}") for k in range(args.imports)]
    other = requests.Session()
    other.headers.update({"X-API-Key": server.tenant(f"other-{run}-{os.urandom(3).hex()}")})

    # The other tenant's writes on the idle server, for reference.
    idle = []
    stop = threading.Event()
    t = threading.Thread(target=writes, args=(other, server.url, stop, idle, f"idle{run}"))
    t.start()
    time.sleep(args.idle_seconds)
    stop.set()
    t.join()

    pid = server.proc.pid
    base = rss_kib(pid)
    reset_peak_rss(pid)
    peak_poll = [base]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak_poll[0] = max(peak_poll[0], rss_kib(pid))
            time.sleep(0.005)

    answers = [None] * args.imports

    def one_import(k):
        t0 = time.perf_counter()
        r = requests.post(server.url + "/api/v1/crm/contacts/import", data=bodies[k], timeout=900,
                          headers={"X-API-Key": keys[k], "Content-Type": "text/csv"})
        answers[k] = (r.status_code, time.perf_counter() - t0, r.text[:300])

    during = []
    stop = threading.Event()
    poller = threading.Thread(target=poll)
    writer = threading.Thread(target=writes, args=(other, server.url, stop, during, f"busy{run}"))
    importers = [threading.Thread(target=one_import, args=(k,)) for k in range(args.imports)]
    poller.start()
    for th in importers:
        th.start()
    time.sleep(0.05)  # the bodies are on their way: the writes measure the imports' work, not the upload
    writer.start()
    for th in importers:
        th.join()
    stop.set()
    writer.join()
    done.set()
    poller.join()
    peak = max(rss_kib(pid, "VmHWM"), peak_poll[0])
    for status, _, text in answers:
        if status != 200:
            sys.exit(f"import answered {status}: {text}")
    body_kib = sum(len(b) for b in bodies) / 1024
    idle.sort()
    during.sort()
    res = {"seconds": max(a[1] for a in answers), "body_mib": body_kib / 1024, "rss_base_mib": base / 1024,
           "rss_growth_mib": (peak - base) / 1024, "ratio": (peak - base) / body_kib,
           "idle_p50": percentile(idle, 50), "idle_p99": percentile(idle, 99), "n": len(during),
           "p50": percentile(during, 50) if during else 0, "p99": percentile(during, 99) if during else 0,
           "max": during[-1] if during else 0}
    res.update(export_of(server, keys[0], pid))
    print(f"  run {run + 1}: {args.imports} x {args.rows} rows ({res['body_mib']:.1f} MiB) in {res['seconds']:.2f} s; "
          f"RSS +{res['rss_growth_mib']:.0f} MiB = {res['ratio']:.2f}x body (from {res['rss_base_mib']:.0f} MiB); "
          f"other tenant's writes: idle p50 {res['idle_p50']:.1f} / p99 {res['idle_p99']:.1f} ms, during "
          f"n={res['n']} p50 {res['p50']:.1f} / p99 {res['p99']:.1f} / max {res['max']:.1f} ms; export of the "
          f"imported rows ({res['export_mib']:.1f} MiB): head {res['export_head_ms']:.1f} ms, first rows "
          f"{res['export_first_ms']:.1f} ms, all "
          f"{res['export_s']:.2f} s, RSS +{res['export_growth_mib']:.1f} MiB", flush=True)
    return res


def export_of(server, key, pid):
    """The imported tenant's contacts exported: time to the first byte, to the last, and the server's memory."""
    base = rss_kib(pid)
    reset_peak_rss(pid)
    t0 = time.perf_counter()
    first = None
    size = 0
    with requests.get(server.url + "/api/v1/crm/contacts/export", headers={"X-API-Key": key}, stream=True,
                      timeout=900) as r:
        head = time.perf_counter() - t0  # the status line and headers are in
        if r.status_code != 200:
            sys.exit(f"export answered {r.status_code}: {r.text[:300]}")
        for chunk in r.iter_content(chunk_size=65536):
            if first is None:
                first = time.perf_counter() - t0
            size += len(chunk)
    total = time.perf_counter() - t0
    return {"export_head_ms": head * 1000, "export_first_ms": first * 1000, "export_s": total, "export_mib": size / 1048576,
            "export_growth_mib": (rss_kib(pid, "VmHWM") - base) / 1024}


def storage_for(label, args):
    """Where a binary's server keeps its data: a temporary SQLite directory or a fresh PostgreSQL database."""
    workdir = tempfile.mkdtemp(prefix=f"cdx-bulk-bench-{label}-", dir=args.workdir)
    return workdir, storage_env(args.backend, workdir, args.database_url, "cdx_bulk_bench_")[0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", help="LABEL=PATH (repeatable; default after=build/release/cdx)")
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--database-url", help="PostgreSQL server to create the bench database on (default: pg-temp)")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--imports", type=int, default=1, help="imports at once, one tenant each")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--idle-seconds", type=float, default=2.0)
    p.add_argument("--wide", action="store_true", help="rows of about 320 bytes (30 MiB for 100 000) instead of 95")
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    binaries = [b.split("=", 1) for b in (args.binary or ["after=" + CDX])]
    pg_dir = None
    if args.backend == "postgres" and not args.database_url:
        pg_dir, args.database_url = pg_temp()
    stores = {label: storage_for(label, args) for label, _ in binaries}
    results = {label: [] for label, _ in binaries}
    try:
        # The binaries take turns run by run (the machine's load falls on each alike); each run is a fresh
        # server, so its memory is the import's and not what earlier runs left in its allocator.
        for run in range(args.runs):
            for label, binary in binaries:
                print(f"=== {label} ({binary}), {args.backend}, run {run + 1}", flush=True)
                # The storage outlives the server (a fresh one each run): the same KEK each time.
                server = Server(binary, stores[label][1], stores[label][0], kek=FIXED_KEK)
                try:
                    results[label].append(one_run(server, args, run))
                finally:
                    server.stop()
    finally:
        for workdir, _ in stores.values():
            shutil.rmtree(workdir, ignore_errors=True)
        if pg_dir:
            pg_temp_stop(pg_dir)
    print("\n=== summary (medians over runs)")
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{label}: {args.imports} x {args.rows} rows, {med['body_mib']:.1f} MiB: import {med['seconds']:.2f} s; "
              f"RSS growth {med['rss_growth_mib']:.0f} MiB = {med['ratio']:.2f}x body; other tenant's write "
              f"p50 {med['p50']:.1f} ms, p99 {med['p99']:.1f} ms, max {med['max']:.1f} ms "
              f"(idle p50 {med['idle_p50']:.1f}, p99 {med['idle_p99']:.1f}); export {med['export_mib']:.1f} MiB: head "
              f"{med['export_head_ms']:.1f} ms, first rows {med['export_first_ms']:.1f} ms, all {med['export_s']:.2f} s, RSS +{med['export_growth_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
