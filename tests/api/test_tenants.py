"""Core: tenants and plans (SUPERADMIN), their validation, listing, lifecycle and access rules."""
import re
import uuid
from datetime import datetime

import pytest

from conftest import Api, assert_problem, login, make_tenant

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TENANT_FIELDS = {"id", "slug", "name", "status", "plan", "settings", "created_at", "updated_at"}


def ts(value):
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fields(body):
    return {e["field"] for e in body["errors"]}


def token():
    return uuid.uuid4().hex[:10]


# --- create ------------------------------------------------------------------------------------------------------


def test_create_tenant_answers_tenant_admin_and_key(sa, anon):
    slug = "acme-" + token()
    r = sa.post("/api/v1/tenants", json={"name": "Acme Inc", "slug": slug, "admin_email": f"boss@{slug}.io",
                                          "admin_password": "s3cret-password", "settings": {"locale": "fr"}})
    assert r.status_code == 201, r.text
    t = r.json()
    assert TENANT_FIELDS <= set(t)
    assert UUID_RE.match(t["id"])
    assert (t["slug"], t["name"], t["status"], t["plan"]) == (slug, "Acme Inc", "active", "free")
    assert t["settings"] == {"locale": "fr"}
    assert ts(t["created_at"]) <= ts(t["updated_at"])
    admin = t["admin"]
    assert admin["email"] == f"boss@{slug}.io" and admin["role"] == "ADMIN" and admin["tenant_id"] == t["id"]
    assert "initial_password" not in admin
    assert not any("password" in k and k != "initial_password" for k in admin), admin
    assert re.fullmatch(r"cdx_sk_[A-Za-z0-9]{40}", t["api_key"])
    # the admin logs in with the given password, and the key acts for the tenant
    me = Api(sa.base, {"Authorization": "Bearer " + login(anon, {"slug": slug, "admin": admin,
                                                                    "admin_password": "s3cret-password"})})
    assert me.get("/api/v1/auth/me").json()["tenant_id"] == t["id"]
    key_me = Api(sa.base, {"X-API-Key": t["api_key"]}).get("/api/v1/auth/me").json()
    assert key_me["tenant_id"] == t["id"] and key_me["type"] == "api_key"


def test_create_without_admin_password_answers_initial_password(sa, anon):
    slug = "nopw-" + token()
    r = sa.post("/api/v1/tenants", json={"name": "No PW", "slug": slug, "admin_email": f"a@{slug}.io"})
    assert r.status_code == 201, r.text
    initial = r.json()["admin"]["initial_password"]
    assert isinstance(initial, str) and len(initial) >= 12
    r = anon.post("/api/v1/auth/login", json={"email": f"a@{slug}.io", "password": initial, "tenant": slug})
    assert r.status_code == 200, r.text
    # shown once: not in later reads
    assert "initial_password" not in sa.get(f"/api/v1/tenants/{slug}").text
    assert "admin" not in sa.get(f"/api/v1/tenants/{slug}").json()


def test_create_answer_not_repeated_by_reads(sa, tenant):
    got = sa.get(f"/api/v1/tenants/{tenant['id']}").json()
    assert "api_key" not in got
    assert tenant["api_key"] not in sa.get(f"/api/v1/tenants/{tenant['id']}").text


@pytest.mark.parametrize("slug", ["Upper-Case", "ab", "-leading", "trailing-", "double--dash", "has space",
                                  "under_score", "admin", "0190f0c4-1234-7abc-8def-0123456789ab", "a" * 64, "ümlaut"])
def test_bad_slug_is_422_naming_slug(sa, slug):
    r = sa.post("/api/v1/tenants", json={"name": "X", "slug": slug, "admin_email": "a@example.com"})
    body = assert_problem(r, 422, "validation_failed")
    assert fields(body) == {"slug"}, body


@pytest.mark.parametrize("reserved", ["admin", "api", "www"])
def test_reserved_slugs_rejected(sa, reserved):
    r = sa.post("/api/v1/tenants", json={"name": "X", "slug": reserved, "admin_email": "a@example.com"})
    assert "slug" in fields(assert_problem(r, 422, "validation_failed"))


def test_duplicate_slug_is_409(sa, tenant):
    r = sa.post("/api/v1/tenants", json={"name": "Again", "slug": tenant["slug"], "admin_email": "x@example.com"})
    assert_problem(r, 409, "conflict")


def test_unknown_plan_is_422_naming_plan(sa):
    r = sa.post("/api/v1/tenants", json={"name": "X", "slug": "p-" + token(), "admin_email": "a@example.com",
                                          "plan": "no-such-plan"})
    assert fields(assert_problem(r, 422, "validation_failed")) == {"plan"}


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.com", "a b@c.com"])
def test_bad_admin_email_is_422(sa, email):
    r = sa.post("/api/v1/tenants", json={"name": "X", "slug": "e-" + token(), "admin_email": email})
    assert "admin_email" in fields(assert_problem(r, 422, "validation_failed"))


def test_missing_fields_named(sa):
    body = assert_problem(sa.post("/api/v1/tenants", json={}), 422, "validation_failed")
    assert {"name", "slug", "admin_email"} <= fields(body)


def test_failed_create_leaves_nothing_behind(sa):
    slug = "ghost-" + token()
    sa.post("/api/v1/tenants", json={"name": "X", "slug": slug, "admin_email": "a@example.com", "plan": "nope"})
    assert_problem(sa.get(f"/api/v1/tenants/{slug}"), 404, "not_found")


# --- read --------------------------------------------------------------------------------------------------------


def test_get_by_id_and_by_slug(sa, tenant):
    by_id = sa.get(f"/api/v1/tenants/{tenant['id']}")
    by_slug = sa.get(f"/api/v1/tenants/{tenant['slug']}")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json()
    assert TENANT_FIELDS <= set(by_id.json())
    assert by_id.json()["slug"] == tenant["slug"]


@pytest.mark.parametrize("ident", ["no-such-tenant", "01930000-0000-7000-8000-00000000dead", "%00", "x" * 300])
def test_unknown_tenant_is_404(sa, ident):
    assert_problem(sa.get(f"/api/v1/tenants/{ident}"), 404, "not_found")


# --- list --------------------------------------------------------------------------------------------------------


def test_list_shape_and_newest_first(sa):
    q = "ord" + token()
    made = [make_tenant(sa, name=f"Order {q} {i}") for i in range(3)]
    r = sa.get("/api/v1/tenants", params={"q": q})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"data", "next_cursor"}
    assert body["next_cursor"] is None
    assert [t["id"] for t in body["data"]] == [t["id"] for t in reversed(made)]
    for t in body["data"]:
        assert TENANT_FIELDS <= set(t)
        assert "api_key" not in t and "admin" not in t


def test_list_pagination_across_pages(sa):
    q = "pg" + token()
    made = {make_tenant(sa, name=f"Paged {q} {i}")["id"] for i in range(3)}
    seen, pages, cursor = [], 0, None
    while True:
        params = {"q": q, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = sa.get("/api/v1/tenants", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["data"]) <= 2
        seen += [t["id"] for t in body["data"]]
        pages += 1
        assert pages <= 5, "pagination does not terminate"
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert len(seen) == len(set(seen)), "duplicates across pages"
    assert set(seen) == made
    assert pages == 2


def test_list_pagination_over_everything_has_no_duplicates(sa):
    make_tenant(sa)
    make_tenant(sa)
    seen, cursor = [], None
    for _ in range(500):
        r = sa.get("/api/v1/tenants", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [t["id"] for t in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 2
    full = sa.get("/api/v1/tenants", params={"limit": 200}).json()["data"]
    if len(full) < 200:
        assert [t["id"] for t in full] == seen


def test_default_limit_is_50(sa):
    r = sa.get("/api/v1/tenants")
    assert len(r.json()["data"]) <= 50


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", ""])
def test_bad_limit_is_422_naming_limit(sa, limit):
    body = assert_problem(sa.get("/api/v1/tenants", params={"limit": limit}), 422, "validation_failed")
    assert fields(body) == {"limit"}


@pytest.mark.parametrize("limit", ["1", "200"])
def test_limit_bounds_accepted(sa, limit):
    r = sa.get("/api/v1/tenants", params={"limit": limit})
    assert r.status_code == 200
    assert len(r.json()["data"]) <= int(limit)


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "eyJ4IjoxfQ", "0" * 100])
def test_bad_cursor_is_422_naming_cursor(sa, cursor):
    body = assert_problem(sa.get("/api/v1/tenants", params={"cursor": cursor}), 422, "validation_failed")
    assert fields(body) == {"cursor"}


def test_filter_by_status(sa):
    q = "st" + token()
    a = make_tenant(sa, name=f"S {q} a")
    b = make_tenant(sa, name=f"S {q} b")
    assert sa.post(f"/api/v1/tenants/{b['id']}/suspend").status_code == 200
    suspended = sa.get("/api/v1/tenants", params={"q": q, "status": "suspended"}).json()["data"]
    active = sa.get("/api/v1/tenants", params={"q": q, "status": "active"}).json()["data"]
    assert [t["id"] for t in suspended] == [b["id"]]
    assert [t["id"] for t in active] == [a["id"]]
    assert all(t["status"] == "suspended" for t in sa.get("/api/v1/tenants?status=suspended").json()["data"])


def test_bad_status_filter_is_422(sa):
    assert "status" in fields(assert_problem(sa.get("/api/v1/tenants?status=deleted"), 422, "validation_failed"))


def test_filter_by_plan(sa, plan_key):
    q = "pl" + token()
    on_plan = make_tenant(sa, name=f"P {q} 1", plan=plan_key)
    make_tenant(sa, name=f"P {q} 2")
    got = sa.get("/api/v1/tenants", params={"q": q, "plan": plan_key}).json()["data"]
    assert [t["id"] for t in got] == [on_plan["id"]]
    assert got[0]["plan"] == plan_key
    free = sa.get("/api/v1/tenants", params={"q": q, "plan": "free"}).json()["data"]
    assert len(free) == 1 and free[0]["plan"] == "free"


def test_q_searches_name_and_slug(sa):
    q = "qs" + token()
    by_name = make_tenant(sa, name=f"Named {q.upper()}")
    by_slug = make_tenant(sa, slug=f"{q}-slug")
    got = {t["id"] for t in sa.get("/api/v1/tenants", params={"q": q}).json()["data"]}
    assert by_slug["id"] in got
    assert by_name["id"] in got, "q should match the name case-insensitively"
    none = sa.get("/api/v1/tenants", params={"q": "zz-nothing-" + token()}).json()
    assert none == {"data": [], "next_cursor": None}


def test_q_with_sql_wildcards_is_literal(sa):
    make_tenant(sa, name="Percent " + token())
    got = sa.get("/api/v1/tenants", params={"q": "%"}).json()["data"]
    assert all("%" in t["name"] or "%" in t["slug"] for t in got)
    got = sa.get("/api/v1/tenants", params={"q": "_"}).json()["data"]
    assert all("_" in t["name"] or "_" in t["slug"] for t in got)
    r = sa.get("/api/v1/tenants", params={"q": "'; DROP TABLE tenants; --"})
    assert r.status_code == 200 and r.json()["data"] == []


# --- update ------------------------------------------------------------------------------------------------------


def test_patch_name_plan_settings(sa, tenant, plan_key):
    before = sa.get(f"/api/v1/tenants/{tenant['id']}").json()
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"name": "Renamed", "plan": plan_key,
                                                           "settings": {"theme": "dark", "n": 2}})
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["name"], t["plan"], t["settings"]) == ("Renamed", plan_key, {"theme": "dark", "n": 2})
    assert (t["slug"], t["status"], t["created_at"]) == (before["slug"], before["status"], before["created_at"])
    assert ts(t["updated_at"]) > ts(before["updated_at"])
    assert sa.get(f"/api/v1/tenants/{tenant['slug']}").json() == t


def test_patch_is_partial(sa, tenant):
    sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"keep": True}})
    t = sa.patch(f"/api/v1/tenants/{tenant['slug']}", json={"name": "Only name"}).json()
    assert t["name"] == "Only name"
    assert t["settings"] == {"keep": True}
    assert t["plan"] == "free"


@pytest.mark.parametrize("patch,field", [({"slug": "new-slug-x"}, "slug"), ({"status": "suspended"}, "status"),
                                         ({"plan": "no-such-plan"}, "plan"), ({"name": 5}, "name"),
                                         ({"settings": [1]}, "settings"), ({"name": ""}, "name")])
def test_bad_patch_is_422_naming_field(sa, tenant, patch, field):
    body = assert_problem(sa.patch(f"/api/v1/tenants/{tenant['id']}", json=patch), 422, "validation_failed")
    assert field in fields(body)
    after = sa.get(f"/api/v1/tenants/{tenant['id']}").json()
    assert after["slug"] == tenant["slug"] and after["status"] == "active" and after["plan"] == "free"


def test_patch_unknown_tenant_is_404(sa):
    assert_problem(sa.patch("/api/v1/tenants/no-such-tenant", json={"name": "x"}), 404, "not_found")


# --- suspend / resume / delete -----------------------------------------------------------------------------------


def test_suspend_and_resume(sa, tenant):
    r = sa.post(f"/api/v1/tenants/{tenant['id']}/suspend")
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert sa.get(f"/api/v1/tenants/{tenant['id']}").json()["status"] == "suspended"
    body = assert_problem(tenant["admin_api"].get("/api/v1/auth/api-keys"), 403, "tenant_suspended")
    assert body["code"] == "tenant_suspended"
    assert_problem(tenant["key_api"].get("/api/v1/auth/api-keys"), 403, "tenant_suspended")
    r = sa.post(f"/api/v1/tenants/{tenant['slug']}/resume")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert tenant["admin_api"].get("/api/v1/auth/api-keys").status_code == 200
    assert tenant["key_api"].get("/api/v1/auth/me").status_code == 200


def test_suspend_is_idempotent_and_unknown_is_404(sa, tenant):
    assert sa.post(f"/api/v1/tenants/{tenant['id']}/suspend").json()["status"] == "suspended"
    assert sa.post(f"/api/v1/tenants/{tenant['id']}/suspend").json()["status"] == "suspended"
    assert sa.post(f"/api/v1/tenants/{tenant['id']}/resume").json()["status"] == "active"
    assert_problem(sa.post("/api/v1/tenants/no-such-tenant/suspend"), 404, "not_found")
    assert_problem(sa.post("/api/v1/tenants/no-such-tenant/resume"), 404, "not_found")


def test_suspension_does_not_affect_other_tenants(sa, tenant, other_tenant):
    sa.post(f"/api/v1/tenants/{tenant['id']}/suspend")
    assert other_tenant["admin_api"].get("/api/v1/auth/api-keys").status_code == 200
    assert other_tenant["key_api"].get("/api/v1/auth/me").status_code == 200


def test_delete_tenant(sa, tenant, anon):
    r = sa.delete(f"/api/v1/tenants/{tenant['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(sa.get(f"/api/v1/tenants/{tenant['id']}"), 404, "not_found")
    assert_problem(sa.get(f"/api/v1/tenants/{tenant['slug']}"), 404, "not_found")
    assert_problem(tenant["key_api"].get("/api/v1/auth/me"), 401, "unauthorized")
    assert tenant["admin_api"].get("/api/v1/auth/me").status_code in (401, 403)
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": tenant["admin_password"],
                                               "tenant": tenant["slug"]})
    assert r.status_code == 401
    assert tenant["id"] not in sa.get("/api/v1/tenants", params={"limit": 200}).text
    assert_problem(sa.delete(f"/api/v1/tenants/{tenant['id']}"), 404, "not_found")


def test_deleted_slug_can_be_reused(sa, tenant):
    assert sa.delete(f"/api/v1/tenants/{tenant['slug']}").status_code == 204
    again = make_tenant(sa, slug=tenant["slug"])
    assert again["id"] != tenant["id"]
    assert_problem(Api(sa.base, {"X-API-Key": tenant["api_key"]}).get("/api/v1/auth/me"), 401)


# --- roles -------------------------------------------------------------------------------------------------------


def tenant_calls(t):
    tid = t["id"]
    return [("GET", "/api/v1/tenants", None), ("POST", "/api/v1/tenants",
                                                 {"name": "x", "slug": "r-" + token(), "admin_email": "a@b.co"}),
            ("GET", f"/api/v1/tenants/{tid}", None), ("PATCH", f"/api/v1/tenants/{tid}", {"name": "hacked"}),
            ("POST", f"/api/v1/tenants/{tid}/suspend", None), ("POST", f"/api/v1/tenants/{tid}/resume", None),
            ("DELETE", f"/api/v1/tenants/{tid}", None), ("POST", "/api/v1/plans", {"key": "k-" + token(), "name": "x"}),
            ("PATCH", "/api/v1/plans/free", {"name": "hacked"})]


@pytest.mark.parametrize("who", ["admin_api", "key_api"])
def test_tenant_credentials_get_403_on_core_endpoints(sa, tenant, who):
    api = tenant[who]
    for method, path, body in tenant_calls(tenant):
        r = api.request(method, path, json=body)
        assert_problem(r, 403, "forbidden")
    t = sa.get(f"/api/v1/tenants/{tenant['id']}").json()
    assert t["name"] != "hacked" and t["status"] == "active"
    assert sa.get("/api/v1/plans").json()["data"][0]["name"] != "hacked"


def test_anonymous_gets_401_on_core_endpoints(anon, tenant):
    for method, path, body in tenant_calls(tenant) + [("GET", "/api/v1/plans", None)]:
        r = anon.request(method, path, json=body)
        assert_problem(r, 401, "unauthorized")
        assert "WWW-Authenticate" in r.headers


# --- plans -------------------------------------------------------------------------------------------------------


@pytest.fixture
def plan_key(sa):
    key = "plan-" + token()
    r = sa.post("/api/v1/plans", json={"key": key, "name": "Pro " + key, "rate_limit_per_minute": 1200,
                                        "max_users": 10, "max_api_keys": 5, "modules": ["auth", "crm"]})
    assert r.status_code == 201, r.text
    return key


def test_free_plan_exists_with_quotas(sa):
    plans = sa.get("/api/v1/plans").json()["data"]
    free = next(p for p in plans if p["key"] == "free")
    assert free["rate_limit_per_minute"] == 6000
    assert free["max_users"] == 100
    assert free["max_api_keys"] == 20
    assert len(free["modules"]) == 5
    assert set(free["modules"]) == {"auth", "crm", "cms", "billing", "analytics"}
    assert {"id", "key", "name"} <= set(free)


@pytest.mark.parametrize("who", ["admin_api", "key_api"])
def test_any_authenticated_caller_lists_plans(tenant, who):
    r = tenant[who].get("/api/v1/plans")
    assert r.status_code == 200
    assert "free" in [p["key"] for p in r.json()["data"]]


def test_create_plan(sa, plan_key):
    plan = next(p for p in sa.get("/api/v1/plans").json()["data"] if p["key"] == plan_key)
    assert (plan["rate_limit_per_minute"], plan["max_users"], plan["max_api_keys"]) == (1200, 10, 5)
    assert plan["modules"] == ["auth", "crm"]
    assert UUID_RE.match(plan["id"])


def test_create_plan_defaults(sa):
    key = "dflt-" + token()
    r = sa.post("/api/v1/plans", json={"key": key, "name": "Defaults"})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["key"] == key and p["rate_limit_per_minute"] > 0 and p["max_users"] >= 0
    assert isinstance(p["modules"], list)


def test_duplicate_plan_key_is_409(sa, plan_key):
    assert_problem(sa.post("/api/v1/plans", json={"key": plan_key, "name": "Again"}), 409, "conflict")
    assert_problem(sa.post("/api/v1/plans", json={"key": "free", "name": "Again"}), 409, "conflict")


@pytest.mark.parametrize("body,field", [
    ({"name": "No key"}, "key"),
    ({"key": "Bad Key!", "name": "x"}, "key"),
    ({"key": "01930000-0000-7000-8000-000000000001", "name": "x"}, "key"),  # would shadow a plan id
    ({"key": "neg-" + uuid.uuid4().hex[:6], "name": "x", "rate_limit_per_minute": -1}, "rate_limit_per_minute"),
    ({"key": "str-" + uuid.uuid4().hex[:6], "name": "x", "max_users": "ten"}, "max_users"),
    ({"key": "mod-" + uuid.uuid4().hex[:6], "name": "x", "modules": "crm"}, "modules"),
])
def test_bad_plan_is_422_naming_field(sa, body, field):
    assert field in fields(assert_problem(sa.post("/api/v1/plans", json=body), 422, "validation_failed"))


def test_unknown_module_in_plan_is_422(sa):
    r = sa.post("/api/v1/plans", json={"key": "um-" + token(), "name": "x", "modules": ["auth", "teleport"]})
    assert "modules" in fields(assert_problem(r, 422, "validation_failed"))


def test_patch_plan_by_key_and_id(sa, plan_key):
    r = sa.patch(f"/api/v1/plans/{plan_key}", json={"rate_limit_per_minute": 99, "name": "Renamed"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["key"], p["rate_limit_per_minute"], p["name"], p["max_users"]) == (plan_key, 99, "Renamed", 10)
    r = sa.patch(f"/api/v1/plans/{p['id']}", json={"max_api_keys": 7})
    assert r.status_code == 200 and r.json()["max_api_keys"] == 7 and r.json()["rate_limit_per_minute"] == 99
    listed = next(x for x in sa.get("/api/v1/plans").json()["data"] if x["key"] == plan_key)
    assert (listed["max_api_keys"], listed["name"]) == (7, "Renamed")


def test_patch_plan_key_is_422_and_unknown_is_404(sa, plan_key):
    assert "key" in fields(assert_problem(sa.patch(f"/api/v1/plans/{plan_key}", json={"key": "other"}), 422))
    assert_problem(sa.patch("/api/v1/plans/no-such-plan", json={"name": "x"}), 404, "not_found")


def test_tenant_on_new_plan(sa, plan_key):
    t = make_tenant(sa, plan=plan_key)
    assert t["plan"] == plan_key
    assert sa.get(f"/api/v1/tenants/{t['id']}").json()["plan"] == plan_key


# --- concurrency and round-trips ---------------------------------------------------------------------------------


def test_concurrent_creates_with_one_slug_yield_one_tenant(sa):
    from concurrent.futures import ThreadPoolExecutor
    slug = "race-" + token()
    body = {"name": "Race", "slug": slug, "admin_email": f"a@{slug}.io", "admin_password": "admin-password-1"}
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: Api(sa.base, sa.headers).post("/api/v1/tenants", json=body), range(6)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 5, [(r.status_code, r.text[:200]) for r in results]
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "conflict")
    listed = sa.get("/api/v1/tenants", params={"q": slug}).json()["data"]
    assert len(listed) == 1


def test_unicode_and_nested_settings_round_trip(sa):
    settings = {"greeting": "Grüße, 世界 ☕", "nested": {"list": [1, 2.5, None, True], "empty": {}}, "quote": "a\"b\\c"}
    t = make_tenant(sa, name="Café ☕ " + token(), settings=settings)
    got = sa.get(f"/api/v1/tenants/{t['id']}").json()
    assert got["settings"] == settings
    assert got["name"] == t["name"] and got["name"].startswith("Café ☕")
