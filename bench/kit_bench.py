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
import base64
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from http_bench import call, free_port, wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CREATE_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, '{"name":"Bench company ' .. counter .. '"}')
end
"""


def wrk(url, duration, headers, script=None):
    cmd = ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx answers")
    return rps, float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]


def start(binary, tmp, name):
    port = free_port()
    env = dict(os.environ, CDX_BOOTSTRAP_SUPERADMIN="bench:bench-password", CDX_LOG_LEVEL="warn")
    if "CDX_KEK" not in env and "CDX_KEK_FILE" not in env:  # the key of a throwaway database
        env["CDX_KEK"] = base64.b64encode(os.urandom(32)).decode()
    proc = subprocess.Popen([binary, "serve", "--threads", "1", "--access-log", "false", "--port", str(port),
                             "--data-dir", os.path.join(tmp, name)], env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    token = call("POST", base + "/api/v1/auth/superadmin/login",
                 {"username": "bench", "password": "bench-password"})["access_token"]
    sa = {"Authorization": "Bearer " + token}
    call("POST", base + "/api/v1/plans", {"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000}, sa)
    call("POST", base + "/api/v1/tenants", {"name": "Bench", "slug": "bench", "plan": "bench",
                                            "admin_email": "a@bench.example.com", "admin_password": "bench-password"},
         sa)
    user = call("POST", base + "/api/v1/auth/login",
                {"email": "a@bench.example.com", "password": "bench-password", "tenant": "bench"})["access_token"]
    auth = {"Authorization": "Bearer " + user}
    first = None
    for i in range(2000):
        c = call("POST", base + "/api/v1/crm/contacts",
                 {"first_name": f"Bench{i}", "last_name": "Mark", "email": f"bench{i}@example.com"}, auth)
        first = first or c
    return proc, base, "Authorization: Bearer " + user, first["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(ROOT, "build/release/cdx"))
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
            proc, base, auth, contact = start(binary, tmp, name)
            procs.append(proc)
            servers[name] = (base, auth, contact)
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
            order = scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]
            for label, name, url, headers, script in order:
                results[(label, name)].append(wrk(url, args.duration, headers, script))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; "
              "cdx serve --threads 1 --access-log false, SQLite\n")
        print("| scenario | before req/s | after req/s | after p99 ms | after / before |")
        print("|---|---:|---:|---:|---:|")
        for label in ("create company", "read contact", "list 50 contacts"):
            b = statistics.median(x[0] for x in results[(label, "before")])
            a = statistics.median(x[0] for x in results[(label, "after")])
            p99 = statistics.median(x[1] for x in results[(label, "after")])
            print(f"| {label} | {b:,.0f} | {a:,.0f} | {p99:.2f} | {a / b:.2f} |")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
