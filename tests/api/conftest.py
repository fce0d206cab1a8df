"""Shared fixtures for the black-box API suite.

The suite starts the real `cdx` binary on a free 127.0.0.1 port, on SQLite (a temporary data dir) or on
PostgreSQL (a fresh database on the server named by CDX_TEST_DATABASE_URL), depending on
CDX_TEST_BACKEND. CDX_TEST_TOPOLOGY picks the topology: `monolith` (`cdx serve`, the default) or
`constellation` (`cdx up`: the gateway on the free port, each module a process behind it). Every server a
test starts is stopped by that test.
"""
import os
import random
import sys
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

BINARY = os.environ.get("CDX_BINARY", os.path.join(os.path.dirname(__file__), "../../build/release/cdx"))
BACKEND = os.environ.get("CDX_TEST_BACKEND", "sqlite")
TOPOLOGY = os.environ.get("CDX_TEST_TOPOLOGY", "monolith")
CONSTELLATION_PORTS = 8  # gateway B, core B+1, auth B+3, crm B+4 … up to B+7
SUPERADMIN = ("root", "root-password-1")


# Servers listen below the kernel's ephemeral range (32768-60999 here): a port taken from that range is free
# when checked, but an outgoing connection (to PostgreSQL, between services) may get it before cdx binds it.
LISTEN_PORTS = (20000, 32700)


def free_port():
    return free_port_block(1)


def free_port_block(n=CONSTELLATION_PORTS):
    """A base port with n free consecutive ports after it, outside the ephemeral range."""
    for _ in range(500):
        base = random.randrange(LISTEN_PORTS[0], LISTEN_PORTS[1] - n)
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
    raise RuntimeError("no block of free ports")


def new_kek():
    """A fresh key encryption key as the server takes it: 32 random bytes, base64."""
    import base64
    return base64.b64encode(secrets.token_bytes(32)).decode()


def fresh_postgres_database():
    """Creates an empty database on the test server and answers its URL."""
    base = os.environ.get("CDX_TEST_DATABASE_URL")
    if not base:
        pytest.fail("CDX_TEST_BACKEND=postgres needs CDX_TEST_DATABASE_URL (scripts/test starts a server)")
    name = "cdx_test_" + secrets.token_hex(6)
    subprocess.run(["psql", base, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return base.rsplit("/", 1)[0] + "/" + name


class Server:
    """A cdx process. start() waits until /health answers; stop() sends SIGTERM and waits."""

    def __init__(self, args=(), env=None, storage=None, topology=None):
        self.topology = topology or TOPOLOGY
        self.port = free_port_block() if self.topology == "constellation" else free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.tmp = tempfile.mkdtemp(prefix="cdx-api-")
        self.storage = storage or self._new_storage()
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")

    def _new_storage(self):
        """Where the data lives, and the key encryption key its stored secrets are sealed with: a command run on
        the same storage (cdx_env(server.storage)) or a restart needs both. Files (CMS media) live in the data
        directory on PostgreSQL too."""
        kek = {"CDX_KEK": new_kek()}
        if BACKEND == "postgres":
            return {"CDX_DATABASE_URL": fresh_postgres_database(), "CDX_DATA_DIR": os.path.join(self.tmp, "data"), **kek}
        return {"CDX_DATA_DIR": os.path.join(self.tmp, "data"), **kek}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
        env.update({"CDX_HOST": "127.0.0.1", "CDX_PORT": str(self.port), "CDX_ACCESS_LOG": "false",
                    "CDX_BOOTSTRAP_SUPERADMIN": f"{SUPERADMIN[0]}:{SUPERADMIN[1]}", "CDX_THREADS": "2",
                    "CDX_LOG_LEVEL": "warn"})
        env.update(self.storage)
        env.update(self.env)
        self.log = open(self.log_path, "ab")
        if self.topology == "constellation":
            env["CDX_PORT_BASE"] = str(self.port)
            command = [BINARY, "up", *self.args]
        else:
            command = [BINARY, "serve", *self.args]
        self.proc = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cdx exited with {self.proc.returncode}:\n{self.read_log()[-4000:]}")
            try:
                r = requests.get(self.url + "/health", timeout=1)
                # The gateway is ready once every service behind it answers.
                if self.topology == "constellation" and (r.status_code != 200 or r.json().get("status") != "ok"):
                    raise requests.RequestException("services starting")
                if r.status_code in (200, 503):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("cdx did not answer /health in time:\n" + self.read_log()[-4000:])

    def read_log(self):
        """The whole log so far (slice it for messages; assertions need every line)."""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Api:
    """requests wrapper bound to a base URL and optional default headers."""

    def __init__(self, base, headers=None):
        self.base = base
        self.headers = dict(headers or {})
        self.session = requests.Session()

    def with_headers(self, **headers):
        merged = dict(self.headers)
        merged.update({k.replace("_", "-"): v for k, v in headers.items()})
        return Api(self.base, merged)

    def request(self, method, path, **kw):
        headers = dict(self.headers)
        headers.update(kw.pop("headers", {}) or {})
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def assert_problem(resp, status, code=None):
    """Asserts an RFC 9457 problem answer with the given status (and code)."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    assert body["request_id"] == resp.headers["X-Request-ID"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture(scope="session")
def server():
    s = Server().start()
    yield s
    s.cleanup()


@pytest.fixture(scope="session")
def anon(server):
    return Api(server.url)


@pytest.fixture(scope="session")
def superadmin_token(anon):
    r = anon.post("/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="session")
def sa(server, superadmin_token):
    """The SUPERADMIN's API client."""
    return Api(server.url, {"Authorization": f"Bearer {superadmin_token}"})


def make_tenant(sa, **overrides):
    slug = overrides.pop("slug", "t-" + uuid.uuid4().hex[:12])
    body = {"name": f"Tenant {slug}", "slug": slug, "admin_email": f"admin@{slug}.example.com",
            "admin_password": "admin-password-1"}
    body.update(overrides)
    r = sa.post("/api/v1/tenants", json=body)
    assert r.status_code == 201, r.text
    t = r.json()
    t["admin_password"] = body["admin_password"]
    return t


def login(anon, tenant, email=None, password=None):
    r = anon.post("/api/v1/auth/login", json={"email": email or tenant["admin"]["email"],
                                              "password": password or tenant["admin_password"],
                                              "tenant": tenant["slug"]})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def tenant_with_clients(sa, anon):
    """A fresh tenant: its object, admin, api_key, and clients for its admin token and its secret key."""
    t = make_tenant(sa)
    t["admin_api"] = Api(anon.base, {"Authorization": "Bearer " + login(anon, t)})
    t["key_api"] = Api(anon.base, {"X-API-Key": t["api_key"]})
    return t


@pytest.fixture
def tenant(sa, anon):
    return tenant_with_clients(sa, anon)


@pytest.fixture
def other_tenant(sa, anon):
    """A second tenant, for isolation checks."""
    return tenant_with_clients(sa, anon)


# ---------------------------------------------------------------------------------------------------------------
# Raw HTTP (for protocol tests requests cannot express), the CLI, and the demo server.


class RawResponse:
    """One HTTP/1.1 answer parsed off a raw socket: status, lower-cased headers, body bytes."""

    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<RawResponse {self.status} {self.headers} {self.body[:200]!r}>"


def parse_responses(buf, head=()):
    """Splits a byte stream into RawResponses (Content-Length or chunked bodies). `head` holds the indexes of
    answers to HEAD requests (no body whatever Content-Length says). Answers (responses, unparsed rest)."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        lines = buf[:end].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        rest = buf[end + 4:]
        if len(out) in head or int(status) in (204, 304) or 100 <= int(status) < 200:
            body = b""
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                return out, buf
            body, rest = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
            body = b""
            while True:
                line_end = rest.find(b"\r\n")
                if line_end < 0:
                    return out, buf
                size = int(rest[:line_end].split(b";")[0], 16)
                if len(rest) < line_end + 2 + size + 2:
                    return out, buf
                body += rest[line_end + 2:line_end + 2 + size]
                rest = rest[line_end + 2 + size + 2:]
                if size == 0:
                    break
        else:  # delimited by close
            body, rest = rest, b""
        out.append(RawResponse(int(status), reason[0] if reason else "", headers, body))
        buf = rest


class RawConn:
    """A raw TCP connection to the server for protocol-level tests."""

    def __init__(self, server, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buf = b""
        self.closed_by_peer = False

    def send(self, data):
        self.sock.sendall(data)
        return self

    def read_responses(self, n, timeout=5.0, head=()):
        """Reads until n answers are complete (or the peer closes, or timeout). Answers the parsed answers."""
        deadline = time.time() + timeout
        while True:
            got, _ = parse_responses(self.buf, head)
            if len(got) >= n or self.closed_by_peer:
                return got
            left = deadline - time.time()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return parse_responses(self.buf, head)[0]
            except ConnectionResetError:
                self.closed_by_peer = True
                continue
            if not chunk:
                self.closed_by_peer = True
            self.buf += chunk

    def is_closed_by_peer(self, wait=2.0):
        """True when the server closes the connection (EOF or reset) within `wait` seconds."""
        if self.closed_by_peer:
            return True
        deadline = time.time() + wait
        while time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                self.closed_by_peer = True
                return True
            if not chunk:
                self.closed_by_peer = True
                return True
            self.buf += chunk
        return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_exchange(server, data, n=1, timeout=5.0, head=()):
    """Writes `data` on a fresh connection and answers the first n parsed answers."""
    with RawConn(server, timeout) as c:
        c.send(data)
        return c.read_responses(n, timeout, head)


def cdx_env(storage=None, **extra):
    """The environment for running the binary directly: no inherited CDX_* settings, the given storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDX_")}
    env.update(storage or {})
    env.update(extra)
    return env


def run_cdx(args, env=None, input=None, timeout=15):
    """Runs `cdx <args>` to completion; answers the CompletedProcess (text mode)."""
    return subprocess.run([BINARY, *args], env=env if env is not None else cdx_env(), input=input,
                          capture_output=True, text=True, timeout=timeout)


DEMO_SUPERADMIN = ("test", "test123")
DEMO_ADMIN = ("john.doe@demo.com", "demo123")
DEMO_CLIENT = ("jane.smith@demo.com", "demo123")


@pytest.fixture(scope="session")
def demo_server():
    """One server started with --demo (shared by the suite; stopped at the end of the session)."""
    s = Server(args=["--demo"]).start()
    yield s
    s.cleanup()


# ---------------------------------------------------------------------------------------------------------------
# Identity helpers: full token answers, users, tenant settings, polling, and a local SMTP sink.


def login_answer(anon, tenant, email=None, password=None):
    """Logs a tenant user in (default: the tenant's first ADMIN) and answers the whole token answer."""
    r = anon.post("/api/v1/auth/login", json={"email": email or tenant["admin"]["email"],
                                              "password": password or tenant["admin_password"],
                                              "tenant": tenant["slug"]})
    assert r.status_code == 200, r.text
    return r.json()


def bearer_api(base, token):
    return Api(base, {"Authorization": "Bearer " + token})


def create_user(api, role="CLIENT", password="user-password-1", email=None, **extra):
    """Creates a user through `api` (an ADMIN, SUPERADMIN with X-Tenant-ID, or a key); answers the user object
    with the `password` it logs in with."""
    body = {"email": email or f"u-{uuid.uuid4().hex[:10]}@example.com", "role": role, **extra}
    if password is not None:
        body["password"] = password
    r = api.post("/api/v1/auth/users", json=body)
    assert r.status_code == 201, r.text
    user = r.json()
    user["password"] = password if password is not None else user["initial_password"]
    return user


def user_session(anon, tenant, user):
    """Logs `user` (from create_user) in; answers (token answer, Api bound to its access token)."""
    t = login_answer(anon, tenant, user["email"], user["password"])
    return t, bearer_api(anon.base, t["access_token"])


def set_tenant_settings(sa, tenant, settings):
    """Replaces a tenant's settings (as the SUPERADMIN) and answers the updated tenant."""
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": settings})
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == settings
    return r.json()


def wait_for(probe, timeout=3.0, interval=0.05):
    """Calls probe() until it answers something truthy or timeout passes; answers the last result."""
    deadline = time.time() + timeout
    while True:
        got = probe()
        if got or time.time() >= deadline:
            return got
        time.sleep(interval)


class MailSink:
    """An aiosmtpd SMTP server on 127.0.0.1 collecting every message it receives."""

    class _Handler:
        def __init__(self, sink):
            self.sink = sink

        async def handle_DATA(self, server, session, envelope):
            content = envelope.content
            text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            self.sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "text": text})
            return "250 Message accepted for delivery"

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.messages = []
        self.port = free_port()
        self.controller = Controller(self._Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def to(self, address):
        return [m for m in list(self.messages) if address.lower() in (a.lower() for a in m["to"])]


def pytest_terminal_summary(terminalreporter):
    """Prints the size of the isolation matrix with every run (ARCHITECTURE §4: one row per resource)."""
    matrix = sys.modules.get("test_isolation_matrix")  # only when it ran: importing it starts a server
    if matrix is None:
        return
    terminalreporter.write_line(f"isolation matrix (from /openapi.json): {len(matrix.RESOURCES)} tenant resources x "
                                f"{len(matrix.CREDENTIALS)} credential kinds = "
                                f"{len(matrix.RESOURCES) * len(matrix.CREDENTIALS)} rows")
