"""Usage metering: API calls per tenant per day and per API key, counted at the gateway (both topologies)
and kept by core for the tenant overview and the analytics module."""
import datetime
import time

from conftest import Api, assert_problem, create_user, user_session


def usage_when(sa, tenant_id, total, timeout=15, **params):
    deadline = time.time() + timeout
    while True:
        r = sa.get(f"/api/v1/tenants/{tenant_id}/usage", params=params)
        assert r.status_code == 200, r.text
        if r.json()["total"] >= total or time.time() > deadline:
            return r.json()
        time.sleep(0.25)


def test_calls_are_counted_per_tenant_day_and_key(sa, tenant, other_tenant):
    key_id = tenant["key_api"].get("/api/v1/auth/me").json()["id"]
    for _ in range(4):
        assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200
    for _ in range(3):
        assert tenant["admin_api"].get("/api/v1/auth/me").status_code == 200
    assert other_tenant["key_api"].get("/api/v1/auth/me").status_code == 200

    u = usage_when(sa, tenant["id"], 8)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert u["tenant_id"] == tenant["id"] and u["to"] == today
    assert u["total"] == 8, u
    assert u["days"] == [{"day": today, "calls": 8}]
    assert {(k["api_key_id"], k["calls"]) for k in u["api_keys"]} == {(key_id, 5), (None, 3)}
    # by slug too, and another tenant's calls never mix in
    assert sa.get(f"/api/v1/tenants/{tenant['slug']}/usage").json()["total"] == 8
    assert usage_when(sa, other_tenant["id"], 1)["total"] == 1

    # a window without today has nothing
    empty = sa.get(f"/api/v1/tenants/{tenant['id']}/usage", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert empty["total"] == 0 and empty["days"] == [] and empty["api_keys"] == []


def test_refused_and_superadmin_calls_are_not_billed_to_the_tenant(sa, tenant):
    key = tenant["api_key"]
    bad = Api(tenant["key_api"].base, {"X-API-Key": key[:-2] + ("yy" if key.endswith("xx") else "xx")})
    assert_problem(bad.get("/api/v1/auth/me"), 401)
    assert sa.get(f"/api/v1/tenants/{tenant['id']}").status_code == 200
    assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200
    assert usage_when(sa, tenant["id"], 1)["total"] == 1
    # A marker call after them: once it is counted, every call before it has been drained too, so a
    # refused or superadmin call that were billed would show now (no waiting on a guess).
    assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200
    assert usage_when(sa, tenant["id"], 2)["total"] == 2


def test_usage_query_errors(sa, tenant):
    path = f"/api/v1/tenants/{tenant['id']}/usage"
    assert_problem(sa.get(path, params={"from": "2026-13-01"}), 422, "validation_failed")
    assert_problem(sa.get(path, params={"to": "yesterday"}), 422, "validation_failed")
    assert_problem(sa.get(path, params={"from": "2026-02-02", "to": "2026-02-01"}), 422, "validation_failed")
    assert_problem(sa.get("/api/v1/tenants/no-such-tenant/usage"), 404)
    assert_problem(Api(sa.base).get(path), 401)


def test_a_tenant_admin_reads_its_own_usage_only(sa, tenant, other_tenant, anon):
    """The tenant's ADMIN (and a secret key with events:read) reads its own usage, like its overview; another
    tenant, existing or not, is 403 alike; a CLIENT and a narrower key are refused."""
    assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200
    usage_when(sa, tenant["id"], 1)
    mine = tenant["admin_api"].get(f"/api/v1/tenants/{tenant['slug']}/usage")
    assert mine.status_code == 200, mine.text
    assert mine.json()["tenant_id"] == tenant["id"] and mine.json()["total"] >= 1
    assert tenant["key_api"].get(f"/api/v1/tenants/{tenant['id']}/usage").status_code == 200
    for other in (other_tenant["id"], other_tenant["slug"], "no-such-tenant"):
        assert_problem(tenant["admin_api"].get(f"/api/v1/tenants/{other}/usage"), 403)
    narrow = tenant["admin_api"].post("/api/v1/auth/api-keys", json={"name": "crm", "scopes": ["crm:read"]})
    assert narrow.status_code == 201, narrow.text
    assert_problem(Api(anon.base, {"X-API-Key": narrow.json()["key"]}).get(f"/api/v1/tenants/{tenant['id']}/usage"),
                   403)
    _, client_api = user_session(anon, tenant, create_user(tenant["admin_api"], role="CLIENT"))
    assert_problem(client_api.get(f"/api/v1/tenants/{tenant['id']}/usage"), 403)
    assert_problem(anon.get(f"/api/v1/tenants/{tenant['id']}/usage"), 401)
