#!/usr/bin/python3
"""/health while one client holds its connection cap (issue 14 item 2).

  bench/hold_bench.py [--requests 2000]

Starts `cdx serve --threads 1` (SQLite) with its default caps (256 connections per client address). Measures
GET /health from 127.0.0.1 (one keep-alive connection, then a new connection per request), first on the idle
server, then while another client (127.0.0.3) holds 256 connections, each sending a header a byte at a time,
and keeps opening more, which the server refuses with 503. Prints p50 / p99 / max in ms for each phase.
"""
import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import percentile, start_cdx, stop_procs, table_head  # noqa: E402


def connect_from(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def measure(base, n):
    keep, fresh = [], []
    session = requests.Session()
    for _ in range(n):
        t = time.perf_counter()
        assert session.get(base + "/health", timeout=5).status_code == 200
        keep.append((time.perf_counter() - t) * 1000)
    for _ in range(n // 4):
        t = time.perf_counter()
        assert requests.get(base + "/health", timeout=5, headers={"Connection": "close"}).status_code == 200
        fresh.append((time.perf_counter() - t) * 1000)
    return keep, fresh


def show(name, xs):
    print(f"| {name} | {percentile(xs, 50):.2f} | {percentile(xs, 99):.2f} | {max(xs):.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--cap", type=int, default=256, help="the server's per-client cap (its default)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cdx-hold-")
    procs = []
    held = []
    stop = threading.Event()
    try:
        base = start_cdx(tmp, "cdx", ["--access-log", "false"], procs)
        port = int(base.rsplit(":", 1)[1])
        idle_keep, idle_fresh = measure(base, args.requests)

        for _ in range(args.cap):
            held.append(connect_from(port, "127.0.0.3"))
        refused = [0]

        def trickle():  # a header a byte at a time on every held connection
            i = 0
            line = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100000
            while not stop.is_set():
                for s in held:
                    try:
                        s.send(line[i:i + 1])
                    except OSError:
                        pass
                i += 1
                time.sleep(0.2)

        def knock():  # and keeps asking for more
            while not stop.is_set():
                try:
                    s = connect_from(port, "127.0.0.3")
                    s.settimeout(2)
                    if s.recv(64).startswith(b"HTTP/1.1 503"):
                        refused[0] += 1
                    s.close()
                except OSError:
                    pass

        threads = [threading.Thread(target=trickle), threading.Thread(target=knock)]
        for t in threads:
            t.start()
        time.sleep(1)
        busy_keep, busy_fresh = measure(base, args.requests)
        stop.set()
        for t in threads:
            t.join()
        print(f"cap {args.cap} held by 127.0.0.3 (a header byte every 0.2 s on each); {refused[0]} further "
              f"connections of it refused with 503 during the measurement\n")
        table_head("GET /health from another client", "p50 ms", "p99 ms", "max ms")
        show("idle server, keep-alive", idle_keep)
        show("idle server, new connection each", idle_fresh)
        show("cap held, keep-alive", busy_keep)
        show("cap held, new connection each", busy_fresh)
    finally:
        stop.set()
        for s in held:
            s.close()
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
