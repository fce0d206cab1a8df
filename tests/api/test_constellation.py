"""The constellation topology (`cdx up`): the gateway in front of one process per module.

These tests start their own constellation whatever CDX_TEST_TOPOLOGY says (the rest of the suite runs
against both topologies): what is checked here exists only when the modules are separate processes —
the signed assertion, the proxy's faults, the supervisor. The service registry is checked in both.
"""
import subprocess
import time

import pytest
import requests

from conftest import Api, RawConn, Server, assert_problem, make_tenant, login, SUPERADMIN

CORE, AUTH, CRM, CMS = 1, 3, 4, 5  # port offsets from the gateway's


@pytest.fixture(scope="module")
def up():
    s = Server(topology="constellation").start(timeout=40)
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def up_sa(up):
    r = requests.post(up.url + "/api/v1/auth/superadmin/login",
                      json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=10)
    assert r.status_code == 200, r.text
    return Api(up.url, {"Authorization": "Bearer " + r.json()["access_token"]})


@pytest.fixture(scope="module")
def up_tenant(up, up_sa):
    t = make_tenant(up_sa)
    t["admin_api"] = Api(up.url, {"Authorization": "Bearer " + login(Api(up.url), t)})
    return t


def service_url(up, offset):
    return f"http://127.0.0.1:{up.port + offset}"


def service_pid(up, name):
    out = subprocess.run(["pgrep", "-f", "--", f"--module {name} --port {up.port + {'core': CORE, 'auth': AUTH, 'crm': CRM}[name]}"],
                         capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 1, f"expected one {name} process, found {pids}"
    return pids[0]


def wait_for(fn, timeout=20, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(interval)
    return fn()


def services_when_up(api):
    def all_up():
        r = api.get("/api/v1/services")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        return data if data and all(s["status"] == "up" for s in data) else None
    return wait_for(all_up, timeout=10)


def test_services_registry_in_this_topology(sa):
    data = services_when_up(sa)
    assert data, "every service reports up within seconds"
    assert {s["name"] for s in data} == {"gateway", "core", "auth", "crm", "cms"}
    for s in data:
        assert s["url"].startswith("http://") and s["version"]
        assert s["latency_ms"] >= 0 and s["last_check"].endswith("Z")
        assert s["history"] and s["history"][0]["status"] == "up"
    assert_problem(Api(sa.base).get("/api/v1/services"), 401)


def test_constellation_services_have_their_own_ports(up, up_sa):
    data = services_when_up(up_sa)
    assert data
    urls = {s["name"]: s["url"] for s in data}
    assert urls == {"gateway": up.url, "core": service_url(up, CORE), "auth": service_url(up, AUTH),
                    "crm": service_url(up, CRM), "cms": service_url(up, CMS)}
    for offset, schema in ((CORE, "cdx_db"), (AUTH, "auth_db"), (CRM, "crm_db"), (CMS, "cms_db")):
        health = requests.get(service_url(up, offset) + "/health", timeout=5).json()
        assert health["status"] == "ok" and list(health["checks"]) == [schema]
    gateway = requests.get(up.url + "/health", timeout=5).json()
    assert gateway["service"] == "gateway" and {"cdx_db", "auth_db", "crm_db", "cms_db"} <= set(gateway["checks"])


def test_a_service_reached_directly_without_assertion_answers_401(up, up_tenant):
    token = up_tenant["admin_api"].headers["Authorization"]
    for offset, path in ((CRM, "/api/v1/crm/contacts"), (AUTH, "/api/v1/auth/me"), (CORE, "/api/v1/tenants"),
                         (CORE, "/internal/v1/tenants/" + up_tenant["slug"]), (AUTH, "/.well-known/jwks.json")):
        url = service_url(up, offset) + path
        # a valid user token is not enough: only the gateway's signature opens a service
        assert_problem(requests.get(url, headers={"Authorization": token}, timeout=5), 401)
        forged = "v1.eyJrIjoic2VydmljZSIsInN2YyI6ImNvcmUiLCJleHAiOjk5OTk5OTk5OTl9.AAAA"
        assert_problem(requests.get(url, headers={"X-CDX-Assertion": forged}, timeout=5), 401)
    assert requests.get(service_url(up, CRM) + "/health", timeout=5).status_code == 200


def test_gateway_never_exposes_internal_routes(up, up_sa, up_tenant):
    for path in ("/internal/v1/tenants/" + up_tenant["slug"], "/internal/v1/api-keys/cdx_sk_abcdefgh"):
        assert_problem(up_sa.get(path), 404)
    assert_problem(up_sa.delete(f"/internal/v1/tenants/{up_tenant['id']}/data"), 404)
    paths = requests.get(up.url + "/openapi.json", timeout=5).json()["paths"]
    assert not [p for p in paths if p.startswith("/internal")]


def test_a_client_cannot_inject_the_internal_assertion(up, up_tenant):
    api = up_tenant["admin_api"]
    # a header a client sends under the internal name is dropped; the gateway's own assertion goes on
    forged = {"X-CDX-Assertion": "v1.garbage.AAAA", "x-cdx-invalidate": "credentials"}
    me = api.get("/api/v1/auth/me", headers=forged)
    assert me.status_code == 200 and me.json()["email"] == up_tenant["admin"]["email"]
    assert "X-CDX-Assertion" not in me.headers and "X-CDX-Invalidate" not in me.headers
    assert_problem(requests.get(up.url + "/api/v1/auth/me", headers=forged, timeout=5), 401)


def test_smuggling_attempts_are_refused_at_the_gateway(up):
    for wire in (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"):
        c = RawConn(up)
        answers = c.send(wire).read_responses(1)
        c.close()
        assert answers and answers[0].status == 400, answers


def test_a_large_body_streams_through_the_proxy(up_tenant):
    api = up_tenant["admin_api"]
    rows = ["first_name,last_name,email"] + [f"Big{i},Body,big{i}@proxy.test" for i in range(4000)]
    body = ("\r\n".join(rows) + "\r\n").encode()
    assert len(body) > 100_000
    t0 = time.time()
    r = api.post("/api/v1/crm/contacts/import", data=body, headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    assert r.json()["created"] == 4000
    export = api.get("/api/v1/crm/contacts/export", params={"q": "proxy.test"})
    assert export.status_code == 200 and export.text.count("@proxy.test") == 4000
    assert time.time() - t0 < 30  # a bound against a hang, not a performance figure (see docs/benchmarks.md)


def test_a_chunked_upload_streams_through_the_gateway_and_the_export_streams_back(up_tenant):
    api = up_tenant["admin_api"]
    n = 20_000

    def pieces():  # no length known up front: requests sends it chunked, one chunk per piece
        yield b"first_name,last_name,email\r\n"
        for start in range(0, n, 1000):
            yield "".join(f"Chunk{i},Stream,chunk{i}@stream.test\r\n" for i in range(start, start + 1000)).encode()

    r = api.post("/api/v1/crm/contacts/import", data=pieces(), headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    assert r.json()["created"] == n

    export = requests.get(api.base + "/api/v1/crm/contacts/export", params={"q": "stream.test"},
                          headers=api.headers, stream=True, timeout=30)
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    # The service streams the export a page at a time (chunked: no length up front), and the gateway relays
    # the chunks as they come.
    assert "Content-Length" not in export.headers
    assert export.headers.get("Transfer-Encoding", "").lower() == "chunked"
    body = b"".join(export.iter_content(65536))
    assert len(body) > 256 * 1024, "large enough to be relayed rather than buffered"
    assert body.count(b"@stream.test") == n
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == n + 1  # the header and every row, whole


def test_a_chunked_body_over_the_route_limit_is_refused_at_the_gateway(up, up_tenant):
    token = up_tenant["admin_api"].headers["Authorization"]

    def crm_posts():  # POST /api/v1/crm/contacts answers the crm service has given, whatever their status
        text = requests.get(service_url(up, CRM) + "/metrics", timeout=5).text
        return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith('cdx_http_requests_total{method="POST",route="/api/v1/crm/contacts",'))

    posts_before = crm_posts()
    conn = RawConn(up, timeout=10)
    conn.send(f"POST /api/v1/crm/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    piece = b"x" * 65536
    try:
        for _ in range(24):  # 1.5 MiB against the 1 MiB limit
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gateway may stop reading once it has answered
    got = conn.read_responses(1, timeout=10)
    assert got and got[0].status == 413, got
    assert got[0].headers["content-type"].startswith("application/problem+json")
    assert got[0].json()["status"] == 413
    assert conn.is_closed_by_peer()
    # The service got the first pieces, then a cut connection: its handler never ran on that request.
    assert crm_posts() == posts_before, "the crm service answered a request the gateway refused"


def test_an_unauthenticated_upload_is_answered_before_its_body(up):
    conn = RawConn(up, timeout=10)
    conn.send(b"POST /api/v1/crm/contacts/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
              b"Content-Length: 20000000\r\nExpect: 100-continue\r\n\r\n")
    got = conn.read_responses(1, timeout=5)
    assert got and got[0].status == 401, got  # not 100 Continue: the body is not wanted
    assert conn.is_closed_by_peer()


def test_a_killed_service_fails_fast_and_comes_back_with_its_data(up, up_tenant):
    api = up_tenant["admin_api"]
    r = api.post("/api/v1/crm/contacts", json={"first_name": "Survivor", "email": "survivor@kill.test"})
    assert r.status_code == 201, r.text
    contact = r.json()
    subprocess.run(["kill", "-9", str(service_pid(up, "crm"))], check=True)

    failed = api.get(f"/api/v1/crm/contacts/{contact['id']}")
    assert failed.status_code in (502, 503), failed.text
    assert_problem(failed, failed.status_code)
    # the other services keep answering through the gateway meanwhile
    assert api.get("/api/v1/auth/me").status_code == 200

    back = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(
        api.get(f"/api/v1/crm/contacts/{contact['id']}")), timeout=20, interval=0.2)
    assert back and back.status_code == 200, "the supervisor restarts the service within seconds"
    assert back.json() == contact


def test_sigterm_stops_every_service():
    s = Server(topology="constellation").start(timeout=40)
    try:
        base = s.port
        assert subprocess.run(["pgrep", "-f", "--", f"--port-base {base}"], capture_output=True).stdout
        assert s.stop() == 0
        left = subprocess.run(["pgrep", "-f", "--", f"--port-base {base}"], capture_output=True, text=True).stdout
        assert left == "", f"services left running: {left}"
    finally:
        s.cleanup()


def test_trace_context_and_request_id_reach_the_service():
    s = Server(topology="constellation", env={"CDX_ACCESS_LOG": "true", "CDX_LOG_LEVEL": "info"}).start(timeout=40)
    try:
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        r = requests.get(s.url + "/.well-known/jwks.json", timeout=5,
                         headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01", "X-Request-ID": "trace-test-1"})
        assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-test-1"
        r = requests.get(s.url + "/.well-known/jwks.json", timeout=5, headers={"X-Request-ID": "trace-test-2"})
        assert r.status_code == 200

        def lines(request_id):
            import json
            out = []
            for line in s.read_log().splitlines():
                if f'"request_id":"{request_id}"' in line and '"type":"access"' in line:
                    out.append(json.loads(line))
            return out if len(out) >= 2 else None

        first = wait_for(lambda: lines("trace-test-1"), timeout=5)
        assert first and len(first) == 2, "one access line at the gateway, one at the auth service"
        assert all(l["trace_id"] == trace for l in first)
        second = wait_for(lambda: lines("trace-test-2"), timeout=5)
        assert second and len(second) == 2
        minted = [l.get("trace_id") for l in second]
        assert minted.count(None) == 1, "the gateway had no trace context from the client"
        assert any(t and len(t) == 32 and t != "0" * 32 for t in minted), "the gateway started a trace for the service"
    finally:
        s.cleanup()


def _assertion(secret, payload):
    """What the gateway signs (src/http/assertion.cpp: sign), for a test that holds the internal secret."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    key = hashlib.sha256(secret.encode()).digest()
    text = b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return key, "v1." + text + "." + b64(hmac.new(key, text.encode(), hashlib.sha256).digest())


def test_a_captured_assertion_opens_only_its_own_request():
    """Issue 14 item 8: the gateway's header is bound to one method and target and lives seconds, so one
    captured on the wire (or in a log) cannot be replayed against another route."""
    import hashlib
    secret = "captured-assertion-test-secret-" + "x" * 16
    srv = Server(env={"CDX_INTERNAL_SECRET": secret}, topology="constellation").start()
    try:
        auth = f"http://127.0.0.1:{srv.port + AUTH}"
        key, a = _assertion(secret, {"exp": int(time.time()) + 10, "k": "anonymous"})

        bind_key = hashlib.blake2b(b"cdx-bind", key=key, digest_size=32).digest()

        def bound(method, target):  # assertion.cpp: bind_to (keyed BLAKE2b over its MAC, method and target)
            tag = a[a.rfind(".") + 1:]
            return a + "~" + hashlib.blake2b(f"{tag}\n{method}\n{target}".encode(), key=bind_key,
                                             digest_size=16).hexdigest()

        header = bound("GET", "/.well-known/jwks.json")
        assert requests.get(auth + "/.well-known/jwks.json", headers={"X-CDX-Assertion": header}, timeout=5).ok
        # The same header on another route (another public one, which an anonymous assertion would open), or
        # with its binding stripped: 401. (Another method: the unit test, as no route here takes two.)
        refused = assert_problem(requests.post(auth + "/api/v1/auth/login",
                                               json={"email": "a@b.example.com", "password": "x", "tenant": "t"},
                                               headers={"X-CDX-Assertion": header}, timeout=5), 401)
        assert "gateway" in refused["detail"], refused
        login = bound("POST", "/api/v1/auth/login")
        r = requests.post(auth + "/api/v1/auth/login", json={"email": "a@b.example.com", "password": "x", "tenant": "t"},
                          headers={"X-CDX-Assertion": login}, timeout=5)
        assert r.status_code != 401 or "gateway" not in r.text, "its own binding opens the login route"
        assert_problem(requests.get(auth + "/.well-known/jwks.json", headers={"X-CDX-Assertion": a}, timeout=5), 401)
        # An assertion older than its short life is refused however it is bound.
        _, stale = _assertion(secret, {"exp": int(time.time()) - 1, "k": "anonymous"})
        a = stale
        assert_problem(requests.get(auth + "/.well-known/jwks.json",
                                    headers={"X-CDX-Assertion": bound("GET", "/.well-known/jwks.json")}, timeout=5), 401)
    finally:
        srv.cleanup()
