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
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDX = os.path.join(ROOT, "build/release/cdx")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wrk(url, duration, headers=()):
    cmd = ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx answers")
    return rps, float(p99.group(1)) * scale


def start_nginx(tmp, name, access_log, procs):
    """nginx from bench/nginx.conf in tmp/name; access_log is the directive's value ("off" or a file and format)."""
    root = os.path.join(tmp, name)
    os.makedirs(root)
    port = free_port()
    conf = open(os.path.join(ROOT, "bench/nginx.conf")).read()
    conf = conf.replace("NGINX_DIR", root).replace("NGINX_PORT", str(port))
    conf = conf.replace("access_log off;", f"access_log {access_log};")
    with open(os.path.join(root, "nginx.conf"), "w") as f:
        f.write(conf)
    procs.append(subprocess.Popen(["nginx", "-c", os.path.join(root, "nginx.conf"), "-p", root]))
    url = f"http://127.0.0.1:{port}/"
    wait_http(url)
    return url


def start_cdx(tmp, name, args, procs, binary=CDX, stdout=subprocess.DEVNULL, env_extra=None):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
    env.update(CDX_BOOTSTRAP_SUPERADMIN="bench:bench-password", CDX_LOG_LEVEL="warn")
    env.update(env_extra or {})
    if "CDX_KEK" not in env and "CDX_KEK_FILE" not in env:  # the key of a throwaway database
        env["CDX_KEK"] = base64.b64encode(os.urandom(32)).decode()
    procs.append(subprocess.Popen([binary, "serve", "--threads", "1", *args, "--port", str(port),
                                   "--data-dir", os.path.join(tmp, name)], env=env, stdout=stdout))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    return base


def setup_cdx(base, nginx):
    """Creates the bench tenant, user and contact on a cdx; answers its scenarios (nginx first)."""
    token = call("POST", base + "/api/v1/auth/superadmin/login",
                 {"username": "bench", "password": "bench-password"})["access_token"]
    # The load is far above any real plan's limit: the bench tenant gets a plan that does not bind
    # (the limiter still runs on every request and adds its headers).
    call("POST", base + "/api/v1/plans", {"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000},
         {"Authorization": "Bearer " + token})
    tenant = call("POST", base + "/api/v1/tenants",
                  {"name": "Bench", "slug": "bench", "plan": "bench", "admin_email": "a@bench.example.com",
                   "admin_password": "bench-password"}, {"Authorization": "Bearer " + token})
    user_token = call("POST", base + "/api/v1/auth/login",
                      {"email": "a@bench.example.com", "password": "bench-password", "tenant": "bench"})["access_token"]

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
            for pair, name, url, headers in scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]:
                results[(pair, name)].append(wrk(url, args.duration, headers))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; cdx serve --threads 1\n")
        print("| logs | scenario | req/s | p99 ms | × nginx (same logs) |")
        print("|---|---|---:|---:|---:|")
        for pair, name, _, _ in scenarios:
            ref = statistics.median(r[0] for r in results[(pair, "nginx return 200")])
            rps = statistics.median(r[0] for r in results[(pair, name)])
            p99 = statistics.median(r[1] for r in results[(pair, name)])
            print(f"| {pair} | {name} | {rps:,.0f} | {p99:.2f} | {rps / ref:.2f} |")
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
