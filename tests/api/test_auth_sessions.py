"""Sessions: token answers with refresh tokens, refresh rotation and reuse detection, logout, per-tenant token
lifetimes, and login throttling (on dedicated servers, so the shared server's per-address budget is untouched)."""
import re
import threading

import jwt
import pytest

from conftest import (SUPERADMIN, Api, Server, assert_problem, bearer_api, create_user, login_answer, make_tenant,
                      set_tenant_settings, user_session)

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
LOGIN = "/api/v1/auth/login"
SA_LOGIN = "/api/v1/auth/superadmin/login"
SECRET_RE = r"[A-Za-z0-9_-]{43}"


def assert_401(resp):
    body = assert_problem(resp, 401, "unauthorized")
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), resp.headers
    return body


@pytest.fixture(scope="module")
def jwks(anon):
    return anon.get("/.well-known/jwks.json").json()


def claims_of(token, jwks, server):
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["ES256"], audience="cdx", issuer=server.url)


def sa_answer(anon):
    r = anon.post(SA_LOGIN, json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(anon, token):
    return anon.post(REFRESH, json={"refresh_token": token})


# --- token answers -----------------------------------------------------------------------------------------------


def test_login_answers_access_and_refresh_token(server, anon, tenant, jwks):
    r = anon.post(LOGIN, json={"email": tenant["admin"]["email"], "password": tenant["admin_password"],
                               "tenant": tenant["slug"]})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["token_type"] == "Bearer"
    assert isinstance(t["expires_in"], int) and 60 <= t["expires_in"] <= 900
    assert re.fullmatch(re.escape(tenant["id"]) + r"\." + SECRET_RE, t["refresh_token"]), t["refresh_token"]
    assert "no-store" in r.headers.get("Cache-Control", "")
    c = claims_of(t["access_token"], jwks, server)
    assert c["sid"] and isinstance(c["sid"], str)
    assert c["email"] == tenant["admin"]["email"]
    assert "username" not in c
    assert c["exp"] - c["iat"] == t["expires_in"]


def test_superadmin_login_answers_refresh_token_and_scope(server, anon, jwks):
    t = sa_answer(anon)
    assert t["token_type"] == "Bearer" and t["scope"] == "*"
    assert re.fullmatch(r"platform\." + SECRET_RE, t["refresh_token"]), t["refresh_token"]
    c = claims_of(t["access_token"], jwks, server)
    assert c["username"] == SUPERADMIN[0] and c["sid"]
    assert "email" not in c


def test_each_login_is_its_own_session(server, anon, tenant, jwks):
    a, b = login_answer(anon, tenant), login_answer(anon, tenant)
    assert a["refresh_token"] != b["refresh_token"]
    assert claims_of(a["access_token"], jwks, server)["sid"] != claims_of(b["access_token"], jwks, server)["sid"]


# --- refresh -----------------------------------------------------------------------------------------------------


def test_refresh_answers_a_new_pair_in_the_same_session(server, anon, tenant, jwks):
    first = login_answer(anon, tenant)
    r = refresh(anon, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token_type"] == "Bearer" and second["expires_in"] == first["expires_in"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["refresh_token"].startswith(tenant["id"] + ".")
    assert second["access_token"] != first["access_token"]
    assert "no-store" in r.headers.get("Cache-Control", "")
    c1, c2 = (claims_of(t["access_token"], jwks, server) for t in (first, second))
    assert c1["sid"] == c2["sid"], "a refreshed token stays in its session"
    assert c2["sub"] == c1["sub"] and c2["tid"] == tenant["id"] and c2["role"] == "ADMIN"
    assert c2["email"] == tenant["admin"]["email"]
    me = bearer_api(anon.base, second["access_token"]).get(ME)
    assert me.status_code == 200 and me.json()["id"] == tenant["admin"]["id"]
    # the new refresh token rotates again
    third = refresh(anon, second["refresh_token"])
    assert third.status_code == 200, third.text


def test_spent_refresh_token_is_401_and_revokes_the_family(anon, tenant):
    first = login_answer(anon, tenant)
    second = refresh(anon, first["refresh_token"]).json()
    third = refresh(anon, second["refresh_token"]).json()
    body = assert_401(refresh(anon, first["refresh_token"]))  # reuse of a spent token
    assert "refresh_token" not in body
    assert_401(refresh(anon, third["refresh_token"]))  # the newest of that family is dead too
    assert_401(refresh(anon, second["refresh_token"]))
    # another session of the same user is not touched
    other = login_answer(anon, tenant)
    assert refresh(anon, other["refresh_token"]).status_code == 200


def test_access_tokens_from_before_keep_working_until_expiry(anon, tenant):
    first = login_answer(anon, tenant)
    second = refresh(anon, first["refresh_token"]).json()
    assert bearer_api(anon.base, first["access_token"]).get(ME).status_code == 200
    assert bearer_api(anon.base, second["access_token"]).get(ME).status_code == 200


def test_concurrent_refresh_with_one_token_has_one_winner(anon, tenant):
    token = login_answer(anon, tenant)["refresh_token"]
    results = []
    barrier = threading.Barrier(6)

    def go():
        api = Api(anon.base)
        barrier.wait()
        results.append(api.post(REFRESH, json={"refresh_token": token}))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [401] * 5, [(r.status_code, r.text[:120]) for r in results]


def test_superadmin_refresh_and_reuse(server, anon, jwks):
    first = sa_answer(anon)
    r = refresh(anon, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"].startswith("platform.") and second["refresh_token"] != first["refresh_token"]
    assert second.get("scope") == "*"
    c = claims_of(second["access_token"], jwks, server)
    assert c["role"] == "SUPERADMIN" and c["username"] == SUPERADMIN[0]
    assert c["sid"] == claims_of(first["access_token"], jwks, server)["sid"]
    api = bearer_api(anon.base, second["access_token"])
    assert api.get(ME).json()["role"] == "SUPERADMIN"
    assert api.get("/api/v1/tenants").status_code == 200
    assert_401(refresh(anon, first["refresh_token"]))
    assert_401(refresh(anon, second["refresh_token"]))


def test_refresh_token_is_bound_to_its_tenant(anon, tenant, other_tenant):
    t = login_answer(anon, tenant)
    secret = t["refresh_token"].split(".", 1)[1]
    for forged in (other_tenant["id"] + "." + secret, "platform." + secret, tenant["slug"] + "." + secret):
        assert_401(refresh(anon, forged))
    assert refresh(anon, t["refresh_token"]).status_code == 200, "the genuine token is still unspent"


@pytest.mark.parametrize("token", ["garbage", "platform." + "A" * 43,
                                   "01930000-0000-7000-8000-00000000beef." + "A" * 43, "." + "A" * 43, "A" * 44,
                                   "x" * 200])
def test_unknown_or_malformed_refresh_token_is_401(anon, token):
    assert_401(refresh(anon, token))


def test_unknown_refresh_token_of_a_real_tenant_is_401(anon, tenant):
    assert_401(refresh(anon, tenant["id"] + "." + "B" * 43))


@pytest.mark.parametrize("body", [{}, {"refresh_token": None}, {"refresh_token": 17}, {"token": "x"}])
def test_refresh_without_a_token_string_is_422(anon, body):
    errors = assert_problem(anon.post(REFRESH, json=body), 422, "validation_failed")["errors"]
    assert [e["field"] for e in errors] == ["refresh_token"]


def test_access_token_is_not_a_refresh_token(anon, tenant):
    r = refresh(anon, login_answer(anon, tenant)["access_token"])
    assert r.status_code in (401, 422), r.text  # 422: longer than any refresh token
    assert_problem(r, r.status_code)
    assert "access_token" not in r.text


# --- logout ------------------------------------------------------------------------------------------------------


def test_logout_ends_the_session(anon, tenant):
    t = login_answer(anon, tenant)
    other = login_answer(anon, tenant)
    r = bearer_api(anon.base, t["access_token"]).post(LOGOUT)
    assert r.status_code == 204 and r.content == b"", r.text
    assert_401(refresh(anon, t["refresh_token"]))
    assert refresh(anon, other["refresh_token"]).status_code == 200, "logout ends only its own session"


def test_logout_after_refresh_ends_the_rotated_token(anon, tenant):
    t = login_answer(anon, tenant)
    rotated = refresh(anon, t["refresh_token"]).json()
    assert bearer_api(anon.base, t["access_token"]).post(LOGOUT).status_code == 204
    assert_401(refresh(anon, rotated["refresh_token"]))


def test_logout_with_refresh_token_in_body(anon, tenant):
    t = login_answer(anon, tenant)
    r = bearer_api(anon.base, t["access_token"]).post(LOGOUT, json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 204, r.text
    assert_401(refresh(anon, t["refresh_token"]))


def test_logout_cannot_end_someone_elses_session(anon, tenant, other_tenant):
    victim = create_user(tenant["admin_api"])
    victim_tokens, _ = user_session(anon, tenant, victim)
    for attacker in (login_answer(anon, tenant), login_answer(anon, other_tenant)):
        r = bearer_api(anon.base, attacker["access_token"]).post(LOGOUT,
                                                                 json={"refresh_token": victim_tokens["refresh_token"]})
        assert r.status_code < 500, r.text
    assert refresh(anon, victim_tokens["refresh_token"]).status_code == 200, \
        "another user's logout must not revoke the victim's session"


def test_superadmin_logout(anon):
    t = sa_answer(anon)
    assert bearer_api(anon.base, t["access_token"]).post(LOGOUT).status_code == 204
    assert_401(refresh(anon, t["refresh_token"]))


def test_logout_with_api_key_is_400(tenant):
    assert_problem(tenant["key_api"].post(LOGOUT), 400)
    assert tenant["key_api"].get(ME).status_code == 200, "the key is not revoked by a logout attempt"


def test_logout_without_credential_is_401(anon):
    assert_401(anon.post(LOGOUT))
    assert_401(anon.post(LOGOUT, json={"refresh_token": "platform." + "A" * 43}))


# --- per-tenant lifetimes ----------------------------------------------------------------------------------------


def test_tenant_access_token_ttl_shortens_tokens(server, sa, anon, tenant, jwks):
    set_tenant_settings(sa, tenant, {"access_token_ttl": 120})
    t = login_answer(anon, tenant)
    assert t["expires_in"] == 120
    c = claims_of(t["access_token"], jwks, server)
    assert c["exp"] - c["iat"] == 120
    r = refresh(anon, t["refresh_token"])
    assert r.status_code == 200 and r.json()["expires_in"] == 120
    c = claims_of(r.json()["access_token"], jwks, server)
    assert c["exp"] - c["iat"] == 120


def test_tenant_ttl_cannot_exceed_the_platform_maximum(sa, anon, tenant):
    set_tenant_settings(sa, tenant, {"access_token_ttl": 86400})
    assert login_answer(anon, tenant)["expires_in"] <= 900


def test_tenant_ttl_below_minimum_is_not_honoured(sa, anon, tenant):
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"settings": {"access_token_ttl": 5}})
    if r.status_code == 422:
        return  # rejecting the value outright is fine too
    assert r.status_code == 200, r.text
    assert 60 <= login_answer(anon, tenant)["expires_in"] <= 900


def test_tenant_ttl_does_not_leak_into_other_tenants(sa, anon, tenant, other_tenant):
    set_tenant_settings(sa, tenant, {"access_token_ttl": 90})
    assert login_answer(anon, tenant)["expires_in"] == 90
    assert login_answer(anon, other_tenant)["expires_in"] != 90


def test_platform_ttl_caps_tenant_ttl():
    s = Server(env={"CDX_ACCESS_TOKEN_TTL": "120"}).start()
    try:
        anon = Api(s.url)
        sa_tokens = sa_answer(anon)
        assert sa_tokens["expires_in"] == 120
        sa = bearer_api(s.url, sa_tokens["access_token"])
        t = make_tenant(sa)
        assert login_answer(anon, t)["expires_in"] == 120
        set_tenant_settings(sa, t, {"access_token_ttl": 600})
        assert login_answer(anon, t)["expires_in"] == 120
        set_tenant_settings(sa, t, {"access_token_ttl": 75})
        assert login_answer(anon, t)["expires_in"] == 75
    finally:
        s.cleanup()


# --- login throttling (each test on its own server) -------------------------------------------------------------


@pytest.fixture
def fresh():
    """A dedicated server with its SUPERADMIN client and one tenant."""
    s = Server().start()
    try:
        anon = Api(s.url)
        sa = bearer_api(s.url, sa_answer(anon)["access_token"])
        yield s, anon, sa, make_tenant(sa)
    finally:
        s.cleanup()


def login_body(tenant, email, password, **extra):
    return {"email": email, "password": password, "tenant": tenant["slug"], **extra}


def assert_throttled(resp):
    body = assert_problem(resp, 429, "rate_limited")
    wait = resp.headers.get("Retry-After")
    assert wait is not None and wait.isdigit() and 1 <= int(wait) <= 15 * 60, resp.headers
    assert "access_token" not in resp.text
    return body


def test_ten_failures_lock_the_account_even_for_the_right_password(fresh):
    _, anon, _, t = fresh
    email = t["admin"]["email"]
    for i in range(10):
        assert_401(anon.post(LOGIN, json=login_body(t, email, f"wrong-password-{i}")))
    first = anon.post(LOGIN, json=login_body(t, email, t["admin_password"]))
    assert_throttled(first)
    again = [anon.post(LOGIN, json=login_body(t, email, pw)) for pw in ("wrong-again", t["admin_password"])]
    for r in again:
        assert_throttled(r)
        # blocked attempts do not push the back-off further out
        assert int(r.headers["Retry-After"]) <= int(first.headers["Retry-After"])


def test_throttle_is_per_account(fresh):
    _, anon, _, t = fresh
    other = create_user(bearer_api(anon.base, login_answer(anon, t)["access_token"]))
    for i in range(10):
        assert_401(anon.post(LOGIN, json=login_body(t, t["admin"]["email"], f"wrong-password-{i}")))
    assert_throttled(anon.post(LOGIN, json=login_body(t, t["admin"]["email"], t["admin_password"])))
    r = anon.post(LOGIN, json=login_body(t, other["email"], other["password"]))
    assert r.status_code == 200, r.text


def test_throttle_cannot_be_sidestepped_by_naming_the_account_differently(fresh):
    """The account is the (tenant, email) pair, however the tenant or the email's case are spelled."""
    _, anon, _, t = fresh
    email = t["admin"]["email"]
    for i in range(10):
        assert_401(anon.post(LOGIN, json=login_body(t, email, f"wrong-password-{i}")))
    spellings = {
        "email upper-case": {"email": email.upper(), "password": t["admin_password"], "tenant": t["slug"]},
        "tenant by id": {"email": email, "password": t["admin_password"], "tenant": t["id"]},
        "tenant by upper-case slug": {"email": email, "password": t["admin_password"], "tenant": t["slug"].upper()},
    }
    got = {name: anon.post(LOGIN, json=body) for name, body in spellings.items()}
    got["tenant in X-Tenant-ID (id)"] = anon.post(LOGIN, json={"email": email, "password": t["admin_password"]},
                                                  headers={"X-Tenant-ID": t["id"]})
    leaks = {name: (r.status_code, r.text[:160]) for name, r in got.items() if r.status_code not in (401, 429)}
    assert not leaks, f"a locked account logged in under another spelling: {leaks}"
    assert got["email upper-case"].status_code == 429


def test_unknown_user_and_wrong_password_answer_alike(fresh):
    _, anon, _, t = fresh
    admin = bearer_api(anon.base, login_answer(anon, t)["access_token"])
    disabled = create_user(admin)
    assert admin.patch(f"/api/v1/auth/users/{disabled['id']}", json={"status": "disabled"}).status_code == 200
    answers = [anon.post(LOGIN, json=login_body(t, t["admin"]["email"], "wrong-password-1")),
               anon.post(LOGIN, json=login_body(t, "nobody-" + t["admin"]["email"], "wrong-password-1")),
               anon.post(LOGIN, json=login_body(t, disabled["email"], disabled["password"]))]
    shapes = []
    for r in answers:
        body = assert_401(r)
        body.pop("request_id")
        shapes.append((r.status_code, r.headers.get("WWW-Authenticate"), body))
    assert shapes[0] == shapes[1], shapes
    assert shapes[0] == shapes[2], "a disabled account must not be told apart from a wrong password"


def test_unknown_accounts_are_throttled_like_known_ones(fresh):
    _, anon, _, t = fresh
    ghost = "ghost@" + t["slug"] + ".example.com"
    for i in range(10):
        assert_401(anon.post(LOGIN, json=login_body(t, ghost, f"wrong-password-{i}")))
    assert_throttled(anon.post(LOGIN, json=login_body(t, ghost, "wrong-password-x")))


def test_superadmin_login_is_throttled(fresh):
    _, anon, sa, _ = fresh
    for i in range(10):
        assert_401(anon.post(SA_LOGIN, json={"username": SUPERADMIN[0], "password": f"wrong-password-{i}"}))
    assert_throttled(anon.post(SA_LOGIN, json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))
    assert sa.get(ME).status_code == 200, "tokens issued before keep working"


def test_fifty_failures_from_one_address_block_logins(fresh):
    _, anon, _, t = fresh
    for i in range(50):
        r = anon.post(LOGIN, json=login_body(t, f"nobody-{i}@{t['slug']}.example.com", "wrong-password-1"))
        assert r.status_code == 401, (i, r.status_code, r.text[:200])
    assert_throttled(anon.post(LOGIN, json=login_body(t, t["admin"]["email"], t["admin_password"])))

