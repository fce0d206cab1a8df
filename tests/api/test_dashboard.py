"""The dashboard (web/) served by the binary itself at `/` — the monolith, or the gateway of a constellation:
index.html never cached and under a strict Content-Security-Policy with no inline script, hashed assets cached
for a year (gzip when asked), client-side routes answered with the app, the API's paths unchanged."""
import gzip
import re

import requests

from conftest import BINARY, assert_problem, run_cdx


def index(server):
    r = requests.get(server.url + "/", timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r


def assets(html):
    found = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
    assert found, html[:500]
    return found


def test_the_root_is_the_dashboard_under_a_strict_policy(server):
    r = index(server)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    csp = r.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # No inline script: every <script> loads a file of the app.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", r.text, re.S)
    assert scripts and all('src="/assets/' in attrs and not body.strip() for attrs, body in scripts), scripts
    assert "<style" not in r.text and "style=" not in r.text


def test_hashed_assets_are_cached_for_a_year_and_gzipped(server):
    for path in assets(index(server).text):
        plain = requests.get(server.url + path, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert plain.status_code == 200, path
        assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Content-Encoding" not in plain.headers
        ext = path.rsplit(".", 1)[1]
        assert plain.headers["Content-Type"].startswith({"js": "text/javascript", "css": "text/css"}.get(ext, ""))
        if ext in ("js", "css"):
            raw = requests.get(server.url + path, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
            assert raw.headers["Content-Encoding"] == "gzip" and raw.headers["Vary"] == "Accept-Encoding"
            assert gzip.decompress(raw.raw.read()) == plain.content
        etag = plain.headers["ETag"]
        again = requests.get(server.url + path, headers={"If-None-Match": etag}, timeout=30)
        assert again.status_code == 304 and again.content == b""


def test_client_routes_answer_the_app_and_head_answers_without_body(server):
    root = index(server)
    for path in ("/tenants", "/tenants/0190a1b2-0000-7000-8000-000000000000/users", "/crm/deals", "/login"):
        r = requests.get(server.url + path, timeout=30)
        assert r.status_code == 200 and r.text == root.text, path
    # identity: a HEAD answers the headers its GET would, and a gzip answer's length is the compressed one
    head = requests.head(server.url + "/events", headers={"Accept-Encoding": "identity"}, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(root.content)


def test_the_api_and_operational_paths_keep_their_json_answers(server):
    for path in ("/api/v1/nothing", "/api", "/oauth/nothing", "/.well-known/nothing", "/internal/v1/x",
                 "/assets/not-built-1234.js", "/robots.txt", "/tenants/logo.png"):
        assert_problem(requests.get(server.url + path, timeout=30), 404, "not_found")
    assert_problem(requests.post(server.url + "/tenants", json={}, timeout=30), 404, "not_found")
    assert_problem(requests.get(server.url + "/api/v1/tenants", timeout=30), 401, "unauthorized")
    assert requests.get(server.url + "/health", timeout=30).json()["status"] in ("ok", "degraded")
    assert requests.get(server.url + "/metrics", timeout=30).text.startswith("# HELP")


def test_the_openapi_the_dashboard_is_typed_from_is_what_the_server_answers(server):
    """`cdx openapi` (the build's source for the dashboard's typed client) prints the server's description."""
    served = requests.get(server.url + "/openapi.json", timeout=30).json()
    printed = run_cdx(["openapi"])
    assert printed.returncode == 0, printed.stderr
    import json
    assert json.loads(printed.stdout)["paths"] == served["paths"]
    assert "/*" not in served["paths"]


def test_a_slow_reader_gets_every_byte_of_a_large_asset(server):
    """Large files leave by sendfile(2) or a gathered write, in as many pieces as the client's window takes:
    a client with a small receive buffer that waits before reading gets the same bytes."""
    import socket
    import time
    from urllib.parse import urlparse
    u = urlparse(server.url)
    for path in assets(index(server).text):
        for encoding in ("gzip", "identity"):
            whole = requests.get(server.url + path, headers={"Accept-Encoding": encoding}, stream=True, timeout=30)
            expected = whole.raw.read()
            if len(expected) < 16 * 1024:
                continue
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((u.hostname, u.port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
                      .encode())
            time.sleep(0.3)  # the server's send stalls on the full window meanwhile
            got = b""
            while chunk := s.recv(1024):
                got += chunk
            s.close()
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            assert body == expected, (path, encoding, len(body), len(expected))
