"""API keys beyond the basics (publishable keys and their origins, scopes, last use, expiry, quotas) and the
tenant's audit log of security-relevant actions."""
import math
import threading
import time
import uuid
from datetime import datetime, timezone

import jwt
import pytest

from conftest import (Api, assert_problem, create_user, login_answer, set_tenant_settings, tenant_with_clients,
                      user_session)

ME = "/api/v1/auth/me"
KEYS = "/api/v1/auth/api-keys"
USERS = "/api/v1/auth/users"
AUDIT = "/api/v1/auth/audit"
LOGIN = "/api/v1/auth/login"
APP = "https://app.example.com"


def new_key(tenant, **body):
    body.setdefault("name", "k-" + uuid.uuid4().hex[:6])
    r = tenant["admin_api"].post(KEYS, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def as_key(tenant, key, **headers):
    return Api(tenant["admin_api"].base, {"X-API-Key": key["key"], **headers})


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def listed_key(tenant, key_id):
    return next(k for k in tenant["admin_api"].get(KEYS, params={"limit": 200}).json()["data"] if k["id"] == key_id)


# --- publishable keys ---------------------------------------------------------------------------------------------


def test_publishable_key_default_scopes(tenant):
    k = new_key(tenant, type="publishable")
    assert k["type"] == "publishable" and k["key"].startswith("cdx_pk_")
    assert sorted(k["scopes"]) == ["analytics:ingest", "auth:login", "cms:read"]
    assert sorted(as_key(tenant, k).get(ME).json()["scopes"]) == ["analytics:ingest", "auth:login", "cms:read"]


@pytest.mark.parametrize("scopes", [["*"], ["crm:write"], ["auth:write"], ["auth:read"], ["cms:read", "billing:write"]])
def test_publishable_key_cannot_hold_secret_scopes(tenant, scopes):
    r = tenant["admin_api"].post(KEYS, json={"name": "web", "type": "publishable", "scopes": scopes})
    assert "scopes" in {e["field"] for e in assert_problem(r, 422, "validation_failed")["errors"]}


@pytest.fixture
def web(sa, tenant):
    """The tenant allows https://app.example.com; answers (tenant, publishable key)."""
    set_tenant_settings(sa, tenant, {"allowed_origins": [APP]})
    return tenant, new_key(tenant, type="publishable")


def test_publishable_key_origin_rules(web):
    tenant, pk = web
    assert as_key(tenant, pk).get(ME).status_code == 200, "no Origin: a server-side caller"
    assert as_key(tenant, pk, Origin=APP).get(ME).status_code == 200
    for bad in ("https://evil.example.com", "https://app.example.com.evil.net", "http://app.example.com",
                "https://app.example.com:8443", "null"):
        assert_problem(as_key(tenant, pk, Origin=bad).get(ME), 403, "forbidden")


def test_publishable_key_without_allowed_origins_refuses_browser_origins(tenant):
    pk = new_key(tenant, type="publishable")
    assert as_key(tenant, pk).get(ME).status_code == 200
    assert_problem(as_key(tenant, pk, Origin=APP).get(ME), 403, "forbidden")


def test_allowed_origins_change_takes_effect(sa, web):
    tenant, pk = web
    other = "https://shop.example.com"
    assert_problem(as_key(tenant, pk, Origin=other).get(ME), 403, "forbidden")
    set_tenant_settings(sa, tenant, {"allowed_origins": [APP, other]})
    assert as_key(tenant, pk, Origin=other).get(ME).status_code == 200
    set_tenant_settings(sa, tenant, {"allowed_origins": [other]})
    assert_problem(as_key(tenant, pk, Origin=APP).get(ME), 403, "forbidden")


def test_login_through_a_publishable_key(server, anon, web, other_tenant):
    tenant, pk = web
    creds = {"email": tenant["admin"]["email"], "password": tenant["admin_password"]}
    r = anon.post(LOGIN, json=creds, headers={"X-API-Key": pk["key"]})
    assert r.status_code == 200, r.text
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["tid"] == tenant["id"]
    r = anon.post(LOGIN, json=creds, headers={"X-API-Key": pk["key"], "Origin": APP})
    assert r.status_code == 200, r.text
    # the key names its own tenant only
    other_creds = {"email": other_tenant["admin"]["email"], "password": other_tenant["admin_password"]}
    assert_problem(anon.post(LOGIN, json=other_creds, headers={"X-API-Key": pk["key"]}), 401, "unauthorized")


def test_login_through_a_publishable_key_honours_allowed_origins(anon, web):
    tenant, pk = web
    creds = {"email": tenant["admin"]["email"], "password": tenant["admin_password"]}
    r = anon.post(LOGIN, json=creds, headers={"X-API-Key": pk["key"], "Origin": "https://evil.example.com"})
    assert r.status_code == 403, \
        f"a publishable key logged in from an Origin outside allowed_origins: {r.status_code} {r.text[:120]}"
    assert_problem(r, 403, "forbidden")


def test_login_through_a_revoked_publishable_key_is_401(anon, web):
    tenant, pk = web
    assert tenant["admin_api"].delete(f"{KEYS}/{pk['id']}").status_code == 204
    r = anon.post(LOGIN, json={"email": tenant["admin"]["email"], "password": tenant["admin_password"]},
                  headers={"X-API-Key": pk["key"]})
    assert_problem(r, 401, "unauthorized")


# --- scoped secret keys -------------------------------------------------------------------------------------------


def test_key_scopes_govern_key_management(tenant):
    crm = as_key(tenant, new_key(tenant, scopes=["crm:read"]))
    assert_problem(crm.get(KEYS), 403, "forbidden")
    assert_problem(crm.post(KEYS, json={"name": "x", "scopes": ["crm:read"]}), 403, "forbidden")
    reader = as_key(tenant, new_key(tenant, scopes=["auth:read"]))
    assert reader.get(KEYS).status_code == 200
    assert_problem(reader.post(KEYS, json={"name": "x", "scopes": ["auth:read"]}), 403, "forbidden")
    writer_key = new_key(tenant, scopes=["auth:write"])
    writer = as_key(tenant, writer_key)
    assert writer.get(KEYS).status_code == 200, "auth:write implies auth:read"
    r = writer.post(KEYS, json={"name": "child", "scopes": ["auth:write"]})
    assert r.status_code == 201, r.text
    assert_problem(writer.post(KEYS, json={"name": "wider", "scopes": ["crm:write"]}), 403, "forbidden")
    assert_problem(crm.delete(f"{KEYS}/{writer_key['id']}"), 403, "forbidden")
    assert writer.get(ME).status_code == 200


# --- last use -----------------------------------------------------------------------------------------------------


def test_last_used_at_is_recorded(tenant):
    used, unused = new_key(tenant), new_key(tenant)
    assert listed_key(tenant, used["id"])["last_used_at"] is None
    before = datetime.now(timezone.utc)
    assert as_key(tenant, used).get(ME).status_code == 200
    deadline = time.time() + 3.0
    while time.time() < deadline and listed_key(tenant, used["id"])["last_used_at"] is None:
        time.sleep(0.1)
    seen = listed_key(tenant, used["id"])["last_used_at"]
    assert seen is not None, "last_used_at still null 3 s after the key was used"
    assert abs((parse_time(seen) - before).total_seconds()) < 30, seen
    assert listed_key(tenant, unused["id"])["last_used_at"] is None


# --- expiry -------------------------------------------------------------------------------------------------------


def test_key_in_the_past_is_422(tenant):
    past = datetime.fromtimestamp(time.time() - 5, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = tenant["admin_api"].post(KEYS, json={"name": "stale", "expires_at": past})
    assert "expires_at" in {e["field"] for e in assert_problem(r, 422, "validation_failed")["errors"]}


def test_key_stops_working_when_it_expires(tenant):
    expires = math.ceil(time.time()) + 2
    k = new_key(tenant, expires_at=datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert parse_time(k["expires_at"]).timestamp() == expires
    api = as_key(tenant, k)
    assert api.get(ME).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.3)
    assert_problem(api.get(ME), 401, "unauthorized")
    assert_problem(api.get(KEYS), 401, "unauthorized")
    assert tenant["key_api"].get(ME).status_code == 200


# --- key quota ----------------------------------------------------------------------------------------------------


def test_max_api_keys_quota(sa, tenant):
    plan = "tiny-" + uuid.uuid4().hex[:10]
    assert sa.post("/api/v1/plans", json={"key": plan, "name": "Tiny", "max_users": 2,
                                          "max_api_keys": 2}).status_code == 201
    assert sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"plan": plan}).status_code == 200
    second = new_key(tenant)  # the default key + this one = 2
    for body in ({"name": "third"}, {"name": "third-pk", "type": "publishable"}):
        assert_problem(tenant["admin_api"].post(KEYS, json=body), 403, "quota_exceeded")
    assert_problem(tenant["key_api"].post(KEYS, json={"name": "by-key"}), 403, "quota_exceeded")
    active = [k for k in tenant["admin_api"].get(KEYS).json()["data"] if not k.get("revoked_at")]
    assert len(active) == 2
    # revoking frees a slot
    assert tenant["admin_api"].delete(f"{KEYS}/{second['id']}").status_code == 204
    assert tenant["admin_api"].post(KEYS, json={"name": "replacement"}).status_code == 201


# --- audit log ----------------------------------------------------------------------------------------------------


def entries(api, **params):
    r = api.get(AUDIT, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


@pytest.fixture(scope="module")
def audited(anon, sa):
    """A tenant with a known history, shared by the audit tests (which only add to it); answers (tenant, facts)."""
    tenant = tenant_with_clients(sa, anon)
    admin = tenant["admin_api"]
    admin_id = tenant["admin"]["id"]
    facts = {"admin_id": admin_id}
    assert anon.post(LOGIN, json={"email": tenant["admin"]["email"], "password": "wrong-password-1",
                                  "tenant": tenant["slug"]}).status_code == 401
    assert anon.post(LOGIN, json={"email": "ghost-" + tenant["admin"]["email"], "password": "wrong-password-1",
                                  "tenant": tenant["slug"]}).status_code == 401
    facts["key"] = new_key(tenant, name="audited-key")
    assert admin.delete(f"{KEYS}/{facts['key']['id']}").status_code == 204
    facts["promoted"] = create_user(admin)
    assert admin.patch(f"{USERS}/{facts['promoted']['id']}", json={"role": "ADMIN"}).status_code == 200
    facts["disabled"] = create_user(admin)
    assert admin.patch(f"{USERS}/{facts['disabled']['id']}", json={"status": "disabled"}).status_code == 200
    session = login_answer(anon, tenant)
    first = anon.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert first.status_code == 200
    assert anon.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    facts["sid"] = jwt.decode(session["access_token"], options={"verify_signature": False})["sid"]
    facts["by_key"] = tenant["key_api"].post(KEYS, json={"name": "made-by-key"}).json()
    return tenant, facts


def only(items, **match):
    found = [e for e in items if all(e.get(k) == v if not isinstance(v, dict) else
                                     all(e.get(k, {}).get(kk) == vv for kk, vv in v.items())
                                     for k, v in match.items())]
    assert len(found) == 1, (match, [(e["action"], e["target"]) for e in items])
    return found[0]


def test_audit_records_security_actions(audited):
    tenant, f = audited
    log = entries(tenant["admin_api"])
    admin_id = f["admin_id"]
    for e in log:
        assert set(e) >= {"id", "action", "actor", "target", "ip", "details", "created_at"}, e
        assert set(e["actor"]) >= {"type", "id"} and set(e["target"]) >= {"type", "id"}
        assert isinstance(e["details"], dict)
        assert e["ip"] == "127.0.0.1"
        parse_time(e["created_at"])
        assert "password" not in {k.lower() for k in e["details"]}
    assert len({e["id"] for e in log}) == len(log)
    stamps = [parse_time(e["created_at"]) for e in log]
    assert stamps == sorted(stamps, reverse=True), "newest first"

    logins = [e for e in log if e["action"] == "login.succeeded"]
    assert logins and all(e["actor"] == {"type": "user", "id": admin_id} for e in logins)
    assert logins[0]["target"]["id"] == admin_id
    failed = [e for e in log if e["action"] == "login.failed"]
    assert sorted(e["details"].get("reason") for e in failed) == ["unknown user", "wrong password"], failed
    assert all(e["actor"]["type"] == "anonymous" for e in failed)

    created = only(log, action="api_key.created", target={"id": f["key"]["id"]})
    assert created["actor"] == {"type": "user", "id": admin_id}
    assert created["target"]["type"] == "api_key"
    assert f["key"]["key"] not in str(log), "the audit log must never hold a full key"
    revoked = only(log, action="api_key.revoked", target={"id": f["key"]["id"]})
    assert revoked["actor"]["id"] == admin_id
    by_key = only(log, action="api_key.created", target={"id": f["by_key"]["id"]})
    assert by_key["actor"]["type"] == "api_key" and by_key["actor"]["id"] != admin_id

    user_created = only(log, action="user.created", target={"id": f["promoted"]["id"]})
    assert user_created["actor"] == {"type": "user", "id": admin_id} and user_created["target"]["type"] == "user"
    only(log, action="user.created", target={"id": f["disabled"]["id"]})
    role = only(log, action="user.role_changed", target={"id": f["promoted"]["id"]})
    assert (role["details"]["from"], role["details"]["to"]) == ("CLIENT", "ADMIN")
    assert role["actor"]["id"] == admin_id
    disabled = only(log, action="user.disabled", target={"id": f["disabled"]["id"]})
    assert disabled["actor"]["id"] == admin_id
    revoked_family = only(log, action="session.family_revoked")
    assert revoked_family["target"] == {"type": "user", "id": admin_id}


def test_audit_filters(audited):
    tenant, f = audited
    api = tenant["admin_api"]
    got = entries(api, action="api_key.created")
    assert {e["target"]["id"] for e in got} >= {f["key"]["id"], f["by_key"]["id"]}
    assert all(e["action"] == "api_key.created" for e in got)
    mine = entries(api, actor_id=f["admin_id"])
    assert mine and all(e["actor"]["id"] == f["admin_id"] for e in mine)
    assert {"api_key.created", "api_key.revoked", "user.created", "user.role_changed", "user.disabled"} <= \
        {e["action"] for e in mine}
    both = entries(api, action="user.created", actor_id=f["admin_id"])
    assert {e["target"]["id"] for e in both} >= {f["promoted"]["id"], f["disabled"]["id"]}
    assert all(e["action"] == "user.created" and e["actor"]["id"] == f["admin_id"] for e in both)
    assert entries(api, action="no.such.action") == []


def test_audit_pagination(audited):
    tenant, _ = audited
    full = [e["id"] for e in entries(tenant["admin_api"])]
    seen, cursor = [], None
    for _ in range(50):
        r = tenant["admin_api"].get(AUDIT, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        page = r.json()
        assert len(page["data"]) <= 3
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == full and len(full) > 3


def test_audit_is_tenant_scoped(audited, other_tenant):
    tenant, f = audited
    theirs = entries(other_tenant["admin_api"])
    assert theirs, "the other tenant has its own login"
    ours = {e["id"] for e in entries(tenant["admin_api"])}
    assert not ours & {e["id"] for e in theirs}
    text = str(theirs)
    for secret_id in (f["admin_id"], f["key"]["id"], f["promoted"]["id"], tenant["admin"]["email"]):
        assert secret_id not in text
    assert entries(other_tenant["admin_api"], actor_id=f["admin_id"]) == []


def test_audit_access(anon, sa, audited):
    tenant, _ = audited
    client = create_user(tenant["admin_api"])
    _, client_api = user_session(anon, tenant, client)
    assert_problem(client_api.get(AUDIT), 403, "forbidden")
    assert_problem(as_key(tenant, new_key(tenant, type="publishable")).get(AUDIT), 403, "forbidden")
    assert_problem(as_key(tenant, new_key(tenant, scopes=["crm:read"])).get(AUDIT), 403, "forbidden")
    assert as_key(tenant, new_key(tenant, scopes=["auth:read"])).get(AUDIT).status_code == 200
    assert_problem(anon.get(AUDIT), 401, "unauthorized")
    assert_problem(sa.get(AUDIT), 400, "invalid_request")
    seen_by_admin = {e["id"] for e in entries(tenant["admin_api"])}
    via_sa = sa.get(AUDIT, params={"limit": 200}, headers={"X-Tenant-ID": tenant["slug"]})
    assert via_sa.status_code == 200
    assert seen_by_admin <= {e["id"] for e in via_sa.json()["data"]}


def test_audit_records_deletion_and_logout(anon, tenant):
    u = create_user(tenant["admin_api"])
    tokens, api = user_session(anon, tenant, u)
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert tenant["admin_api"].delete(f"{USERS}/{u['id']}").status_code == 204
    log = entries(tenant["admin_api"])
    deleted = only(log, action="user.deleted", target={"id": u["id"]})
    assert deleted["actor"]["id"] == tenant["admin"]["id"]
    assert any("logout" in e["action"] and u["id"] in (e["actor"]["id"], e["target"]["id"]) for e in log), \
        [e["action"] for e in log]


def test_max_api_keys_quota_holds_under_concurrency(sa, tenant):
    """Six creates at once against a plan of two keys (one in use): one may succeed, whatever the timing.
    Three rounds, as the window of a check-then-insert race is narrow."""
    plan = "tiny-" + uuid.uuid4().hex[:10]
    assert sa.post("/api/v1/plans", json={"key": plan, "name": "Tiny", "max_api_keys": 2}).status_code == 201
    assert sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"plan": plan}).status_code == 200
    admin = tenant["admin_api"]
    for round_ in range(3):
        results = []
        barrier = threading.Barrier(6)

        def add():
            api = Api(admin.base, admin.headers)
            barrier.wait()
            results.append(api.post(KEYS, json={"name": "race"}).json().get("id"))

        threads = [threading.Thread(target=add) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        active = [k for k in admin.get(KEYS).json()["data"] if not k.get("revoked_at")]
        made = [k for k in results if k]
        assert len(active) <= 2 and len(made) == 1, \
            f"round {round_}: plan allows 2 API keys; {len(made)} of 6 concurrent creates succeeded, " \
            f"{len(active)} active"
        assert admin.delete(f"{KEYS}/{made[0]}").status_code == 204
