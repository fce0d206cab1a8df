#!/usr/bin/python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*): the same bytes on
every run but for the ES256 signatures of the token seeds (ECDSA draws a fresh nonce; any of them verifies).

The targets read their choices (modes, cut sizes, which declaration) with FuzzedDataProvider, which takes
integers from the END of the input and strings from its start; each seed is laid out that way.
Run it again after changing a target's input layout:  fuzz/seeds.py
"""
import base64
import json
import os
import shutil
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def escape(text):
    """A string for ConsumeRandomLengthString: backslashes doubled, ended by a backslash and a space."""
    return text.replace(b"\\", b"\\\\") + b"\\ "


def write(target, seeds):
    folder = os.path.join(ROOT, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i, data in enumerate(seeds):
        with open(os.path.join(folder, f"seed-{i:02d}"), "wb") as f:
            f.write(data)


def request_parser():
    # Requests, then the cut sizes (2 bytes each) and their count (last byte: count - 1).
    tail = b"\x00\x05\x00"  # one cut of 6 bytes
    requests = [
        b"GET /items HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /items HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        b"GET /items/1 HTTP/1.1\r\nHost: a\r\n\r\nPATCH /items/2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /items/export?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"POST /items/import HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"a,b\r\n" * 20,
        b"GET /items HTTP/1.0\r\n\r\n",
        b"POST /items HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /proxy/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\na",
        # Findings kept as seeds: a refused header (no Host) with a Content-Length nobody checked.
        b"POST /items HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
    ]
    write("request_parser_fuzz", [r + tail for r in requests])


def tokens():
    pem = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7NatYuSxyljPTIXr
QQHL6+2pINwk0HicdbVMZIM9BtihRANCAATc7YWJldsR9lK5Ig2xYKgEeSQcpEOx
bENjdGhNg8TRgLpGJgDKbwCKKf7iOj71VnnrvlV/RF2xDhrrxIJ6PAnY
-----END PRIVATE KEY-----
"""
    key = serialization.load_pem_private_key(pem, password=None)
    now = 1_800_000_000
    header = json.dumps({"alg": "ES256", "typ": "JWT", "kid": "fuzz-key-1"}, separators=(",", ":")).encode()
    claims = [
        {"iss": "https://cdx.example", "sub": "u1", "aud": "cdx-api", "iat": now, "exp": now + 900, "jti": "j"},
        {"iss": "https://cdx.example", "sub": "u2", "aud": ["x", "cdx-api"], "iat": now - 10, "exp": now + 60.5,
         "nbf": now - 5, "tid": "t1", "role": "ADMIN", "scope": "crm:read", "extra": {"a": [1, 2]}},
    ]

    def sign(h, payload):
        signing_input = b64(h) + b"." + b64(payload)
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return signing_input + b"." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    seeds = []
    for c in claims:
        payload = json.dumps(c, separators=(",", ":")).encode()
        seeds.append(sign(header, payload) + b"\x41\x00\x07\x00")          # mode 0: the token
        seeds.append(escape(header) + payload + b"\x41\x00\x07\x01")       # mode 1: header, payload
    seeds.append(b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0." + b"\x41\x00\x07\x00")  # alg none
    seeds.append(escape(b'{"alg":"HS256","kid":"fuzz-key-1"}') + b'{"sub":"u"}' + b"\x00\x00\x00\x01")
    fields = b"".join(escape(v) for v in [b"user-1", b"tenant-1", b"CLIENT", b"crm:read", b""])
    seeds.append(fields + b'{"email":"a@b.example"}' + b"\x00\x10\x00\x10" + b"\x41\x00\x07\x02")
    write("tokens_fuzz", seeds)


def csv():
    write("csv_fuzz", [
        b"first_name,last_name,email\r\nAda,Lovelace,ada@example.com\r\n",
        b"\xef\xbb\xbfemail,tags,custom.size\nb@example.com,a;b;c,XL\n",
        b'first_name,notes\n"Quoted, with comma","line one\nline two ""quoted"""\n\n',
        b"id,first_name,created_at,updated_at\n01930000-0000-7000-8000-000000000001,=cmd|' /C calc'!A0,x,y\n",
        b"email\n+1 555\n-x\n@SUM(1)\n",
        b'a,"b\n',
    ])


def read_body():
    # Body, then ConsumeBool (create: odd) and the declaration's index (last byte).
    names = ["company", "contact", "activity", "deal", "pipeline", "stage", "tenant", "tenant_create", "plan",
             "superadmin_verify", "superadmin_login", "login", "refresh", "logout", "sign_up", "password_forgot",
             "password_reset", "first_admin", "seed_user"]
    bodies = {
        "company": {"name": "Acme", "domain": "Acme.example.com", "custom": {"tier": "gold", "n": 1}},
        "contact": {"first_name": " Ada ", "email": "ADA@example.com", "tags": ["a", "A", "b"],
                    "custom": {"x": None}, "phone": "+44 20 1234 5678"},
        "activity": {"type": "call", "subject": "Hello", "due_at": "2026-01-31T09:30:00+01:00"},
        "deal": {"title": "Big", "value": 1000, "currency": "EUR", "close_date": "2026-02-29"},
        "pipeline": {"name": "Sales", "stages": [{"name": "Lead", "probability": 10}, {"name": "Won"}]},
        "stage": {"name": "Closing", "probability": 80, "position": 0},
        "tenant": {"name": "T", "settings": {"allowed_origins": ["https://app.example.com"],
                                             "access_token_ttl": 900, "mine": {"a": None}}},
        "tenant_create": {"name": "T", "slug": "t-1", "admin_email": "a@t.example.com", "admin_password": "p-1"},
        "plan": {"key": "pro", "name": "Pro", "modules": ["crm"], "rate_limit_per_minute": 100},
        "superadmin_verify": {"username": "root", "password": "x"},
        "superadmin_login": {"username": "root", "password": "x"},
        "login": {"email": "a@b.example.com", "password": "secret-1", "tenant": "demo", "unknown": 1},
        "refresh": {"refresh_token": "abc"},
        "logout": {},
        "sign_up": {"email": "a@b.example.com", "password": "secret-12", "name": "A"},
        "password_forgot": {"email": "a@b.example.com", "tenant": "demo"},
        "password_reset": {"token": "t", "password": "new-secret-1"},
        "first_admin": {"email": "a@b.example.com"},
        "seed_user": {"email": "a@b.example.com", "role": "ADMIN", "password": "p"},
    }
    seeds = []
    for i, name in enumerate(names):
        body = json.dumps(bodies[name]).encode()
        seeds.append(body + bytes([1, i]))   # create
        seeds.append(body + bytes([0, i]))   # update
    seeds.append(b'{"name":null,"custom":{"a":[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]}}' + bytes([1, 0]))
    seeds.append(b'{"first_name":"a\\u0000b"}' + bytes([1, 1]))
    # Findings kept as seeds: a NUL byte after the object; a date past what SysTime holds.
    seeds.append(b'{"name":"Acme"}\x00{"id":"x"}' + bytes([1, 0]))
    seeds.append(b'{"type":"task","subject":"x","due_at":"4052-01-31T09:30:00+01:00"}' + bytes([1, 2]))
    write("read_body_fuzz", seeds)


def pagination():
    def cursor(key):
        return b64(b"c1:" + key)

    def sorted_cursor(sort, value, id_):
        return b64(b"c1:" + sort + b"|" + b64(value) + b"|" + id_)

    uid = b"01930000-0000-7000-8000-000000000001"
    write("pagination_fuzz", [
        b"limit=10&cursor=" + cursor(b"seq|42") + b"\x00",
        b"limit=%32%30%30&cursor=&x=%ff" + b"\x00",
        b"cursor=" + cursor(b"ev|7") + b"&limit=0" + b"\x00",
        cursor(b"seq|1") + b"\x01",
        escape(b"-created_at") + sorted_cursor(b"-created_at", b"2026-01-01T00:00:00Z", uid) + b"\x02",
        escape(b"name") + sorted_cursor(b"name", "Zoë".encode(), uid) + b"\x02",
        escape(b"name") + escape(uid) + "Ünïcode value".encode() + b"\x03",
    ])


def router():
    # Integers all: a route table and paths, built by the target from the bytes' end.
    write("router_fuzz", [bytes(range(i, i + 64)) for i in (0, 64, 128, 192)] +
          [struct.pack("<32H", *range(1000, 33000, 1000))])


if __name__ == "__main__":
    request_parser()
    tokens()
    csv()
    read_body()
    pagination()
    router()
