"""Core's own events in the platform event log (tenant.*, plan.*) and the tenant purge that follows
tenant.deleted through the log: the tenant answers 404 at once, its rows leave every module's database within
seconds, a restart in the middle finishes the purge, and purging twice is harmless."""
import os
import signal
import sqlite3
import subprocess
import uuid

from conftest import SUPERADMIN, Api, Server, assert_problem, login, make_tenant, wait_for

EVENTS = "/api/v1/events"

# A table of each module the purge must empty: (schema, table).
TENANT_TABLES = [("auth_db", "users"), ("auth_db", "api_keys"), ("crm_db", "contacts"), ("crm_db", "companies"),
                 ("cms_db", "content_types"), ("cms_db", "entries")]


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json()


def rows_of(storage, schema, table, tenant_id):
    """How many rows of the tenant a module's table holds, read straight from its database (as its owner)."""
    if "CDX_DATABASE_URL" in storage:
        out = subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c",
                              f"SELECT count(*) FROM {schema}.{table} WHERE tenant_id = '{tenant_id}'"],
                             check=True, capture_output=True, text=True)
        return int(out.stdout.strip())
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], f"{schema}.sqlite"), timeout=10)
    try:
        return db.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = ?", (tenant_id,)).fetchone()[0]
    finally:
        db.close()


def remaining(storage, tenant_id):
    return {f"{s}.{t}": n for s, t in TENANT_TABLES if (n := rows_of(storage, s, t, tenant_id))}


def events_of(api, **params):
    return ok(api.get(EVENTS, params={"limit": 200, **params}))["data"]


def fill(tenant_api):
    """Some rows of the tenant in every module."""
    ok(tenant_api.post("/api/v1/crm/contacts", json={"first_name": "Purge", "email": f"p-{uuid.uuid4().hex[:8]}@x.io"}),
       201)
    ok(tenant_api.post("/api/v1/crm/companies", json={"name": "Purge Co " + uuid.uuid4().hex[:6]}), 201)
    ok(tenant_api.post("/api/v1/cms/content-types", json={
        "key": "note", "name": "Note", "fields": [{"key": "title", "type": "text", "required": True}]}), 201)
    ok(tenant_api.post("/api/v1/cms/content-types/note/entries", json={"data": {"title": "hello"}}), 201)


def test_tenant_lifecycle_writes_core_events(sa, anon):
    t = make_tenant(sa)
    ok(sa.patch(f"/api/v1/tenants/{t['id']}", json={"name": "Renamed"}))
    ok(sa.post(f"/api/v1/tenants/{t['id']}/suspend"))
    ok(sa.post(f"/api/v1/tenants/{t['id']}/resume"))

    want = ["tenant.created", "tenant.updated", "tenant.updated", "tenant.suspended", "tenant.updated",
            "tenant.resumed"]
    got = wait_for(lambda: (lambda e: e if len(e) >= len(want) else None)(
        events_of(sa, tenant_id=t["id"], type="tenant.*")), timeout=8)
    assert [e["type"] for e in reversed(got)] == want
    created = got[-1]
    assert created["source"] == "cdx_db" and created["subject"] == t["id"]
    assert created["data"]["tenant"]["slug"] == t["slug"] and created["actor"]["type"] == "superadmin"
    assert got[0]["data"]["tenant"]["status"] == "active"
    # The tenant's own ADMIN reads its tenant's lifecycle too.
    admin = Api(anon.base, {"Authorization": "Bearer " + login(anon, t)})
    assert {e["type"] for e in events_of(admin, type="tenant.*")} == set(want)


def test_plan_events_are_platform_wide(sa, tenant):
    key = "p-" + uuid.uuid4().hex[:8]
    ok(sa.post("/api/v1/plans", json={"key": key, "name": "Plan " + key}), 201)
    ok(sa.patch(f"/api/v1/plans/{key}", json={"max_users": 7}))
    got = wait_for(lambda: (lambda e: e if len(e) >= 2 else None)(
        [e for e in events_of(sa, type="plan.*") if e["data"]["plan"]["key"] == key]), timeout=8)
    assert [e["type"] for e in got] == ["plan.updated", "plan.created"]
    assert got[0]["tenant_id"] == "" and got[0]["data"]["plan"]["max_users"] == 7
    # No tenant reads platform-wide events.
    assert [e for e in events_of(tenant["admin_api"], type="plan.*")] == []


def test_delete_answers_404_at_once_and_purges_every_module(server, sa, anon):
    t = make_tenant(sa)
    admin = Api(anon.base, {"Authorization": "Bearer " + login(anon, t)})
    fill(admin)
    assert set(remaining(server.storage, t["id"])) == {f"{s}.{n}" for s, n in TENANT_TABLES}

    assert sa.delete(f"/api/v1/tenants/{t['id']}").status_code == 204
    assert_problem(sa.get(f"/api/v1/tenants/{t['id']}"), 404, "not_found")
    assert_problem(Api(anon.base, {"X-API-Key": t["api_key"]}).get("/api/v1/auth/me"), 401)
    assert wait_for(lambda: not remaining(server.storage, t["id"]), timeout=10), remaining(server.storage, t["id"])
    deleted = wait_for(lambda: events_of(sa, tenant_id=t["id"], type="tenant.deleted"), timeout=5)
    assert len(deleted) == 1 and deleted[0]["subject"] == t["id"]
    # Purging again (a replayed event) is harmless, and so is deleting again.
    assert_problem(sa.delete(f"/api/v1/tenants/{t['id']}"), 404, "not_found")


def test_a_restart_in_the_middle_of_a_purge_finishes_it():
    s = Server().start(timeout=40)
    try:
        token = ok(Api(s.url).post("/api/v1/auth/superadmin/login",
                                   json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
        sa = Api(s.url, {"Authorization": "Bearer " + token})
        victims = [make_tenant(sa) for _ in range(3)]
        for t in victims:
            fill(Api(s.url, {"Authorization": "Bearer " + login(Api(s.url), t)}))
        for t in victims:
            assert sa.delete(f"/api/v1/tenants/{t['id']}").status_code == 204
        s.stop(sig=signal.SIGKILL)  # whatever the purge had done, the rest is left to the restart
        s.start(timeout=40)
        for t in victims:
            assert wait_for(lambda: not remaining(s.storage, t["id"]), timeout=15), remaining(s.storage, t["id"])
            assert_problem(sa.get(f"/api/v1/tenants/{t['id']}"), 404, "not_found")
    finally:
        s.cleanup()
