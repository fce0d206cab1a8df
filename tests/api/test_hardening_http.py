"""Connection-level hardening (issue 14, items 1 and 2): chunk metadata counts against the header limit,
slow and silent clients are cut off at the documented timeouts, Content-Length is one value, and
connections are capped per client address and in all, answered 503 instead of stalling accept."""
import socket
import threading
import time

import pytest
import requests

from conftest import RawConn, Server, parse_responses

LOGIN = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def flood(server, head, filler, limit=16 << 20):
    """Sends head, then filler repeatedly until the server answers or closes; answers (bytes sent, answers)."""
    with RawConn(server, timeout=5) as c:
        c.send(head)
        sent = 0
        try:
            while sent < limit:
                c.sock.sendall(filler)
                sent += len(filler)
                c.sock.settimeout(0)
                try:
                    data = c.sock.recv(65536)
                    if not data:
                        break
                    c.buf += data
                    if parse_responses(c.buf)[0]:
                        break
                except BlockingIOError:
                    pass
                finally:
                    c.sock.settimeout(5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answers = c.read_responses(1, timeout=5)
        return sent, answers, c.is_closed_by_peer(wait=3)


@pytest.mark.parametrize("name, head, filler", [
    ("endless trailer fields", LOGIN + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", b"X-Pad: " + b"a" * 1000 + b"\r\n"),
    ("one endless chunk extension", LOGIN + b"Transfer-Encoding: chunked\r\n\r\n2;", b"a" * 4096),
    ("many chunks, each with an extension", LOGIN + b"Transfer-Encoding: chunked\r\n\r\n", b"1;" + b"e" * 1000 + b"\r\n{\r\n"),
])
def test_chunk_metadata_counts_against_the_header_limit(server, name, head, filler):
    sent, answers, closed = flood(server, head, filler)
    assert answers and answers[0].status == 431, (name, sent, answers)
    # Refused while the flood was still being sent (the kernel's socket buffers hold a few MiB of it): before
    # the fix the server took all 16 MiB and never answered.
    assert sent < 8 << 20, f"{name}: {sent} bytes taken before the answer"
    assert closed, name


@pytest.mark.parametrize("lengths", [[b"5", b"5"], [b"5, 5"], [b"5", b"6"]])
def test_content_length_is_one_value(server, lengths):
    head = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"".join(b"Content-Length: " + v + b"\r\n" for v in lengths)
    with RawConn(server) as c:
        answers = c.send(head + b"\r\n{}   x").read_responses(1)
        assert answers and answers[0].status == 400, (lengths, answers)
        assert c.is_closed_by_peer()


@pytest.mark.parametrize("length", [b"18446744073709551615", b"4294967296"])
def test_a_refused_header_with_a_huge_content_length_is_answered(server, length):
    # Found by request_parser_fuzz: without a Host, the Content-Length went unchecked and the parser tried to
    # reserve that much for the body: 2^64 - 1 threw out of the connection, which closed without an answer.
    head = b"POST /api/v1/auth/login HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n"
    with RawConn(server) as c:
        answers = c.send(head + b"{}").read_responses(1)
        assert answers and answers[0].status == 400, (length, answers)
        assert c.is_closed_by_peer()


def test_a_header_sent_in_two_parts_keeps_the_header_limit(server):
    # Found by request_parser_fuzz: the complete fields of the first read were taken at once and the limit
    # counted again from there, so a header of nearly twice the limit passed when it came in two parts.
    fields = [b"X-Pad-%d: " % i + b"p" * 1000 + b"\r\n" for i in range(28)]
    with RawConn(server) as c:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(fields[:14]))
        time.sleep(0.2)
        try:
            c.send(b"".join(fields[14:]) + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answers = c.read_responses(1)
        assert answers and answers[0].status == 431, answers


def test_silent_and_slow_clients_are_cut_off_at_the_header_timeout(server):
    results = {}

    def silent():
        with RawConn(server, timeout=20) as c:
            t0 = time.time()
            results["silent"] = (c.is_closed_by_peer(wait=16), time.time() - t0)

    def line_a_second():
        with RawConn(server, timeout=20) as c:
            t0 = time.time()
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for i in range(16):
                try:
                    c.send(b"X-Slow-%d: y\r\n" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if c.is_closed_by_peer(wait=1.0):
                    closed = True
                    break
            results["slow header"] = (closed, time.time() - t0)

    threads = [threading.Thread(target=silent), threading.Thread(target=line_a_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for what, (closed, took) in results.items():
        assert closed and 9 <= took <= 13, f"{what}: closed={closed} after {took:.1f} s (documented: 10 s)"
    assert len(results) == 2


def connect_from(port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    return s


def test_connections_are_capped_per_client_and_answered_503():
    srv = Server(env={"CDX_MAX_CONNECTIONS_PER_CLIENT": "20"}).start()
    held = []
    try:
        for _ in range(20):
            s = connect_from(srv.port, "127.0.0.3")
            held.append(s)
        time.sleep(0.3)  # the server has accepted them
        extra = connect_from(srv.port, "127.0.0.3")
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        extra.settimeout(5)
        while True:
            chunk = extra.recv(65536)
            if not chunk:
                break
            data += chunk
        answers, _ = parse_responses(data)
        assert answers and answers[0].status == 503, data[:300]
        assert answers[0].headers.get("retry-after") == "1"
        assert answers[0].headers.get("content-type", "").startswith("application/problem+json")
        # Another client is served at once while this one holds its cap.
        slowest = 0.0
        for _ in range(20):
            t0 = time.time()
            r = requests.get(srv.url + "/health", timeout=5)
            slowest = max(slowest, time.time() - t0)
            assert r.status_code == 200
        assert slowest < 0.5, f"/health took {slowest:.3f} s while one client held its cap"
        metrics = requests.get(srv.url + "/metrics", timeout=5).text
        assert "cdx_http_connections_refused_total 1" in metrics
        # Closing one frees a place.
        held.pop().close()
        time.sleep(0.3)
        again = connect_from(srv.port, "127.0.0.3")
        again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        again.settimeout(5)
        assert again.recv(64).startswith(b"HTTP/1.1 200")
        again.close()
    finally:
        for s in held:
            s.close()
        srv.cleanup()


def test_a_full_worker_queue_answers_503_at_once():
    """Item 7: past the queue bound a request is refused with 503 and Retry-After, not queued without end."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import SUPERADMIN
    srv = Server(env={"CDX_HASH_WORKERS": "1", "CDX_WORKER_QUEUE_LIMIT": "1"}).start()
    try:
        def login(_):
            r = requests.post(srv.url + "/api/v1/auth/superadmin/login",
                              json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=30)
            return r.status_code, r.headers.get("Retry-After"), r.headers.get("Content-Type", "")

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(login, range(48)))
        statuses = [a[0] for a in answers]
        assert 503 in statuses, statuses
        assert 200 in statuses, statuses
        assert set(statuses) <= {200, 429, 503}, statuses
        for status, retry_after, content_type in answers:
            if status == 503:
                assert retry_after and retry_after.isdigit() and int(retry_after) >= 1, retry_after
                assert content_type.startswith("application/problem+json")
        assert requests.get(srv.url + "/health", timeout=5).status_code == 200
    finally:
        srv.cleanup()
