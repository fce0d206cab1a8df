#!/usr/bin/python3
"""HTTP benchmark: cdx (--threads 1) against nginx (1 worker, `return 200` with a small JSON body).

Two pairs, each compared within itself: both access logs off (`cdx --access-log false` vs nginx
`access_log off`), and both on, to a file in a temporary directory (cdx's default access log with
`--access-log-file` vs nginx `access_log <file> combined buffer=64k`).
Runs wrk -t1 -c64 in interleaved rounds (order rotated every round) so drift hits all alike, and
prints a markdown table of median requests/s, p99 latency and the ratio to the nginx of the same pair.
With --baseline BINARY, an older cdx joins both pairs (in the logs-on pair its access log goes to stdout,
redirected to a file: older builds know no --access-log-file), to measure a change in the same run.
Usage: bench/http_bench.py [--duration 5] [--rounds 3] [--only logs-off|logs-on] [--baseline BINARY]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (call, rotated, setup_tenant, start_cdx, start_nginx, stop_procs, table_head,  # noqa: E402
                      tenant_login, wrk)


def setup_cdx(base, nginx):
    """Creates the bench tenant, user and contact on a cdx; answers its scenarios (nginx first)."""
    # The load is far above any real plan's limit: the bench tenant gets a plan that does not bind
    # (the limiter still runs on every request and adds its headers).
    _, tenant = setup_tenant(base)
    user_token = tenant_login(base)

    contact = call("POST", base + "/api/v1/crm/contacts",
                   {"first_name": "Bench", "last_name": "Mark", "email": "bench@example.com"},
                   {"Authorization": "Bearer " + user_token})
    return [
        ("nginx return 200", nginx, ()),
        ("cdx GET /health", base + "/health", ()),
        ("cdx GET /api/v1/auth/me (X-API-Key)", base + "/api/v1/auth/me", ("X-API-Key: " + tenant["api_key"],)),
        ("cdx GET /api/v1/auth/me (Bearer JWT)", base + "/api/v1/auth/me", ("Authorization: Bearer " + user_token,)),
        ("cdx GET /api/v1/crm/contacts/{id} (Bearer JWT, SQLite)", base + "/api/v1/crm/contacts/" + contact["id"],
         ("Authorization: Bearer " + user_token,)),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("logs-off", "logs-on"), help="run one pair only")
    ap.add_argument("--baseline", help="an older cdx binary to add to both pairs")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"http_bench: {tool} is missing (run scripts/setup)")

    tmp = tempfile.mkdtemp(prefix="cdx-bench-")
    procs = []
    try:
        scenarios = []  # (pair, name, url, headers)
        if args.only != "logs-on":
            nginx = start_nginx(tmp, "nginx", "off", procs)
            base = start_cdx(tmp, "cdx", ["--access-log", "false"], procs)
            scenarios += [("logs-off", name, url, headers) for name, url, headers in setup_cdx(base, nginx)]
            if args.baseline:
                base_old = start_cdx(tmp, "baseline-off", ["--access-log", "false"], procs, binary=args.baseline)
                scenarios += [("logs-off", name.replace("cdx", "baseline cdx", 1), url, headers)
                              for name, url, headers in setup_cdx(base_old, nginx)[1:] if "crm" not in url]
        if args.only != "logs-off":
            nginx_log = start_nginx(tmp, "nginx-log", f"{tmp}/nginx-log/access.log combined buffer=64k", procs)
            # cdx's default access log (on), written to a file instead of stdout.
            base_log = start_cdx(tmp, "cdx-log", ["--access-log-file", os.path.join(tmp, "cdx-access.log")], procs)
            scenarios += [("logs-on", name, url, headers) for name, url, headers in setup_cdx(base_log, nginx_log)
                          if "crm" not in url and "Bearer" not in name]
            if args.baseline:
                with open(os.path.join(tmp, "baseline-access.log"), "wb") as log:
                    base_old = start_cdx(tmp, "baseline", [], procs, binary=args.baseline, stdout=log)
                scenarios += [("logs-on", name.replace("cdx", "baseline cdx", 1), url, headers)
                              for name, url, headers in setup_cdx(base_old, nginx_log)[1:]
                              if "crm" not in url and "Bearer" not in name]

        results = {(pair, name): [] for pair, name, _, _ in scenarios}
        for _, _, url, headers in scenarios:  # warm-up
            wrk(url, 1, headers)
        for r in range(args.rounds):
            # Rotate the order each round so no scenario always runs first or last.
            for pair, name, url, headers in rotated(scenarios, r):
                results[(pair, name)].append(wrk(url, args.duration, headers))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; cdx serve --threads 1\n")
        table_head("logs", "scenario", "req/s", "p99 ms", "× nginx (same logs)", left=2)
        for pair, name, _, _ in scenarios:
            ref = statistics.median(r[0] for r in results[(pair, "nginx return 200")])
            rps = statistics.median(r[0] for r in results[(pair, name)])
            p99 = statistics.median(r[1] for r in results[(pair, name)])
            print(f"| {pair} | {name} | {rps:,.0f} | {p99:.2f} | {rps / ref:.2f} |")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
