"""Core's tenants and plans as kit resources: PATCH tells absent from null from a value (null resets a field
with a default, and is 422 on a required one), settings merge, read-only and immutable fields say why, and
lists page with the kit's cursor (plans by key)."""
import uuid

from conftest import assert_problem, make_tenant


def fields(body):
    return {e["field"] for e in body["errors"]}


def test_patch_null_on_a_required_field_is_422(sa, tenant):
    body = assert_problem(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"name": None}), 422, "validation_failed")
    assert fields(body) == {"name"}


def test_patch_null_resets_plan_and_settings_to_their_defaults(sa):
    key = "rst-" + uuid.uuid4().hex[:8]
    assert sa.post("/api/v1/plans", json={"key": key, "name": "Reset"}).status_code == 201
    t = make_tenant(sa, plan=key, settings={"a": 1})
    r = sa.patch(f"/api/v1/tenants/{t['id']}", json={"plan": None, "settings": None})
    assert r.status_code == 200, r.text
    assert (r.json()["plan"], r.json()["settings"]) == ("free", {})


def test_settings_merge_and_null_member_removes_a_key(sa, tenant):
    sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"a": 1, "b": {"c": 2}}})
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"a": None, "b": {"d": 3}}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {"b": {"c": 2, "d": 3}}


def test_read_only_and_immutable_fields_say_why(sa, tenant):
    body = assert_problem(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"status": "suspended"}), 422)
    assert any(e["field"] == "status" and "/suspend" in e["message"] for e in body["errors"]), body
    body = assert_problem(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"slug": "other-slug"}), 422)
    assert any(e["field"] == "slug" and "cannot be changed" in e["message"] for e in body["errors"]), body


def test_plan_patch_null_resets_a_quota_to_its_default(sa):
    key = "q-" + uuid.uuid4().hex[:8]
    assert sa.post("/api/v1/plans", json={"key": key, "name": "Q", "max_users": 3}).status_code == 201
    r = sa.patch(f"/api/v1/plans/{key}", json={"max_users": None})
    assert r.status_code == 200, r.text
    assert r.json()["max_users"] == 100
    assert_problem(sa.patch(f"/api/v1/plans/{key}", json={"name": None}), 422, "validation_failed")


def test_plans_list_by_key_with_a_cursor(sa):
    keys = sorted("pg-" + uuid.uuid4().hex[:8] for _ in range(3))
    for k in keys:
        assert sa.post("/api/v1/plans", json={"key": k, "name": k}).status_code == 201
    seen, cursor = [], None
    for _ in range(200):
        r = sa.get("/api/v1/plans", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += [p["key"] for p in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and set(keys) <= set(seen) and "free" in seen




def test_openapi_schemas_follow_the_declarations(anon):
    s = anon.get("/openapi.json").json()["components"]["schemas"]
    assert "slug" in s["TenantCreate"]["properties"] and "admin_email" in s["TenantCreate"]["properties"]
    assert {"name", "slug", "admin_email"} <= set(s["TenantCreate"]["required"])
    assert not {"slug", "status"} & set(s["TenantUpdate"]["properties"])
    assert "key" not in s["PlanUpdate"]["properties"] and "key" in s["PlanCreate"]["properties"]
    assert s["Plan"]["properties"]["max_users"]["maximum"] == 100_000_000
