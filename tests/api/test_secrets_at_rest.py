"""Secrets at rest (issue 14 item 8): the token signing keys (and the OAuth login form's key) are stored sealed
with a key encryption key given to the server. Nothing private is in the database in plain text; tokens survive a
restart; a missing or wrong key stops the start with a clear message; `cdx admin rotate-kek` moves everything to a
new key; plain-text keys of an earlier version are sealed at the next start."""
import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import time

import jwt
import pytest
import requests

from conftest import BACKEND, SUPERADMIN, Server, cdx_env, fresh_postgres_database, new_kek, run_cdx

ME = "/api/v1/auth/me"


def kek_id(kek):
    """The id the server gives a key encryption key: BLAKE2b-64 of a label, keyed with the key."""
    return hashlib.blake2b(b"cdx key encryption key id", digest_size=8, key=base64.b64decode(kek)).hexdigest()


def sql(storage, query, params=()):
    """Rows of a query on auth_db, on the backend the storage names."""
    if "CDX_DATABASE_URL" in storage:
        text = query
        for p in params:  # test values only: no quotes inside
            text = text.replace("?", "'" + str(p) + "'" if p is not None else "NULL", 1)
        out = subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-c", text], check=True, capture_output=True, text=True)
        return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "auth_db.sqlite"))
    try:
        rows = db.execute(query.replace("auth_db.", ""), params).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def stored_bytes(storage):
    """Everything the database holds for auth: the SQLite file and its WAL, or every row of the schema's tables."""
    if "CDX_DATABASE_URL" not in storage:
        out = b""
        for suffix in ("", "-wal"):
            path = os.path.join(storage["CDX_DATA_DIR"], "auth_db.sqlite" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out += f.read()
        return out
    tables = [r[0] for r in sql(storage, "SELECT tablename FROM pg_tables WHERE schemaname = 'auth_db'")]
    dump = ""
    for t in tables:
        dump += subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-At", "-c",
                                f"SELECT row_to_json(x)::text FROM auth_db.{t} x"],
                               check=True, capture_output=True, text=True).stdout
    return dump.encode()


def superadmin_token(server):
    r = requests.post(server.url + "/api/v1/auth/superadmin/login",
                      json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def me(server, token):
    return requests.get(server.url + ME, headers={"Authorization": "Bearer " + token}, timeout=10)


def verify_with_jwks(server, token):
    key = jwt.PyJWKClient(server.url + "/.well-known/jwks.json", cache_jwk_set=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="cdx", issuer=server.url)


def assert_sealed(storage, kek):
    keys = sql(storage, "SELECT kid, private_key, kek_id FROM auth_db.signing_keys")
    assert keys, "no signing key stored"
    for kid, private, sealed_by in keys:
        assert sealed_by == kek_id(kek), (kid, sealed_by)
        assert "PRIVATE KEY" not in private and not private.lstrip().startswith(("-----", "{")), private[:40]
        raw = base64.b64decode(private)  # nonce + ciphertext + tag: nothing readable
        assert len(raw) > 24 + 16 + 100
    for name, secret, sealed_by in sql(storage, "SELECT name, secret, kek_id FROM auth_db.oauth_secrets"):
        assert sealed_by == kek_id(kek), (name, sealed_by)
    data = stored_bytes(storage)
    assert b"PRIVATE KEY" not in data, "a PEM private key is stored in plain text"
    assert b'"d":' not in data, "a private JWK is stored in plain text"


def start(storage, port=None, **kw):
    """A server on the storage; on `port` when given (a token names its issuer's address)."""
    s = Server(storage=storage, **kw)
    if port:
        s.port = port
    return s.start()


@pytest.fixture
def storage(tmp_path):
    """Fresh storage on the current backend with its key encryption key (CDX_KEK)."""
    s = Server.__new__(Server)
    s.tmp = str(tmp_path)
    return s._new_storage()


def test_signing_keys_are_sealed_and_tokens_survive_a_restart(storage):
    s = start(storage)
    try:
        token = superadmin_token(s)
        assert me(s, token).status_code == 200
        # A rotation stores a second key, sealed like the first.
        assert run_cdx(["admin", "rotate-keys"], env=cdx_env(storage)).returncode == 0
        assert_sealed(storage, storage["CDX_KEK"])
        verify_with_jwks(s, token)
    finally:
        s.stop()
    assert_sealed(storage, storage["CDX_KEK"])
    s = start(storage, s.port)
    try:
        assert me(s, token).status_code == 200, "a token signed before the restart stopped working"
        verify_with_jwks(s, token)
        fresh = superadmin_token(s)
        assert jwt.get_unverified_header(fresh)["kid"] != jwt.get_unverified_header(token)["kid"]  # the rotated key
        verify_with_jwks(s, fresh)
    finally:
        s.cleanup()


def test_without_a_kek_or_with_a_wrong_one_the_server_refuses_to_start(storage):
    s = start(storage)
    token = superadmin_token(s)
    s.cleanup()

    without = {k: v for k, v in storage.items() if k != "CDX_KEK"}
    r = run_cdx(["serve", "--port", "0"], env=cdx_env(without))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no key encryption key" in r.stderr and "CDX_KEK_FILE" in r.stderr, r.stderr

    wrong = new_kek()
    r = run_cdx(["serve", "--port", "0"], env=cdx_env(storage, CDX_KEK=wrong))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "key encryption key" in r.stderr, r.stderr
    assert kek_id(storage["CDX_KEK"]) in r.stderr and kek_id(wrong) in r.stderr, r.stderr
    assert wrong not in r.stderr + r.stdout, "the key itself must never be printed"

    r = run_cdx(["serve", "--port", "0"], env=cdx_env(storage, CDX_KEK="not-a-key"))
    assert r.returncode == 2 and "kek" in r.stderr and "not-a-key" not in r.stderr, r.stderr

    # Nothing was changed by the refused starts: the right key still opens everything.
    s = start(storage, s.port)
    try:
        assert me(s, token).status_code == 200
    finally:
        s.cleanup()


def test_rotate_kek_reseals_everything_under_the_new_key(storage):
    old = storage["CDX_KEK"]
    s = start(storage)
    token = superadmin_token(s)
    s.stop()

    new = new_kek()
    r = run_cdx(["admin", "rotate-kek"], env=cdx_env(storage, CDX_KEK=new, CDX_KEK_PREVIOUS=old))
    assert r.returncode == 0, r.stdout + r.stderr
    assert kek_id(new) in r.stdout, r.stdout
    assert_sealed(storage, new)
    again = run_cdx(["admin", "rotate-kek"], env=cdx_env(storage, CDX_KEK=new, CDX_KEK_PREVIOUS=old))
    assert again.returncode == 0 and "already" in again.stdout, again.stdout + again.stderr

    # The old key alone opens nothing any more; the new one alone opens everything.
    r = run_cdx(["serve", "--port", "0"], env=cdx_env(storage, CDX_KEK=old))
    assert r.returncode == 2 and kek_id(new) in r.stderr, r.stderr
    moved = dict(storage, CDX_KEK=new)
    s = start(moved, s.port)
    try:
        assert me(s, token).status_code == 200, "a token signed under the old KEK's era stopped working"
        verify_with_jwks(s, superadmin_token(s))
    finally:
        s.stop()

    # The same move while serving: started with the next key and the current one as kek_previous.
    newer = new_kek()
    s = start(dict(moved, CDX_KEK=newer, CDX_KEK_PREVIOUS=new), s.port)
    try:
        assert me(s, token).status_code == 200
    finally:
        s.stop()
    assert_sealed(storage, newer)
    s.cleanup()


def test_plain_text_keys_of_an_earlier_version_are_sealed_at_start(storage):
    """A database written before keys were sealed (kek_id NULL, the PEM in the row) is sealed at the next start,
    and the server still signs with that very key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    s = start(storage)
    s.stop()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    numbers = key.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
    kid = "legacyKey" + os.urandom(4).hex()[:7]
    jwk = json.dumps({"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y), "kid": kid,
                      "alg": "ES256", "use": "sig"})
    sql(storage, "UPDATE auth_db.signing_keys SET active = 0")
    sql(storage, "INSERT INTO auth_db.signing_keys (kid, alg, private_key, kek_id, public_jwk, created_at, active) "
                 "VALUES (?, 'ES256', ?, NULL, ?, ?, 1)", (kid, pem, jwk, int(time.time()) + 1))
    sql(storage, "UPDATE auth_db.oauth_secrets SET secret = ?, kek_id = NULL", ("plain-csrf-secret-" + "x" * 46,))
    assert b"PRIVATE KEY" in stored_bytes(storage)

    s = start(storage)
    try:
        token = superadmin_token(s)
        assert jwt.get_unverified_header(token)["kid"] == kid
        # Signed with the key written in plain text: it was opened after being sealed.
        jwt.decode(token, key.public_key(), algorithms=["ES256"], audience="cdx", issuer=s.url)
        assert me(s, token).status_code == 200
        assert "sealed now" in s.read_log(), "the start did not say that plain-text keys were sealed"
    finally:
        s.stop()
    assert_sealed(storage, storage["CDX_KEK"])
    s.cleanup()


def test_demo_generates_a_kek_in_the_data_dir(tmp_path):
    # The data dir is where the key goes, on either backend.
    storage = {"CDX_DATA_DIR": str(tmp_path / "data")}
    if BACKEND == "postgres":
        storage["CDX_DATABASE_URL"] = fresh_postgres_database()
    s = Server(args=["--demo"], storage=storage)
    s.start()
    try:
        token = superadmin_token(s)
        log = s.read_log()
    finally:
        s.stop()
    path = tmp_path / "data" / "kek"
    assert path.exists(), "--demo did not keep its key in the data dir"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "DEMO MODE" in log and "key encryption key" in log, log[-2000:]
    kek = path.read_text().strip()
    assert_sealed(storage, kek)

    # Without --demo and without a key: refused, pointing at the demo key.
    r = run_cdx(["serve", "--port", "0"], env=cdx_env(storage))
    assert r.returncode == 2 and str(path) in r.stderr, r.stderr
    # With it given as a file, or with --demo again: the same key, the same tokens.
    port = s.port
    s = Server(storage=dict(storage, CDX_KEK_FILE=str(path)))
    s.port = port
    s.start()
    try:
        assert me(s, token).status_code == 200
    finally:
        s.cleanup()
