"""Browser sessions for the dashboard: with `X-Refresh-Token: cookie`, login, refresh and logout keep the refresh
token in an HttpOnly, SameSite=Strict cookie scoped to the refresh path, never in the JSON."""
import requests

from conftest import SUPERADMIN, assert_problem, make_tenant

REFRESH = "/api/v1/auth/refresh"
COOKIE_MODE = {"X-Refresh-Token": "cookie"}


def post(server, path, headers=None, **kw):
    """A request without a cookie jar: every cookie a test sends, it names."""
    return requests.post(server.url + path, headers={**COOKIE_MODE, **(headers or {})}, timeout=30, **kw)


def session_cookie(resp):
    """The cdx_refresh Set-Cookie of an answer: (value, attributes lower-cased)."""
    raw = resp.headers.get("Set-Cookie", "")
    assert raw.startswith("cdx_refresh="), resp.headers
    value, _, attrs = raw.partition(";")
    return value.split("=", 1)[1], [a.strip().lower() for a in attrs.split(";")]


def sign_in(server):
    r = post(server, "/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    assert r.status_code == 200, r.text
    return r


def test_login_puts_the_refresh_token_in_an_httponly_strict_cookie_on_the_refresh_path(server):
    r = sign_in(server)
    body = r.json()
    assert "refresh_token" not in body and body["access_token"]
    value, attrs = session_cookie(r)
    assert value.startswith("platform.") and len(value) > 40
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/api/v1/auth/refresh" in attrs
    assert any(a.startswith("max-age=") and int(a.split("=")[1]) > 3600 for a in attrs), attrs
    assert r.headers["Cache-Control"] == "no-store"
    me = requests.get(server.url + "/api/v1/auth/me", headers={"Authorization": "Bearer " + body["access_token"]})
    assert me.status_code == 200 and me.json()["role"] == "SUPERADMIN"


def test_a_tenant_admin_signs_in_the_same_way(server, sa, anon):
    t = make_tenant(sa)
    r = post(server, "/api/v1/auth/login",
             json={"email": t["admin"]["email"], "password": t["admin_password"], "tenant": t["slug"]})
    assert r.status_code == 200, r.text
    value, _ = session_cookie(r)
    assert value.startswith(t["id"] + ".")
    again = post(server, REFRESH, json={}, headers={"Cookie": f"cdx_refresh={value}"})
    assert again.status_code == 200, again.text
    assert again.json()["access_token"] and "refresh_token" not in again.json()


def test_refresh_from_the_cookie_rotates_it_and_the_spent_one_ends_the_session(server):
    old, _ = session_cookie(sign_in(server))
    r = post(server, REFRESH, headers={"Cookie": f"theme=dark; cdx_refresh={old}"})  # no body at all
    assert r.status_code == 200, r.text
    new, _ = session_cookie(r)
    assert new != old and "refresh_token" not in r.json()
    # The spent cookie replayed (a stolen copy): 401, the cookie cleared, and the whole session revoked.
    replay = post(server, REFRESH, json={}, headers={"Cookie": f"cdx_refresh={old}"})
    assert_problem(replay, 401, "unauthorized")
    value, attrs = session_cookie(replay)
    assert value == "" and "max-age=0" in attrs
    assert post(server, REFRESH, json={}, headers={"Cookie": f"cdx_refresh={new}"}).status_code == 401


def test_without_the_header_the_cookie_is_not_used(server):
    """A cross-site request cannot add the header (nor pass the CORS preflight with it): the cookie alone
    refreshes nothing."""
    value, _ = session_cookie(sign_in(server))
    r = requests.post(server.url + REFRESH, json={}, headers={"Cookie": f"cdx_refresh={value}"}, timeout=30)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "refresh_token"
    assert "Set-Cookie" not in r.headers
    pre = requests.options(server.url + REFRESH, headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "x-refresh-token"})
    assert "x-refresh-token" not in pre.headers.get("Access-Control-Allow-Headers", "").lower()
    # The cookie still works for its own page.
    assert post(server, REFRESH, json={}, headers={"Cookie": f"cdx_refresh={value}"}).status_code == 200


def test_no_cookie_is_a_401_to_sign_in(server):
    r = post(server, REFRESH, json={})
    assert assert_problem(r, 401, "unauthorized")["detail"] == "No session: sign in."


def test_logout_revokes_the_session_and_clears_the_cookie(server):
    r = sign_in(server)
    value, _ = session_cookie(r)
    out = post(server, "/api/v1/auth/logout",
               headers={"Authorization": "Bearer " + r.json()["access_token"], "Cookie": f"cdx_refresh={value}"})
    assert out.status_code == 204, out.text
    cleared, attrs = session_cookie(out)
    assert cleared == "" and "max-age=0" in attrs and "path=/api/v1/auth/refresh" in attrs
    assert post(server, REFRESH, json={}, headers={"Cookie": f"cdx_refresh={value}"}).status_code == 401
    me = requests.get(server.url + "/api/v1/auth/me", headers={"Authorization": "Bearer " + r.json()["access_token"]})
    assert me.status_code == 401


def test_json_sessions_are_unchanged_without_the_header(server):
    r = requests.post(server.url + "/api/v1/auth/superadmin/login",
                      json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=30)
    assert r.status_code == 200 and r.json()["refresh_token"] and "Set-Cookie" not in r.headers
    again = requests.post(server.url + REFRESH, json={"refresh_token": r.json()["refresh_token"]}, timeout=30)
    assert again.status_code == 200 and again.json()["refresh_token"] and "Set-Cookie" not in again.headers
