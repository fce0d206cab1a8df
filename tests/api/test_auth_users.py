"""Tenant users: creation and validation, listing, reading, updating, deleting; what a CLIENT may do to itself;
disabling and password changes ending sessions; the last ADMIN; plan quotas; and self sign-up (register)."""
import threading
import time
import uuid

import pytest

from conftest import (Api, assert_problem, bearer_api, create_user, login_answer, set_tenant_settings,
                      user_session, wait_for)

USERS = "/api/v1/auth/users"
KEYS = "/api/v1/auth/api-keys"
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
REGISTER = "/api/v1/auth/register"
NO_SUCH_ID = "01930000-0000-7000-8000-00000000beef"


def email():
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


def fields(resp, status=422):
    return {e["field"] for e in assert_problem(resp, status, "validation_failed")["errors"]}


def assert_no_secrets(user):
    for k in user:
        assert "hash" not in k.lower(), user
        assert k != "password", user


def is_401(api):
    return api.get(ME).status_code == 401


def login_status(anon, tenant, mail, password):
    return anon.post(LOGIN, json={"email": mail, "password": password, "tenant": tenant["slug"]}).status_code


def refresh_status(anon, token):
    return anon.post(REFRESH, json={"refresh_token": token}).status_code


def at_second_start():
    """Sleeps to the start of the next wall-clock second, so a login and a change right after it share that second
    (as they do for any fast client): token iat and the user's change time are both whole seconds."""
    time.sleep(1 - (time.time() % 1) + 0.02)


def tiny_plan(sa, max_users=2, max_api_keys=2):
    key = "tiny-" + uuid.uuid4().hex[:10]
    r = sa.post("/api/v1/plans", json={"key": key, "name": "Tiny", "max_users": max_users,
                                       "max_api_keys": max_api_keys})
    assert r.status_code == 201, r.text
    return key


def put_on_plan(sa, tenant, plan_key):
    r = sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"plan": plan_key})
    assert r.status_code == 200 and r.json()["plan"] == plan_key, r.text


# --- creation ----------------------------------------------------------------------------------------------------


def test_create_user_defaults_to_client_and_answers_an_initial_password(anon, tenant):
    mail = email()
    r = tenant["admin_api"].post(USERS, json={"email": mail})
    assert r.status_code == 201, r.text
    u = r.json()
    assert (u["email"], u["role"], u["status"], u["tenant_id"]) == (mail, "CLIENT", "active", tenant["id"])
    assert u["id"] and u["created_at"]
    assert isinstance(u["initial_password"], str) and len(u["initial_password"]) >= 12
    assert_no_secrets(u)
    t = login_answer(anon, tenant, mail, u["initial_password"])
    me = bearer_api(anon.base, t["access_token"]).get(ME).json()
    assert (me["id"], me["role"], me["email"], me["tenant_id"]) == (u["id"], "CLIENT", mail, tenant["id"])
    assert "initial_password" not in tenant["admin_api"].get(f"{USERS}/{u['id']}").text


def test_create_admin_with_password(anon, tenant):
    mail = email()
    r = tenant["admin_api"].post(USERS, json={"email": mail, "name": "Ada Lovelace", "role": "ADMIN",
                                              "password": "correct-horse-battery"})
    assert r.status_code == 201, r.text
    u = r.json()
    assert (u["role"], u["name"]) == ("ADMIN", "Ada Lovelace")
    assert "initial_password" not in u
    assert_no_secrets(u)
    api = bearer_api(anon.base, login_answer(anon, tenant, mail, "correct-horse-battery")["access_token"])
    assert api.get(ME).json()["role"] == "ADMIN"
    assert api.get(USERS).status_code == 200


def test_email_is_unique_per_tenant_case_insensitively(tenant, other_tenant):
    mail = email()
    create_user(tenant["admin_api"], email=mail)
    for dup in (mail, mail.upper(), mail.capitalize()):
        assert_problem(tenant["admin_api"].post(USERS, json={"email": dup, "password": "another-password-1"}),
                       409, "conflict")
    assert_problem(tenant["admin_api"].post(USERS, json={"email": tenant["admin"]["email"].upper()}), 409, "conflict")
    # the same address in another tenant is another user
    assert other_tenant["admin_api"].post(USERS, json={"email": mail}).status_code == 201


@pytest.mark.parametrize("body,field", [
    ({}, "email"), ({"email": 5}, "email"), ({"email": "not-an-email"}, "email"),
    ({"email": "two@@example.com"}, "email"), ({"email": "sp ace@example.com"}, "email"),
    ({"email": "@example.com"}, "email"),
    ({"role": "SUPERADMIN"}, "role"), ({"role": "owner"}, "role"), ({"role": 1}, "role"),
    ({"password": "short1"}, "password"), ({"password": "password123"}, "password"),
    ({"password": "PASSWORD123"}, "password"), ({"password": 12345678}, "password"), ({"name": 7}, "name")])
def test_bad_user_is_422_naming_the_field(tenant, body, field):
    payload = {"email": email(), **body} if "email" not in body and body != {} else body
    r = tenant["admin_api"].post(USERS, json=payload)
    assert field in fields(r), r.text


def test_rejected_user_is_not_created(tenant):
    mail = email()
    assert tenant["admin_api"].post(USERS, json={"email": mail, "password": "password123"}).status_code == 422
    listed = tenant["admin_api"].get(USERS, params={"q": mail}).json()["data"]
    assert listed == []


# --- listing and reading -----------------------------------------------------------------------------------------


def test_list_users_filters_and_pagination(tenant):
    api = tenant["admin_api"]
    tag = uuid.uuid4().hex[:8]
    clients = [create_user(api, email=f"client-{i}-{tag}@example.com") for i in range(3)]
    admin = create_user(api, role="ADMIN", email=f"boss-{tag}@example.com", name="Zebulon Finder")
    assert api.patch(f"{USERS}/{clients[0]['id']}", json={"status": "disabled"}).status_code == 200

    r = api.get(USERS)
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    ids = {u["id"] for u in body["data"]}
    assert ids == {tenant["admin"]["id"], admin["id"], *(c["id"] for c in clients)}
    for u in body["data"]:
        assert_no_secrets(u)
        assert "initial_password" not in u

    admins = {u["id"] for u in api.get(USERS, params={"role": "ADMIN"}).json()["data"]}
    assert admins == {tenant["admin"]["id"], admin["id"]}
    assert {u["id"] for u in api.get(USERS, params={"role": "CLIENT"}).json()["data"]} == {c["id"] for c in clients}
    assert [u["id"] for u in api.get(USERS, params={"status": "disabled"}).json()["data"]] == [clients[0]["id"]]
    active = {u["id"] for u in api.get(USERS, params={"status": "active"}).json()["data"]}
    assert clients[0]["id"] not in active and clients[1]["id"] in active
    assert [u["id"] for u in api.get(USERS, params={"q": "zebulon"}).json()["data"]] == [admin["id"]]
    assert {u["id"] for u in api.get(USERS, params={"q": f"client-1-{tag}"}).json()["data"]} == {clients[1]["id"]}
    assert api.get(USERS, params={"q": "no-such-user-" + tag}).json()["data"] == []

    seen, cursor = [], None
    for _ in range(10):
        page = api.get(USERS, params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["data"]) <= 2
        seen += [u["id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5 and set(seen) == ids


def test_get_user(tenant):
    u = create_user(tenant["admin_api"], name="Grace")
    r = tenant["admin_api"].get(f"{USERS}/{u['id']}")
    assert r.status_code == 200
    got = r.json()
    assert (got["id"], got["email"], got["name"], got["role"], got["status"]) == \
        (u["id"], u["email"], "Grace", "CLIENT", "active")
    assert_no_secrets(got)


def test_unknown_user_is_404(tenant):
    for path in (f"{USERS}/{NO_SUCH_ID}", f"{USERS}/not-a-uuid"):
        assert_problem(tenant["admin_api"].get(path), 404, "not_found")
        assert_problem(tenant["admin_api"].patch(path, json={"name": "x"}), 404, "not_found")
        assert_problem(tenant["admin_api"].delete(path), 404, "not_found")


def test_another_tenants_user_is_404(anon, tenant, other_tenant):
    theirs = create_user(other_tenant["admin_api"])
    path = f"{USERS}/{theirs['id']}"
    for api in (tenant["admin_api"], tenant["key_api"]):
        assert_problem(api.get(path), 404, "not_found")
        assert_problem(api.patch(path, json={"name": "hijacked", "status": "disabled"}), 404, "not_found")
        assert_problem(api.delete(path), 404, "not_found")
    assert theirs["id"] not in {u["id"] for u in tenant["admin_api"].get(USERS).json()["data"]}
    got = other_tenant["admin_api"].get(path).json()
    assert got["name"] != "hijacked" and got["status"] == "active"
    assert login_status(anon, other_tenant, theirs["email"], theirs["password"]) == 200


# --- updating and deleting ---------------------------------------------------------------------------------------


def test_patch_name(tenant):
    u = create_user(tenant["admin_api"])
    r = tenant["admin_api"].patch(f"{USERS}/{u['id']}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed" and r.json()["role"] == "CLIENT"
    assert tenant["admin_api"].get(f"{USERS}/{u['id']}").json()["name"] == "Renamed"


@pytest.mark.parametrize("body,field", [({"role": "ROOT"}, "role"), ({"status": "banned"}, "status"),
                                        ({"password": "short"}, "password"), ({"password": "qwerty123"}, "password"),
                                        ({"name": ""}, "name"), ({"status": True}, "status")])
def test_bad_patch_is_422_naming_the_field(tenant, body, field):
    u = create_user(tenant["admin_api"])
    assert field in fields(tenant["admin_api"].patch(f"{USERS}/{u['id']}", json=body))
    assert tenant["admin_api"].get(f"{USERS}/{u['id']}").json()["status"] == "active"


def test_delete_user_ends_everything(anon, tenant):
    u = create_user(tenant["admin_api"])
    tokens, api = user_session(anon, tenant, u)
    r = tenant["admin_api"].delete(f"{USERS}/{u['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(tenant["admin_api"].get(f"{USERS}/{u['id']}"), 404, "not_found")
    assert wait_for(lambda: is_401(api), 2.5), "a deleted user's access token must stop working"
    assert refresh_status(anon, tokens["refresh_token"]) == 401
    assert login_status(anon, tenant, u["email"], u["password"]) == 401
    assert_problem(tenant["admin_api"].delete(f"{USERS}/{u['id']}"), 404, "not_found")


def test_promote_client_to_admin(anon, tenant):
    u = create_user(tenant["admin_api"])
    r = tenant["admin_api"].patch(f"{USERS}/{u['id']}", json={"role": "ADMIN"})
    assert r.status_code == 200 and r.json()["role"] == "ADMIN", r.text
    _, api = user_session(anon, tenant, u)
    assert api.get(ME).json()["role"] == "ADMIN"
    assert api.get(USERS).status_code == 200


def test_demoted_admin_loses_admin_rights_at_once(anon, tenant):
    u = create_user(tenant["admin_api"], role="ADMIN")
    at_second_start()
    _, api = user_session(anon, tenant, u)
    assert api.get(USERS).status_code == 200
    assert tenant["admin_api"].patch(f"{USERS}/{u['id']}", json={"role": "CLIENT"}).status_code == 200
    r = api.get(USERS)
    assert r.status_code in (401, 403), f"a token minted as ADMIN still lists users after demotion: {r.status_code}"


# --- what a CLIENT may do -----------------------------------------------------------------------------------------


@pytest.fixture
def client(anon, tenant):
    u = create_user(tenant["admin_api"])
    tokens, api = user_session(anon, tenant, u)
    return {"user": u, "tokens": tokens, "api": api}


def test_client_reads_and_renames_itself(client):
    api, me = client["api"], client["user"]
    r = api.get(f"{USERS}/{me['id']}")
    assert r.status_code == 200 and r.json()["email"] == me["email"]
    r = api.patch(f"{USERS}/{me['id']}", json={"name": "New Me"})
    assert r.status_code == 200 and r.json()["name"] == "New Me", r.text
    assert api.get(f"{USERS}/{me['id']}").json()["name"] == "New Me"


def test_client_cannot_touch_other_users(tenant, client):
    api = client["api"]
    peer = create_user(tenant["admin_api"])
    for target in (tenant["admin"]["id"], peer["id"]):
        assert_problem(api.get(f"{USERS}/{target}"), 403, "forbidden")
        assert_problem(api.patch(f"{USERS}/{target}", json={"name": "pwned"}), 403, "forbidden")
        assert_problem(api.patch(f"{USERS}/{target}", json={"password": "taken-over-pw-1"}), 403, "forbidden")
        assert_problem(api.delete(f"{USERS}/{target}"), 403, "forbidden")
    assert tenant["admin_api"].get(f"{USERS}/{peer['id']}").json()["name"] != "pwned"


@pytest.mark.parametrize("body", [{"role": "ADMIN"}, {"role": "CLIENT"}, {"status": "disabled"},
                                  {"status": "active"}, {"name": "x", "role": "ADMIN"}])
def test_client_cannot_change_its_role_or_status(tenant, client, body):
    me = client["user"]
    assert_problem(client["api"].patch(f"{USERS}/{me['id']}", json=body), 403, "forbidden")
    got = tenant["admin_api"].get(f"{USERS}/{me['id']}").json()
    assert (got["role"], got["status"]) == ("CLIENT", "active")
    assert got["name"] != "x"


def test_client_cannot_list_create_or_delete(client):
    api = client["api"]
    assert_problem(api.get(USERS), 403, "forbidden")
    assert_problem(api.post(USERS, json={"email": email(), "role": "ADMIN", "password": "sneaky-password-1"}),
                   403, "forbidden")
    assert_problem(api.post(USERS, json={"email": email()}), 403, "forbidden")
    assert_problem(api.delete(f"{USERS}/{client['user']['id']}"), 403, "forbidden")
    assert_problem(api.post(KEYS, json={"name": "mine"}), 403, "forbidden")
    assert_problem(api.post(KEYS, json={"name": "mine", "type": "publishable"}), 403, "forbidden")
    assert api.get(ME).status_code == 200


def test_client_changes_its_own_password(anon, tenant, client):
    me = client["user"]
    at_second_start()
    client["tokens"], client["api"] = user_session(anon, tenant, me)
    # The current password is required (ASVS 2.1.6, issue 14): a stolen access token alone cannot change it.
    missing = client["api"].patch(f"{USERS}/{me['id']}", json={"password": "brand-new-secret-9"})
    assert "current_password" in fields(missing)
    wrong = client["api"].patch(f"{USERS}/{me['id']}",
                                json={"password": "brand-new-secret-9", "current_password": "not-it-at-all"})
    assert "current_password" in fields(wrong)
    assert login_status(anon, tenant, me["email"], me["password"]) == 200, "nothing changed"
    r = client["api"].patch(f"{USERS}/{me['id']}",
                            json={"password": "brand-new-secret-9", "current_password": me["password"]})
    assert r.status_code == 200, r.text
    assert_no_secrets(r.json())
    assert wait_for(lambda: is_401(client["api"]), 2.5), "the access token from before the change still works"
    assert refresh_status(anon, client["tokens"]["refresh_token"]) == 401
    assert login_status(anon, tenant, me["email"], "brand-new-secret-9") == 200
    assert login_status(anon, tenant, me["email"], me["password"]) == 401


# --- sessions end on disable and password change -----------------------------------------------------------------


def test_disabling_a_user_ends_its_sessions_and_logins(anon, tenant, client):
    me = client["user"]
    r = tenant["admin_api"].patch(f"{USERS}/{me['id']}", json={"status": "disabled"})
    assert r.status_code == 200 and r.json()["status"] == "disabled", r.text
    assert wait_for(lambda: is_401(client["api"]), 2.5), "a disabled user's access token still works"
    assert_problem(client["api"].get(ME), 401, "unauthorized")
    assert refresh_status(anon, client["tokens"]["refresh_token"]) == 401
    assert login_status(anon, tenant, me["email"], me["password"]) == 401
    # enabled again: logging in works again
    r = tenant["admin_api"].patch(f"{USERS}/{me['id']}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    t = login_answer(anon, tenant, me["email"], me["password"])
    assert bearer_api(anon.base, t["access_token"]).get(ME).status_code == 200


def test_admin_setting_a_password_ends_the_users_sessions(anon, tenant, client):
    me = client["user"]
    at_second_start()
    client["tokens"], client["api"] = user_session(anon, tenant, me)
    r = tenant["admin_api"].patch(f"{USERS}/{me['id']}", json={"password": "set-by-admin-77"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: is_401(client["api"]), 2.5), "the access token from before the change still works"
    assert refresh_status(anon, client["tokens"]["refresh_token"]) == 401
    assert login_status(anon, tenant, me["email"], "set-by-admin-77") == 200


def test_renaming_keeps_sessions(anon, tenant, client):
    me = client["user"]
    assert tenant["admin_api"].patch(f"{USERS}/{me['id']}", json={"name": "Still Me"}).status_code == 200
    assert client["api"].get(ME).status_code == 200
    assert refresh_status(anon, client["tokens"]["refresh_token"]) == 200


# --- the last ADMIN ----------------------------------------------------------------------------------------------


def test_last_admin_cannot_be_demoted_disabled_or_deleted(sa, tenant):
    path = f"{USERS}/{tenant['admin']['id']}"
    for api in (tenant["admin_api"], sa.with_headers(X_Tenant_ID=tenant["id"])):
        assert_problem(api.patch(path, json={"role": "CLIENT"}), 409, "conflict")
        assert_problem(api.patch(path, json={"status": "disabled"}), 409, "conflict")
        assert_problem(api.delete(path), 409, "conflict")
    got = tenant["admin_api"].get(path).json()
    assert (got["role"], got["status"]) == ("ADMIN", "active")


def test_an_admin_can_step_down_when_another_remains(anon, tenant):
    second = create_user(tenant["admin_api"], role="ADMIN")
    first_path = f"{USERS}/{tenant['admin']['id']}"
    r = tenant["admin_api"].patch(first_path, json={"role": "CLIENT"})
    assert r.status_code == 200 and r.json()["role"] == "CLIENT", r.text
    _, second_api = user_session(anon, tenant, second)
    second_path = f"{USERS}/{second['id']}"
    assert_problem(second_api.patch(second_path, json={"role": "CLIENT"}), 409, "conflict")
    assert_problem(second_api.delete(second_path), 409, "conflict")


def test_disabled_admins_do_not_count_as_remaining(tenant):
    other = create_user(tenant["admin_api"], role="ADMIN")
    assert tenant["admin_api"].patch(f"{USERS}/{other['id']}", json={"status": "disabled"}).status_code == 200
    path = f"{USERS}/{tenant['admin']['id']}"
    assert_problem(tenant["admin_api"].patch(path, json={"status": "disabled"}), 409, "conflict")
    assert_problem(tenant["admin_api"].delete(path), 409, "conflict")


def test_concurrent_demotions_leave_an_admin(sa, tenant):
    """Two ADMINs demoted at the same moment: the last-ADMIN rule must hold under concurrency."""
    api = sa.with_headers(X_Tenant_ID=tenant["id"])
    ids = [tenant["admin"]["id"]]
    for round_ in range(4):
        others = [create_user(api, role="ADMIN")["id"] for _ in range(2)]
        # leave exactly two active admins: ids[-1] and others[0]; others[1] is disabled
        assert api.patch(f"{USERS}/{others[1]}", json={"status": "disabled"}).status_code == 200
        pair = [ids[-1], others[0]]
        results = []
        barrier = threading.Barrier(2)

        def demote(uid):
            mine = Api(api.base, api.headers)
            barrier.wait()
            results.append(mine.patch(f"{USERS}/{uid}", json={"role": "CLIENT"}).status_code)

        threads = [threading.Thread(target=demote, args=(uid,)) for uid in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        active_admins = api.get(USERS, params={"role": "ADMIN", "status": "active"}).json()["data"]
        assert active_admins, f"round {round_}: both ADMINs were demoted at once ({results}); the tenant has none"
        assert sorted(results) == [200, 409], results
        ids.append(active_admins[0]["id"])


# --- SUPERADMIN and keys -----------------------------------------------------------------------------------------


def test_superadmin_manages_users_in_a_tenant(sa, tenant):
    api = sa.with_headers(X_Tenant_ID=tenant["slug"])
    u = create_user(api, role="ADMIN")
    assert u["tenant_id"] == tenant["id"]
    assert u["id"] in {x["id"] for x in tenant["admin_api"].get(USERS).json()["data"]}
    assert api.get(f"{USERS}/{u['id']}").status_code == 200
    assert api.patch(f"{USERS}/{u['id']}", json={"name": "By Root"}).json()["name"] == "By Root"
    assert api.delete(f"{USERS}/{u['id']}").status_code == 204
    assert_problem(sa.get(USERS), 400, "invalid_request")
    assert_problem(sa.post(USERS, json={"email": email()}), 400, "invalid_request")


def key_api(tenant, scopes, type_="secret"):
    r = tenant["admin_api"].post(KEYS, json={"name": "scoped", "type": type_, **({"scopes": scopes} if scopes else {})})
    assert r.status_code == 201, r.text
    return Api(tenant["admin_api"].base, {"X-API-Key": r.json()["key"]})


def test_secret_key_scopes_govern_user_routes(tenant):
    u = create_user(tenant["admin_api"])
    reader = key_api(tenant, ["auth:read"])
    assert reader.get(USERS).status_code == 200
    assert reader.get(f"{USERS}/{u['id']}").status_code == 200
    assert_problem(reader.post(USERS, json={"email": email()}), 403, "forbidden")
    assert_problem(reader.patch(f"{USERS}/{u['id']}", json={"name": "x"}), 403, "forbidden")
    assert_problem(reader.delete(f"{USERS}/{u['id']}"), 403, "forbidden")

    writer = key_api(tenant, ["auth:write"])
    made = create_user(writer)
    assert writer.get(USERS).status_code == 200, "auth:write implies auth:read"
    assert writer.patch(f"{USERS}/{made['id']}", json={"name": "y"}).status_code == 200
    assert writer.delete(f"{USERS}/{made['id']}").status_code == 204

    for other in (key_api(tenant, ["crm:read"]), key_api(tenant, ["crm:write", "cms:write"]),
                  key_api(tenant, None, "publishable")):
        assert_problem(other.get(USERS), 403, "forbidden")
        assert_problem(other.post(USERS, json={"email": email()}), 403, "forbidden")
        assert_problem(other.get(f"{USERS}/{u['id']}"), 403, "forbidden")


# --- plan quotas -------------------------------------------------------------------------------------------------


def test_max_users_quota(sa, tenant):
    put_on_plan(sa, tenant, tiny_plan(sa, max_users=2))
    second = create_user(tenant["admin_api"])  # the first ADMIN + this one = 2
    r = tenant["admin_api"].post(USERS, json={"email": email(), "password": "over-quota-pw-1"})
    body = assert_problem(r, 403, "quota_exceeded")
    assert body["detail"]
    assert len(tenant["admin_api"].get(USERS).json()["data"]) == 2
    # deleting a user frees its seat
    assert tenant["admin_api"].delete(f"{USERS}/{second['id']}").status_code == 204
    assert tenant["admin_api"].post(USERS, json={"email": email()}).status_code == 201


def test_max_users_quota_holds_under_concurrency(sa, tenant):
    put_on_plan(sa, tenant, tiny_plan(sa, max_users=2))
    results = []
    barrier = threading.Barrier(5)

    def add():
        api = Api(tenant["admin_api"].base, tenant["admin_api"].headers)
        barrier.wait()
        results.append(api.post(USERS, json={"email": email(), "password": "race-password-1"}).status_code)

    threads = [threading.Thread(target=add) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    count = len(tenant["admin_api"].get(USERS).json()["data"])
    assert count <= 2, f"plan allows 2 users, tenant has {count} after concurrent creates {sorted(results)}"
    assert sorted(results) == [201, 403, 403, 403, 403], results


def test_quota_is_per_plan_change(sa, tenant):
    put_on_plan(sa, tenant, tiny_plan(sa, max_users=1))
    assert_problem(tenant["admin_api"].post(USERS, json={"email": email()}), 403, "quota_exceeded")
    put_on_plan(sa, tenant, "free")
    assert tenant["admin_api"].post(USERS, json={"email": email()}).status_code == 201


# --- self sign-up ------------------------------------------------------------------------------------------------


def reg_body(tenant=None, **extra):
    body = {"email": email(), "password": "sign-me-up-please"}
    if tenant:
        body["tenant"] = tenant["slug"]
    body.update(extra)
    return body


@pytest.fixture
def open_tenant(sa, tenant):
    set_tenant_settings(sa, tenant, {"allow_registration": True})
    return tenant


def test_register_is_forbidden_unless_the_tenant_allows_it(sa, anon, tenant):
    assert_problem(anon.post(REGISTER, json=reg_body(tenant)), 403, "forbidden")
    set_tenant_settings(sa, tenant, {"allow_registration": False})
    assert_problem(anon.post(REGISTER, json=reg_body(tenant)), 403, "forbidden")
    assert len(tenant["admin_api"].get(USERS).json()["data"]) == 1


def test_register_creates_a_client_and_answers_tokens(anon, open_tenant):
    t = open_tenant
    body = reg_body(t, name="Newcomer")
    r = anon.post(REGISTER, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["token_type"] == "Bearer" and out["expires_in"] > 0
    assert out["refresh_token"].startswith(t["id"] + ".")
    u = out["user"]
    assert (u["email"], u["role"], u["status"], u["tenant_id"], u["name"]) == \
        (body["email"], "CLIENT", "active", t["id"], "Newcomer")
    assert "initial_password" not in u
    assert_no_secrets(u)
    assert "no-store" in r.headers.get("Cache-Control", "")
    me = bearer_api(anon.base, out["access_token"]).get(ME).json()
    assert (me["id"], me["role"], me["tenant_id"]) == (u["id"], "CLIENT", t["id"])
    assert refresh_status(anon, out["refresh_token"]) == 200
    assert login_status(anon, t, body["email"], body["password"]) == 200
    assert u["id"] in {x["id"] for x in t["admin_api"].get(USERS, params={"role": "CLIENT"}).json()["data"]}


def test_register_cannot_choose_a_role(anon, open_tenant):
    r = anon.post(REGISTER, json=reg_body(open_tenant, role="ADMIN"))
    if r.status_code == 201:
        assert r.json()["user"]["role"] == "CLIENT"
        assert bearer_api(anon.base, r.json()["access_token"]).get(ME).json()["role"] == "CLIENT"
    else:
        assert_problem(r, 422)


def test_register_by_header_and_by_publishable_key(anon, open_tenant):
    t = open_tenant
    r = anon.post(REGISTER, json=reg_body(), headers={"X-Tenant-ID": t["id"]})
    assert r.status_code == 201 and r.json()["user"]["tenant_id"] == t["id"], r.text
    pk = t["admin_api"].post(KEYS, json={"name": "web", "type": "publishable"}).json()["key"]
    r = anon.post(REGISTER, json=reg_body(), headers={"X-API-Key": pk})
    assert r.status_code == 201 and r.json()["user"]["tenant_id"] == t["id"], r.text


def test_register_rejects_duplicates_and_bad_input(anon, open_tenant):
    t = open_tenant
    body = reg_body(t)
    assert anon.post(REGISTER, json=body).status_code == 201
    assert_problem(anon.post(REGISTER, json=dict(body, email=body["email"].upper())), 409, "conflict")
    assert_problem(anon.post(REGISTER, json=reg_body(t, email=t["admin"]["email"])), 409, "conflict")
    assert "password" in fields(anon.post(REGISTER, json=reg_body(t, password="short")))
    assert "password" in fields(anon.post(REGISTER, json=reg_body(t, password="password123")))
    assert "email" in fields(anon.post(REGISTER, json=reg_body(t, email="nope")))
    assert {"email", "password"} <= fields(anon.post(REGISTER, json={"tenant": t["slug"]}))
    assert "tenant" in fields(anon.post(REGISTER, json=reg_body()))


def test_register_only_affects_the_named_tenant(anon, open_tenant, other_tenant):
    body = reg_body(open_tenant)
    assert anon.post(REGISTER, json=body).status_code == 201
    assert_problem(anon.post(REGISTER, json=dict(body, tenant=other_tenant["slug"])), 403, "forbidden")
    assert login_status(anon, other_tenant, body["email"], body["password"]) == 401


def test_register_respects_max_users(sa, anon, open_tenant):
    put_on_plan(sa, open_tenant, tiny_plan(sa, max_users=2))
    assert anon.post(REGISTER, json=reg_body(open_tenant)).status_code == 201
    assert_problem(anon.post(REGISTER, json=reg_body(open_tenant)), 403, "quota_exceeded")
