#!/usr/bin/python3
"""Gateway proxy benchmark: `cdx up` (gateway → service) against nginx `proxy_pass` to the same service.

1. Proxy hop. wrk -t1 -c64 in interleaved rounds (order rotated every round), medians, on:
   (a) GET /.well-known/jwks.json, public, proxied to the auth service;
   (b) GET /api/v1/auth/me with X-API-Key: the gateway checks the key (cached) and forwards a principal
       assertion; nginx does no authentication and adds a fixed assertion signed here for that key;
   (c) the same requests straight to the auth service with the assertion: the ceiling.
2. Faults. crm is killed with SIGKILL while a keep-alive client asks the gateway for a crm route in a
   tight loop: latency of the 502s before the breaker opens, of the 503s once it is open, the time until
   the supervisor's restart answers again.
3. A 200 KB CSV import (POST) through the gateway and straight to the crm service: wall time.
4. Large bodies, streamed by the gateway: a 100,000-row CSV import and its CSV export, through the gateway
   and straight to crm: wall time, time to the answer's head, and how much the gateway's peak resident
   memory grew during the transfer (VmHWM after resetting it; a buffering gateway grows by the body).

Every server listens on 127.0.0.1 on free ports and is stopped at the end.
Usage: bench/proxy_bench.py [--duration 5] [--rounds 3] [--binary build/release/cdx]
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CDX, ROOT, call, cdx_env, free_port, free_port_block, reset_peak_rss,  # noqa: E402
                      rotated, rss_kib, setup_tenant, table_head, wrk as wrk_run)

ASSERTION_TTL = 3600  # the services check only that an assertion has not expired


def wait_until(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(secret, payload):
    """The gateway's assertion (src/gateway/assertion.cpp): v1.<b64url json>.<b64url HMAC-SHA256(b64 text)>,
    keyed with SHA-256 of the internal secret; the JSON keys sorted like nlohmann::json's."""
    key = hashlib.sha256(secret.encode()).digest()
    text = b64url(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return "v1." + text + "." + b64url(hmac.new(key, text.encode(), hashlib.sha256).digest())


def bind(secret, assertion, method, target):
    """The header for one request (assertion.cpp: bind_to): assertion~hex(keyed BLAKE2b(its MAC, method, target))."""
    key = hashlib.blake2b(b"cdx-bind", key=hashlib.sha256(secret.encode()).digest(), digest_size=32).digest()
    tag = assertion[assertion.rfind(".") + 1:]
    return assertion + "~" + hashlib.blake2b(f"{tag}\n{method}\n{target}".encode(), key=key,
                                             digest_size=16).hexdigest()


def wrk(url, duration, headers=()):
    return wrk_run(url, duration, headers, timeout=duration + 30, socket_errors=True)


def pct(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


class Client:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=35):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def csv_body(size, tag):
    lines = ["first_name,last_name,email"]
    n = 0
    total = len(lines[0]) + 1
    while total < size:
        line = f"Bench{n},Import{n},{tag}-{n:06d}@import.bench.example.com"
        lines.append(line)
        total += len(line) + 1
        n += 1
    return ("\n".join(lines) + "\n").encode(), n


def proxy_hop(args, gw, auth_port, nginx_port, api_key, anon, principal):
    g = f"http://127.0.0.1:{gw}"
    n = f"http://127.0.0.1:{nginx_port}"
    a = f"http://127.0.0.1:{auth_port}"
    key = "X-API-Key: " + api_key
    scenarios = [
        ("gateway", "jwks", g + "/.well-known/jwks.json", ()),
        ("nginx", "jwks", n + "/.well-known/jwks.json", ()),
        ("direct", "jwks", a + "/.well-known/jwks.json", ("X-CDX-Assertion: " + anon,)),
        ("gateway", "me", g + "/api/v1/auth/me", (key,)),
        ("nginx", "me", n + "/api/v1/auth/me", (key,)),
        ("direct", "me", a + "/api/v1/auth/me", ("X-CDX-Assertion: " + principal,)),
    ]
    results = {(who, what): [] for who, what, _, _ in scenarios}
    for _, _, url, headers in scenarios:  # warm-up: pools, caches
        wrk(url, 1, headers)
    for r in range(args.rounds):
        for who, what, url, headers in rotated(scenarios, r):
            results[(who, what)].append(wrk(url, args.duration, headers))
        print(f"  round {r + 1}/{args.rounds}: " + ", ".join(
            f"{who} {what} {results[(who, what)][-1][0]:,.0f}" for who, what, _, _ in scenarios), flush=True)
    return results


def print_proxy_table(args, results):
    titles = {"jwks": "(a) `GET /.well-known/jwks.json` (public, → auth)",
              "me": "(b) `GET /api/v1/auth/me` (`X-API-Key`, → auth)"}
    print(f"\nwrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; "
          "cdx up --threads 1 --access-log false; nginx 1 worker, keepalive 64\n")
    table_head("scenario", "path", "req/s", "p99 ms", "gateway/nginx req/s", "gateway/nginx p99", left=2)
    for what in ("jwks", "me"):
        med = {}
        for who in ("gateway", "nginx", "direct"):
            runs = results[(who, what)]
            med[who] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        path = {"gateway": "wrk → gateway → auth", "nginx": "wrk → nginx → auth",
                "direct": "wrk → auth (assertion, no proxy)"}
        for who in ("gateway", "nginx", "direct"):
            rps, p99 = med[who]
            ratio = (f"**{rps / med['nginx'][0]:.2f}**", f"**{p99 / med['nginx'][1]:.2f}**") if who == "gateway" \
                else ("", "")
            print(f"| {titles[what] if who == 'gateway' else ''} | {path[who]} | {rps:,.0f} | {p99:.2f} | "
                  f"{ratio[0]} | {ratio[1]} |")
    spread = []
    for key, runs in results.items():
        rps = [r[0] for r in runs]
        spread.append(f"{key[0]} {key[1]} {min(rps):,.0f}–{max(rps):,.0f}")
    print("\nper-run req/s range: " + "; ".join(spread))


def big_post(gw, crm_port, api_key, principal_for, runs=5, size=200 * 1024):
    """POST ~200 KB of CSV through the gateway and straight to crm, alternating; fresh emails each time."""
    through, direct = [], []
    gc, dc = Client(gw), Client(crm_port)
    rows = 0
    try:
        for i in range(runs):
            for name, client, headers, out in (
                    ("gateway", gc, {"X-API-Key": api_key}, through),
                    ("direct", dc, {"X-CDX-Assertion": principal_for("POST", "/api/v1/crm/contacts/import")},
                     direct)):
                body, rows = csv_body(size, f"{name}-{i}-{secrets.token_hex(4)}")
                h = {"Content-Type": "text/csv", **headers}
                t = time.perf_counter()
                status, data = client.request("POST", "/api/v1/crm/contacts/import", body, h)
                out.append((time.perf_counter() - t) * 1e3)
                if status != 200 or json.loads(data).get("created") != rows:
                    raise RuntimeError(f"import via {name}: {status} {data[:300]!r}")
    finally:
        gc.close()
        dc.close()
    return len(body), rows, through, direct


def module_pid(name, port):
    out = subprocess.run(["pgrep", "-f", "--", f"--module {name} --port {port}"], capture_output=True, text=True)
    pids = out.stdout.split()
    if len(pids) != 1:
        raise RuntimeError(f"expected one {name} process, found {pids}")
    return int(pids[0])


def timed(port, method, path, body, headers):
    """One request on a fresh connection: (status, bytes, ms to the answer's head, ms to its end)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        t = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        head = time.perf_counter()
        data = r.read()
        end = time.perf_counter()
        return r.status, data, (head - t) * 1e3, (end - t) * 1e3
    finally:
        conn.close()


def large_bodies(gw, crm_port, api_key, principal_for, runs=3, rows=100_000):
    """100,000-row import and export through the gateway and straight to crm; peak RSS growth of the gateway
    and, as a check of the method, of crm (which holds the whole CSV either way)."""
    pids = {"gateway": module_pid("gateway", gw), "crm": module_pid("crm", crm_port)}
    out = {(what, who): [] for what in ("import", "export") for who in ("gateway", "direct")}
    size = export_size = 0
    for i in range(runs):
        for who, port, headers in (("gateway", gw, lambda m, p: {"X-API-Key": api_key}),
                                   ("direct", crm_port, lambda m, p: {"X-CDX-Assertion": principal_for(m, p)})):
            tag = f"{who}-{i}-{secrets.token_hex(4)}"
            lines = ["first_name,last_name,email"] + [
                f"Bench{n},Large{n},{tag}-{n:06d}@import.bench.example.com" for n in range(rows)]
            body = ("\n".join(lines) + "\n").encode()
            size = len(body)
            for what, method, path, payload, extra in (
                    ("import", "POST", "/api/v1/crm/contacts/import", body, {"Content-Type": "text/csv"}),
                    ("export", "GET", f"/api/v1/crm/contacts/export?q={tag}", None, {})):
                base_rss = {k: rss_kib(p, "VmRSS") for k, p in pids.items()}
                for p in pids.values():
                    reset_peak_rss(p)
                status, data, head_ms, end_ms = timed(port, method, path, payload, {**headers(method, path), **extra})
                growth = {k: rss_kib(p, "VmHWM") - base_rss[k] for k, p in pids.items()}
                if status != 200:
                    raise RuntimeError(f"{what} via {who}: {status} {data[:300]!r}")
                if what == "import" and json.loads(data).get("created") != rows:
                    raise RuntimeError(f"import via {who}: {data[:300]!r}")
                if what == "export":
                    export_size = len(data)
                    if data.count(b"@import.bench.example.com") != rows:
                        raise RuntimeError(f"export via {who}: {len(data)} bytes, not {rows} rows")
                out[(what, who)].append((end_ms, head_ms, growth))
        print(f"  run {i + 1}/{runs}: " + ", ".join(
            f"{what} {who} {out[(what, who)][-1][0]:,.0f} ms" for what, who in out), flush=True)
    return size, export_size, out


def print_large(rows, size, export_size, out):
    print(f"\n{rows:,}-row CSV import ({size / 2**20:.1f} MiB request) and its export ({export_size / 2**20:.1f} MiB "
          f"answer), medians of {len(next(iter(out.values())))} runs; peak RSS growth = VmHWM after the "
          "transfer − VmRSS before it (VmHWM reset before each transfer)\n")
    table_head("transfer", "path", "total ms", "head ms", "gateway peak RSS growth", "crm peak RSS growth", left=2)
    for what in ("import", "export"):
        for who, path in (("gateway", "client → gateway → crm"), ("direct", "client → crm (assertion, no proxy)")):
            v = out[(what, who)]
            gw_growth = f"{statistics.median(g['gateway'] for _, _, g in v):,} KiB" if who == "gateway" else ""
            crm_growth = f"{statistics.median(g['crm'] for _, _, g in v):,} KiB"
            print(f"| {what if who == 'gateway' else ''} | {path} | {statistics.median(e for e, _, _ in v):,.0f} | "
                  f"{statistics.median(h for _, h, _ in v):,.0f} | {gw_growth} | {crm_growth} |")


def fault(gw, crm_port, api_key, want_503=200, timeout=20):
    """SIGKILL crm, then ask the gateway for a crm route on one keep-alive connection in a tight loop."""
    headers = {"X-API-Key": api_key}
    c = Client(gw)
    for _ in range(50):  # warm: the gateway holds pooled connections to crm
        status, _ = c.request("GET", "/api/v1/crm/contacts?limit=1", headers=headers)
        assert status == 200, status
    pids = subprocess.run(["pgrep", "-f", "--", f"--module crm --port {crm_port}"],
                          capture_output=True, text=True).stdout.split()
    if len(pids) != 1:
        raise RuntimeError(f"expected one crm process, found {pids}")
    pid = int(pids[0])
    samples = []  # (ms since the kill, latency ms, status)
    os.kill(pid, signal.SIGKILL)
    t0 = time.perf_counter()
    opened = None
    back = None
    restarted = None
    probe = Client(crm_port)
    try:
        while time.perf_counter() - t0 < timeout:
            t = time.perf_counter()
            try:
                status, _ = c.request("GET", "/api/v1/crm/contacts?limit=1", headers=headers, timeout=5)
            except OSError:
                status = 0  # the gateway itself failed us: would be an anomaly
            e = time.perf_counter()
            samples.append(((t - t0) * 1e3, (e - t) * 1e3, status))
            if status == 503 and opened is None:
                opened = len(samples) - 1
            if status == 200:
                back = (t - t0) * 1e3
                break
            n503 = sum(1 for s in samples[opened:] if s[2] == 503) if opened is not None else 0
            if n503 >= want_503:
                # Enough in the tight loop; now poll gently and watch for the restarted process as well.
                if restarted is None:
                    try:
                        st, _ = probe.request("GET", "/health", timeout=1)
                        if st == 200:
                            restarted = (time.perf_counter() - t0) * 1e3
                    except OSError:
                        pass
                time.sleep(0.002)
    finally:
        c.close()
        probe.close()
    new = subprocess.run(["pgrep", "-f", "--", f"--module crm --port {crm_port}"],
                         capture_output=True, text=True).stdout.split()
    return samples, opened, back, restarted, new


def print_fault(samples, opened, back, restarted, new_pids, want_503):
    print("\nFault: crm killed with SIGKILL; GET /api/v1/crm/contacts?limit=1 (X-API-Key) through the gateway "
          "in a tight loop on one keep-alive connection\n")
    before = samples[:opened] if opened is not None else samples
    by_status = {}
    for _, lat, st in before:
        by_status.setdefault(st, []).append(lat)
    for st, lats in sorted(by_status.items()):
        print(f"- before the breaker opened: {len(lats)} × {st}, latency median {statistics.median(lats):.2f} ms, "
              f"max {max(lats):.2f} ms")
    if opened is None:
        print("- the breaker never opened (no 503)")
    else:
        after = [s for s in samples[opened:] if s[2] == 503][:want_503]
        lats = [s[1] for s in after]
        print(f"- breaker open {samples[opened][0]:.1f} ms after the kill; {len(after)} × 503 collected "
              f"(of {want_503} wanted): p50 {statistics.median(lats):.3f} ms, p99 {pct(lats, 99):.3f} ms, "
              f"max {max(lats):.3f} ms (target < 100 ms)")
        others = [s for s in samples[opened:] if s[2] not in (503, 200)]
        if others:
            print(f"- after it opened, also {len(others)} answers with status {sorted({s[2] for s in others})}")
    if restarted is not None:
        print(f"- the restarted crm process answered its own /health {restarted:.0f} ms after the kill "
              "(first probe once the 503s were collected)")
    if back is None:
        print("- crm did not answer 200 through the gateway within the time limit")
    else:
        print(f"- first 200 through the gateway {back:.0f} ms after the kill (recovery)")
    print(f"- crm process now: pid {', '.join(new_pids) or 'none'}; {len(samples)} requests in all")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=CDX)
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "pgrep"):
        if not shutil.which(tool):
            sys.exit(f"proxy_bench: {tool} is missing (run scripts/setup)")

    tmp = tempfile.mkdtemp(prefix="cdx-proxy-bench-")
    cdx = nginx = None
    log = open(os.path.join(tmp, "cdx.log"), "w+")
    try:
        base = free_port_block(5)  # gateway, core, base + 2 unused, auth, crm
        gw, auth_port, crm_port = base, base + 3, base + 4
        secret = secrets.token_hex(24)
        env = cdx_env({"CDX_INTERNAL_SECRET": secret}, strip=False)
        # Its own process group, so that children left behind by a crash can be stopped too.
        cdx = subprocess.Popen([args.binary, "up", "--port-base", str(base), "--host", "127.0.0.1", "--threads", "1",
                                "--access-log", "false", "--data-dir", os.path.join(tmp, "data")],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        g = f"http://127.0.0.1:{gw}"
        wait_until("the constellation", lambda: call("GET", g + "/health")["status"] == "ok")

        _, tenant = setup_tenant(g)
        api_key = tenant["api_key"]
        me = call("GET", g + "/api/v1/auth/me", headers={"X-API-Key": api_key})

        def anon():
            return sign(secret, {"exp": int(time.time()) + ASSERTION_TTL, "k": "anonymous"})

        def principal(method, target):  # what the gateway forwards for this key (assertion.cpp: sign, bind)
            return bind(secret, sign(secret, {"exp": int(time.time()) + ASSERTION_TTL, "k": me["type"], "id": me["id"],
                                 "n": me["name"], "r": me["role"], "pt": me["tenant_id"], "s": me["scopes"],
                                 "t": me["tenant_id"]}), method, target)

        # nginx adds a fixed header per location: bound to the one request each location serves here.
        anon_a = bind(secret, anon(), "GET", "/.well-known/jwks.json")
        principal_a = principal("GET", "/api/v1/auth/me")
        direct_me = call("GET", f"http://127.0.0.1:{auth_port}/api/v1/auth/me", headers={"X-CDX-Assertion": principal_a})
        if direct_me != me:
            raise RuntimeError(f"the signed assertion is not the gateway's: {direct_me} != {me}")

        nginx_port = free_port()
        conf = open(os.path.join(ROOT, "bench/nginx_proxy.conf")).read()
        for k, v in (("NGINX_DIR", tmp), ("NGINX_PORT", str(nginx_port)), ("UPSTREAM_PORT", str(auth_port)),
                     ("ANON_ASSERTION", anon_a), ("PRINCIPAL_ASSERTION", principal_a)):
            conf = conf.replace(k, v)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(conf)
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp])
        n = f"http://127.0.0.1:{nginx_port}"
        wait_until("nginx", lambda: call("GET", n + "/.well-known/jwks.json")["keys"] is not None)
        if call("GET", n + "/api/v1/auth/me", headers={"X-API-Key": api_key}) != me:
            raise RuntimeError("nginx does not forward the principal assertion")

        print(f"=== Proxy hop (gateway :{gw}, auth :{auth_port}, nginx :{nginx_port}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)", flush=True)
        results = proxy_hop(args, gw, auth_port, nginx_port, api_key, anon_a, principal_a)
        print_proxy_table(args, results)

        print("\n=== 200 KB POST (CSV import of contacts)", flush=True)
        size, rows, through, direct = big_post(gw, crm_port, api_key, principal)
        print(f"\n{size:,} bytes, {rows:,} rows, median of {len(through)} (each with fresh emails)\n")
        table_head("path", "median ms", "min ms", "max ms")
        for name, v in (("client → gateway → crm", through), ("client → crm (assertion, no proxy)", direct)):
            print(f"| {name} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} |")
        print(f"\ngateway − direct (medians): {statistics.median(through) - statistics.median(direct):+.1f} ms")

        print("\n=== Large bodies (streamed through the gateway)", flush=True)
        size, export_size, out = large_bodies(gw, crm_port, api_key, principal)
        print_large(100_000, size, export_size, out)

        print("\n=== Faults", flush=True)
        want = 200
        samples, opened, back, restarted, new_pids = fault(gw, crm_port, api_key, want)
        print_fault(samples, opened, back, restarted, new_pids, want)
    except Exception:
        log.flush()
        log.seek(0)
        tail = log.read()[-3000:]
        if tail:
            print("--- cdx output (tail):\n" + tail, file=sys.stderr)
        raise
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        if cdx is not None:
            cdx.send_signal(signal.SIGTERM)  # drains the gateway, then stops the services
            try:
                cdx.wait(20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(cdx.pid, signal.SIGKILL)  # the group we created: anything left of this run
            except ProcessLookupError:
                pass
            cdx.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
