"""Issue 14 item 5: a NUL byte (or another control character) in any string a client sends — body or query,
authenticated or not — answers 422 naming it on both databases, never a 500. And tenant settings that
would break the platform (a negative token lifetime, origins that are not a list of origins) are refused."""
import pytest

from conftest import assert_problem

NUL = "a\u0000b"


def named_422(resp, field):
    assert resp.status_code == 422, (resp.status_code, resp.text[:300])
    body = resp.json()
    fields = [e["field"] for e in body.get("errors", [])]
    assert any(f == field or f.startswith(field) for f in fields), (field, fields)


def test_unauthenticated_bodies(anon):
    named_422(anon.post("/api/v1/auth/login", json={"email": NUL, "password": "x-password-1"}), "email")
    named_422(anon.post("/api/v1/auth/superadmin/login", json={"username": NUL, "password": "x"}), "username")
    named_422(anon.post("/api/v1/auth/password/forgot", json={"email": NUL, "tenant": "x"}), "email")
    named_422(anon.post("/api/v1/auth/refresh", json={"refresh_token": NUL}), "refresh_token")


def test_superadmin_bodies(sa):
    named_422(sa.post("/api/v1/tenants", json={"name": NUL, "slug": "nul-test", "admin_email": "a@nul.example.com"}),
              "name")
    named_422(sa.post("/api/v1/tenants", json={"name": "N", "slug": "nul-test2", "plan": NUL,
                                               "admin_email": "a@nul2.example.com"}), "plan")
    named_422(sa.post("/api/v1/plans", json={"key": "nulplan", "name": NUL}), "name")
    named_422(sa.patch("/api/v1/plans/free", json={"name": NUL}), "name")


def test_tenant_bodies(tenant, sa):
    api = tenant["admin_api"]
    named_422(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"name": NUL}), "name")
    named_422(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"plan": NUL}), "plan")
    named_422(api.post("/api/v1/auth/users", json={"email": "n@nul.example.com", "name": NUL}), "name")
    named_422(api.post("/api/v1/auth/api-keys", json={"name": NUL}), "name")
    named_422(api.post("/api/v1/auth/clients", json={"name": NUL, "redirect_uris": ["https://a.example.com/cb"]}),
              "name")
    named_422(api.post("/api/v1/crm/contacts", json={"first_name": NUL}), "first_name")


@pytest.mark.parametrize("path, field", [
    ("/api/v1/tenants?q=%00", "q"), ("/api/v1/tenants?status=%00", "status"), ("/api/v1/tenants?plan=%00", "plan"),
])
def test_superadmin_queries(sa, path, field):
    named_422(sa.get(path), field)


@pytest.mark.parametrize("path, field", [
    ("/api/v1/auth/users?q=%00", "q"), ("/api/v1/auth/audit?action=%00", "action"),
    ("/api/v1/auth/audit?actor_id=%00", "actor_id"), ("/api/v1/auth/users?status=%00", "status"),
    ("/api/v1/crm/contacts?q=%00", "q"),
])
def test_tenant_queries(tenant, path, field):
    named_422(tenant["admin_api"].get(path), field)


@pytest.mark.parametrize("settings, field", [
    ({"access_token_ttl": -5}, "settings.access_token_ttl"),
    ({"access_token_ttl": "900"}, "settings.access_token_ttl"),
    ({"allowed_origins": "x"}, "settings.allowed_origins"),
    ({"allowed_origins": ["not an origin"]}, "settings.allowed_origins"),
])
def test_tenant_settings_are_validated(sa, tenant, settings, field):
    named_422(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": settings}), field)
