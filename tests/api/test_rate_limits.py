"""Per-tenant and per-key rate limits from the tenant's plan: RateLimit-* headers, 429 with Retry-After,
plan changes taking effect without a restart."""
import uuid

from conftest import Api, assert_problem, make_tenant


def tiny_plan(sa, per_minute):
    key = "rl-" + uuid.uuid4().hex[:10]
    r = sa.post("/api/v1/plans", json={"key": key, "name": "Rate limited", "rate_limit_per_minute": per_minute})
    assert r.status_code == 201, r.text
    return key


def test_limit_headers_count_down_then_429(sa, anon):
    t = make_tenant(sa, plan=tiny_plan(sa, 5))
    key = Api(anon.base, {"X-API-Key": t["api_key"]})
    remaining = []
    for _ in range(5):
        r = key.get("/api/v1/auth/me")
        assert r.status_code == 200, r.text
        assert r.headers["RateLimit-Limit"] == "5"
        remaining.append(int(r.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = key.get("/api/v1/auth/me")
    body = assert_problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["RateLimit-Remaining"] == "0"
    assert "rate limit" in body["detail"]


def test_the_tenant_limit_spans_all_its_credentials(sa, anon):
    t = make_tenant(sa, plan=tiny_plan(sa, 3))
    key = Api(anon.base, {"X-API-Key": t["api_key"]})
    second = key.post("/api/v1/auth/api-keys", json={"name": "second"})
    assert second.status_code == 201, second.text
    other = Api(anon.base, {"X-API-Key": second.json()["key"]})
    assert key.get("/api/v1/auth/me").status_code == 200
    assert other.get("/api/v1/auth/me").status_code == 200
    assert_problem(other.get("/api/v1/auth/me"), 429, "rate_limited")
    assert_problem(key.get("/api/v1/auth/me"), 429, "rate_limited")


def test_other_tenants_are_not_affected(sa, anon, tenant):
    t = make_tenant(sa, plan=tiny_plan(sa, 1))
    key = Api(anon.base, {"X-API-Key": t["api_key"]})
    assert key.get("/api/v1/auth/me").status_code == 200
    assert_problem(key.get("/api/v1/auth/me"), 429, "rate_limited")
    for _ in range(5):
        assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200


def test_plan_change_takes_effect_without_restart(sa, anon):
    plan = tiny_plan(sa, 2)
    t = make_tenant(sa, plan=plan)
    key = Api(anon.base, {"X-API-Key": t["api_key"]})
    assert key.get("/api/v1/auth/me").status_code == 200
    assert key.get("/api/v1/auth/me").status_code == 200
    assert_problem(key.get("/api/v1/auth/me"), 429, "rate_limited")
    assert sa.patch(f"/api/v1/plans/{plan}", json={"rate_limit_per_minute": 1000}).status_code == 200
    r = key.get("/api/v1/auth/me")
    assert r.status_code == 200, r.text
    assert r.headers["RateLimit-Limit"] == "1000"


def test_superadmin_is_not_limited(sa):
    for _ in range(3):
        r = sa.get("/api/v1/auth/me")
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers
