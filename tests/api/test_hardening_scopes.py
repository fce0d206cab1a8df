"""Issue 14 item 3: what a credential may create or change (docs/auth.md, "What a credential may create").
A scope-limited credential (an API key without '*') hands out nothing it does not hold: no ADMIN user (an
ADMIN holds every scope), no change to an existing ADMIN (its password above all), no OAuth client or key
holding scopes it lacks, no new secret for such a client. An ADMIN user and a '*' key may do all of it.
One test per cell of the table."""
import uuid

import pytest
import requests

from conftest import Api, assert_problem, create_user, login_answer

USERS = "/api/v1/auth/users"
KEYS = "/api/v1/auth/api-keys"
CLIENTS = "/api/v1/auth/clients"
TOKEN = "/oauth/token"


def key_api(tenant, scopes):
    r = tenant["admin_api"].post(KEYS, json={"name": "k-" + uuid.uuid4().hex[:6], "scopes": scopes})
    assert r.status_code == 201, r.text
    return Api(tenant["admin_api"].base, {"X-API-Key": r.json()["key"]})


def email():
    return f"u{uuid.uuid4().hex[:10]}@scopes.example.com"


def client_body(scopes, grants=("client_credentials",)):
    return {"name": "c-" + uuid.uuid4().hex[:6], "grant_types": list(grants), "scopes": scopes}


@pytest.fixture
def writer(tenant):
    return key_api(tenant, ["auth:write"])


@pytest.fixture
def star(tenant):
    return key_api(tenant, ["*"])


@pytest.fixture
def admin_user(tenant):
    return create_user(tenant["admin_api"], role="ADMIN")


# --- users ---------------------------------------------------------------------------------------------------------


def test_limited_key_cannot_create_an_admin(writer):
    assert_problem(writer.post(USERS, json={"email": email(), "role": "ADMIN", "password": "Strong-pass-2026"}),
                   403, "forbidden")


def test_limited_key_creates_and_changes_clients(writer):
    u = create_user(writer)
    assert u["role"] == "CLIENT"
    assert writer.patch(f"{USERS}/{u['id']}", json={"name": "Renamed"}).status_code == 200


def test_limited_key_cannot_promote_a_client(writer, tenant):
    u = create_user(tenant["admin_api"])
    assert_problem(writer.patch(f"{USERS}/{u['id']}", json={"role": "ADMIN"}), 403, "forbidden")
    assert tenant["admin_api"].get(f"{USERS}/{u['id']}").json()["role"] == "CLIENT"


def test_limited_key_cannot_set_an_admins_password(writer, tenant, anon, admin_user):
    assert_problem(writer.patch(f"{USERS}/{admin_user['id']}", json={"password": "Taken-over-2026"}), 403,
                   "forbidden")
    r = anon.post("/api/v1/auth/login", json={"email": admin_user["email"], "password": "Taken-over-2026",
                                               "tenant": tenant["slug"]})
    assert r.status_code == 401, "the password did not change"


@pytest.mark.parametrize("change", [{"name": "x"}, {"status": "disabled"}])
def test_limited_key_cannot_change_an_admin_at_all(writer, admin_user, change):
    assert_problem(writer.patch(f"{USERS}/{admin_user['id']}", json=change), 403, "forbidden")


def test_limited_key_cannot_delete_an_admin(writer, admin_user, tenant):
    assert_problem(writer.delete(f"{USERS}/{admin_user['id']}"), 403, "forbidden")
    assert tenant["admin_api"].get(f"{USERS}/{admin_user['id']}").status_code == 200


def test_star_key_and_admin_user_manage_admins(star, tenant):
    made = star.post(USERS, json={"email": email(), "role": "ADMIN", "password": "Strong-pass-2026"})
    assert made.status_code == 201, made.text
    assert star.patch(f"{USERS}/{made.json()['id']}", json={"password": "Other-pass-2026"}).status_code == 200
    by_admin = tenant["admin_api"].post(USERS, json={"email": email(), "role": "ADMIN"})
    assert by_admin.status_code == 201, by_admin.text


def test_a_client_user_made_by_a_limited_key_reaches_no_admin_route(writer, tenant, anon):
    u = create_user(writer, password="Client-pass-2026")
    token = login_answer(anon, tenant, email=u["email"], password="Client-pass-2026")["access_token"]
    as_client = Api(tenant["admin_api"].base, {"Authorization": f"Bearer {token}"})
    assert_problem(as_client.get("/api/v1/crm/contacts"), 403, "forbidden")
    assert_problem(as_client.post(KEYS, json={"name": "x", "scopes": ["*"]}), 403, "forbidden")


# --- OAuth clients -------------------------------------------------------------------------------------------------


def test_limited_key_cannot_register_a_client_holding_more(writer):
    assert_problem(writer.post(CLIENTS, json=client_body(["crm:write"])), 403, "forbidden")


def test_limited_key_registers_clients_within_its_scopes(writer):
    r = writer.post(CLIENTS, json=client_body(["auth:read"]))
    assert r.status_code == 201, r.text
    assert writer.post(CLIENTS, json=client_body(["auth:write"])).status_code == 201


def test_limited_key_cannot_widen_a_client(writer):
    c = writer.post(CLIENTS, json=client_body(["auth:read"])).json()
    assert_problem(writer.patch(f"{CLIENTS}/{c['id']}", json={"scopes": ["auth:read", "crm:write"]}), 403, "forbidden")


def test_limited_key_cannot_take_the_secret_of_a_wider_client(writer, tenant, server):
    wide = tenant["admin_api"].post(CLIENTS, json=client_body(["crm:write"])).json()
    assert_problem(writer.post(f"{CLIENTS}/{wide['id']}/secret"), 403, "forbidden")
    # The registered secret still works: nothing was rotated.
    r = requests.post(server.url + TOKEN, data={"grant_type": "client_credentials"},
                      auth=(wide["client_id"], wide["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text


def test_star_key_registers_any_client(star):
    assert star.post(CLIENTS, json=client_body(["crm:write", "auth:write"])).status_code == 201


# --- API keys ------------------------------------------------------------------------------------------------------


def test_limited_key_mints_only_keys_within_its_scopes(writer):
    assert_problem(writer.post(KEYS, json={"name": "wider", "scopes": ["crm:write"]}), 403, "forbidden")
    assert_problem(writer.post(KEYS, json={"name": "all", "scopes": ["*"]}), 403, "forbidden")
    assert writer.post(KEYS, json={"name": "same", "scopes": ["auth:write"]}).status_code == 201
