"""Auth foundation: logins, /auth/me, access tokens (ES256 JWTs via JWKS, RFC 8725 attacks), API keys and their
lifecycle, tenant suspension, and tenant context (X-Tenant-ID)."""
import base64
import hashlib
import hmac
import json
import re
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import DEMO_ADMIN, DEMO_CLIENT, SUPERADMIN, Api, assert_problem, login

ME = "/api/v1/auth/me"
KEYS = "/api/v1/auth/api-keys"
KEY_RE = re.compile(r"^cdx_(sk|pk)_[A-Za-z0-9]{40}$")


def b64url(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), s


def assert_401(resp):
    body = assert_problem(resp, 401, "unauthorized")
    assert "WWW-Authenticate" in resp.headers, "a 401 must carry WWW-Authenticate (RFC 9110 §15.5.2)"
    assert resp.headers["WWW-Authenticate"].lower().startswith("bearer")
    return body


def bearer(base, token):
    return Api(base, {"Authorization": "Bearer " + token})


@pytest.fixture(scope="module")
def jwks(anon):
    r = anon.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.json()


def verify(token, jwks, server):
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience="cdx", issuer=server.url)


# --- logins ------------------------------------------------------------------------------------------------------


def test_superadmin_login_answers_a_token(anon):
    r = anon.post("/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["token_type"] == "Bearer"
    assert isinstance(t["expires_in"], int) and 60 <= t["expires_in"] <= 3600
    assert t["access_token"].count(".") == 2
    assert "scope" in t
    assert "no-store" in r.headers.get("Cache-Control", "")


@pytest.mark.parametrize("username,password", [(SUPERADMIN[0], "wrong-password"), ("nobody-here", SUPERADMIN[1]),
                                               (SUPERADMIN[0].upper(), SUPERADMIN[1])])
def test_superadmin_bad_credentials_are_401(anon, username, password):
    r = anon.post("/api/v1/auth/superadmin/login", json={"username": username, "password": password})
    body = assert_401(r)
    assert "access_token" not in r.text
    assert body["detail"] == anon.post("/api/v1/auth/superadmin/login",
                                       json={"username": "nobody-at-all", "password": "x"}).json()["detail"]


def test_tenant_login_by_slug_id_and_header(anon, tenant):
    creds = {"email": tenant["admin"]["email"], "password": tenant["admin_password"]}
    for how in ({"tenant": tenant["slug"]}, {"tenant": tenant["id"]}):
        r = anon.post("/api/v1/auth/login", json={**creds, **how})
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "Bearer"
    r = anon.post("/api/v1/auth/login", json=creds, headers={"X-Tenant-ID": tenant["slug"]})
    assert r.status_code == 200, r.text


def test_tenant_login_email_is_case_insensitive(anon, tenant):
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"].upper(),
                                               "password": tenant["admin_password"], "tenant": tenant["slug"]})
    assert r.status_code == 200, r.text


def test_tenant_login_failures_answer_alike(anon, tenant, other_tenant):
    email = tenant["admin"]["email"]
    wrong_pw = anon.post("/api/v1/auth/login", json={"email": email, "password": "nope-nope", "tenant": tenant["slug"]})
    unknown = anon.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": "nope-nope",
                                                    "tenant": tenant["slug"]})
    wrong_tenant = anon.post("/api/v1/auth/login", json={"email": email, "password": tenant["admin_password"],
                                                         "tenant": other_tenant["slug"]})
    no_tenant = anon.post("/api/v1/auth/login", json={"email": email, "password": tenant["admin_password"],
                                                      "tenant": "no-such-tenant-zz"})
    bodies = [assert_401(r) for r in (wrong_pw, unknown, wrong_tenant, no_tenant)]
    assert len({b["detail"] for b in bodies}) == 1


def test_tenant_login_needs_a_tenant(anon, tenant):
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": tenant["admin_password"]})
    body = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["tenant"]


def test_login_validation(anon):
    body = assert_problem(anon.post("/api/v1/auth/login", json={"email": 1, "password": None, "tenant": "x"}), 422)
    assert {e["field"] for e in body["errors"]} >= {"email", "password"}


# --- /auth/me ----------------------------------------------------------------------------------------------------


def test_me_superadmin(sa):
    me = sa.get(ME).json()
    assert me["type"] == "superadmin" and me["role"] == "SUPERADMIN"
    assert me["username"] == SUPERADMIN[0]
    assert me["tenant_id"] is None
    assert isinstance(me["scopes"], list) and me["id"]


def test_me_tenant_admin(tenant):
    me = tenant["admin_api"].get(ME).json()
    assert (me["type"], me["role"], me["tenant_id"], me["email"]) == ("user", "ADMIN", tenant["id"],
                                                                      tenant["admin"]["email"])
    assert me["id"] == tenant["admin"]["id"]
    assert isinstance(me["scopes"], list)


def test_me_api_key(tenant):
    me = tenant["key_api"].get(ME).json()
    assert me["type"] == "api_key" and me["tenant_id"] == tenant["id"]
    assert me["role"] in ("ADMIN",) and me["name"]
    assert isinstance(me["scopes"], list)


def test_me_without_credential_is_401(anon):
    r = anon.get(ME)
    assert_401(r)


def test_me_does_not_leak_secrets(tenant):
    text = tenant["admin_api"].get(ME).text + tenant["key_api"].get(ME).text
    assert "password" not in text and tenant["api_key"] not in text and "hash" not in text


# --- access tokens -----------------------------------------------------------------------------------------------


def test_jwks_shape(jwks):
    assert jwks["keys"]
    for k in jwks["keys"]:
        assert (k["kty"], k["crv"], k["alg"]) == ("EC", "P-256", "ES256")
        assert k["kid"] and k["x"] and k["y"]
        assert "d" not in k, "the JWKS must never carry the private key"
    assert len({k["kid"] for k in jwks["keys"]}) == len(jwks["keys"])


def test_superadmin_token_verifies_through_jwks(server, superadmin_token, jwks):
    header = jwt.get_unverified_header(superadmin_token)
    assert header["alg"] == "ES256" and header["kid"]
    claims = verify(superadmin_token, jwks, server)
    assert claims["aud"] == "cdx" or claims["aud"] == ["cdx"]
    assert claims["iss"] == server.url
    assert claims["role"] == "SUPERADMIN"
    assert claims.get("tid") is None
    assert claims["sub"] and claims["jti"]
    assert claims["iat"] <= time.time() + 5 and claims["exp"] > time.time()
    assert "scope" in claims


def test_tenant_token_claims(server, tenant, jwks, anon):
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": tenant["admin_password"],
                                               "tenant": tenant["slug"]})
    answer = r.json()
    claims = verify(answer["access_token"], jwks, server)
    assert claims["tid"] == tenant["id"]
    assert claims["sub"] == tenant["admin"]["id"]
    assert claims["role"] == "ADMIN"
    assert abs((claims["exp"] - claims["iat"]) - answer["expires_in"]) <= 1
    # a second login mints a distinct token id
    again = login(anon, tenant)
    assert verify(again, jwks, server)["jti"] != claims["jti"]


def test_token_is_rejected_with_a_wrong_audience_by_pyjwt(server, superadmin_token, jwks):
    with pytest.raises(jwt.InvalidAudienceError):
        kid = jwt.get_unverified_header(superadmin_token)["kid"]
        key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
        jwt.decode(superadmin_token, key, algorithms=["ES256"], audience="someone-else")


# RFC 8725 attacks ------------------------------------------------------------------------------------------------

ATTACKER_KEY = ec.generate_private_key(ec.SECP256R1())


def es256_sign(header, payload, key=ATTACKER_KEY):
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return jwt.encode(payload, pem, algorithm="ES256", headers=header)


def forged_tokens(real, jwks):
    header, payload, sig = parts(real)
    h_b64, p_b64, _ = real.split(".")
    public = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_json = json.dumps(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).encode()
    escalated = dict(payload, role="SUPERADMIN", tid=None)
    hs_input = lambda h: (b64url(h) + "." + b64url(payload)).encode()  # noqa: E731
    tokens = {
        "alg none": b64url({"alg": "none", "typ": "JWT", "kid": header["kid"]}) + "." + p_b64 + ".",
        "alg None": b64url({"alg": "None", "typ": "JWT", "kid": header["kid"]}) + "." + p_b64 + ".",
        "alg none keeping signature": b64url({"alg": "none", "kid": header["kid"]}) + "." + p_b64 + "." + sig,
        "HS256 with PEM public key": (lambda h: hs_input(h).decode() + "." + b64url(
            hmac.new(pem, hs_input(h), hashlib.sha256).digest()))({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}),
        "HS256 with JWK as secret": (lambda h: hs_input(h).decode() + "." + b64url(
            hmac.new(jwk_json, hs_input(h), hashlib.sha256).digest()))({"alg": "HS256", "kid": header["kid"]}),
        "unknown kid": es256_sign({"kid": "no-such-kid"}, payload),
        "real kid, attacker key": es256_sign({"kid": header["kid"]}, payload),
        "embedded jwk": es256_sign({"kid": header["kid"], "jwk": json.loads(
            jwt.algorithms.ECAlgorithm.to_jwk(ATTACKER_KEY.public_key()))}, payload),
        "jku header": es256_sign({"kid": "x", "jku": "http://127.0.0.1:1/jwks.json"}, payload),
        "no kid": es256_sign({}, payload),
        "tampered payload": h_b64 + "." + b64url(escalated) + "." + sig,
        "tampered exp": h_b64 + "." + b64url(dict(payload, exp=payload["exp"] + 86400)) + "." + sig,
        "tampered header": b64url(dict(header, typ="at+jwt")) + "." + p_b64 + "." + sig,
        "signature stripped": h_b64 + "." + p_b64 + ".",
        "signature of another token": None,  # filled below
        "truncated signature": h_b64 + "." + p_b64 + "." + sig[:-6],
        "bit-flipped signature": h_b64 + "." + p_b64 + "." + ("A" if sig[0] != "A" else "B") + sig[1:],
        "expired (attacker-signed)": es256_sign({"kid": header["kid"]}, dict(payload, exp=int(time.time()) - 3600)),
        "four segments": real + ".AAAA",
        "two segments": h_b64 + "." + p_b64,
        "not base64": "@@@.###.$$$",
        "garbage": "abc",
        "json header garbage": b64url(b"not json") + "." + p_b64 + "." + sig,
    }
    return tokens


def test_rfc8725_forged_tokens_are_401(server, anon, superadmin_token, tenant, jwks):
    real = login(anon, tenant)
    tokens = forged_tokens(real, jwks)
    other = login(anon, tenant)
    tokens["signature of another token"] = ".".join(real.split(".")[:2] + [other.split(".")[2]])
    failures = []
    for name, tok in tokens.items():
        r = anon.get(ME, headers={"Authorization": "Bearer " + tok})
        if r.status_code != 401 or r.json().get("code") != "unauthorized":
            failures.append((name, r.status_code, r.text[:200]))
    assert not failures, failures
    # and none of them may reach a SUPERADMIN endpoint either
    for name, tok in tokens.items():
        assert anon.get("/api/v1/tenants", headers={"Authorization": "Bearer " + tok}).status_code == 401, name
    # the genuine token still works
    assert bearer(anon.base, real).get(ME).status_code == 200


def test_invalid_token_401s_carry_www_authenticate(anon, tenant, jwks):
    real = login(anon, tenant)
    h, p, s = real.split(".")
    for tok in ("garbage", h + "." + p + "." + s[:-4] + "AAAA", forged_tokens(real, jwks)["alg none"]):
        assert_401(anon.get(ME, headers={"Authorization": "Bearer " + tok}))


@pytest.mark.parametrize("value", ["Basic cm9vdDpyb290", "Bearer", "Bearer ", "Token abc", "Bearer a b",
                                   "Bearerabc.def.ghi", "Digest username=root"])
def test_wrong_format_authorization_is_401(anon, value):
    assert_401(anon.get(ME, headers={"Authorization": value}))


def test_token_for_one_role_cannot_be_replayed_as_api_key(anon, superadmin_token):
    assert_401(anon.get(ME, headers={"X-API-Key": superadmin_token}))


# --- API keys ----------------------------------------------------------------------------------------------------


def test_create_secret_key_answers_full_key_once(tenant):
    r = tenant["admin_api"].post(KEYS, json={"name": "backend", "type": "secret"})
    assert r.status_code == 201, r.text
    k = r.json()
    assert k["key"].startswith("cdx_sk_") and len(k["key"]) == 47 and KEY_RE.match(k["key"])
    assert k["key"].startswith(k["prefix"]) and len(k["prefix"]) < len(k["key"]) - 20
    assert (k["name"], k["type"], k["tenant_id"]) == ("backend", "secret", tenant["id"])
    assert k["id"] and k["created_at"]
    assert "no-store" in r.headers.get("Cache-Control", "")
    me = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]}).get(ME).json()
    assert me["type"] == "api_key" and me["id"] == k["id"] and me["tenant_id"] == tenant["id"]


def test_create_publishable_key(tenant):
    r = tenant["admin_api"].post(KEYS, json={"name": "web", "type": "publishable"})
    assert r.status_code == 201, r.text
    k = r.json()
    assert k["key"].startswith("cdx_pk_") and len(k["key"]) == 47 and KEY_RE.match(k["key"])
    me = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]}).get(ME).json()
    assert me["type"] == "api_key" and me["tenant_id"] == tenant["id"]
    assert me["role"] != "ADMIN", "a publishable key must not carry the ADMIN role"


def test_default_key_type_is_secret_and_keys_are_unique(tenant):
    keys = [tenant["admin_api"].post(KEYS, json={"name": f"k{i}"}).json() for i in range(3)]
    assert all(k["type"] == "secret" and k["key"].startswith("cdx_sk_") for k in keys)
    assert len({k["key"] for k in keys}) == 3 and len({k["prefix"] for k in keys}) == 3


def test_key_scopes_are_kept_and_shown(tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "scoped", "scopes": ["crm:read", "cms:read"]}).json()
    assert sorted(k["scopes"]) == ["cms:read", "crm:read"]
    me = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]}).get(ME).json()
    assert sorted(me["scopes"]) == ["cms:read", "crm:read"]


@pytest.mark.parametrize("body,field", [({}, "name"), ({"name": ""}, "name"), ({"name": 3}, "name"),
                                        ({"name": "x", "type": "bogus"}, "type"),
                                        ({"name": "x", "scopes": "crm:read"}, "scopes"),
                                        ({"name": "x", "scopes": [1]}, "scopes"),
                                        ({"name": "x", "expires_at": "yesterday"}, "expires_at"),
                                        ({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
                                        ({"name": "x", "expires_at": "2099-01-01T00:00:00garbage"}, "expires_at")])
def test_bad_key_request_is_422_naming_field(tenant, body, field):
    r = tenant["admin_api"].post(KEYS, json=body)
    assert field in {e["field"] for e in assert_problem(r, 422, "validation_failed")["errors"]}


def test_key_with_future_expiry(tenant):
    r = tenant["admin_api"].post(KEYS, json={"name": "temp", "expires_at": "2099-06-30T12:00:00Z"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"].startswith("2099-06-30T12:00:00")
    assert Api(tenant["admin_api"].base, {"X-API-Key": r.json()["key"]}).get(ME).status_code == 200


def test_key_expiry_honours_utc_offset(tenant):
    r = tenant["admin_api"].post(KEYS, json={"name": "tz", "expires_at": "2099-01-01T00:00:00+02:00"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"].startswith("2098-12-31T22:00:00"), r.json()["expires_at"]


def test_list_keys_shows_prefix_never_key(tenant):
    created = tenant["admin_api"].post(KEYS, json={"name": "listed"}).json()
    r = tenant["admin_api"].get(KEYS)
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)
    listed = {k["id"]: k for k in body["data"]}
    assert created["id"] in listed
    item = listed[created["id"]]
    assert "key" not in item and item["prefix"] == created["prefix"]
    for secret in (created["key"], tenant["api_key"]):
        assert secret not in r.text
        assert secret[len(created["prefix"]):] not in r.text
    assert all("hash" not in k for k in listed.values())
    assert {"id", "name", "type", "prefix", "created_at"} <= set(item)


def test_list_keys_pagination(tenant):
    for i in range(3):
        tenant["admin_api"].post(KEYS, json={"name": f"page-{i}"})
    seen, cursor = [], None
    for _ in range(10):
        r = tenant["admin_api"].get(KEYS, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [k["id"] for k in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 4  # the default key and three more


def test_keys_are_tenant_scoped(tenant, other_tenant):
    mine = tenant["admin_api"].post(KEYS, json={"name": "mine"}).json()
    theirs = {k["id"] for k in other_tenant["admin_api"].get(KEYS).json()["data"]}
    assert mine["id"] not in theirs
    assert_problem(other_tenant["admin_api"].delete(f"{KEYS}/{mine['id']}"), 404, "not_found")
    assert Api(tenant["admin_api"].base, {"X-API-Key": mine["key"]}).get(ME).status_code == 200


def test_revoke_key_is_immediate(tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "doomed"}).json()
    key_api = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]})
    assert key_api.get(ME).status_code == 200  # now cached
    r = tenant["admin_api"].delete(f"{KEYS}/{k['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_401(key_api.get(ME))
    assert_401(key_api.get(KEYS))
    listed = {x["id"]: x for x in tenant["admin_api"].get(KEYS).json()["data"]}
    assert k["id"] not in listed or listed[k["id"]].get("revoked_at")
    assert_problem(tenant["admin_api"].delete(f"{KEYS}/{k['id']}"), 404, "not_found")
    assert tenant["key_api"].get(ME).status_code == 200, "other keys keep working"


def test_revoke_unknown_key_is_404(tenant):
    assert_problem(tenant["admin_api"].delete(f"{KEYS}/01930000-0000-7000-8000-00000000beef"), 404, "not_found")
    assert_problem(tenant["admin_api"].delete(f"{KEYS}/not-a-uuid"), 404, "not_found")


def test_key_can_revoke_itself(tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "self"}).json()
    key_api = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]})
    assert key_api.delete(f"{KEYS}/{k['id']}").status_code == 204
    assert_401(key_api.get(ME))


@pytest.mark.parametrize("key", ["cdx_sk_" + "A" * 40, "cdx_pk_" + "b" * 40, "cdx_sk_short", "sk_live_abc", "",
                                 "cdx_xx_" + "A" * 40])
def test_unknown_or_malformed_keys_are_401(anon, key):
    assert_401(anon.get(ME, headers={"X-API-Key": key}))


def test_key_with_right_prefix_wrong_secret_is_401(anon, tenant):
    k = tenant["api_key"]
    forged = k[:-1] + ("A" if k[-1] != "A" else "B")
    assert_401(anon.get(ME, headers={"X-API-Key": forged}))


def test_secret_key_can_manage_keys(tenant):
    r = tenant["key_api"].post(KEYS, json={"name": "made-by-key"})
    assert r.status_code == 201, r.text
    assert tenant["key_api"].get(KEYS).status_code == 200


def test_publishable_key_cannot_manage_keys(tenant):
    pk = tenant["admin_api"].post(KEYS, json={"name": "web", "type": "publishable"}).json()["key"]
    api = Api(tenant["admin_api"].base, {"X-API-Key": pk})
    assert_problem(api.post(KEYS, json={"name": "escalate"}), 403, "forbidden")
    assert_problem(api.get(KEYS), 403, "forbidden")


def test_scoped_secret_key_without_admin_scope_cannot_mint_wider_keys(tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "narrow", "scopes": ["crm:read"]}).json()
    api = Api(tenant["admin_api"].base, {"X-API-Key": k["key"]})
    r = api.post(KEYS, json={"name": "wider", "scopes": ["*"]})
    assert r.status_code == 403, f"a crm:read key minted a '*' key: {r.status_code} {r.text[:300]}"


def test_client_cannot_manage_keys(demo_server):
    anon = Api(demo_server.url)
    r = anon.post("/api/v1/auth/login", json={"email": DEMO_CLIENT[0], "password": DEMO_CLIENT[1], "tenant": "demo"})
    assert r.status_code == 200, r.text
    client = bearer(demo_server.url, r.json()["access_token"])
    assert client.get(ME).json()["role"] == "CLIENT"
    assert_problem(client.post(KEYS, json={"name": "nope"}), 403, "forbidden")
    assert_problem(client.get(KEYS), 403, "forbidden")
    assert_problem(client.get("/api/v1/tenants"), 403, "forbidden")
    admin = anon.post("/api/v1/auth/login", json={"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1], "tenant": "demo"})
    assert bearer(demo_server.url, admin.json()["access_token"]).get(KEYS).status_code == 200


# --- suspension --------------------------------------------------------------------------------------------------


def test_suspended_tenant_credentials_get_tenant_suspended(sa, tenant, anon):
    assert sa.post(f"/api/v1/tenants/{tenant['id']}/suspend").status_code == 200
    for api in (tenant["admin_api"], tenant["key_api"]):
        assert_problem(api.get(KEYS), 403, "tenant_suspended")
        assert_problem(api.post(KEYS, json={"name": "x"}), 403, "tenant_suspended")
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": tenant["admin_password"],
                                               "tenant": tenant["slug"]})
    assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"
    assert sa.post(f"/api/v1/tenants/{tenant['id']}/resume").status_code == 200
    assert tenant["admin_api"].get(KEYS).status_code == 200
    assert tenant["key_api"].get(ME).status_code == 200
    assert anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"],
                                                 "password": tenant["admin_password"],
                                                 "tenant": tenant["slug"]}).status_code == 200


def test_suspended_tenant_wrong_password_does_not_reveal_status(sa, tenant, anon):
    sa.post(f"/api/v1/tenants/{tenant['id']}/suspend")
    r = anon.post("/api/v1/auth/login", json={"email": tenant["admin"]["email"], "password": "wrong-password",
                                               "tenant": tenant["slug"]})
    assert_401(r)


# --- tenant context ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_api", "key_api"])
def test_tenant_credential_with_other_tenant_header_is_403(tenant, other_tenant, who):
    for ident in (other_tenant["id"], other_tenant["slug"]):
        assert_problem(tenant[who].get(KEYS, headers={"X-Tenant-ID": ident}), 403, "forbidden")
        assert_problem(tenant[who].get(ME, headers={"X-Tenant-ID": ident}), 403, "forbidden")


@pytest.mark.parametrize("who", ["admin_api", "key_api"])
def test_tenant_credential_with_own_tenant_header_is_fine(tenant, who):
    for ident in (tenant["id"], tenant["slug"]):
        assert tenant[who].get(KEYS, headers={"X-Tenant-ID": ident}).status_code == 200


def test_tenant_credential_with_unknown_tenant_header_is_rejected(tenant):
    r = tenant["admin_api"].get(KEYS, headers={"X-Tenant-ID": "no-such-tenant-zz"})
    assert r.status_code in (403, 404)
    assert_problem(r, r.status_code)


def test_superadmin_acts_in_a_tenant(sa, tenant):
    for ident in (tenant["id"], tenant["slug"]):
        r = sa.post(KEYS, json={"name": "by-superadmin"}, headers={"X-Tenant-ID": ident})
        assert r.status_code == 201, r.text
        k = r.json()
        assert k["tenant_id"] == tenant["id"]
        me = Api(sa.base, {"X-API-Key": k["key"]}).get(ME).json()
        assert me["tenant_id"] == tenant["id"]
    listed = sa.get(KEYS, headers={"X-Tenant-ID": tenant["slug"]}).json()["data"]
    assert sum(1 for k in listed if k["name"] == "by-superadmin") == 2
    assert {k["id"] for k in listed} == {k["id"] for k in tenant["admin_api"].get(KEYS).json()["data"]}


def test_superadmin_without_tenant_on_tenant_route_is_400(sa):
    assert_problem(sa.get(KEYS), 400, "invalid_request")
    assert_problem(sa.post(KEYS, json={"name": "x"}), 400, "invalid_request")


def test_superadmin_with_unknown_tenant_is_404(sa):
    assert_problem(sa.get(KEYS, headers={"X-Tenant-ID": "no-such-tenant-zz"}), 404, "not_found")
    assert_problem(sa.get(KEYS, headers={"X-Tenant-ID": "01930000-0000-7000-8000-00000000dead"}), 404, "not_found")


def test_superadmin_revokes_in_a_tenant(sa, tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "sa-revokes"}).json()
    assert sa.delete(f"{KEYS}/{k['id']}", headers={"X-Tenant-ID": tenant["id"]}).status_code == 204
    assert_401(Api(sa.base, {"X-API-Key": k["key"]}).get(ME))


def test_superadmin_cannot_revoke_across_tenants(sa, tenant, other_tenant):
    k = tenant["admin_api"].post(KEYS, json={"name": "cross"}).json()
    assert_problem(sa.delete(f"{KEYS}/{k['id']}", headers={"X-Tenant-ID": other_tenant["id"]}), 404, "not_found")
    assert Api(sa.base, {"X-API-Key": k["key"]}).get(ME).status_code == 200


def test_demo_logins_and_roles(demo_server):
    anon = Api(demo_server.url)
    r = anon.post("/api/v1/auth/superadmin/login", json={"username": "test", "password": "test123"})
    assert r.status_code == 200, r.text
    assert bearer(demo_server.url, r.json()["access_token"]).get(ME).json()["role"] == "SUPERADMIN"
    roles = {}
    for email, pw in (DEMO_ADMIN, DEMO_CLIENT):
        r = anon.post("/api/v1/auth/login", json={"email": email, "password": pw, "tenant": "demo"})
        assert r.status_code == 200, r.text
        roles[email] = bearer(demo_server.url, r.json()["access_token"]).get(ME).json()["role"]
    assert roles == {DEMO_ADMIN[0]: "ADMIN", DEMO_CLIENT[0]: "CLIENT"}
