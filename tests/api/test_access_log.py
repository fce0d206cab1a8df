"""The access log: one JSON line per request with `ts` and a measured `duration_ms`, written in blocks by each
I/O thread to stdout or to a file (CDX_ACCESS_LOG_FILE), lossless at exit and reopened on SIGHUP."""
import datetime
import json
import os
import re
import signal
import time

import pytest
import requests

from conftest import SUPERADMIN, RawConn, Server, wait_for

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def access_lines(text):
    """Every access line of a log (the application's own lines are JSON too, without type=access)."""
    out = []
    for line in text.splitlines():
        if '"type":"access"' in line:
            out.append(json.loads(line))  # a torn or interleaved line fails here
    return out


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except FileNotFoundError:
        return ""


def file_server(**kw):
    s = Server(env={"CDX_ACCESS_LOG": "true", "CDX_LOG_LEVEL": "info"}, **kw)
    s.env["CDX_ACCESS_LOG_FILE"] = os.path.join(s.tmp, "access.log")
    return s


def test_every_line_is_json_with_ts_and_a_measured_duration():
    s = file_server()
    path = s.env["CDX_ACCESS_LOG_FILE"]
    try:
        s.start(timeout=40)
        for i in range(5):
            assert requests.get(s.url + "/health", headers={"X-Request-ID": f"fast-{i}"}, timeout=5).status_code == 200
        # A request that takes measurable time on the wire: its body arrives 300 ms after its header.
        body = json.dumps({"username": SUPERADMIN[0], "password": SUPERADMIN[1]}).encode()
        with RawConn(s, timeout=10) as c:
            c.send(b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nX-Request-ID: slow-1\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.3)
            c.send(body)
            assert c.read_responses(1, timeout=10)[0].status == 200

        def lines(request_id):
            return [l for l in access_lines(read(path)) if l["request_id"] == request_id]

        # A quiet server's lines appear without a restart (the buffers are flushed periodically).
        assert wait_for(lambda: lines("slow-1"), timeout=5), read(path)
        assert wait_for(lambda: all(lines(f"fast-{i}") for i in range(5)), timeout=5), read(path)
        every = access_lines(read(path))
        now = datetime.datetime.now(datetime.timezone.utc)
        for line in every:
            assert TS.match(line["ts"]), line
            ts = datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%f%z")
            assert abs((now - ts).total_seconds()) < 120, line
            assert {"type", "method", "path", "status", "duration_ms", "request_id", "remote"} <= set(line), line
            assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0, line
        slow = lines("slow-1")
        assert all(l["duration_ms"] > 0 for l in slow), slow
        assert max(l["duration_ms"] for l in slow) >= 250, "the time runs from the request's first byte"
        assert all(l["method"] == "POST" and l["status"] == 200 for l in slow), slow
        assert read(s.log_path).count('"type":"access"') == 0, "with a file configured, stdout carries none"
    finally:
        s.cleanup()


@pytest.mark.parametrize("destination,sig", [("stdout", signal.SIGTERM), ("file", signal.SIGTERM),
                                             ("file", signal.SIGINT)])
def test_no_line_is_lost_when_sigterm_follows_the_requests(destination, sig):
    s = file_server() if destination == "file" else Server(env={"CDX_ACCESS_LOG": "true", "CDX_LOG_LEVEL": "warn"})
    n = 300
    try:
        s.start(timeout=40)
        ids = [f"sigterm-{i}" for i in range(n)]
        with requests.Session() as session:
            for request_id in ids:
                assert session.get(s.url + "/health", headers={"X-Request-ID": request_id}, timeout=5).ok
        s.proc.send_signal(sig)  # at once: the lines are still in the I/O threads' buffers
        assert s.proc.wait(15) == 0, s.read_log()[-4000:]
        text = read(s.env["CDX_ACCESS_LOG_FILE"]) if destination == "file" else s.read_log()
        seen = [l["request_id"] for l in access_lines(text) if l["request_id"].startswith("sigterm-")]
        missing = set(ids) - set(seen)
        assert not missing, f"{len(missing)} of {n} lines lost, e.g. {sorted(missing)[:5]}"
        if s.topology == "monolith":
            assert len(seen) == n, "one line per request"
    finally:
        s.cleanup()


def test_sighup_reopens_the_file_for_log_rotation():
    s = file_server(topology="monolith")
    path = s.env["CDX_ACCESS_LOG_FILE"]
    try:
        s.start()
        assert requests.get(s.url + "/health", headers={"X-Request-ID": "before-rotation"}, timeout=5).ok
        assert wait_for(lambda: "before-rotation" in read(path), timeout=5)
        os.rename(path, path + ".1")
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        assert requests.get(s.url + "/health", headers={"X-Request-ID": "after-rotation"}, timeout=5).ok
        assert wait_for(lambda: "after-rotation" in read(path), timeout=5), read(path + ".1")
        assert s.proc.poll() is None, "SIGHUP does not stop the server"
        assert "after-rotation" not in read(path + ".1")
        assert "before-rotation" not in read(path)
    finally:
        s.cleanup()


def test_an_access_log_file_that_cannot_be_opened_stops_the_start(tmp_path):
    from conftest import cdx_env, run_cdx
    r = run_cdx(["serve", "--port", "0", "--access-log-file", str(tmp_path / "missing-dir" / "access.log")],
                env=cdx_env({"CDX_DATA_DIR": str(tmp_path / "data")}))
    assert r.returncode == 2, r.stderr
    assert "access log" in r.stderr
