"""The binary's command line (config validation, version, create-superadmin, --demo) and durability: acknowledged
data survives a restart on the same storage; SIGTERM drains and exits 0."""
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import (BINARY, DEMO_ADMIN, DEMO_CLIENT, DEMO_SUPERADMIN, SUPERADMIN, Api, RawConn, Server,
                      cdx_env, free_port, login, make_tenant, run_cdx)


@pytest.fixture
def storage():
    """Fresh storage on the current backend for a command that is not a Server (SQLite dir or a new database)."""
    s = Server.__new__(Server)
    s.tmp = tempfile.mkdtemp(prefix="cdx-cli-")
    yield s._new_storage()
    shutil.rmtree(s.tmp, ignore_errors=True)


@pytest.fixture
def scratch(tmp_path):
    """A SQLite data dir for commands expected to fail before touching storage."""
    return {"CDX_DATA_DIR": str(tmp_path / "data")}


def sa_login(base, username, password):
    return requests.post(base + "/api/v1/auth/superadmin/login", json={"username": username, "password": password},
                         timeout=10)


# --- configuration -----------------------------------------------------------------------------------------------


def assert_config_error(proc, *words):
    assert proc.returncode != 0, f"exit 0 despite a bad setting: {proc.stdout} {proc.stderr}"
    message = (proc.stderr + proc.stdout).lower()
    for w in words:
        assert w.lower() in message, f"message does not name {w!r}: {proc.stderr!r}"


def test_port_out_of_range_fails_fast(scratch):
    t0 = time.time()
    proc = run_cdx(["serve", "--port", "70000"], env=cdx_env(scratch), timeout=10)
    assert time.time() - t0 < 5
    assert_config_error(proc, "port")


def test_port_from_env_not_a_number_fails(scratch):
    proc = run_cdx(["serve"], env=cdx_env(scratch, CDX_PORT="abc"), timeout=10)
    assert_config_error(proc, "port", "CDX_PORT")


@pytest.mark.parametrize("env,word", [({"CDX_LOG_LEVEL": "loud"}, "log_level"),
                                      ({"CDX_ACCESS_TOKEN_TTL": "5"}, "access_token_ttl"),
                                      ({"CDX_BOOTSTRAP_SUPERADMIN": "no-colon"}, "bootstrap_superadmin"),
                                      ({"CDX_PUBLIC_URL": "ftp://x"}, "public_url"),
                                      ({"CDX_DATABASE_URL": "mysql://x"}, "database_url")])
def test_bad_env_settings_fail_naming_the_setting(scratch, env, word):
    proc = run_cdx(["serve"], env=cdx_env(scratch, CDX_PORT=str(free_port()), **env), timeout=10)
    assert_config_error(proc, word)


def test_config_file_with_unknown_key_fails(tmp_path, scratch):
    cfg = tmp_path / "cdx.toml"
    cfg.write_text('port = 8080\nlog_level = "warn"\ntypo_setting = 3\n')
    proc = run_cdx(["serve", "--config", str(cfg)], env=cdx_env(scratch), timeout=10)
    assert_config_error(proc, "typo_setting")


def test_config_file_with_bad_value_fails(tmp_path, scratch):
    cfg = tmp_path / "cdx.toml"
    cfg.write_text('port = "not-a-port"\n')
    proc = run_cdx(["serve", "--config", str(cfg)], env=cdx_env(scratch), timeout=10)
    assert_config_error(proc, "port")


def test_missing_config_file_fails(tmp_path, scratch):
    proc = run_cdx(["serve", "--config", str(tmp_path / "absent.toml")], env=cdx_env(scratch), timeout=10)
    assert_config_error(proc, "absent.toml")


def test_config_file_is_applied(tmp_path, storage):
    """A valid config file is read: the server listens on the port it names."""
    port = free_port()
    cfg = tmp_path / "cdx.toml"
    cfg.write_text(f'port = {port}\nhost = "127.0.0.1"\nlog_level = "warn"\n')
    # Only the file names the port (Server.start would set CDX_PORT), so run the binary by hand.
    env = cdx_env(storage, CDX_BOOTSTRAP_SUPERADMIN="root:root-password-1", CDX_THREADS="1")
    proc = subprocess.Popen([BINARY, "serve", "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        ok = False
        while not ok and time.time() < deadline and proc.poll() is None:
            try:
                ok = requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except requests.RequestException:
                time.sleep(0.05)
        assert ok, f"server from config file did not answer on {port} (exit {proc.poll()})"
    finally:
        proc.terminate()
        proc.wait(10)


def test_unknown_flag_fails(scratch):
    proc = run_cdx(["serve", "--no-such-flag"], env=cdx_env(scratch), timeout=10)
    assert proc.returncode != 0
    assert "no-such-flag" in proc.stderr + proc.stdout


# --- version and superadmin --------------------------------------------------------------------------------------


def test_version_prints_version():
    proc = run_cdx(["version"], timeout=10)
    assert proc.returncode == 0
    assert re.search(r"\d+\.\d+\.\d+", proc.stdout), proc.stdout


def test_create_superadmin_then_login(storage):
    env = cdx_env(storage)
    proc = run_cdx(["admin", "create-superadmin", "--username", "ops", "--password-stdin"], env=env,
                   input="ops-password-1\n", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "ops-password-1" not in proc.stdout + proc.stderr
    again = run_cdx(["admin", "create-superadmin", "--username", "ops", "--password-stdin"], env=env,
                    input="other-password\n", timeout=30)
    assert again.returncode != 0 and "ops" in again.stderr
    short = run_cdx(["admin", "create-superadmin", "--username", "ops2", "--password-stdin"], env=env,
                    input="abc\n", timeout=30)
    assert short.returncode != 0 and "password" in short.stderr.lower()
    s = Server(storage=storage, env={"CDX_BOOTSTRAP_SUPERADMIN": ""}).start()
    try:
        r = sa_login(s.url, "ops", "ops-password-1")
        assert r.status_code == 200, r.text
        me = Api(s.url, {"Authorization": "Bearer " + r.json()["access_token"]}).get("/api/v1/auth/me").json()
        assert (me["username"], me["role"]) == ("ops", "SUPERADMIN")
        assert sa_login(s.url, "ops", "other-password").status_code == 401
        assert sa_login(s.url, "ops2", "abc").status_code == 401
    finally:
        s.cleanup()


def test_bootstrap_superadmin_only_on_empty_db():
    s = Server().start()
    try:
        assert sa_login(s.url, *SUPERADMIN).status_code == 200
        s.stop()
        s2 = Server(storage=s.storage, env={"CDX_BOOTSTRAP_SUPERADMIN": "second:second-password"}).start()
        try:
            assert sa_login(s2.url, "second", "second-password").status_code == 401
            assert sa_login(s2.url, *SUPERADMIN).status_code == 200
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


# --- demo seed ---------------------------------------------------------------------------------------------------


def test_demo_seed(demo_server):
    anon = Api(demo_server.url)
    r = sa_login(demo_server.url, *DEMO_SUPERADMIN)
    assert r.status_code == 200, r.text
    sa = Api(demo_server.url, {"Authorization": "Bearer " + r.json()["access_token"]})
    demo = sa.get("/api/v1/tenants/demo")
    assert demo.status_code == 200 and demo.json()["status"] == "active"
    for (email, pw), role in ((DEMO_ADMIN, "ADMIN"), (DEMO_CLIENT, "CLIENT")):
        r = anon.post("/api/v1/auth/login", json={"email": email, "password": pw, "tenant": "demo"})
        assert r.status_code == 200, r.text
        me = Api(demo_server.url, {"Authorization": "Bearer " + r.json()["access_token"]}).get("/api/v1/auth/me")
        assert (me.json()["email"], me.json()["role"], me.json()["tenant_id"]) == (email, role, demo.json()["id"])


def test_demo_seeds_sample_crm_data(demo_server):
    r = requests.post(demo_server.url + "/api/v1/auth/login", timeout=10,
                      json={"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1], "tenant": "demo"})
    admin = Api(demo_server.url, {"Authorization": "Bearer " + r.json()["access_token"]})
    contacts = admin.get("/api/v1/crm/contacts").json()["data"]
    assert {c["email"] for c in contacts} >= {"wile@acme.example.com", "ada@example.com"}
    deals = admin.get("/api/v1/crm/deals").json()["data"]
    assert any(d["amount"] == 4990000 and d["currency"] == "USD" for d in deals)
    assert len(admin.get("/api/v1/crm/companies").json()["data"]) >= 2


def test_demo_logs_a_warning(demo_server):
    log = demo_server.read_log().lower()
    assert "demo" in log and ("warn" in log or "credential" in log), log[-2000:]


def test_demo_seeds_once():
    s = Server(args=["--demo"]).start()
    try:
        sa = Api(s.url, {"Authorization": "Bearer " + sa_login(s.url, *DEMO_SUPERADMIN).json()["access_token"]})
        first = sa.get("/api/v1/tenants", params={"q": "demo"}).json()["data"]
        s.stop()
        s2 = Server(args=["--demo"], storage=s.storage).start()
        try:
            sa2 = Api(s2.url, {"Authorization": "Bearer " + sa_login(s2.url, *DEMO_SUPERADMIN).json()["access_token"]})
            second = sa2.get("/api/v1/tenants", params={"q": "demo"}).json()["data"]
            assert [t["id"] for t in second] == [t["id"] for t in first]
            r = requests.post(s2.url + "/api/v1/auth/login", timeout=10,
                              json={"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1], "tenant": "demo"})
            assert r.status_code == 200
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


def test_no_demo_accounts_without_demo_flag(anon):
    assert sa_login(anon.base, *DEMO_SUPERADMIN).status_code == 401
    r = anon.post("/api/v1/auth/login", json={"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1], "tenant": "demo"})
    assert r.status_code == 401


# --- durability --------------------------------------------------------------------------------------------------


def test_data_survives_restart():
    s = Server().start()
    try:
        anon = Api(s.url)
        sa = Api(s.url, {"Authorization": "Bearer " + sa_login(s.url, *SUPERADMIN).json()["access_token"]})
        t = make_tenant(sa, settings={"durable": True})
        admin = Api(s.url, {"Authorization": "Bearer " + login(anon, t)})
        kept = admin.post("/api/v1/auth/api-keys", json={"name": "kept"}).json()
        revoked = admin.post("/api/v1/auth/api-keys", json={"name": "revoked"}).json()
        assert admin.delete(f"/api/v1/auth/api-keys/{revoked['id']}").status_code == 204
        suspended = make_tenant(sa)
        sa.post(f"/api/v1/tenants/{suspended['id']}/suspend")
        plan_key = "durable-" + t["slug"][2:10]
        assert sa.post("/api/v1/plans", json={"key": plan_key, "name": "Durable", "max_users": 3}).status_code == 201
        assert sa.patch(f"/api/v1/tenants/{t['id']}", json={"plan": plan_key}).status_code == 200
        before = sa.get(f"/api/v1/tenants/{t['id']}").json()
        assert s.stop() == 0
        s2 = Server(storage=s.storage).start()
        try:
            anon2 = Api(s2.url)
            sa2 = Api(s2.url, {"Authorization": "Bearer " + sa_login(s2.url, *SUPERADMIN).json()["access_token"]})
            assert sa2.get(f"/api/v1/tenants/{t['id']}").json() == before
            assert sa2.get(f"/api/v1/tenants/{suspended['slug']}").json()["status"] == "suspended"
            assert login(anon2, t)
            for key, status in ((t["api_key"], 200), (kept["key"], 200), (revoked["key"], 401)):
                assert anon2.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == status
            plan = next(p for p in sa2.get("/api/v1/plans").json()["data"] if p["key"] == plan_key)
            assert plan["max_users"] == 3
            assert_problem_code(anon2.get("/api/v1/auth/me", headers={"X-API-Key": suspended["api_key"]}),
                                403, "tenant_suspended")
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


def assert_problem_code(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code


def test_access_token_survives_restart():
    """Signing keys persist: a token issued before a restart still verifies after it (no forced re-login)."""
    s = Server().start()
    try:
        token = sa_login(s.url, *SUPERADMIN).json()["access_token"]
        jwks_before = requests.get(s.url + "/.well-known/jwks.json", timeout=5).json()
        s.stop()
        s2 = Server(storage=s.storage)
        s2.port = s.port  # same issuer (public_url defaults to http://host:port)
        s2.start()
        try:
            jwks_after = requests.get(s2.url + "/.well-known/jwks.json", timeout=5).json()
            assert {k["kid"] for k in jwks_before["keys"]} <= {k["kid"] for k in jwks_after["keys"]}
            r = requests.get(s2.url + "/api/v1/auth/me", headers={"Authorization": "Bearer " + token}, timeout=5)
            assert r.status_code == 200, r.text
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


def test_sigkill_does_not_lose_acknowledged_writes():
    s = Server().start()
    try:
        sa = Api(s.url, {"Authorization": "Bearer " + sa_login(s.url, *SUPERADMIN).json()["access_token"]})
        t = make_tenant(sa)
        s.stop(sig=signal.SIGKILL)
        s2 = Server(storage=s.storage).start()
        try:
            sa2 = Api(s2.url, {"Authorization": "Bearer " + sa_login(s2.url, *SUPERADMIN).json()["access_token"]})
            assert sa2.get(f"/api/v1/tenants/{t['id']}").status_code == 200
            assert requests.get(s2.url + "/api/v1/auth/me", headers={"X-API-Key": t["api_key"]},
                                timeout=5).status_code == 200
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


# --- shutdown ----------------------------------------------------------------------------------------------------


def test_sigterm_exits_zero_quickly():
    s = Server().start()
    try:
        idle = RawConn(s)  # an idle keep-alive connection must not hold the shutdown up
        idle.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_responses(1)[0].status == 200
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        code = s.proc.wait(10)
        assert code == 0, s.read_log()
        assert time.time() - t0 < 5
        assert idle.is_closed_by_peer(wait=1)
        idle.close()
        with pytest.raises(requests.ConnectionError):
            requests.get(s.url + "/health", timeout=2)
    finally:
        s.cleanup()


def test_sigterm_exits_zero_with_access_log_enabled():
    """The default configuration (JSON access log on stdout) must drain on SIGTERM as well."""
    s = Server(env={"CDX_ACCESS_LOG": "true", "CDX_LOG_LEVEL": "info"}).start()
    try:
        assert requests.get(s.url + "/health", timeout=5).status_code == 200
        s.proc.send_signal(signal.SIGTERM)
        code = s.proc.wait(10)
        assert code == 0, f"exit status {code} (negative = killed by that signal)\n{s.read_log()}"
        assert "drain" in s.read_log() or "stopped" in s.read_log()
    finally:
        s.cleanup()


def test_sigterm_completes_in_flight_requests():
    s = Server(env={"CDX_WORKERS": "2"}).start()
    try:
        body = ('{"username":"%s","password":"%s"}' % SUPERADMIN).encode()
        wire = (b"POST /api/v1/auth/superadmin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        conns = [RawConn(s, timeout=10) for _ in range(6)]
        for c in conns:
            c.send(wire)  # six Argon2 verifications on two workers: some are still running at SIGTERM
        time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        answers = [c.read_responses(1, timeout=10) for c in conns]
        for c in conns:
            c.close()
        assert s.proc.wait(10) == 0, s.read_log()
        statuses = [a[0].status if a else None for a in answers]
        assert statuses == [200] * 6, statuses
        assert all(a[0].json()["access_token"] for a in answers)
    finally:
        s.cleanup()
