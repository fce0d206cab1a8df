#!/usr/bin/python3
"""The kit costs nothing: CRM create, read and list throughput of two cdx binaries in one run — the build
before the CRM moved onto the module kit and the build after — on the same machine, in interleaved rounds.

Each binary serves on SQLite with `--threads 1 --access-log false`; wrk -t1 -c64 drives
  - POST /api/v1/crm/companies (a unique name per request, durable: acknowledged after the commit),
  - GET /api/v1/crm/contacts/{id} (Bearer JWT),
  - GET /api/v1/crm/contacts?limit=50 (Bearer JWT, a tenant of 2 000 contacts).
Prints medians and after/before ratios.
Usage: bench/kit_bench.py --before /path/to/old/cdx [--after build/release/cdx] [--duration 5] [--rounds 3]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CDX, call, rotated, setup_tenant, start_cdx, stop_procs, table_head,  # noqa: E402
                      tenant_login, wrk)

CREATE_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, '{"name":"Bench company ' .. counter .. '"}')
end
"""


def start(binary, tmp, name, procs):
    # The caller's CDX_* variables reach the server (a CDX_KEK of theirs, say).
    base = start_cdx(tmp, name, ["--access-log", "false"], procs, binary=binary, stdout=None, strip_env=False)
    setup_tenant(base)
    user = tenant_login(base)
    auth = {"Authorization": "Bearer " + user}
    first = None
    for i in range(2000):
        c = call("POST", base + "/api/v1/crm/contacts",
                 {"first_name": f"Bench{i}", "last_name": "Mark", "email": f"bench{i}@example.com"}, auth)
        first = first or c
    return base, "Authorization: Bearer " + user, first["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=CDX)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("kit_bench: wrk is missing (run scripts/setup)")
    tmp = tempfile.mkdtemp(prefix="cdx-kit-bench-")
    lua = os.path.join(tmp, "create.lua")
    with open(lua, "w") as f:
        f.write(CREATE_LUA)
    procs = []
    try:
        servers = {}
        for name, binary in (("before", args.before), ("after", args.after)):
            servers[name] = start(binary, tmp, name, procs)
        scenarios = []
        for label, path in (("create company", "/api/v1/crm/companies"),
                            ("read contact", "/api/v1/crm/contacts/{id}"),
                            ("list 50 contacts", "/api/v1/crm/contacts?limit=50")):
            for name in ("before", "after"):
                base, auth, contact = servers[name]
                url = base + path.replace("{id}", contact)
                headers = (auth, "Content-Type: application/json")
                script = lua if label.startswith("create") else None
                scenarios.append((label, name, url, headers, script))
        results = {(label, name): [] for label, name, _, _, _ in scenarios}
        for r in range(args.rounds):
            for label, name, url, headers, script in rotated(scenarios, r):
                results[(label, name)].append(wrk(url, args.duration, headers, script=script))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; "
              "cdx serve --threads 1 --access-log false, SQLite\n")
        table_head("scenario", "before req/s", "after req/s", "after p99 ms", "after / before")
        for label in ("create company", "read contact", "list 50 contacts"):
            b = statistics.median(x[0] for x in results[(label, "before")])
            a = statistics.median(x[0] for x in results[(label, "after")])
            p99 = statistics.median(x[1] for x in results[(label, "after")])
            print(f"| {label} | {b:,.0f} | {a:,.0f} | {p99:.2f} | {a / b:.2f} |")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
