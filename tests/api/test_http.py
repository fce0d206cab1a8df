"""HTTP protocol behaviour and the error vocabulary (RFC 9457 problem details) of the server."""
import json
import re
import socket
import time

import pytest
import requests

from conftest import RawConn, assert_problem, raw_exchange

JSON = {"Content-Type": "application/json"}
LOGIN = "/api/v1/auth/superadmin/login"


def assert_raw_problem(resp, status, code=None):
    assert resp.status == status, resp
    assert resp.headers["content-type"].startswith("application/problem+json"), resp
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    assert body["request_id"] == resp.headers["x-request-id"]
    if code:
        assert body["code"] == code, body
    return body


def fields(body):
    return sorted(e["field"] for e in body["errors"])


# --- routing -----------------------------------------------------------------------------------------------------


def test_unknown_route_is_404_problem(anon):
    """(A GET of an unknown path outside the API is the dashboard's: test_dashboard.py.)"""
    body = assert_problem(anon.get("/api/v1/no/such/route"), 404, "not_found")
    assert "/api/v1/no/such/route" in body["detail"]


def test_unknown_api_route_is_404_even_without_credentials(anon):
    assert_problem(anon.get("/api/v1/definitely-not-a-route"), 404, "not_found")


def test_wrong_method_is_405_with_allow(anon):
    r = anon.delete("/health")
    assert_problem(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "GET" in allow and "DELETE" not in allow


@pytest.mark.parametrize("path,expected", [
    ("/api/v1/tenants", {"GET", "POST"}),
    ("/api/v1/tenants/some-tenant", {"GET", "PATCH", "DELETE"}),
    ("/api/v1/auth/api-keys/abc", {"DELETE"}),
])
def test_405_allow_lists_exactly_the_routes_methods(anon, path, expected):
    r = anon.request("PUT", path)
    assert_problem(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}
    assert allow == expected


def test_head_answers_headers_without_body(server, anon):
    get = anon.get("/.well-known/jwks.json")
    head = anon.request("HEAD", "/.well-known/jwks.json")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert int(head.headers["Content-Length"]) == len(get.content)
    assert head.headers["X-Request-ID"]
    # On the wire: the HEAD answer carries no body, so the pipelined GET's answer follows its header directly.
    with RawConn(server) as c:
        c.send(b"HEAD /.well-known/jwks.json HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
        got = c.read_responses(2, head={0})
    assert [g.status for g in got] == [200, 200]
    assert got[0].body == b""
    assert json.loads(got[1].body)["keys"]


def test_options_answers_allow(anon):
    r = anon.request("OPTIONS", "/api/v1/tenants")
    assert r.status_code in (200, 204)
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allow
    assert "DELETE" not in allow
    assert r.headers["X-Request-ID"]


def test_options_on_unknown_route_is_404(anon):
    assert_problem(anon.request("OPTIONS", "/no/such/route"), 404, "not_found")


# --- request ids -------------------------------------------------------------------------------------------------


def test_request_id_is_minted_and_unique(anon):
    ids = [anon.get("/health").headers["X-Request-ID"] for _ in range(5)]
    assert all(ids) and len(set(ids)) == 5


def test_request_id_is_echoed(anon):
    r = anon.get("/health", headers={"X-Request-ID": "client-trace-123_abc.def"})
    assert r.headers["X-Request-ID"] == "client-trace-123_abc.def"


def test_request_id_echoed_in_problem_body(anon):
    r = anon.get("/api/nope", headers={"X-Request-ID": "trace-for-a-404"})
    body = assert_problem(r, 404)
    assert body["request_id"] == "trace-for-a-404"


@pytest.mark.parametrize("bad", ["has space", "quote\"inside", "<script>", "a" * 200])
def test_bad_or_oversized_request_id_is_replaced(anon, bad):
    r = anon.get("/health", headers={"X-Request-ID": bad})
    assert r.status_code == 200
    minted = r.headers["X-Request-ID"]
    assert minted and minted != bad
    assert len(minted) <= 128
    assert re.fullmatch(r"[A-Za-z0-9._:/+=@-]+", minted)


# --- request bodies ----------------------------------------------------------------------------------------------


def test_malformed_json_is_400(anon):
    r = anon.post(LOGIN, data='{"username": "root", "password": ', headers=JSON)
    assert_problem(r, 400, "invalid_request")


@pytest.mark.parametrize("payload", [b'{"a": 1} {"b": 2}', b'{"name": "\xff\xfe"}', b"{'single': 'quotes'}", b"nul"])
def test_invalid_json_variants_are_400(sa, payload):
    assert_problem(sa.post("/api/v1/tenants", data=payload, headers=JSON), 400, "invalid_request")


def test_empty_json_body_is_400(anon):
    assert_problem(anon.post(LOGIN, data=b"", headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("payload", ["[]", '"string"', "42", "null"])
def test_non_object_json_is_rejected_as_client_error(anon, payload):
    r = anon.post(LOGIN, data=payload, headers=JSON)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)


def test_deeply_nested_json_is_a_client_error_not_a_crash(server, sa):
    r = sa.post("/api/v1/tenants", data="[" * 100000 + "]" * 100000, headers=JSON)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_wrong_types_are_422_naming_each_field(anon):
    r = anon.post(LOGIN, json={"username": 12, "password": ["x"]})
    body = assert_problem(r, 422, "validation_failed")
    assert fields(body) == ["password", "username"]
    assert all(e["message"] for e in body["errors"])


def test_wrong_types_on_tenant_create_name_every_field(sa):
    r = sa.post("/api/v1/tenants", json={"name": 1, "slug": True, "admin_email": {}, "settings": "x"})
    body = assert_problem(r, 422, "validation_failed")
    assert {"name", "slug", "admin_email", "settings"} <= set(fields(body))


def test_missing_fields_are_422_naming_each_field(anon):
    body = assert_problem(anon.post(LOGIN, json={}), 422, "validation_failed")
    assert fields(body) == ["password", "username"]
    assert all("required" in e["message"] for e in body["errors"])


def test_missing_one_field_names_only_that_field(anon):
    body = assert_problem(anon.post(LOGIN, json={"username": "root"}), 422, "validation_failed")
    assert fields(body) == ["password"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(anon, ctype):
    r = anon.post(LOGIN, data='{"username": "root", "password": "x"}', headers={"Content-Type": ctype})
    assert_problem(r, 415, "unsupported_media_type")


def test_missing_content_type_with_body_is_415(server):
    got = raw_exchange(server, b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
    assert_raw_problem(got[0], 415, "unsupported_media_type")


def test_json_with_charset_parameter_is_accepted(anon):
    r = anon.post(LOGIN, data=json.dumps({"username": "root", "password": "root-password-1"}),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


def test_body_just_over_one_mib_is_413(anon):
    r = anon.post(LOGIN, data=b" " * (1024 * 1024 + 1), headers=JSON)
    assert_problem(r, 413, "payload_too_large")


def test_body_under_the_limit_is_parsed(sa):
    # ~900 KB of valid JSON: parsed and validated (a too-long name), not refused for its size.
    r = sa.post("/api/v1/tenants", json={"name": "n" * 900_000, "slug": "big-body", "admin_email": "a@b.co"})
    body = assert_problem(r, 422, "validation_failed")
    assert "name" in fields(body)


def test_64_mib_body_is_413_and_server_keeps_serving(server):
    size = 64 * 1024 * 1024
    with RawConn(server, timeout=10) as c:
        c.send(b"POST /api/v1/tenants HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % size)
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < size:
                c.sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the server may stop reading once it has answered
        got = c.read_responses(1, timeout=10)
    assert got, "no answer to a 64 MiB body"
    assert_raw_problem(got[0], 413, "payload_too_large")
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_streamed_chunked_body_over_limit_is_413(server):
    def gen():
        for _ in range(64 * 16):  # 64 MiB in 64 KiB chunks; requests sends it chunked
            yield b"a" * 65536
    try:
        r = requests.post(server.url + LOGIN, data=gen(), headers=JSON, timeout=30)
    except requests.ConnectionError:
        r = None  # the server answered early and closed while we were still sending: check on the wire below
    if r is not None:
        assert_problem(r, 413, "payload_too_large")
    else:
        with RawConn(server) as c:
            c.send(b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + (b"100000\r\n" + b"a" * 0x100000 + b"\r\n") * 2)
            got = c.read_responses(1)
        assert_raw_problem(got[0], 413, "payload_too_large")
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_chunked_request_body_is_accepted(server):
    body = json.dumps({"username": "root", "password": "root-password-1"}).encode()
    chunks = [body[:7], body[7:20], body[20:]]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    got = raw_exchange(server, b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\n"
                               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + wire)
    assert got[0].status == 200, got
    assert got[0].json()["token_type"] == "Bearer"


def test_chunked_body_via_requests_generator_is_accepted(anon):
    body = json.dumps({"username": "root", "password": "root-password-1"}).encode()
    r = anon.post(LOGIN, data=iter([body[:10], body[10:]]), headers=JSON)
    assert r.status_code == 200, r.text


def test_invalid_chunk_size_is_400(server):
    with RawConn(server) as c:
        c.send(b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        got = c.read_responses(1)
        assert got and got[0].status == 400, got
        assert c.is_closed_by_peer()


def test_expect_100_continue(server):
    body = b'{"username":"root","password":"root-password-1"}'
    with RawConn(server) as c:
        c.send(b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        got = c.read_responses(1, timeout=3)
        assert got and got[0].status == 100, got
        c.buf = c.buf[c.buf.index(b"\r\n\r\n") + 4:]
        c.send(body)
        got = c.read_responses(1)
    assert got[0].status == 200 and got[0].json()["access_token"]


def test_expect_100_continue_with_oversized_body_is_413_without_continue(server):
    with RawConn(server) as c:
        c.send(b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (64 * 1024 * 1024))
        got = c.read_responses(1, timeout=3)
    assert got and got[0].status == 413, got


def test_query_string_does_not_break_routing(anon):
    assert anon.get("/health?verbose=1&x=%20y").status_code == 200
    assert anon.request("HEAD", "/api/v1/auth/me").status_code == 401


# --- headers -----------------------------------------------------------------------------------------------------


def test_200_kb_header_is_431(anon):
    r = anon.get("/health", headers={"X-Big": "a" * 200_000})
    assert_problem(r, 431, "headers_too_large")


def test_many_small_headers_over_limit_are_431(server):
    hdrs = b"".join(b"X-H-%d: %s\r\n" % (i, b"v" * 200) for i in range(200))  # ~42 KB in 200 fields
    got = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: t\r\n" + hdrs + b"\r\n")
    assert_raw_problem(got[0], 431, "headers_too_large")


def test_modest_headers_are_fine(anon):
    r = anon.get("/health", headers={"X-Medium": "a" * 4000})
    assert r.status_code == 200


# --- framing attacks and garbage ---------------------------------------------------------------------------------


def assert_400_and_closed(server, wire):
    with RawConn(server) as c:
        c.send(wire)
        got = c.read_responses(1)
        assert got, "no answer"
        assert_raw_problem(got[0], 400, "invalid_request")
        assert c.is_closed_by_peer(), "the connection must be closed after a framing error"
    return got[0]


def test_content_length_plus_transfer_encoding_is_400(server):
    assert_400_and_closed(server, b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 5\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")


def test_duplicate_differing_content_length_is_400(server):
    assert_400_and_closed(server, b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ")


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1, 2", b"99999999999999999999999"])
def test_invalid_content_length_is_400(server, value):
    assert_400_and_closed(server, b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: " + value + b"\r\n\r\n{}")


@pytest.mark.parametrize("line", [b"HELLO WORLD", b"GET", b"GET /health HTTP/9.9", b"\x16\x03\x01\x02\x00\x01",
                                  b"GET /he alth HTTP/1.1", b"GET health HTTP/1.1"])
def test_garbage_request_line_is_400(server, line):
    with RawConn(server) as c:
        c.send(line + b"\r\nHost: t\r\n\r\n")
        got = c.read_responses(1)
        assert got, "no answer to a garbage request line"
        if got[0].status == 505:  # HTTP Version Not Supported is as good for an unknown version
            assert line.endswith(b"HTTP/9.9")
        else:
            assert_raw_problem(got[0], 400, "invalid_request")
        assert c.is_closed_by_peer()
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_http11_without_host_is_400(server):
    assert_400_and_closed(server, b"GET /health HTTP/1.1\r\n\r\n")


def test_http10_without_host_is_served_and_closed(server):
    with RawConn(server) as c:
        c.send(b"GET /health HTTP/1.0\r\n\r\n")
        got = c.read_responses(1)
        assert got and got[0].status == 200
        assert c.is_closed_by_peer()


def test_after_parse_error_other_connections_are_served(server):
    with RawConn(server) as good:
        assert_400_and_closed(server, b"BROKEN\r\n\r\n")
        good.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        got = good.read_responses(1)
    assert got[0].status == 200


# --- connections -------------------------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(server):
    with RawConn(server) as c:
        for i in range(3):
            c.send(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-ID: ka-%d\r\n\r\n" % i)
            got = c.read_responses(i + 1)
            assert len(got) == i + 1 and got[i].status == 200
            assert got[i].headers["x-request-id"] == "ka-%d" % i
            assert got[i].headers.get("connection", "").lower() != "close"
        assert not c.is_closed_by_peer(wait=0.2)


def test_keep_alive_with_requests_session(anon):
    s = requests.Session()
    r1 = s.get(anon.base + "/health", timeout=5)
    sock1 = r1.raw._connection.sock if r1.raw._connection else None
    r2 = s.get(anon.base + "/health", timeout=5)
    assert r1.status_code == r2.status_code == 200
    assert r1.headers["X-Request-ID"] != r2.headers["X-Request-ID"]
    if sock1 is not None and r2.raw._connection is not None:
        assert r2.raw._connection.sock is sock1


def test_pipelined_requests_are_answered_in_order(server):
    with RawConn(server) as c:
        c.send(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-ID: pipe-1\r\n\r\n"
               b"GET /api/no/such/route HTTP/1.1\r\nHost: t\r\nX-Request-ID: pipe-2\r\n\r\n"
               b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nX-Request-ID: pipe-3\r\n"
               b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        got = c.read_responses(3)
    assert [g.headers["x-request-id"] for g in got] == ["pipe-1", "pipe-2", "pipe-3"]
    assert [g.status for g in got] == [200, 404, 422]
    assert got[0].json()["status"] in ("ok", "degraded")


def test_connection_close_is_honoured(server):
    with RawConn(server) as c:
        c.send(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        got = c.read_responses(1)
        assert got[0].status == 200
        assert c.is_closed_by_peer()


def test_slow_client_does_not_block_others_and_can_finish(server):
    # Partial header, then a stall: the server keeps the connection (its header timeout is 10 s) and serves others.
    stalled = [RawConn(server) for _ in range(20)]
    try:
        for c in stalled:
            c.send(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        t0 = time.time()
        for _ in range(5):
            assert requests.get(server.url + "/health", timeout=2).status_code == 200
        assert time.time() - t0 < 2
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))
        assert not stalled[0].is_closed_by_peer(wait=0.1), "a 1 s stall must not close the connection yet"
        stalled[0].send(b"X-Request-ID: finally\r\n\r\n")
        got = stalled[0].read_responses(1)
        assert got[0].status == 200 and got[0].headers["x-request-id"] == "finally"
    finally:
        for c in stalled:
            c.close()


SPLIT_LOGIN = (b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nX-Request-ID: split-req\r\n"
               b"Content-Type: application/json\r\nContent-Length: 48\r\n\r\n"
               b'{"username":"root","password":"root-password-1"}')


@pytest.mark.parametrize("split_at", [
    SPLIT_LOGIN.index(b"/login") ,                  # inside the request line
    SPLIT_LOGIN.index(b"Host:"),                    # right after the request line
    SPLIT_LOGIN.index(b"X-Request-ID") + 5,         # inside a header field
    SPLIT_LOGIN.index(b"\r\n\r\n") + 2,             # inside the blank line ending the header
    SPLIT_LOGIN.index(b"\r\n\r\n") + 4,             # between header and body
    SPLIT_LOGIN.index(b'"password"'),               # inside the body
])
def test_request_arriving_in_two_segments_is_parsed_correctly(server, split_at):
    with RawConn(server) as c:
        c.send(SPLIT_LOGIN[:split_at])
        time.sleep(0.05)
        c.send(SPLIT_LOGIN[split_at:])
        got = c.read_responses(1)
    assert got, "no answer"
    assert got[0].status == 200, got[0]
    assert got[0].headers["x-request-id"] == "split-req"
    assert got[0].json()["token_type"] == "Bearer"


def test_many_concurrent_connections(server):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: requests.get(server.url + "/health", timeout=10).status_code, range(64)))
    assert codes == [200] * 64


def test_every_answer_carries_request_id_and_server_survives(server, anon):
    for method, path in [("GET", "/health"), ("GET", "/nope"), ("PUT", "/health"), ("GET", "/api/v1/auth/me"),
                         ("POST", LOGIN)]:
        r = anon.request(method, path)
        assert r.headers.get("X-Request-ID"), (method, path, r.status_code)
    body = anon.get("/health").json()
    assert body["status"] == "ok"
