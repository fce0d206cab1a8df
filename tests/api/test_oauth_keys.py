"""Signing-key rotation seen by OAuth relying parties: `cdx admin rotate-keys` and `cdx admin retire-keys` run
against a live server's storage; the server picks the change up within 5 seconds. Relying parties verify through
the JWKS with PyJWT's PyJWKClient (a fresh one per check, so its cache never hides the server's answer)."""
import secrets
import uuid

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from conftest import SUPERADMIN, Api, Server, bearer_api, cdx_env, login_answer, make_tenant, run_cdx, wait_for

REDIRECT = "https://app.example.com/callback"
ME = "/api/v1/auth/me"
PICKUP = 6.5  # the server rereads its keys every 5 s


@pytest.fixture(scope="module")
def rotating():
    """A dedicated server (rotation changes every token's key) with a tenant and a confidential client."""
    s = Server().start()
    try:
        anon = Api(s.url)
        r = anon.post("/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
        assert r.status_code == 200, r.text
        sa = bearer_api(s.url, r.json()["access_token"])
        tenant = make_tenant(sa)
        admin = bearer_api(s.url, login_answer(anon, tenant)["access_token"])
        r = admin.post("/api/v1/auth/clients", json={"name": "Rotation app " + uuid.uuid4().hex[:6],
                                                     "redirect_uris": [REDIRECT],
                                                     "grant_types": ["authorization_code", "refresh_token",
                                                                     "client_credentials"],
                                                     "scopes": ["openid", "email", "crm:read"]})
        assert r.status_code == 201, r.text
        yield s, anon, tenant, r.json()
    finally:
        s.cleanup()


def jwks_kids(server):
    r = requests.get(server.url + "/.well-known/jwks.json", timeout=10)
    assert r.status_code == 200, r.text
    return [k["kid"] for k in r.json()["keys"]]


def kid_of(token):
    return jwt.get_unverified_header(token)["kid"]


def code_flow(server, client, access_token):
    session = OAuth2Session(client["client_id"], client["client_secret"], code_challenge_method="S256",
                            scope="openid email", redirect_uri=REDIRECT)
    verifier = secrets.token_urlsafe(48)
    url, _ = session.create_authorization_url(server.url + "/oauth/authorize", code_verifier=verifier,
                                              nonce="n-rot")
    r = requests.get(url, headers={"Authorization": "Bearer " + access_token}, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return session.fetch_token(server.url + "/oauth/token", authorization_response=r.headers["Location"],
                               code_verifier=verifier)


def verify(server, token, audience):
    """Verifies through the JWKS like a relying party (PyJWKClient, no stale cache)."""
    key = jwt.PyJWKClient(server.url + "/.well-known/jwks.json", cache_jwk_set=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=audience, issuer=server.url)


def test_rotate_then_retire_keys(rotating):
    server, anon, tenant, client = rotating
    env = cdx_env(server.storage)
    before = jwks_kids(server)
    assert len(before) == 1, before

    old = code_flow(server, client, login_answer(anon, tenant)["access_token"])
    old_kid = kid_of(old["access_token"])
    assert old_kid == before[0] and kid_of(old["id_token"]) == old_kid
    verify(server, old["id_token"], client["client_id"])
    old_cc = OAuth2Session(client["client_id"], client["client_secret"]).fetch_token(
        server.url + "/oauth/token", grant_type="client_credentials")

    rotated = run_cdx(["admin", "rotate-keys"], env=env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    kids = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(jwks_kids(server)), timeout=PICKUP, interval=0.2)
    assert kids and old_kid in kids, f"JWKS did not gain a key within {PICKUP}s: {jwks_kids(server)}"
    new_kid = next(k for k in kids if k != old_kid)

    # tokens signed by the old key keep working and verifying
    assert bearer_api(server.url, old["access_token"]).get(ME).status_code == 200
    assert verify(server, old["id_token"], client["client_id"])["nonce"] == "n-rot"
    verify(server, old_cc["access_token"], "cdx")

    # new tokens carry the new key, for logins and for every OAuth grant
    fresh_login = login_answer(anon, tenant)["access_token"]
    assert kid_of(fresh_login) == new_kid
    new = code_flow(server, client, fresh_login)
    assert kid_of(new["access_token"]) == new_kid and kid_of(new["id_token"]) == new_kid
    assert verify(server, new["id_token"], client["client_id"])["sub"] == tenant["admin"]["id"]
    cc = OAuth2Session(client["client_id"], client["client_secret"]).fetch_token(
        server.url + "/oauth/token", grant_type="client_credentials")
    assert kid_of(cc["access_token"]) == new_kid

    retired = run_cdx(["admin", "retire-keys", "--retire-after", "0"], env=env)
    assert retired.returncode == 0, retired.stdout + retired.stderr
    left = wait_for(lambda: (lambda k: k if len(k) == 1 else None)(jwks_kids(server)), timeout=PICKUP, interval=0.2)
    assert left == [new_kid], f"the old key was not retired within {PICKUP}s: {jwks_kids(server)}"

    # the old key's tokens are dead; the new key's live on
    r = bearer_api(server.url, old["access_token"]).get(ME)
    assert r.status_code == 401, r.text
    with pytest.raises(jwt.PyJWKClientError):
        verify(server, old["id_token"], client["client_id"])
    r = requests.post(server.url + "/oauth/userinfo", headers={"Authorization": "Bearer " + old["access_token"]},
                      timeout=10)
    assert r.status_code == 401, r.text
    assert bearer_api(server.url, new["access_token"]).get(ME).status_code == 200
    verify(server, new["id_token"], client["client_id"])


def test_rotate_keys_default_keeps_the_recent_key(rotating):
    """Without --retire-after, a key that stopped signing moments ago stays (tokens it signed are still valid)."""
    server, anon, tenant, client = rotating
    env = cdx_env(server.storage)
    token = login_answer(anon, tenant)["access_token"]
    signing = kid_of(token)
    count = len(jwks_kids(server))
    rotated = run_cdx(["admin", "rotate-keys"], env=env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    kids = wait_for(lambda: (lambda k: k if len(k) == count + 1 else None)(jwks_kids(server)), timeout=PICKUP,
                    interval=0.2)
    assert kids and signing in kids, jwks_kids(server)
    assert bearer_api(server.url, token).get(ME).status_code == 200
    assert kid_of(login_answer(anon, tenant)["access_token"]) != signing
