"""OAuth2 / OpenID Connect provider: client registration, discovery, the authorization endpoint (Bearer and the
sign-in page), the token endpoint (authorization_code + PKCE, refresh_token, client_credentials), revocation
(RFC 7009), introspection (RFC 7662) and userinfo.

The main flows run through real clients: Authlib's OAuth2Session drives the grants, and PyJWT verifies access and
ID tokens through the JWKS, as any relying party would."""
import base64
import hashlib
import html
import re
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from conftest import Api, assert_problem, bearer_api, create_user, login_answer, tenant_with_clients, user_session

CLIENTS = "/api/v1/auth/clients"
AUDIT = "/api/v1/auth/audit"
ME = "/api/v1/auth/me"
AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
USERINFO = "/oauth/userinfo"
REDIRECT = "https://app.example.com/callback"
OTHER_REDIRECT = "http://localhost:8765/cb"
ALL_GRANTS = ["authorization_code", "refresh_token", "client_credentials"]
SCOPES = ["openid", "email", "profile", "crm:read"]


# --- helpers -----------------------------------------------------------------------------------------------------


def register(api, **fields):
    """Registers a client through `api` (201 expected); answers the creation answer."""
    body = {"name": "App " + uuid.uuid4().hex[:6], "redirect_uris": [REDIRECT, OTHER_REDIRECT],
            "grant_types": ALL_GRANTS, "scopes": SCOPES}
    body.update(fields)
    r = api.post(CLIENTS, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client, challenge, **overrides):
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
              "scope": "openid email profile", "state": "st-" + secrets.token_hex(6), "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def query_of(location):
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(server, client, access_token, **overrides):
    """Runs GET /oauth/authorize with a user's Bearer token; answers (code, verifier, params)."""
    verifier, challenge = pkce()
    params = authorize_params(client, challenge, **overrides)
    r = requests.get(server.url + AUTHORIZE, params=params, headers={"Authorization": "Bearer " + access_token},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    q = query_of(r.headers["Location"])
    assert "code" in q, r.headers["Location"]
    return q["code"], verifier, params


def token_post(server, data, auth=None, **kw):
    """A raw form POST to the token endpoint (auth: (client_id, secret) for HTTP Basic)."""
    return requests.post(server.url + TOKEN, data=data, auth=auth, timeout=30, **kw)


def basic(client):
    return (client["client_id"], client["client_secret"])


def redeem(server, client, code, verifier, redirect_uri=REDIRECT):
    return token_post(server, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                               "redirect_uri": redirect_uri}, auth=basic(client))


def oauth_session(client, **kw):
    return OAuth2Session(client["client_id"], client.get("client_secret"), code_challenge_method="S256", **kw)


def code_flow(server, client, access_token, scope="openid email profile", nonce=None, redirect_uri=REDIRECT):
    """The whole authorization code + PKCE flow through Authlib; answers the token answer."""
    session = oauth_session(client, scope=scope, redirect_uri=redirect_uri)
    verifier = secrets.token_urlsafe(48)
    extra = {"nonce": nonce} if nonce else {}
    url, state = session.create_authorization_url(server.url + AUTHORIZE, code_verifier=verifier, **extra)
    r = requests.get(url, headers={"Authorization": "Bearer " + access_token}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    location = r.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    q = query_of(location)
    assert q["state"] == state and q["iss"] == server.url and q["code"], location
    return session.fetch_token(server.url + TOKEN, authorization_response=location, code_verifier=verifier)


def assert_oauth_error(resp, status, error):
    """An RFC 6749 §5.2 error answer: JSON {"error": …} (never problem+json), not cacheable."""
    assert resp.status_code == status, f"expected {status} {error}, got {resp.status_code}: {resp.text[:400]}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), ctype
    body = resp.json()
    assert body["error"] == error, body
    assert "status" not in body and "type" not in body, "RFC 6749 errors, not problem+json"
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers
    return body


def assert_redirect_error(resp, error, state, server):
    """An authorization error sent back to the client's redirect_uri (RFC 6749 §4.1.2.1, RFC 9207 iss)."""
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    q = query_of(location)
    assert q["error"] == error, q
    assert q.get("error_description"), q
    assert q["state"] == state, q
    assert q["iss"] == server.url, q
    assert "code" not in q
    return q


def introspect(server, client, token, **extra):
    r = requests.post(server.url + INTROSPECT, data={"token": token, **extra}, auth=basic(client), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def audit(api, action):
    r = api.get(AUDIT, params={"limit": 200, "action": action})
    assert r.status_code == 200, r.text
    return r.json()["data"]


@pytest.fixture(scope="module")
def org(sa, anon):
    """A tenant shared by the module, with one confidential client that may use every grant."""
    t = tenant_with_clients(sa, anon)
    t["app"] = register(t["admin_api"], name="Reports app")
    t["admin_token"] = login_answer(anon, t)["access_token"]
    return t


@pytest.fixture(scope="module")
def app(org):
    return org["app"]


@pytest.fixture(scope="module")
def jwks_client(server):
    return jwt.PyJWKClient(server.url + "/.well-known/jwks.json")


def verify(jwks_client, token, audience, issuer):
    key = jwks_client.get_signing_key_from_jwt(token).key
    return jwt.decode(token, key, algorithms=["ES256"], audience=audience, issuer=issuer)


@pytest.fixture(scope="module")
def flow(server, org, app):
    """One completed code flow (scope openid email profile crm:read, with a nonce) shared by read-only tests."""
    nonce = "n-" + secrets.token_hex(8)
    tok = code_flow(server, app, org["admin_token"], scope="openid email profile crm:read", nonce=nonce)
    tok["nonce"] = nonce
    return tok


# --- client registration -----------------------------------------------------------------------------------------


def test_register_confidential_client(tenant):
    r = tenant["admin_api"].post(CLIENTS, json={"name": "Reports app", "redirect_uris": [REDIRECT],
                                                "grant_types": ALL_GRANTS, "scopes": SCOPES})
    assert r.status_code == 201, r.text
    c = r.json()
    assert "no-store" in r.headers.get("Cache-Control", "")
    assert c["id"] and c["name"] == "Reports app"
    assert c["client_id"].startswith(tenant["id"] + ".") and len(c["client_id"]) > len(tenant["id"]) + 10
    assert re.fullmatch(r"cdx_cs_[A-Za-z0-9_-]{30,}", c["client_secret"]), c["client_secret"]
    assert c["type"] == "confidential"
    assert c["redirect_uris"] == [REDIRECT]
    assert c["grant_types"] == ALL_GRANTS and c["scopes"] == SCOPES


def test_register_defaults(tenant):
    c = register(tenant["admin_api"], grant_types=None, scopes=None, redirect_uris=[REDIRECT])
    assert c["type"] == "confidential" and c["client_secret"].startswith("cdx_cs_")
    assert c["grant_types"] == ["authorization_code", "refresh_token"]
    assert c["scopes"] == ["openid", "profile", "email"]


def test_register_public_client_has_no_secret(tenant):
    c = register(tenant["admin_api"], type="public", grant_types=["authorization_code", "refresh_token"],
                 scopes=["openid"], redirect_uris=["http://127.0.0.1:9999/cb"])
    assert c["type"] == "public"
    assert "client_secret" not in c or c["client_secret"] is None
    assert c["client_id"].startswith(tenant["id"] + ".")


def test_list_and_get_never_show_the_secret(tenant):
    c = register(tenant["admin_api"])
    api = tenant["admin_api"]
    listed = api.get(CLIENTS)
    assert listed.status_code == 200, listed.text
    data = listed.json()["data"]
    assert c["id"] in [x["id"] for x in data]
    assert c["client_secret"] not in listed.text
    assert all("client_secret" not in x for x in data)
    for ident in (c["id"], c["client_id"]):
        one = api.get(f"{CLIENTS}/{ident}")
        assert one.status_code == 200, one.text
        assert one.json()["id"] == c["id"] and one.json()["client_id"] == c["client_id"]
        assert "client_secret" not in one.json() and c["client_secret"] not in one.text


@pytest.mark.parametrize("fields,field", [
    ({"redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris"),
    ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "redirect_uris"),
    ({"redirect_uris": ["/callback"]}, "redirect_uris"),
    ({"redirect_uris": ["https://user@app.example.com/cb"]}, "redirect_uris"),
    ({"type": "public", "grant_types": ["authorization_code", "client_credentials"]}, "grant_types"),
    ({"grant_types": ["authorization_code", "password"]}, "grant_types"),
    ({"grant_types": ["refresh_token"]}, "grant_types"),
    ({"grant_types": ["authorization_code"], "redirect_uris": []}, "redirect_uris"),
    ({"scopes": ["*"]}, "scopes"),
    ({"allowed_origins": ["https://app.example.com/path"]}, "allowed_origins"),
    ({"name": None}, "name"),
], ids=["http-not-localhost", "fragment", "relative", "userinfo", "public-client-credentials", "unknown-grant",
        "refresh-without-code", "code-without-redirect", "star-scope", "origin-with-path", "missing-name"])
def test_register_validation(tenant, fields, field):
    body = {"name": "Bad app", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid"]}
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    r = tenant["admin_api"].post(CLIENTS, json=body)
    problem = assert_problem(r, 422, "validation_failed")
    named = [e["field"] for e in problem.get("errors", [])]
    assert any(f == field or f.startswith(field + "[") for f in named), (field, problem)


def test_client_role_cannot_manage_clients(anon, tenant):
    user = create_user(tenant["admin_api"], role="CLIENT")
    _, api = user_session(anon, tenant, user)
    assert_problem(api.post(CLIENTS, json={"name": "x", "redirect_uris": [REDIRECT]}), 403)
    assert_problem(api.get(CLIENTS), 403)


def test_clients_are_tenant_scoped(tenant, other_tenant):
    c = register(tenant["admin_api"])
    other = other_tenant["admin_api"]
    for ident in (c["id"], c["client_id"]):
        assert_problem(other.get(f"{CLIENTS}/{ident}"), 404)
    assert_problem(other.patch(f"{CLIENTS}/{c['id']}", json={"name": "stolen"}), 404)
    assert_problem(other.post(f"{CLIENTS}/{c['id']}/secret"), 404)
    assert_problem(other.delete(f"{CLIENTS}/{c['id']}"), 404)
    assert c["id"] not in [x["id"] for x in other.get(CLIENTS).json()["data"]]
    assert tenant["admin_api"].get(f"{CLIENTS}/{c['id']}").json()["name"] == c["name"], "untouched"


def test_superadmin_manages_clients_with_tenant_header(sa, tenant):
    c = register(tenant["admin_api"])
    api = sa.with_headers(X_Tenant_ID=tenant["id"])
    r = api.get(f"{CLIENTS}/{c['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] == c["client_id"]
    assert c["id"] in [x["id"] for x in api.get(CLIENTS).json()["data"]]


def test_api_key_registers_clients(tenant):
    c = register(tenant["key_api"])
    assert c["client_id"].startswith(tenant["id"] + ".")


def test_patch_answers_the_updated_client(tenant):
    c = register(tenant["admin_api"])
    r = tenant["admin_api"].patch(f"{CLIENTS}/{c['id']}", json={"name": "Renamed", "redirect_uris": [OTHER_REDIRECT],
                                                                 "scopes": ["openid", "email"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Renamed" and body["redirect_uris"] == [OTHER_REDIRECT]
    assert body["scopes"] == ["openid", "email"]
    assert body["client_id"] == c["client_id"] and "client_secret" not in body
    again = tenant["admin_api"].get(f"{CLIENTS}/{c['id']}").json()
    assert again["name"] == "Renamed" and again["redirect_uris"] == [OTHER_REDIRECT]


def test_patch_is_validated(tenant):
    c = register(tenant["admin_api"])
    r = tenant["admin_api"].patch(f"{CLIENTS}/{c['id']}", json={"redirect_uris": ["http://evil.example.com/cb"]})
    assert_problem(r, 422, "validation_failed")
    assert tenant["admin_api"].get(f"{CLIENTS}/{c['id']}").json()["redirect_uris"] == c["redirect_uris"]


def test_delete_client(server, tenant):
    c = register(tenant["admin_api"])
    assert token_post(server, {"grant_type": "client_credentials"}, auth=basic(c)).status_code == 200
    r = tenant["admin_api"].delete(f"{CLIENTS}/{c['id']}")
    assert r.status_code == 204, r.text
    assert_problem(tenant["admin_api"].get(f"{CLIENTS}/{c['id']}"), 404)
    assert_problem(tenant["admin_api"].delete(f"{CLIENTS}/{c['id']}"), 404)
    resp = token_post(server, {"grant_type": "client_credentials"}, auth=basic(c))
    assert_oauth_error(resp, 401, "invalid_client")


def test_deleting_a_client_revokes_its_refresh_tokens(server, tenant):
    c = register(tenant["admin_api"])
    tok = code_flow(server, c, login_answer(Api(server.url), tenant)["access_token"])
    other = register(tenant["admin_api"])
    assert introspect(server, other, tok["refresh_token"])["active"] is True
    assert tenant["admin_api"].delete(f"{CLIENTS}/{c['id']}").status_code == 204
    assert introspect(server, other, tok["refresh_token"])["active"] is False


def test_secret_rotation(server, tenant):
    c = register(tenant["admin_api"])
    r = tenant["admin_api"].post(f"{CLIENTS}/{c['id']}/secret")
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")
    new = r.json()["client_secret"]
    assert new.startswith("cdx_cs_") and new != c["client_secret"]
    assert_oauth_error(token_post(server, {"grant_type": "client_credentials"}, auth=basic(c)), 401,
                       "invalid_client")
    ok = token_post(server, {"grant_type": "client_credentials"}, auth=(c["client_id"], new))
    assert ok.status_code == 200, ok.text


def test_public_client_has_no_secret_to_rotate(tenant):
    c = register(tenant["admin_api"], type="public", grant_types=["authorization_code"], scopes=["openid"])
    assert_problem(tenant["admin_api"].post(f"{CLIENTS}/{c['id']}/secret"), 409)


def test_client_management_is_audited(tenant):
    api = tenant["admin_api"]
    c = register(api)
    assert api.patch(f"{CLIENTS}/{c['id']}", json={"name": "Audited"}).status_code == 200
    assert api.post(f"{CLIENTS}/{c['id']}/secret").status_code == 200
    assert api.delete(f"{CLIENTS}/{c['id']}").status_code == 204
    for action in ("client.created", "client.updated", "client.secret_rotated", "client.deleted"):
        got = [e for e in audit(api, action) if e["target"]["id"] in (c["id"], c["client_id"])]
        assert len(got) == 1, (action, audit(api, action))
        assert got[0]["actor"] == {"type": "user", "id": tenant["admin"]["id"]}, got[0]
    assert c["client_secret"] not in api.get(AUDIT, params={"limit": 200}).text


# --- discovery ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
def test_discovery_document(server, anon, path):
    r = anon.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    d = r.json()
    base = server.url
    assert d["issuer"] == base
    assert d["authorization_endpoint"] == base + AUTHORIZE
    assert d["token_endpoint"] == base + TOKEN
    assert d["userinfo_endpoint"] == base + USERINFO
    assert d["jwks_uri"] == base + "/.well-known/jwks.json"
    assert d["revocation_endpoint"] == base + REVOKE
    assert d["introspection_endpoint"] == base + INTROSPECT
    assert d["response_types_supported"] == ["code"]
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert d["id_token_signing_alg_values_supported"] == ["ES256"]
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(d["token_endpoint_auth_methods_supported"])
    assert set(d["grant_types_supported"]) == set(ALL_GRANTS)
    assert {"openid", "profile", "email"} <= set(d["scopes_supported"])


@pytest.mark.parametrize("path", [TOKEN, REVOKE, INTROSPECT, AUTHORIZE])
def test_openapi_documents_the_form_bodies(anon, path):
    """The protocol endpoints take application/x-www-form-urlencoded bodies; the description must say so, or
    generated clients cannot call them."""
    op = anon.get("/openapi.json").json()["paths"][path]["post"]
    content = (op.get("requestBody") or {}).get("content", {})
    assert "application/x-www-form-urlencoded" in content, (path, op.get("requestBody"))


def test_discovery_endpoints_answer(anon):
    d = anon.get("/.well-known/openid-configuration").json()
    jwks = requests.get(d["jwks_uri"], timeout=30)
    assert jwks.status_code == 200 and jwks.json()["keys"]
    assert all(k["kty"] == "EC" and k["crv"] == "P-256" and k["kid"] for k in jwks.json()["keys"])
    assert requests.get(d["userinfo_endpoint"], timeout=30).status_code == 401


# --- authorization endpoint ---------------------------------------------------------------------------------------


def raw_authorize(server, params, token=None, **kw):
    headers = {"Authorization": "Bearer " + token} if token else {}
    headers.update(kw.pop("headers", {}))
    return requests.get(server.url + AUTHORIZE, params=params, headers=headers, allow_redirects=False, timeout=30,
                        **kw)


@pytest.mark.parametrize("change", [{"client_id": "nobody.nothing"}, {"client_id": None},
                                    {"redirect_uri": "https://evil.example.com/callback"},
                                    {"redirect_uri": REDIRECT + "/extra"}, {"redirect_uri": REDIRECT + "?x=1"},
                                    {"redirect_uri": REDIRECT.upper()},
                                    {"redirect_uri": REDIRECT.replace(".com/", ".com:443/")}],
                         ids=["unknown-client", "no-client", "foreign-redirect", "longer-redirect", "extra-query",
                              "other-case", "explicit-port"])
def test_authorize_never_redirects_to_an_unverified_uri(server, org, app, change):
    _, challenge = pkce()
    r = raw_authorize(server, authorize_params(app, challenge, **change), org["admin_token"],
                      headers={"Accept": "application/json"})
    assert r.status_code == 400, (r.status_code, r.headers, r.text[:300])
    assert "Location" not in r.headers


def test_authorize_unknown_client_gets_a_page_in_a_browser(server, app):
    _, challenge = pkce()
    r = raw_authorize(server, authorize_params(app, challenge, client_id="nobody.nothing"),
                      headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html"), r.headers


def test_authorize_needs_pkce(server, org, app):
    _, challenge = pkce()
    params = authorize_params(app, challenge, code_challenge=None, code_challenge_method=None)
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "invalid_request", params["state"],
                          server)


def test_authorize_refuses_plain_pkce(server, org, app):
    verifier, _ = pkce()
    params = authorize_params(app, verifier, code_challenge_method="plain")
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "invalid_request", params["state"],
                          server)


def test_authorize_checks_the_challenge_format(server, org, app):
    params = authorize_params(app, "too-short")
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "invalid_request", params["state"],
                          server)


def test_authorize_refuses_repeated_parameters(server, org, app):
    _, challenge = pkce()
    params = list(authorize_params(app, challenge, scope="openid").items()) + [("scope", "openid crm:read")]
    r = requests.get(server.url + AUTHORIZE, params=params, headers={"Authorization": "Bearer " + org["admin_token"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code in (302, 400), (r.status_code, r.text[:300])
    if r.status_code == 302:
        assert query_of(r.headers["Location"]).get("error") == "invalid_request", r.headers["Location"]


def test_authorize_refuses_implicit(server, org, app):
    _, challenge = pkce()
    params = authorize_params(app, challenge, response_type="token")
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "unsupported_response_type",
                          params["state"], server)


@pytest.mark.parametrize("scope", ["openid admin:everything", "billing:write", "openid *"])
def test_authorize_unknown_or_unallowed_scope(server, org, app, scope):
    _, challenge = pkce()
    params = authorize_params(app, challenge, scope=scope)
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "invalid_scope", params["state"],
                          server)


def test_authorize_client_without_code_grant(server, org):
    c = register(org["admin_api"], grant_types=["client_credentials"], scopes=["crm:read"], redirect_uris=[REDIRECT])
    _, challenge = pkce()
    params = authorize_params(c, challenge, scope="crm:read")
    assert_redirect_error(raw_authorize(server, params, org["admin_token"]), "unauthorized_client",
                          params["state"], server)


def test_authorize_with_bearer_redirects_with_code_state_and_iss(server, org, app):
    _, challenge = pkce()
    params = authorize_params(app, challenge, state="xyz-Ä+/=&")
    r = raw_authorize(server, params, org["admin_token"])
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    q = query_of(location)
    assert q["state"] == "xyz-Ä+/=&"
    assert q["iss"] == server.url
    assert len(q["code"]) >= 20 and "error" not in q


def test_authorize_uses_the_only_redirect_uri_when_none_is_named(server, org):
    c = register(org["admin_api"], redirect_uris=[REDIRECT])
    code, verifier, _ = get_code(server, c, org["admin_token"], redirect_uri=None)
    r = token_post(server, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
                   auth=basic(c))
    assert r.status_code == 200, r.text


def test_authorize_bearer_of_another_tenant_is_access_denied(server, app, other_tenant, anon):
    _, challenge = pkce()
    params = authorize_params(app, challenge)
    token = login_answer(anon, other_tenant)["access_token"]
    assert_redirect_error(raw_authorize(server, params, token), "access_denied", params["state"], server)


def test_authorize_bearer_of_a_non_user_is_access_denied(server, sa, app):
    _, challenge = pkce()
    cc = token_post(server, {"grant_type": "client_credentials"}, auth=basic(app)).json()["access_token"]
    for token in (cc, sa.headers["Authorization"].split(" ", 1)[1]):
        params = authorize_params(app, challenge)
        assert_redirect_error(raw_authorize(server, params, token), "access_denied", params["state"], server)


def test_authorize_with_invalid_bearer_is_401(server, app):
    _, challenge = pkce()
    r = raw_authorize(server, authorize_params(app, challenge), "not.a.token")
    assert r.status_code == 401 and "Location" not in r.headers, (r.status_code, r.headers)


def test_authorize_prompt_none_without_user_is_login_required(server, app):
    _, challenge = pkce()
    params = authorize_params(app, challenge, prompt="none")
    assert_redirect_error(raw_authorize(server, params), "login_required", params["state"], server)


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def sign_in_page(server, app, browser=None, **overrides):
    """GET /oauth/authorize without a credential in a browser session; answers (browser, response, form fields)."""
    browser = browser or requests.Session()
    verifier, challenge = pkce()
    params = authorize_params(app, challenge, **overrides)
    r = browser.get(server.url + AUTHORIZE, params=params, allow_redirects=False, timeout=30)
    fields = {k: html.unescape(v) for k, v in HIDDEN.findall(r.text)}
    return browser, r, fields, verifier


def test_sign_in_page(server, app):
    browser, r, fields, _ = sign_in_page(server, app)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/html")
    assert "cdx_oauth_csrf=" in r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in r.headers["Set-Cookie"]
    assert browser.cookies.get("cdx_oauth_csrf")
    assert fields.get("csrf_token")
    assert fields["client_id"] == app["client_id"] and fields["redirect_uri"] == REDIRECT
    assert "Reports app" in r.text
    assert 'type="password"' in r.text
    assert "no-store" in r.headers.get("Cache-Control", "")
    assert "Location" not in r.headers


def test_sign_in_page_escapes_what_it_shows(server, org):
    c = register(org["admin_api"], name='<script>alert("name")</script>')
    state = '"><script>alert("state")</script>'
    _, r, fields, _ = sign_in_page(server, c, state=state)
    assert r.status_code == 200
    assert "<script>alert" not in r.text
    assert fields["state"] == state, "the hidden field carries the state intact"


def test_sign_in_page_posts_back_a_code(server, org, app):
    browser, _, fields, verifier = sign_in_page(server, app, nonce="n-form")
    r = browser.post(server.url + AUTHORIZE, data={**fields, "email": org["admin"]["email"],
                                                   "password": org["admin_password"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    location = r.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    q = query_of(location)
    assert q["state"] == fields["state"] and q["iss"] == server.url
    session = oauth_session(app, redirect_uri=REDIRECT)
    tok = session.fetch_token(server.url + TOKEN, authorization_response=location, code_verifier=verifier)
    claims = jwt.decode(tok["id_token"], options={"verify_signature": False})
    assert claims["sub"] == org["admin"]["id"] and claims["nonce"] == "n-form"
    me = bearer_api(server.url, tok["access_token"]).get(ME)
    assert me.status_code == 200 and me.json()["id"] == org["admin"]["id"]


def test_sign_in_page_wrong_password_shows_the_page_again(server, org, app):
    browser, _, fields, _ = sign_in_page(server, app)
    r = browser.post(server.url + AUTHORIZE, data={**fields, "email": org["admin"]["email"],
                                                   "password": "not-the-password-1"},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    assert 'class="error"' in r.text
    assert dict(HIDDEN.findall(r.text)).get("csrf_token"), "the page can be posted again"
    failed = [e for e in audit(org["admin_api"], "login.failed") if e["details"].get("reason") == "wrong password"]
    assert any(e["details"].get("email") == org["admin"]["email"] for e in failed), "audited like a login"


def test_sign_in_page_user_of_another_tenant_is_refused(server, app, other_tenant):
    browser, _, fields, _ = sign_in_page(server, app)
    r = browser.post(server.url + AUTHORIZE, data={**fields, "email": other_tenant["admin"]["email"],
                                                   "password": other_tenant["admin_password"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 200, (r.status_code, r.headers.get("Location"), r.text[:300])
    assert "Location" not in r.headers and r.headers["Content-Type"].startswith("text/html")


def test_sign_in_page_tampered_csrf_token_is_403(server, org, app):
    browser, _, fields, _ = sign_in_page(server, app)
    token = fields["csrf_token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    r = browser.post(server.url + AUTHORIZE, data={**fields, "csrf_token": tampered, "email": org["admin"]["email"],
                                                   "password": org["admin_password"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "Location" not in r.headers


def test_sign_in_page_without_the_cookie_is_403(server, org, app):
    _, _, fields, _ = sign_in_page(server, app)
    r = requests.post(server.url + AUTHORIZE, data={**fields, "email": org["admin"]["email"],
                                                    "password": org["admin_password"]},
                      allow_redirects=False, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "Location" not in r.headers


def test_sign_in_page_csrf_token_is_bound_to_the_request(server, org, app):
    browser, _, fields, _ = sign_in_page(server, app)
    r = browser.post(server.url + AUTHORIZE, data={**fields, "redirect_uri": OTHER_REDIRECT,
                                                   "email": org["admin"]["email"], "password": org["admin_password"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "Location" not in r.headers


def test_sign_in_page_csrf_token_of_another_browser_is_403(server, org, app):
    _, _, fields, _ = sign_in_page(server, app)
    other_browser, _, _, _ = sign_in_page(server, app)
    r = other_browser.post(server.url + AUTHORIZE, data={**fields, "email": org["admin"]["email"],
                                                         "password": org["admin_password"]},
                           allow_redirects=False, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])


def test_successful_authorization_is_audited(server, org, app):
    code_flow(server, app, org["admin_token"])
    got = [e for e in audit(org["admin_api"], "oauth.authorized")]
    assert got and any(app["client_id"] in str(e) or app["id"] in str(e) for e in got), got


# --- token endpoint: client_credentials ----------------------------------------------------------------------------


def test_client_credentials_with_authlib(server, org, app, jwks_client):
    session = oauth_session(app, scope="crm:read")
    tok = session.fetch_token(server.url + TOKEN, grant_type="client_credentials")
    assert tok["token_type"] == "Bearer" and tok["scope"] == "crm:read"
    assert isinstance(tok["expires_in"], int) and tok["expires_in"] > 0
    assert "refresh_token" not in tok and "id_token" not in tok
    claims = verify(jwks_client, tok["access_token"], audience="cdx", issuer=server.url)
    assert claims["sub"] == app["client_id"] and claims["client_id"] == app["client_id"]
    assert claims["tid"] == org["id"] and claims["scope"] == "crm:read"
    assert "role" not in claims
    me = bearer_api(server.url, tok["access_token"]).get(ME)
    assert me.status_code == 401, me.text


def test_client_credentials_without_scope_gets_the_api_scopes(server, app):
    r = token_post(server, {"grant_type": "client_credentials"}, auth=basic(app))
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")
    assert r.json()["scope"] == "crm:read"


def test_client_credentials_with_secret_in_body(server, app):
    r = token_post(server, {"grant_type": "client_credentials", "client_id": app["client_id"],
                            "client_secret": app["client_secret"]})
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


def test_client_credentials_with_authlib_client_secret_post(server, app):
    session = OAuth2Session(app["client_id"], app["client_secret"], token_endpoint_auth_method="client_secret_post",
                            scope="crm:read")
    tok = session.fetch_token(server.url + TOKEN, grant_type="client_credentials")
    assert tok["scope"] == "crm:read"


@pytest.mark.parametrize("scope", ["openid", "billing:write", "crm:read crm:write"])
def test_client_credentials_refuses_other_scopes(server, app, scope):
    r = token_post(server, {"grant_type": "client_credentials", "scope": scope}, auth=basic(app))
    assert_oauth_error(r, 400, "invalid_scope")


def test_client_credentials_needs_the_grant(server, org):
    c = register(org["admin_api"], grant_types=["authorization_code", "refresh_token"])
    r = token_post(server, {"grant_type": "client_credentials"}, auth=basic(c))
    assert_oauth_error(r, 400, "unauthorized_client")


def test_wrong_secret_is_invalid_client(server, app):
    r = token_post(server, {"grant_type": "client_credentials"}, auth=(app["client_id"], "cdx_cs_wrong"))
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("basic"), r.headers
    with pytest.raises(OAuthError) as err:
        OAuth2Session(app["client_id"], "cdx_cs_wrong").fetch_token(server.url + TOKEN,
                                                                    grant_type="client_credentials")
    assert err.value.error == "invalid_client"


@pytest.mark.parametrize("client_id", ["nobody.nothing", "no-dot-at-all", "00000000-0000-0000-0000-000000000000.abc"])
def test_unknown_client_is_invalid_client(server, client_id):
    r = token_post(server, {"grant_type": "client_credentials"}, auth=(client_id, "cdx_cs_whatever"))
    assert_oauth_error(r, 401, "invalid_client")


def test_no_client_authentication_is_invalid_client(server):
    assert_oauth_error(token_post(server, {"grant_type": "client_credentials"}), 401, "invalid_client")


def test_token_endpoint_takes_form_bodies_only(server, app):
    r = requests.post(server.url + TOKEN, json={"grant_type": "client_credentials"}, auth=basic(app), timeout=30)
    assert_oauth_error(r, 400, "invalid_request")


@pytest.mark.parametrize("grant", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"])
def test_unsupported_grant_type(server, app, grant):
    r = token_post(server, {"grant_type": grant, "username": "a", "password": "b"}, auth=basic(app))
    assert_oauth_error(r, 400, "unsupported_grant_type")


def test_missing_grant_type_is_invalid_request(server, app):
    assert_oauth_error(token_post(server, {"scope": "crm:read"}, auth=basic(app)), 400, "invalid_request")


# --- token endpoint: authorization code --------------------------------------------------------------------------


def test_code_flow_with_authlib(server, org, app, flow, jwks_client):
    assert flow["token_type"] == "Bearer"
    assert set(flow["scope"].split()) == {"openid", "email", "profile", "crm:read"}
    assert flow["refresh_token"].startswith(org["id"] + ".")
    claims = verify(jwks_client, flow["access_token"], audience="cdx", issuer=server.url)
    assert claims["sub"] == org["admin"]["id"] and claims["tid"] == org["id"]
    assert claims["client_id"] == app["client_id"] and claims["role"] == "ADMIN"
    me = bearer_api(server.url, flow["access_token"]).get(ME)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == org["admin"]["id"] and me.json()["role"] == "ADMIN"


def test_id_token_verifies_through_the_jwks(server, org, app, flow, jwks_client):
    claims = verify(jwks_client, flow["id_token"], audience=app["client_id"], issuer=server.url)
    assert claims["sub"] == org["admin"]["id"]
    assert claims["nonce"] == flow["nonce"]
    assert claims["azp"] == app["client_id"] and claims["tid"] == org["id"]
    assert claims["email"] == org["admin"]["email"] and claims["email_verified"] is False
    assert "preferred_username" in claims
    assert claims["exp"] > claims["iat"] and claims["auth_time"] <= claims["iat"] + 1
    digest = hashlib.sha256(flow["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidAudienceError):
        verify(jwks_client, flow["id_token"], audience="cdx", issuer=server.url)


def test_id_token_is_not_an_access_token(server, flow):
    assert_problem(bearer_api(server.url, flow["id_token"]).get(ME), 401)


def test_id_token_only_with_openid(server, org, app):
    tok = code_flow(server, app, org["admin_token"], scope="email")
    assert "id_token" not in tok
    assert tok["scope"] == "email"


def test_id_token_claims_follow_the_scope(server, org, app, jwks_client):
    tok = code_flow(server, app, org["admin_token"], scope="openid")
    claims = verify(jwks_client, tok["id_token"], audience=app["client_id"], issuer=server.url)
    assert "email" not in claims and "name" not in claims and "preferred_username" not in claims
    assert "nonce" not in claims


def test_code_flow_for_a_client_user_keeps_its_role(server, anon, org, app):
    user = create_user(org["admin_api"], role="CLIENT")
    tok = code_flow(server, app, login_answer(anon, org, user["email"], user["password"])["access_token"])
    me = bearer_api(server.url, tok["access_token"]).get(ME)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "CLIENT" and me.json()["id"] == user["id"]


def test_public_client_code_flow(server, org, jwks_client):
    c = register(org["admin_api"], type="public", grant_types=["authorization_code", "refresh_token"],
                 scopes=["openid", "email"])
    session = OAuth2Session(c["client_id"], code_challenge_method="S256", token_endpoint_auth_method="none",
                            scope="openid email", redirect_uri=REDIRECT)
    verifier = secrets.token_urlsafe(48)
    url, _ = session.create_authorization_url(server.url + AUTHORIZE, code_verifier=verifier)
    r = requests.get(url, headers={"Authorization": "Bearer " + org["admin_token"]}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 302, r.text
    tok = session.fetch_token(server.url + TOKEN, authorization_response=r.headers["Location"],
                              code_verifier=verifier)
    verify(jwks_client, tok["id_token"], audience=c["client_id"], issuer=server.url)
    refreshed = session.refresh_token(server.url + TOKEN, refresh_token=tok["refresh_token"])
    assert refreshed["access_token"] and refreshed["refresh_token"] != tok["refresh_token"]


def test_code_with_wrong_verifier_is_invalid_grant(server, org, app):
    code, verifier, _ = get_code(server, app, org["admin_token"])
    assert_oauth_error(redeem(server, app, code, verifier[:-1] + ("A" if verifier[-1] != "A" else "B")), 400,
                       "invalid_grant")


def test_code_without_verifier_is_refused(server, org, app):
    code, _, _ = get_code(server, app, org["admin_token"])
    r = token_post(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                   auth=basic(app))
    assert r.status_code == 400 and r.json()["error"] in ("invalid_request", "invalid_grant"), r.text


def test_code_verifier_must_be_well_formed(server, org, app):
    verifier = "abc"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    r = raw_authorize(server, authorize_params(app, challenge), org["admin_token"])
    code = query_of(r.headers["Location"]).get("code")
    assert code, r.headers["Location"]
    assert_oauth_error(redeem(server, app, code, verifier), 400, "invalid_request")


def test_confidential_client_must_authenticate_to_redeem_a_code(server, org, app):
    code, verifier, _ = get_code(server, app, org["admin_token"])
    r = token_post(server, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                            "redirect_uri": REDIRECT, "client_id": app["client_id"]})
    assert_oauth_error(r, 401, "invalid_client")


def test_code_with_wrong_redirect_uri_is_invalid_grant(server, org, app):
    code, verifier, _ = get_code(server, app, org["admin_token"])
    assert_oauth_error(redeem(server, app, code, verifier, redirect_uri=OTHER_REDIRECT), 400, "invalid_grant")


def test_code_of_another_client_is_invalid_grant(server, org, app):
    other = register(org["admin_api"])
    code, verifier, _ = get_code(server, app, org["admin_token"])
    assert_oauth_error(redeem(server, other, code, verifier), 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(server, app):
    verifier, _ = pkce()
    assert_oauth_error(redeem(server, app, "no-such-code-" + secrets.token_hex(8), verifier), 400, "invalid_grant")


def test_code_works_once_and_reuse_revokes_its_tokens(server, org, app):
    code, verifier, _ = get_code(server, app, org["admin_token"])
    first = redeem(server, app, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    me = bearer_api(server.url, tokens["access_token"])
    assert me.get(ME).status_code == 200
    assert introspect(server, app, tokens["access_token"])["active"] is True
    assert_oauth_error(redeem(server, app, code, verifier), 400, "invalid_grant")
    assert introspect(server, app, tokens["access_token"])["active"] is False
    assert introspect(server, app, tokens["refresh_token"])["active"] is False
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                   auth=basic(app))
    assert_oauth_error(r, 400, "invalid_grant")
    assert [e for e in audit(org["admin_api"], "oauth.code_reused")], "code reuse is audited"
    r = me.get(ME)
    assert r.status_code == 401, ("an access token issued from a reused code must stop working at once "
                                  f"(introspection already says inactive): {r.status_code} {r.text}")


def test_token_answers_are_not_cacheable(server, org, app):
    code, verifier, _ = get_code(server, app, org["admin_token"])
    r = redeem(server, app, code, verifier)
    assert r.status_code == 200
    assert "no-store" in r.headers.get("Cache-Control", "")
    assert r.headers["Content-Type"].startswith("application/json")
    r2 = token_post(server, {"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]},
                    auth=basic(app))
    assert r2.status_code == 200 and "no-store" in r2.headers.get("Cache-Control", "")


def test_client_without_refresh_grant_gets_no_refresh_token(server, org):
    c = register(org["admin_api"], grant_types=["authorization_code"])
    tok = code_flow(server, c, org["admin_token"])
    assert "refresh_token" not in tok and tok["access_token"]


def test_token_endpoint_cors_follows_allowed_origins(server, org):
    c = register(org["admin_api"], type="public", grant_types=["authorization_code"], scopes=["openid"],
                 allowed_origins=["https://spa.example.com"])
    for origin, allowed in (("https://spa.example.com", True), ("https://evil.example.com", False)):
        code, verifier, _ = get_code(server, c, org["admin_token"], scope="openid")
        r = token_post(server, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                "redirect_uri": REDIRECT, "client_id": c["client_id"]}, headers={"Origin": origin})
        assert r.status_code == 200, r.text
        assert (r.headers.get("Access-Control-Allow-Origin") == origin) is allowed, (origin, r.headers)


# --- token endpoint: refresh -------------------------------------------------------------------------------------


def test_refresh_with_authlib_rotates(server, org, app):
    tok = code_flow(server, app, org["admin_token"], scope="openid email")
    session = oauth_session(app)
    new = session.refresh_token(server.url + TOKEN, refresh_token=tok["refresh_token"])
    assert new["refresh_token"] != tok["refresh_token"] and new["access_token"] != tok["access_token"]
    assert set(new["scope"].split()) == {"openid", "email"}
    assert bearer_api(server.url, new["access_token"]).get(ME).status_code == 200
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=basic(app))
    assert_oauth_error(r, 400, "invalid_grant")
    # presenting the spent token revoked the session: the newest refresh token is dead too
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": new["refresh_token"]}, auth=basic(app))
    assert_oauth_error(r, 400, "invalid_grant")


def test_refresh_token_is_bound_to_its_client(server, org, app):
    tok = code_flow(server, app, org["admin_token"])
    other = register(org["admin_api"])
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                   auth=basic(other))
    assert_oauth_error(r, 400, "invalid_grant")
    ok = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=basic(app))
    assert ok.status_code == 200, "another client's attempt spends nothing: " + ok.text


def test_refresh_may_narrow_but_not_widen_the_scope(server, org, app):
    tok = code_flow(server, app, org["admin_token"], scope="openid email")
    wide = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                               "scope": "openid email profile"}, auth=basic(app))
    assert_oauth_error(wide, 400, "invalid_scope")
    narrow = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                 "scope": "openid"}, auth=basic(app))
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["scope"] == "openid"


def test_disabling_the_user_ends_its_oauth_tokens(server, anon, org, app):
    user = create_user(org["admin_api"], role="CLIENT")
    tok = code_flow(server, app, login_answer(anon, org, user["email"], user["password"])["access_token"])
    r = org["admin_api"].patch(f"/api/v1/auth/users/{user['id']}", json={"status": "disabled"})
    assert r.status_code == 200, r.text
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=basic(app))
    assert_oauth_error(r, 400, "invalid_grant")
    assert introspect(server, app, tok["access_token"])["active"] is False
    r = requests.get(server.url + USERINFO, headers={"Authorization": "Bearer " + tok["access_token"]}, timeout=30)
    assert r.status_code == 401, r.text


def test_removing_the_refresh_grant_stops_refreshes(server, org):
    c = register(org["admin_api"])
    tok = code_flow(server, c, org["admin_token"])
    r = org["admin_api"].patch(f"{CLIENTS}/{c['id']}", json={"grant_types": ["authorization_code"]})
    assert r.status_code == 200, r.text
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=basic(c))
    assert_oauth_error(r, 400, "unauthorized_client")


def test_narrowing_the_client_scopes_applies_to_its_refresh_tokens(server, org):
    """After an ADMIN takes an API scope away from a client, refreshing must not mint tokens that still carry it
    (else the client keeps the scope for as long as it keeps rotating its refresh token)."""
    c = register(org["admin_api"])
    tok = code_flow(server, c, org["admin_token"], scope="openid crm:read")
    assert "crm:read" in tok["scope"].split()
    r = org["admin_api"].patch(f"{CLIENTS}/{c['id']}", json={"scopes": ["openid", "email", "profile"]})
    assert r.status_code == 200, r.text
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=basic(c))
    if r.status_code == 200:
        got = r.json()
        assert "crm:read" not in got["scope"].split(), got["scope"]
        claims = jwt.decode(got["access_token"], options={"verify_signature": False})
        assert "crm:read" not in claims["scope"].split(), claims
    else:
        assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_scope"), r.text


def test_login_refresh_endpoint_does_not_take_oauth_refresh_tokens(server, anon, org, app):
    tok = code_flow(server, app, org["admin_token"])
    r = anon.post("/api/v1/auth/refresh", json={"refresh_token": tok["refresh_token"]})
    assert r.status_code == 401, r.text


def test_login_refresh_tokens_are_not_oauth_refresh_tokens(server, anon, org, app):
    session = login_answer(anon, org)
    r = token_post(server, {"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
                   auth=basic(app))
    assert_oauth_error(r, 400, "invalid_grant")


# --- revocation (RFC 7009) ---------------------------------------------------------------------------------------


def test_revoke_refresh_token(server, org, app):
    tok = code_flow(server, app, org["admin_token"])
    session = oauth_session(app)
    r = session.revoke_token(server.url + REVOKE, tok["refresh_token"], token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    assert introspect(server, app, tok["refresh_token"])["active"] is False
    again = token_post(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                       auth=basic(app))
    assert_oauth_error(again, 400, "invalid_grant")
    assert [e for e in audit(org["admin_api"], "oauth.token_revoked")], "revocation is audited"


def test_revoke_access_token_ends_its_session(server, org, app):
    tok = code_flow(server, app, org["admin_token"])
    r = requests.post(server.url + REVOKE, data={"token": tok["access_token"]}, auth=basic(app), timeout=30)
    assert r.status_code == 200, r.text
    assert introspect(server, app, tok["refresh_token"])["active"] is False


@pytest.mark.parametrize("token", ["garbage", "x.y.z", "00000000-0000-0000-0000-000000000000.abcdef"])
def test_revoke_unknown_token_is_200(server, app, token):
    r = requests.post(server.url + REVOKE, data={"token": token}, auth=basic(app), timeout=30)
    assert r.status_code == 200, r.text


def test_revoke_needs_client_authentication(server, org, app):
    tok = code_flow(server, app, org["admin_token"])
    r = requests.post(server.url + REVOKE, data={"token": tok["refresh_token"]},
                      auth=(app["client_id"], "cdx_cs_wrong"), timeout=30)
    assert_oauth_error(r, 401, "invalid_client")
    assert introspect(server, app, tok["refresh_token"])["active"] is True


def test_another_client_cannot_revoke(server, org, app):
    tok = code_flow(server, app, org["admin_token"])
    other = register(org["admin_api"])
    for token in (tok["refresh_token"], tok["access_token"]):
        r = requests.post(server.url + REVOKE, data={"token": token}, auth=basic(other), timeout=30)
        assert r.status_code == 200, r.text
    assert introspect(server, app, tok["refresh_token"])["active"] is True
    assert introspect(server, app, tok["access_token"])["active"] is True


# --- introspection (RFC 7662) ------------------------------------------------------------------------------------


def test_introspect_access_token(server, org, app, flow):
    got = introspect(server, app, flow["access_token"])
    assert got["active"] is True
    assert got["sub"] == org["admin"]["id"] and got["tid"] == org["id"]
    assert got["iss"] == server.url and got["token_type"] == "Bearer"
    assert got["client_id"] == app["client_id"]
    assert isinstance(got["exp"], int) and isinstance(got["iat"], int) and got["exp"] > got["iat"]
    assert set(got["scope"].split()) == set(flow["scope"].split())
    assert got["username"] == org["admin"]["email"]


def test_introspect_refresh_token(server, org, app, flow):
    got = introspect(server, app, flow["refresh_token"], token_type_hint="refresh_token")
    assert got["active"] is True and got["token_type"] == "refresh_token"
    assert got["client_id"] == app["client_id"] and got["sub"] == org["admin"]["id"]


def test_introspect_client_credentials_token(server, org, app):
    tok = token_post(server, {"grant_type": "client_credentials"}, auth=basic(app)).json()
    got = introspect(server, app, tok["access_token"])
    assert got["active"] is True and got["sub"] == app["client_id"] and got["scope"] == "crm:read"
    assert "role" not in got


@pytest.mark.parametrize("token", ["garbage", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000])
def test_introspect_garbage_is_inactive(server, app, token):
    assert introspect(server, app, token) == {"active": False}


@pytest.mark.parametrize("path", [INTROSPECT, REVOKE])
def test_introspect_and_revoke_need_a_token(server, app, path):
    r = requests.post(server.url + path, data={}, auth=basic(app), timeout=30)
    assert_oauth_error(r, 400, "invalid_request")


def test_introspect_id_token_is_inactive(server, app, flow):
    assert introspect(server, app, flow["id_token"]) == {"active": False}


def test_introspect_needs_a_confidential_client(server, org, app, flow):
    r = requests.post(server.url + INTROSPECT, data={"token": flow["access_token"]}, timeout=30)
    assert_oauth_error(r, 401, "invalid_client")
    r = requests.post(server.url + INTROSPECT, data={"token": flow["access_token"]},
                      auth=(app["client_id"], "cdx_cs_wrong"), timeout=30)
    assert_oauth_error(r, 401, "invalid_client")
    public = register(org["admin_api"], type="public", grant_types=["authorization_code"], scopes=["openid"])
    r = requests.post(server.url + INTROSPECT, data={"token": flow["access_token"],
                                                     "client_id": public["client_id"]}, timeout=30)
    assert_oauth_error(r, 401, "invalid_client")


def test_introspect_tokens_of_other_tenants_are_inactive(server, anon, flow, other_tenant):
    foreign = register(other_tenant["admin_api"])
    assert introspect(server, foreign, flow["access_token"]) == {"active": False}
    assert introspect(server, foreign, flow["refresh_token"]) == {"active": False}
    own = introspect(server, foreign, login_answer(anon, other_tenant)["access_token"])
    assert own["active"] is True and own["tid"] == other_tenant["id"], "a token of its own tenant is vouched for"


# --- userinfo ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo(server, org, flow, method):
    r = requests.request(method, server.url + USERINFO, headers={"Authorization": "Bearer " + flow["access_token"]},
                         timeout=30)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["sub"] == org["admin"]["id"]
    assert info["email"] == org["admin"]["email"] and info["email_verified"] is False


def test_userinfo_through_authlib(server, org, app, flow):
    session = oauth_session(app, token=flow)
    r = session.get(server.url + USERINFO)
    assert r.status_code == 200 and r.json()["sub"] == org["admin"]["id"]


def test_userinfo_follows_the_scope(server, org, app):
    tok = code_flow(server, app, org["admin_token"], scope="openid")
    info = requests.get(server.url + USERINFO, headers={"Authorization": "Bearer " + tok["access_token"]},
                        timeout=30).json()
    assert info["sub"] == org["admin"]["id"]
    assert "email" not in info and "name" not in info


def test_userinfo_without_token_is_401(server):
    r = requests.get(server.url + USERINFO, timeout=30)
    assert r.status_code == 401, r.text
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), r.headers


def test_userinfo_with_bad_token_is_401(server):
    r = requests.get(server.url + USERINFO, headers={"Authorization": "Bearer not.a.token"}, timeout=30)
    assert r.status_code == 401, r.text
    assert "invalid_token" in r.headers.get("WWW-Authenticate", ""), r.headers


def test_userinfo_refuses_client_credentials_tokens(server, app):
    tok = token_post(server, {"grant_type": "client_credentials"}, auth=basic(app)).json()
    r = requests.get(server.url + USERINFO, headers={"Authorization": "Bearer " + tok["access_token"]}, timeout=30)
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", ""), r.headers


def test_userinfo_needs_openid(server, org, app):
    tok = code_flow(server, app, org["admin_token"], scope="email")
    r = requests.get(server.url + USERINFO, headers={"Authorization": "Bearer " + tok["access_token"]}, timeout=30)
    assert r.status_code == 403, r.text
    assert 'error="insufficient_scope"' in r.headers.get("WWW-Authenticate", ""), r.headers
