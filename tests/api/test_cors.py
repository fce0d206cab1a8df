"""CORS: preflights are answered without credentials; real requests are granted only to the tenant's
allowed origins (settings.allowed_origins)."""
from conftest import Api

ORIGIN = "https://app.example.com"


def test_preflight_is_answered_without_credentials(anon):
    r = anon.request("OPTIONS", "/api/v1/auth/me", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                                             "Access-Control-Request-Headers": "x-api-key"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in r.headers["Access-Control-Allow-Headers"]
    assert r.headers["Vary"] == "Origin"


def test_plain_options_is_not_a_cors_grant(anon):
    r = anon.request("OPTIONS", "/api/v1/auth/me")
    assert r.status_code == 204
    assert "GET" in r.headers["Allow"]
    assert "Access-Control-Allow-Origin" not in r.headers


def test_allowed_origin_gets_the_grant_and_others_do_not(sa, tenant):
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"allowed_origins": [ORIGIN]}})
    assert r.status_code == 200, r.text
    ok = tenant["admin_api"].get("/api/v1/auth/me", headers={"Origin": ORIGIN})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    other = tenant["admin_api"].get("/api/v1/auth/me", headers={"Origin": "https://evil.example.com"})
    assert other.status_code == 200  # a secret credential still works server-side…
    assert "Access-Control-Allow-Origin" not in other.headers  # …but no browser page may read it


def test_publishable_key_login_from_an_allowed_origin_is_granted(sa, anon, tenant):
    sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"allowed_origins": [ORIGIN]}})
    pk = tenant["admin_api"].post("/api/v1/auth/api-keys", json={"name": "web", "type": "publishable"}).json()["key"]
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": tenant["admin_password"]},
                  headers={"X-API-Key": pk, "Origin": ORIGIN})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
