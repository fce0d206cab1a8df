#!/usr/bin/python3
"""Webhooks (issue 12): fan-out and delivery throughput to a local receiver, and one tenant's delivery latency
with and without another tenant's dead (hanging) endpoint.

  bench/webhooks_bench.py                       # SQLite, build/release/cdx
  bench/webhooks_bench.py --backend postgres    # a throwaway PostgreSQL (scripts/pg-temp)
  bench/webhooks_bench.py --tls                 # the receiver over HTTPS (a self-signed localhost certificate)

Throughput: one `cdx serve` (webhooks_allow_loopback on; the receiver is nginx answering `return 204` on
127.0.0.1), one tenant with --endpoints endpoints subscribed to `*`. --events events are written straight into
the event log (cdx_db.events, one transaction: the bench measures the webhooks, not the relay in front of them);
the webhooks' reader fans them out into events x endpoints deliveries and the sender posts each, signed, on the
connections it keeps alive to the receiver. Time from the insert to the last delivery recorded `succeeded`; deliveries/s.

Latency: tenant B's endpoint is a Python receiver that stamps each arrival; B sends --probes test events
(POST …/test) one at a time; latency = arrival − the moment before the POST. Once alone, once while tenant A
has --dead-backlog deliveries queued to an endpoint that accepts connections and never answers (each attempt
hangs for the 15 s timeout). p50/p99 both times.
"""
import argparse
import http.server
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import CDX, pg_temp_stop, start_nginx, stop_procs, storage_env  # noqa: E402

# The receiver of the throughput run: nginx answering 204 (benchlib.start_nginx fills in NGINX_DIR, NGINX_PORT).
NGINX_CONF = """worker_processes 1;
daemon off;
pid NGINX_DIR/nginx.pid;
error_log NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path NGINX_DIR/body;
  proxy_temp_path NGINX_DIR/proxy;
  fastcgi_temp_path NGINX_DIR/fastcgi;
  uwsgi_temp_path NGINX_DIR/uwsgi;
  scgi_temp_path NGINX_DIR/scgi;
  server { listen 127.0.0.1:NGINX_PORT; location / { return 204; } }
}
"""


class Nginx:
    def __init__(self, workdir, tls=False):
        self.procs = []
        self.cert = None
        conf = NGINX_CONF
        if tls:
            # A self-signed certificate for localhost, which the server trusts through SSL_CERT_FILE.
            self.cert, key = os.path.join(workdir, "localhost.pem"), os.path.join(workdir, "localhost.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost", "-keyout", key, "-out", self.cert],
                           check=True, capture_output=True)
            conf = conf.replace("listen 127.0.0.1:NGINX_PORT;",
                                f"listen 127.0.0.1:NGINX_PORT ssl; ssl_certificate {self.cert}; "
                                f"ssl_certificate_key {key};")
        url = start_nginx(workdir, "nginx", "off", self.procs, conf=conf, stderr=subprocess.DEVNULL,
                          scheme="https" if tls else "http")
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])
        self.base = f"https://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"

    def stop(self):
        stop_procs(self.procs)


class Stamper:
    """A receiver answering 204 and stamping when each webhook-id arrived."""

    def __init__(self):
        arrivals = self.arrivals = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                arrivals[self.headers["webhook-id"]] = time.time()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Dead:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)


class Server(benchlib.Server):
    def __init__(self, binary, storage, workdir, cert=None):
        env = {"CDX_WEBHOOKS_ALLOW_LOOPBACK": "true"}
        if cert:
            env["SSL_CERT_FILE"] = cert
        super().__init__(binary, storage, workdir, env_extra=env)

    def tenant(self):
        j = self.new_tenant("wh" + uuid.uuid4().hex[:8])
        return j["id"], {"X-API-Key": j["api_key"]}

    def endpoint(self, key, url, types=("*",)):
        r = requests.post(self.url + "/api/v1/webhooks/endpoints", headers=key, timeout=30,
                          json={"url": url, "event_types": list(types)})
        r.raise_for_status()
        return r.json()["id"]


class Sql:
    """Reads and writes cdx_db beside the server: sqlite3 on the file, psql on PostgreSQL."""

    def __init__(self, backend, where):
        self.backend, self.where = backend, where

    def run(self, sql, rows=None):
        if self.backend == "sqlite":
            db = sqlite3.connect(os.path.join(self.where, "cdx_db.sqlite"), timeout=60)
            try:
                if rows is not None:
                    db.executemany(sql, rows)
                    db.commit()
                    return None
                return db.execute(sql).fetchall()
            finally:
                db.close()
        if rows is not None:  # one multi-row INSERT: sql ends with VALUES
            quote = lambda v: "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
            sql += " " + ",".join("(" + ",".join(quote(v) for v in r) + ")" for r in rows)
        out = subprocess.run(["psql", self.where, "-qAt", "-v", "ON_ERROR_STOP=1"], input=sql,
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("|")) for line in out.splitlines() if line]


def throughput(server, sql, backend, events, endpoints, nginx):
    tenant, key = server.tenant()
    for _ in range(endpoints):
        server.endpoint(key, f"{nginx.base}/hook")
    time.sleep(0.5)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() + 1))
    rows = [(str(uuid.uuid4()), tenant, "bench.thing.happened", "bench_db", None, None,
             json.dumps({"thing": {"id": i}}), now, now) for i in range(events)]
    table = "cdx_db.events" if backend == "postgres" else "events"
    t0 = time.time()
    if backend == "sqlite":
        sql.run(f"INSERT INTO events (id, tenant_id, type, source, subject, actor, payload, created_at, recorded_at) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    else:
        for i in range(0, len(rows), 2000):
            chunk = rows[i:i + 2000]
            sql.run(f"INSERT INTO {table} (id, tenant_id, type, source, subject, actor, payload, created_at, "
                    f"recorded_at) VALUES", chunk)
    want = events * endpoints
    dtable = "cdx_db.webhook_deliveries" if backend == "postgres" else "webhook_deliveries"
    done = 0
    while time.time() - t0 < 600:
        done = int(sql.run(f"SELECT COUNT(*) FROM {dtable} WHERE tenant_id = '{tenant}' AND status = 'succeeded'")[0][0])
        if done >= want:
            break
        time.sleep(0.05)
    elapsed = time.time() - t0
    failed = int(sql.run(f"SELECT COUNT(*) FROM {dtable} WHERE tenant_id = '{tenant}' AND status <> 'succeeded'")[0][0])
    return {"deliveries": done, "seconds": elapsed, "per_second": done / elapsed, "not_succeeded": failed}


def latency(server, probes, dead_backlog):
    stamper = Stamper()
    tb, kb = server.tenant()
    live = server.endpoint(kb, f"http://127.0.0.1:{stamper.port}/b")
    dead = None
    if dead_backlog:
        dead = Dead()
        ta, ka = server.tenant()
        dead_id = server.endpoint(ka, f"http://127.0.0.1:{dead.port}/a")
        for _ in range(dead_backlog):
            requests.post(f"{server.url}/api/v1/webhooks/endpoints/{dead_id}/test", headers=ka, timeout=30)
        time.sleep(1)  # A's slots are full of hanging attempts
    out = []
    for _ in range(probes):
        t0 = time.time()
        r = requests.post(f"{server.url}/api/v1/webhooks/endpoints/{live}/test", headers=kb, timeout=30)
        r.raise_for_status()
        wid = r.json()["webhook_id"]
        while wid not in stamper.arrivals and time.time() - t0 < 30:
            time.sleep(0.0005)
        out.append((stamper.arrivals.get(wid, time.time()) - t0) * 1000)
    held = len(dead.held) if dead else 0
    stamper.server.shutdown()
    out.sort()
    return {"p50": statistics.median(out), "p99": out[min(len(out) - 1, int(len(out) * 0.99))], "max": out[-1],
            "dead_connections_held": held}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=CDX)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--dead-backlog", type=int, default=500)
    ap.add_argument("--tls", action="store_true", help="the throughput run's receiver over HTTPS")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cdx-webhooks-bench-")
    storage, pg_dir = storage_env(args.backend, workdir, None, "cdx_webhooks_bench_", data_dir=True)
    sql = Sql(args.backend, storage["CDX_DATA_DIR" if args.backend == "sqlite" else "CDX_DATABASE_URL"])
    nginx = Nginx(workdir, args.tls)
    server = Server(args.binary, storage, workdir, nginx.cert)
    try:
        t = throughput(server, sql, args.backend, args.events, args.endpoints, nginx)
        print(f"{args.backend}{' (https)' if args.tls else ''}: {t['deliveries']} deliveries ({args.events} events x {args.endpoints} endpoints) "
              f"in {t['seconds']:.2f} s = {t['per_second']:.0f} deliveries/s; not succeeded: {t['not_succeeded']}")
        alone = latency(server, args.probes, 0)
        print(f"{args.backend}: tenant B alone: p50 {alone['p50']:.1f} ms, p99 {alone['p99']:.1f} ms, "
              f"max {alone['max']:.1f} ms")
        beside = latency(server, args.probes, args.dead_backlog)
        print(f"{args.backend}: tenant B beside tenant A's dead endpoint ({args.dead_backlog} queued, "
              f"{beside['dead_connections_held']} connections hanging): p50 {beside['p50']:.1f} ms, "
              f"p99 {beside['p99']:.1f} ms, max {beside['max']:.1f} ms")
    finally:
        server.stop()
        nginx.stop()
        if pg_dir:
            pg_temp_stop(pg_dir)


if __name__ == "__main__":
    main()
