#!/usr/bin/python3
"""The live feed (GET /api/v1/events/stream): fan-out to many clients, and commit → client latency.

  bench/sse_bench.py [--clients 1000] [--rates 100,200,400] [--seconds 10] [--latency-rate 1000]

Starts `cdx serve` (SQLite, --threads 2) and bench/sse_client (build/release/sse_client: one process, asio,
a thousand streams). Fan-out: the SUPERADMIN's streams of one tenant's events while CSV imports make `rate`
contacts a second (the relay moves them into the log, the hub fans each out once per client); prints messages
delivered a second in total, and the server's RSS idle, with the clients connected, and after the load.
Latency: 100 streams while single POSTs make contacts at --latency-rate a second from 8 threads, each contact
stamped with the time its request was sent (so the figure is request sent → message received, an upper bound
of commit → client); p50 / p99 / max over the messages of 20 streams.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, percentile, rss_kib, setup_tenant, start_cdx, table_head, tenant_login  # noqa: E402

CLIENT = os.path.join(ROOT, "build/release/sse_client")


def rss_mb(pid):
    return rss_kib(pid) / 1024


def run_client(port, token, clients, seconds, query, samplers=20, dump=None):
    p = subprocess.Popen([CLIENT, "--port", str(port), "--token", token, "--clients", str(clients), "--seconds",
                          str(seconds), "--query", query, "--samplers", str(samplers)] + (["--dump", dump] if dump else []),
                         stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    return p, ready


def finish_client(p):
    out = p.stdout.read()
    p.wait()
    return json.loads(out.strip().splitlines()[-1])


def import_load(base, admin, rate, seconds, stop):
    """CSV imports of `rate` contacts, once a second, until stop."""
    s = requests.Session()
    s.headers.update({"Authorization": "Bearer " + admin, "Content-Type": "text/csv"})
    t_next = time.time()
    while not stop.is_set():
        body = "first_name,last_name,email\r\n" + "".join(
            f"L{time.time_ns()},Fan,{uuid.uuid4().hex}@fan.test\r\n" for _ in range(rate))
        r = s.post(base + "/api/v1/crm/contacts/import", data=body.encode(), timeout=60)
        assert r.status_code in (200, 201), r.text
        t_next += 1.0
        time.sleep(max(0.0, t_next - time.time()))


def post_load(base, admin, rate, stop, threads=8):
    """Single POSTs, `rate` a second in all, each contact stamped with its send time."""
    per = rate / threads
    sent = [0]
    returned = {}  # stamp → when the answer (after the commit) came back

    def worker():
        s = requests.Session()
        s.headers.update({"Authorization": "Bearer " + admin})
        t_next = time.time()
        while not stop.is_set():
            stamp = time.time_ns()
            r = s.post(base + "/api/v1/crm/contacts",
                       json={"first_name": f"L{stamp}", "last_name": "Lat",
                             "email": f"{uuid.uuid4().hex}@lat.test"}, timeout=10)
            returned[stamp] = time.time_ns()
            assert r.status_code == 201, r.text
            sent[0] += 1
            t_next += 1.0 / per
            time.sleep(max(0.0, t_next - time.time()))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    return ts, sent, returned


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rates", default="100,200,400", help="events a second for the fan-out runs")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--latency-rate", type=int, default=1000)
    ap.add_argument("--latency-clients", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not os.path.exists(CLIENT):
        sys.exit("build/release/sse_client is missing: cmake --build --preset release --target sse_client")
    tmp = tempfile.mkdtemp(prefix="cdx-sse-")
    procs = []
    try:
        # A thousand streams from one address: no per-client connection cap.
        base = start_cdx(tmp, "data", [], procs, threads=args.threads,
                         env_extra={"CDX_ACCESS_LOG": "false", "CDX_MAX_CONNECTIONS_PER_CLIENT": "0"})
        proc, port = procs[0], int(base.rsplit(":", 1)[1])
        sa, tenant = setup_tenant(base)
        admin = tenant_login(base)
        query = "tenant_id=" + tenant["id"]
        table_head("run", "clients", "events/s made", "messages delivered/s", "RSS idle → connected → after (MB)",
                   "dropped", left=6)
        for rate in [int(r) for r in args.rates.split(",")]:
            idle = rss_mb(proc.pid)
            p, ready = run_client(port, sa, args.clients, args.seconds + 2, query)
            connected = rss_mb(proc.pid)
            stop = threading.Event()
            t = threading.Thread(target=import_load, args=(base, admin, rate, args.seconds, stop))
            t.start()
            res = finish_client(p)
            stop.set()
            t.join()
            after = rss_mb(proc.pid)
            print(f"| fan-out | {ready['ready']} | {rate} | {res['msgs_per_s']:.0f} | {idle:.0f} → {connected:.0f} → "
                  f"{after:.0f} | {res['dropped']} |", flush=True)
            time.sleep(1)

        dump = os.path.join(tmp, "arrivals.txt")
        p, ready = run_client(port, sa, args.latency_clients, args.seconds, query, samplers=20, dump=dump)
        stop = threading.Event()
        ts, sent, returned = post_load(base, admin, args.latency_rate, stop)
        res = finish_client(p)
        stop.set()
        for t in ts:
            t.join()
        # The first stream's messages against the time each request's answer came back (after its commit): a
        # lower bound of commit → client, as request sent → message is an upper one.
        after_answer, request = [], []
        with open(dump) as f:
            for line in f:
                stamp, at = map(int, line.split())
                if stamp in returned:
                    after_answer.append((at - returned[stamp]) / 1e6)
                    request.append((returned[stamp] - stamp) / 1e6)

        def pct(xs, q):
            return percentile(xs, q) if xs else float("nan")

        print()
        table_head("latency run", "streams", "events/s made", "samples", "p50 ms", "p99 ms", "max ms", left=7)
        print(f"| request sent → message received (upper bound) | {ready['ready']} | {sent[0] / args.seconds:.0f} | "
              f"{res['latency_samples']} | {res['latency_p50_ms']:.1f} | {res['latency_p99_ms']:.1f} | "
              f"{res['latency_max_ms']:.1f} |")
        print(f"| answer received → message received (lower bound) | 1 | | {len(after_answer)} | "
              f"{pct(after_answer, 50):.1f} | {pct(after_answer, 99):.1f} | {max(after_answer, default=0):.1f} |")
        print(f"| the POST itself (sent → answer) | | | {len(request)} | {pct(request, 50):.1f} | "
              f"{pct(request, 99):.1f} | {max(request, default=0):.1f} |")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
