#!/usr/bin/python3
"""The event relay end to end (issue 12): a 100 000-row CRM CSV import, then how long until the platform event
log (GET /api/v1/events) shows its last event.

  bench/relay_bench.py                                             # SQLite, monolith and constellation
  bench/relay_bench.py --backend postgres --topology constellation --rows 100000 --runs 2

Each run gets a fresh server (`cdx serve`, or `cdx up`: the gateway with each module a process behind it,
where the CRM service's relay posts its batches to core's internal API) on fresh storage (SQLite in a temporary
data directory; PostgreSQL on a fresh database of --database-url or of a throwaway scripts/pg-temp server).
One tenant POSTs --rows contacts as CSV to /api/v1/crm/contacts/import, --chunk rows a request, one after
the other (the constellation's gateway gives a request 30 s); the newest event of the CRM's
outbox (GET /api/v1/crm/events) is then the import's last one, and the log is polled (every 10 ms) until its
newest crm.contact.created event of the tenant is that one: events move in order per outbox, so every earlier
one is there too.

Reported per run: the import's wall time; the drain lag (import answered -> last event in the log), with the
backlog then (events of the import not yet in the log, from the log's seq) over that lag, a lower bound of the
relay's rate since the lag includes the wait for its next wake-up; and rows / (import start -> last event in the
log), which the import's own speed bounds.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import CDX, FIXED_KEK, free_port_block, pg_temp_stop, storage_env  # noqa: E402
from crm_bench import contacts_csv  # noqa: E402

CONSTELLATION_PORTS = 8


class Server(benchlib.Server):
    """`cdx serve`, or `cdx up` (the constellation: the gateway on the port, the modules on the ones after it)."""

    def __init__(self, binary, storage, workdir, topology):
        port = free_port_block(CONSTELLATION_PORTS if topology == "constellation" else 1)
        up = topology == "constellation"
        super().__init__(binary, storage, workdir, kek=FIXED_KEK, command="up" if up else "serve", port=port,
                         env_extra={"CDX_PORT_BASE": str(port)} if up else None, until_ok=True)

    def tenant(self, slug):
        j = self.new_tenant(slug)
        return j["tenant"]["id"] if "tenant" in j else j["id"], j["api_key"]


def one_run(server, rows, chunk, run):
    tenant_id, key = server.tenant(f"relay-{run}-{os.urandom(3).hex()}")
    sizes = [min(chunk, rows - at) for at in range(0, rows, chunk)]
    bodies = [(n, contacts_csv(n, run * 1000 + i, f"r{run}x{i}x")) for i, n in enumerate(sizes)]
    session = requests.Session()
    t0 = time.perf_counter()
    for n, body in bodies:
        r = session.post(server.url + "/api/v1/crm/contacts/import", data=body, timeout=600,
                         headers={"X-API-Key": key, "Content-Type": "text/csv"})
        if r.status_code != 200 or r.json().get("created") != n:
            sys.exit(f"import answered {r.status_code}: {r.text[:500]}")
    t_import = time.perf_counter()

    def newest():
        r = session.get(server.url + "/api/v1/events", headers=server.sa, timeout=30,
                        params={"tenant_id": tenant_id, "type": "crm.contact.created", "limit": 1})
        r.raise_for_status()
        return r.json()["data"]

    at_import = newest()
    seq_at_import = at_import[0]["seq"] if at_import else None
    last = session.get(server.url + "/api/v1/crm/events", params={"limit": 1}, headers={"X-API-Key": key},
                       timeout=30).json()["data"][0]["id"]
    while True:
        data = newest()
        if data and data[0]["id"] == last:
            break
        if time.perf_counter() - t_import > 600:
            sys.exit("the last event did not reach the log within 10 minutes")
        time.sleep(0.01)
    t_done = time.perf_counter()
    # The backlog when the import answered: the events of the tenant's import not yet in the log (the log's
    # seq counts this tenant's events alone meanwhile).
    backlog = data[0]["seq"] - seq_at_import if seq_at_import is not None else rows
    out = {"import": t_import - t0, "lag": t_done - t_import, "rate": rows / (t_done - t0), "backlog": backlog,
           "drain_rate": backlog / (t_done - t_import)}
    print(f"  run {run + 1}: import {out['import']:.2f} s, last event in the log {out['lag']:.2f} s later "
          f"(backlog {backlog:,} events: {out['drain_rate']:,.0f} events/s); {out['rate']:,.0f} events/s from "
          f"the import's start", flush=True)
    return out


def run_one(backend, topology, args):
    workdir = tempfile.mkdtemp(prefix=f"cdx-relay-bench-{backend}-")
    storage, pg_dir = storage_env(backend, workdir, args.database_url, "cdx_relay_bench_", data_dir=True)
    print(f"=== {backend}, {topology}", flush=True)
    server = Server(args.binary, storage, workdir, topology)
    try:
        return [one_run(server, args.rows, args.chunk, run) for run in range(args.runs)]
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if pg_dir:
            pg_temp_stop(pg_dir)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=CDX)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--topology", choices=["monolith", "constellation", "both"], default="both")
    p.add_argument("--database-url", help="PostgreSQL server to create the bench database on (default: pg-temp)")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--chunk", type=int, default=20_000,
                   help="rows per import request (the gateway gives a request 30 s; the import is --rows in all)")
    args = p.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    topologies = ["monolith", "constellation"] if args.topology == "both" else [args.topology]
    results = {(b, t): run_one(b, t, args) for b in backends for t in topologies}
    print("\n=== summary")
    for (b, t), runs in results.items():
        best = min(runs, key=lambda r: r["lag"])
        print(f"{b}, {t}: {args.rows:,} rows: import {best['import']:.2f} s, drain lag {best['lag']:.2f} s "
              f"(backlog {best['backlog']:,}: {best['drain_rate']:,.0f} events/s), {best['rate']:,.0f} events/s from "
              f"the import's start (best of {len(runs)})")


if __name__ == "__main__":
    main()
