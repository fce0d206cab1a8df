#!/usr/bin/python3
"""Login throughput against the Argon2id limit, and /health latency while logins saturate the workers.

1. The raw Argon2id verification rate with 2 threads, measured in-process (cdx_benchmarks) in this run.
2. `cdx serve --threads 1 --workers 2`; wrk POSTs logins (-c8) for the duration: logins/s.
3. Same load again while a probe sends GET /health every 5 ms on a keep-alive connection: p50/p99.
Usage: bench/login_bench.py [--duration 10]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, call, start_cdx, stop_procs, wrk_rps  # noqa: E402

BENCH = os.path.join(ROOT, "build/release/cdx_benchmarks")


def argon2_rate():
    out = subprocess.run([BENCH, "--benchmark_filter=BM_Argon2idVerify/real_time/threads:2",
                          "--benchmark_min_time=3", "--benchmark_format=json"],
                         capture_output=True, text=True, check=True).stdout
    # items_per_second is the total rate of all threads (real_time is wall time per iteration overall).
    return json.loads(out)["benchmarks"][0]["items_per_second"]


def wrk_logins(url, lua, duration):
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{duration}s", "-s", lua, url],
                         capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError("logins failed: " + non2xx.group(1))
    return wrk_rps(out)


def probe(port, stop, samples):
    s = socket.create_connection(("127.0.0.1", port))
    req = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"
    while not stop.is_set():
        t0 = time.perf_counter()
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(body) < length:
            body += s.recv(65536)
        samples.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.005)
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("login_bench: wrk is missing (run scripts/setup)")
    tmp = tempfile.mkdtemp(prefix="cdx-login-bench-")
    procs = []
    try:
        raw = argon2_rate()
        # The caller's CDX_* variables reach the server (a CDX_KEK of theirs, say).
        base = start_cdx(tmp, "data", ["--workers", "2", "--access-log", "false"], procs, stdout=None,
                         strip_env=False)
        port = int(base.rsplit(":", 1)[1])
        token = call("POST", base + "/api/v1/auth/superadmin/login",
                     {"username": "bench", "password": "bench-password"}, timeout=30)["access_token"]
        call("POST", base + "/api/v1/tenants", {"name": "Bench", "slug": "bench", "admin_email": "a@bench.example.com",
                                                "admin_password": "bench-password"},
             {"Authorization": "Bearer " + token}, timeout=30)
        lua = os.path.join(tmp, "login.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"email":"a@bench.example.com","password":"bench-password","tenant":"bench"}\'\n')
        url = base + "/api/v1/auth/login"
        alone = wrk_logins(url, lua, args.duration)
        stop, samples = threading.Event(), []
        t = threading.Thread(target=probe, args=(port, stop, samples))
        t.start()
        loaded = wrk_logins(url, lua, args.duration)
        stop.set()
        t.join()
        samples.sort()
        p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
        print(f"Argon2id verify, 2 threads, in-process: {raw:.1f}/s")
        print(f"logins/s, --workers 2 (wrk -c8 -d{args.duration}s): {alone:.1f}  = {alone / raw:.2f}x the raw hash rate")
        print(f"logins/s with the /health probe running: {loaded:.1f}  = {loaded / raw:.2f}x")
        print(f"GET /health during logins: {len(samples)} samples, p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, "
              f"max {samples[-1]:.2f} ms")
    finally:
        stop_procs(procs, timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
