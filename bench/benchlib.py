# The helpers the bench/*.py scripts share: free ports, starting `cdx serve` and waiting for /health (the urllib
# `start_cdx` of the HTTP benches, or the requests-based `Server` with its SUPERADMIN session and bench tenants),
# the bench tenant through the API, a throwaway PostgreSQL (scripts/pg-temp) and fresh databases on it, the
# nginx reference, wrk runs and their figures, percentiles, markdown tables and RSS from /proc.
# A script in bench/ imports it as a sibling module (`python3 bench/x.py` puts bench/ on sys.path), e.g.
#   import benchlib
#   procs = []
#   base = benchlib.start_cdx(tmp, "cdx", ["--access-log", "false"], procs)
#   sa, tenant = benchlib.setup_tenant(base)
#   ...
#   benchlib.stop_procs(procs)
import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDX = os.path.join(ROOT, "build/release/cdx")
PG_TEMP = os.path.join(ROOT, "scripts/pg-temp")
# The SUPERADMIN of `Server`; `start_cdx` servers bootstrap bench:bench-password.
SUPERADMIN = ("bench", "bench-password-1")
# A fixed KEK (32 bytes), for a bench whose storage outlives one server process; a bench server's data is thrown away.
FIXED_KEK = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmU="
# A plan whose rate limit does not bind at bench rates (the limiter still runs on every request).
BENCH_PLAN = {"key": "bench", "name": "Bench", "rate_limit_per_minute": 100_000_000}


# --- ports, processes -------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(n):
    """A base port with n free consecutive ports after it."""
    for base in range(21000, 32000, 97):
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    sys.exit("no free port block")


def new_kek():
    """The key of a throwaway database: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(32)).decode()


def stop_procs(procs, timeout=10):
    """SIGTERM to each process (the last started first), SIGKILL to any still running after timeout s."""
    for p in reversed(procs):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()


# --- urllib: the HTTP benches' servers --------------------------------------------------------------------------

def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            # A bench's own https server has a certificate of its own making: not checked here.
            context = ssl._create_unverified_context() if url.startswith("https:") else None
            urllib.request.urlopen(url, timeout=1, context=context).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def call(method, url, body=None, headers=None, timeout=10):
    """A JSON request; answers the decoded JSON body (raises on a status >= 400)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def cdx_env(extra=None, strip=True):
    """The environment of a bench `cdx`: SUPERADMIN bench:bench-password, warn logs, a fresh KEK unless one is
    given; strip=True drops the caller's CDX_* variables first."""
    env = {k: v for k, v in os.environ.items() if not (strip and k.startswith("CDX_"))}
    env.update(CDX_BOOTSTRAP_SUPERADMIN="bench:bench-password", CDX_LOG_LEVEL="warn")
    env.update(extra or {})
    if "CDX_KEK" not in env and "CDX_KEK_FILE" not in env:  # the key of a throwaway database
        env["CDX_KEK"] = new_kek()
    return env


def start_cdx(tmp, name, args, procs, binary=CDX, stdout=subprocess.DEVNULL, env_extra=None, threads=1,
              strip_env=True):
    """`cdx serve --threads N <args>` on a free port with its data in tmp/name, appended to procs; answers its
    base URL once /health answers."""
    port = free_port()
    procs.append(subprocess.Popen([binary, "serve", "--threads", str(threads), *args, "--port", str(port),
                                   "--data-dir", os.path.join(tmp, name)], env=cdx_env(env_extra, strip_env),
                                  stdout=stdout))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    return base


def setup_tenant(base, password="bench-password", plan=None):
    """SUPERADMIN login (bench:bench-password), the bench plan (plus plan's fields) and tenant `bench` with admin
    a@bench.example.com; answers (SUPERADMIN access token, the tenant as created: id, api_key, ...)."""
    sa = call("POST", base + "/api/v1/auth/superadmin/login",
              {"username": "bench", "password": "bench-password"})["access_token"]
    sa_h = {"Authorization": "Bearer " + sa}
    call("POST", base + "/api/v1/plans", {**BENCH_PLAN, **(plan or {})}, sa_h)
    tenant = call("POST", base + "/api/v1/tenants",
                  {"name": "Bench", "slug": "bench", "plan": "bench", "admin_email": "a@bench.example.com",
                   "admin_password": password}, sa_h)
    return sa, tenant


def tenant_login(base, password="bench-password"):
    """The bench tenant admin's access token."""
    return call("POST", base + "/api/v1/auth/login",
                {"email": "a@bench.example.com", "password": password, "tenant": "bench"})["access_token"]


def start_nginx(tmp, name, access_log, procs, conf=None, stderr=None, scheme="http"):
    """nginx in tmp/name from conf (default bench/nginx.conf; NGINX_DIR and NGINX_PORT are filled in), appended
    to procs; access_log is the directive's value ("off" or a file and format). Answers its URL (ending in /)."""
    root = os.path.join(tmp, name)
    os.makedirs(root)
    port = free_port()
    if conf is None:
        with open(os.path.join(ROOT, "bench/nginx.conf")) as f:
            conf = f.read()
    conf = conf.replace("NGINX_DIR", root).replace("NGINX_PORT", str(port))
    conf = conf.replace("access_log off;", f"access_log {access_log};")
    with open(os.path.join(root, "nginx.conf"), "w") as f:
        f.write(conf)
    procs.append(subprocess.Popen(["nginx", "-c", os.path.join(root, "nginx.conf"), "-p", root], stderr=stderr))
    url = f"{scheme}://127.0.0.1:{port}/"
    wait_http(url)
    return url


# --- requests: a `cdx serve` (or `cdx up`) with a SUPERADMIN session ------------------------------------------

class Server:
    """`cdx <command>` on storage (CDX_DATA_DIR or CDX_DATABASE_URL, ...), its log in workdir/server.log; logs in
    as the SUPERADMIN (self.sa: its headers) and makes the bench plan."""

    def __init__(self, binary, storage, workdir, kek=None, env_extra=None, command="serve", port=None,
                 until_ok=False):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
        env.update({"CDX_HOST": "127.0.0.1", "CDX_PORT": str(self.port), "CDX_ACCESS_LOG": "false",
                    "CDX_BOOTSTRAP_SUPERADMIN": f"{SUPERADMIN[0]}:{SUPERADMIN[1]}", "CDX_LOG_LEVEL": "warn",
                    "CDX_KEK": kek or new_kek()})
        env.update(env_extra or {})
        env.update(storage)
        self.log = open(os.path.join(workdir, "server.log"), "ab")
        self.proc = subprocess.Popen([binary, command], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:  # until /health answers (until_ok: answers 200 with status ok)
            if self.proc.poll() is not None:
                sys.exit(f"cdx exited with {self.proc.returncode}; see {self.log.name}")
            try:
                r = requests.get(self.url + "/health", timeout=1)
                if not until_ok or (r.status_code == 200 and r.json().get("status") == "ok"):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        r = requests.post(self.url + "/api/v1/auth/superadmin/login",
                          json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=30)
        r.raise_for_status()
        self.sa = {"Authorization": "Bearer " + r.json()["access_token"]}
        r = requests.post(self.url + "/api/v1/plans", headers=self.sa, timeout=30, json=BENCH_PLAN)
        if r.status_code != 409:  # 409: made by an earlier server on the same storage
            r.raise_for_status()

    def new_tenant(self, slug):
        """A tenant on the bench plan; answers the API's answer (id, api_key, ...)."""
        r = requests.post(self.url + "/api/v1/tenants", headers=self.sa, timeout=60,
                          json={"name": slug, "slug": slug, "plan": "bench", "admin_email": f"ops@{slug}.example.com",
                                "admin_password": "Bench-pass-2026"})
        r.raise_for_status()
        return r.json()

    def tenant(self, slug):
        """A tenant on the bench plan; answers its API key."""
        return self.new_tenant(slug)["api_key"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --- PostgreSQL -------------------------------------------------------------------------------------------------

def pg_temp(fsync=False):
    """Starts a throwaway PostgreSQL (scripts/pg-temp; fsync off unless asked); answers (its dir, its URL)."""
    env = dict(os.environ, CDX_PG_FSYNC="on") if fsync else None
    out = subprocess.run([PG_TEMP, "start"], check=True, capture_output=True, text=True, env=env).stdout
    env = dict(line.replace("export ", "", 1).split("=", 1) for line in out.splitlines() if line.startswith("export"))
    return env["CDX_PG_DIR"], env["CDX_TEST_DATABASE_URL"]


def pg_temp_stop(pg_dir):
    subprocess.run([PG_TEMP, "stop", pg_dir])


def create_database(server_url, prefix):
    """A fresh database named prefix + random hex on the server of server_url; answers its URL."""
    name = prefix + os.urandom(4).hex()
    subprocess.run(["psql", server_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url, url):
    subprocess.run(["psql", server_url, "-q", "-c", f"DROP DATABASE {url.rsplit('/', 1)[1]}"])


def storage_env(backend, workdir, pg_server=None, db_prefix="cdx_bench_", data_dir=False):
    """Where a bench server keeps its data: SQLite in workdir/data, or (postgres) a fresh database named db_prefix...
    on pg_server, or on a throwaway pg_temp server when pg_server is None (with data_dir, CDX_DATA_DIR too).
    Answers (the server's storage variables, the pg_temp dir to stop afterwards or None)."""
    if backend == "sqlite":
        return {"CDX_DATA_DIR": os.path.join(workdir, "data")}, None
    pg_dir = None
    if not pg_server:
        pg_dir, pg_server = pg_temp()
    env = {"CDX_DATABASE_URL": create_database(pg_server, db_prefix)}
    if data_dir:
        env["CDX_DATA_DIR"] = os.path.join(workdir, "data")
    return env, pg_dir


# --- figures ----------------------------------------------------------------------------------------------------

WRK_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_rps(out):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wrk_latency_ms(out, pct):
    """A percentile of wrk --latency's distribution (pct "50", "99", ...) in ms."""
    value, unit = re.search(pct + r"%\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * WRK_UNITS_MS[unit]


def wrk(url, duration, headers=(), script=None, timeout=None, socket_errors=False):
    """wrk -t1 -c64 --latency on url; answers (requests/s, p99 ms). Raises on non-2xx answers (and, with
    socket_errors, on socket errors)."""
    cmd = ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True, timeout=timeout).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx answers")
    errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors and errors:
        raise RuntimeError(f"{url}: socket errors: {errors.group(1)}")
    return wrk_rps(out), wrk_latency_ms(out, "99")


def rotated(xs, r):
    """xs rotated by r places: round r's order, so that no scenario always runs first or last."""
    return xs[r % len(xs):] + xs[:r % len(xs)]


def percentile(xs, p):
    """The value at p % of the sorted values (rounded to the nearest index)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def table_head(*columns, left=1):
    """A markdown table's head: the first `left` columns left-aligned, the others right-aligned."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" if i < left else "---:" for i in range(len(columns))) + "|")


def rss_kib(pid, field="VmRSS"):
    """A /proc/<pid>/status figure in KiB (VmRSS, VmHWM, ...); 0 when there is none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
