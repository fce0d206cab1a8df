#!/usr/bin/python3
"""Webhooks (issue 12): fan-out and delivery throughput to a local receiver, and one tenant's delivery latency
with and without another tenant's dead (hanging) endpoint.

  bench/webhooks_bench.py                       # SQLite, build/release/cdx
  bench/webhooks_bench.py --backend postgres    # a throwaway PostgreSQL (scripts/pg-temp)

Throughput: one `cdx serve` (webhooks_allow_loopback on; the receiver is nginx answering `return 204` on
127.0.0.1), one tenant with --endpoints endpoints subscribed to `*`. --events events are written straight into
the event log (cdx_db.events, one transaction: the bench measures the webhooks, not the relay in front of them);
the webhooks' reader fans them out into events x endpoints deliveries and the sender posts each, signed, on a
new connection. Time from the insert to the last delivery recorded `succeeded`; deliveries/s.

Latency: tenant B's endpoint is a Python receiver that stamps each arrival; B sends --probes test events
(POST …/test) one at a time; latency = arrival − the moment before the POST. Once alone, once while tenant A
has --dead-backlog deliveries queued to an endpoint that accepts connections and never answers (each attempt
hangs for the 15 s timeout). p50/p99 both times.
"""
import argparse
import base64
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPERADMIN = ("bench", "bench-password-1")
NGINX_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, workdir):
        self.port = free_port()
        d = os.path.join(workdir, "nginx")
        os.makedirs(d)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=self.port))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


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


class Server:
    def __init__(self, binary, storage, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
        env.update({"CDX_HOST": "127.0.0.1", "CDX_PORT": str(self.port), "CDX_ACCESS_LOG": "false",
                    "CDX_BOOTSTRAP_SUPERADMIN": f"{SUPERADMIN[0]}:{SUPERADMIN[1]}", "CDX_LOG_LEVEL": "warn",
                    "CDX_KEK": base64.b64encode(os.urandom(32)).decode(), "CDX_WEBHOOKS_ALLOW_LOOPBACK": "true"})
        env.update(storage)
        self.log = open(os.path.join(workdir, "server.log"), "ab")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"cdx exited with {self.proc.returncode}; see {self.log.name}")
            try:
                requests.get(self.url + "/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        r = requests.post(self.url + "/api/v1/auth/superadmin/login",
                          json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=30)
        r.raise_for_status()
        self.sa = {"Authorization": "Bearer " + r.json()["access_token"]}
        requests.post(self.url + "/api/v1/plans", headers=self.sa, timeout=30,
                      json={"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000}).raise_for_status()

    def tenant(self):
        slug = "wh" + uuid.uuid4().hex[:8]
        r = requests.post(self.url + "/api/v1/tenants", headers=self.sa, timeout=60,
                          json={"name": slug, "slug": slug, "plan": "bench", "admin_email": f"ops@{slug}.example.com",
                                "admin_password": "Bench-pass-2026"})
        r.raise_for_status()
        return r.json()["id"], {"X-API-Key": r.json()["api_key"]}

    def endpoint(self, key, url, types=("*",)):
        r = requests.post(self.url + "/api/v1/webhooks/endpoints", headers=key, timeout=30,
                          json={"url": url, "event_types": list(types)})
        r.raise_for_status()
        return r.json()["id"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


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
        server.endpoint(key, f"http://127.0.0.1:{nginx.port}/hook")
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
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/cdx"))
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--dead-backlog", type=int, default=500)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cdx-webhooks-bench-")
    pg_dir = None
    if args.backend == "sqlite":
        storage = {"CDX_DATA_DIR": os.path.join(workdir, "data")}
        sql = Sql("sqlite", storage["CDX_DATA_DIR"])
    else:
        out = subprocess.run([os.path.join(ROOT, "scripts/pg-temp"), "start"], check=True, capture_output=True,
                             text=True).stdout
        env = dict(l.replace("export ", "", 1).split("=", 1) for l in out.splitlines() if l.startswith("export"))
        pg_dir, base = env["CDX_PG_DIR"], env["CDX_TEST_DATABASE_URL"]
        name = "cdx_webhooks_bench_" + os.urandom(4).hex()
        subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
        url = base.rsplit("/", 1)[0] + "/" + name
        storage = {"CDX_DATABASE_URL": url, "CDX_DATA_DIR": os.path.join(workdir, "data")}
        sql = Sql("postgres", url)
    nginx = Nginx(workdir)
    server = Server(args.binary, storage, workdir)
    try:
        t = throughput(server, sql, args.backend, args.events, args.endpoints, nginx)
        print(f"{args.backend}: {t['deliveries']} deliveries ({args.events} events x {args.endpoints} endpoints) "
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
            subprocess.run([os.path.join(ROOT, "scripts/pg-temp"), "stop", pg_dir], check=False)


if __name__ == "__main__":
    main()
