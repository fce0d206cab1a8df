#!/usr/bin/python3
"""Dashboard serving benchmark: the cdx binary (--threads 1, access log off) serving its packed dashboard
against nginx (1 worker, access log off) serving the same web/dist files with the same headers.

Scenarios, each with wrk -t1 -c64 in interleaved rounds (order rotated every round), medians:
  - `/` (index.html),
  - a client-side route (`/tenants/…`: nginx try_files, cdx's fallback),
  - the entry script (the largest /assets/*.js index.html loads), plain and gzip (cdx's pre-compressed
    form; nginx with gzip_static on the .gz files this script writes beside them).
Usage: bench/dashboard_bench.py [--duration 5] [--rounds 3] [--binary build/release/cdx] [--dist web/dist]
"""
import argparse
import gzip
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, rotated, start_cdx, start_nginx, stop_procs, table_head, wrk  # noqa: E402

NGINX_CONF = """worker_processes 1;
daemon off;
pid NGINX_DIR/nginx.pid;
error_log NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  include /etc/nginx/mime.types;
  client_body_temp_path NGINX_DIR/body;
  proxy_temp_path NGINX_DIR/proxy;
  fastcgi_temp_path NGINX_DIR/fastcgi;
  uwsgi_temp_path NGINX_DIR/uwsgi;
  scgi_temp_path NGINX_DIR/scgi;
  keepalive_requests 1000000;
  # nginx at its best for static files: descriptors and metadata cached, the kernel copies the bytes.
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:NGINX_PORT;
    root DIST;
    gzip_static on;
    location /assets/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    location / {
      try_files $uri /index.html;
      add_header Cache-Control no-store;
      add_header Content-Security-Policy "default-src 'self'; script-src 'self'; style-src 'self'";
      add_header X-Content-Type-Options nosniff;
    }
  }
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/cdx"))
    ap.add_argument("--dist", default=os.path.join(ROOT, "web/dist"))
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"dashboard_bench: {tool} is missing (run scripts/setup)")
    tmp = tempfile.mkdtemp(prefix="cdx-bench-")
    procs = []
    try:
        os.chmod(tmp, 0o755)  # nginx's worker (not root) reads the files
        dist = os.path.join(tmp, "dist")
        shutil.copytree(args.dist, dist)
        html = open(os.path.join(dist, "index.html")).read()
        scripts = re.findall(r'src="(/assets/[^"]+\.js)"', html)
        if not scripts:
            sys.exit("dashboard_bench: index.html loads no /assets/*.js")
        entry = max(scripts, key=lambda s: os.path.getsize(dist + s))
        with open(dist + entry, "rb") as f, gzip.open(dist + entry + ".gz", "wb", 9) as g:
            g.write(f.read())
        nginx = start_nginx(tmp, "nginx", "off", procs, conf=NGINX_CONF.replace("DIST", dist)).rstrip("/")
        cdx = start_cdx(tmp, "cdx", ["--access-log", "false"], procs, binary=args.binary)
        gz = ("Accept-Encoding: gzip",)
        cases = [("/", "/", ()), ("client route", "/tenants/0190a1b2/users", ()),
                 (f"entry script ({os.path.getsize(dist + entry) // 1024} KiB)", entry, ()),
                 ("entry script, gzip", entry, gz)]
        scenarios = [(server, name, base + path, headers) for name, path, headers in cases
                     for server, base in (("nginx", nginx), ("cdx", cdx))]
        for _, _, url, headers in scenarios:  # warm-up
            wrk(url, 1, headers)
        results = {(s, n): [] for s, n, _, _ in scenarios}
        for r in range(args.rounds):
            for server, name, url, headers in rotated(scenarios, r):
                results[(server, name)].append(wrk(url, args.duration, headers))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; cdx serve --threads 1 "
              "--access-log false; nginx 1 worker, access_log off\n")
        table_head("what", "nginx req/s", "cdx req/s", "cdx p99 ms", "cdx × nginx")
        for name, _, _ in cases:
            ref = statistics.median(x[0] for x in results[("nginx", name)])
            rps = statistics.median(x[0] for x in results[("cdx", name)])
            p99 = statistics.median(x[1] for x in results[("cdx", name)])
            print(f"| {name} | {ref:,.0f} | {rps:,.0f} | {p99:.2f} | {rps / ref:.2f} |")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
