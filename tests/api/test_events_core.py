"""Core's own events in the platform event log (tenant.*, plan.*) and the tenant purge that follows
tenant.deleted through the log: the tenant answers 404 at once, its rows leave every module's database within
seconds, a restart in the middle finishes the purge, and purging twice is harmless."""
import os
import signal
import sqlite3
import subprocess
import uuid

from conftest import BACKEND, SUPERADMIN, Api, Server, assert_problem, login, make_tenant, wait_for

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


def superadmin(url):
    token = ok(Api(url).post("/api/v1/auth/superadmin/login",
                             json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
    return Api(url, {"Authorization": "Bearer " + token})


def contact_events(sa, tenant_id):
    """Every crm.contact.created event of the tenant in the log, walking the cursor."""
    out, cursor = [], None
    while True:
        page = ok(sa.get(EVENTS, params={"tenant_id": tenant_id, "type": "crm.contact.created", "limit": 200,
                                         **({"cursor": cursor} if cursor else {})}))
        out += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def test_kill_9_between_commit_and_the_log_loses_nothing():
    s = Server().start(timeout=40)
    try:
        sa = superadmin(s.url)
        t = make_tenant(sa)
        admin = Api(s.url, {"Authorization": "Bearer " + login(Api(s.url), t)})
        made = [ok(admin.post("/api/v1/crm/contacts", json={"first_name": f"K{i}", "email": f"k{i}@kill.io"}), 201)["id"]
                for i in range(60)]
        s.stop(sig=signal.SIGKILL)  # some of these events may not have reached the log yet
        s.start(timeout=40)
        sa = superadmin(s.url)
        got = wait_for(lambda: (lambda e: e if len(e) >= len(made) else None)(contact_events(sa, t["id"])), timeout=10)
        assert sorted(e["subject"] for e in got) == sorted(made)  # every one, once
    finally:
        s.cleanup()


def two_replicas_on_one_postgresql_move_each_event_once():
    """Two servers on one PostgreSQL database (replicas behind a load balancer)."""
    a = Server(topology="monolith").start(timeout=40)
    b = Server(storage=a.storage, topology="monolith").start(timeout=40)
    try:
        sa_a, sa_b = superadmin(a.url), superadmin(b.url)
        t = make_tenant(sa_a)
        admin_a = Api(a.url, {"Authorization": "Bearer " + login(Api(a.url), t)})
        admin_b = Api(b.url, {"Authorization": "Bearer " + login(Api(b.url), t)})
        made = []
        for i in range(40):
            api = admin_a if i % 2 else admin_b
            made.append(ok(api.post("/api/v1/crm/contacts", json={"first_name": f"R{i}", "email": f"r{i}@rep.io"}),
                           201)["id"])
        got = wait_for(lambda: (lambda e: e if len(e) >= len(made) else None)(contact_events(sa_b, t["id"])),
                       timeout=10)
        assert sorted(e["subject"] for e in got) == sorted(made)
        assert len({e["seq"] for e in got}) == len(made)
        # Deleting through one replica purges once, whichever replica's subscriber runs it.
        assert sa_b.delete(f"/api/v1/tenants/{t['id']}").status_code == 204
        assert wait_for(lambda: not remaining(a.storage, t["id"]), timeout=10)
        assert len(wait_for(lambda: events_of(sa_a, tenant_id=t["id"], type="tenant.deleted"), timeout=5)) == 1
    finally:
        b.cleanup()
        a.cleanup()


def another_replica_hears_new_events_at_once():
    """An event recorded through replica A reaches a live-feed client of replica B in milliseconds: B is told by
    LISTEN/NOTIFY. Without it B would find the event by its once-a-second poll (median ~500 ms)."""
    import statistics
    import time
    from test_event_stream import Sse
    a = Server(topology="monolith").start(timeout=40)
    b = Server(storage=a.storage, topology="monolith").start(timeout=40)
    stream = None
    try:
        sa_a, sa_b = superadmin(a.url), superadmin(b.url)
        t = make_tenant(sa_a)
        admin_a = Api(a.url, {"Authorization": "Bearer " + login(Api(a.url), t)})
        stream = Sse(b.url, sa_b.headers, {"tenant_id": t["id"], "type": "crm.contact.created"})
        assert stream.status == 200
        delays = []
        for i in range(10):
            c = ok(admin_a.post("/api/v1/crm/contacts", json={"first_name": f"N{i}", "email": f"n{i}@notify.io"}), 201)
            sent = time.time()
            got = stream.events(1, timeout=5, pred=lambda m: m["data"]["subject"] == c["id"])
            assert got, f"contact {i} never reached replica B's stream"
            delays.append(time.time() - sent)
            time.sleep(0.13)  # spread the samples over B's poll period
        assert statistics.median(delays) < 0.3, delays
    finally:
        if stream:
            stream.close()
        b.cleanup()
        a.cleanup()


if BACKEND == "postgres":  # replicas share a PostgreSQL; SQLite is one process per file
    test_two_replicas_on_one_postgresql_move_each_event_once = two_replicas_on_one_postgresql_move_each_event_once
    test_another_replica_hears_new_events_at_once = another_replica_hears_new_events_at_once


def subscriber_metrics(url):
    """{(metric, subscriber): value} of the event log's subscribers in /metrics."""
    import re
    text = Api(url).get("/metrics").text
    return {(m, s): float(v) for m, s, v in
            re.findall(r'^(cdx_event_subscriber_\w+)\{subscriber="([^"]+)"\} (\S+)$', text, re.M)}


def test_metrics_show_each_subscriber_catching_up(server, sa, tenant):
    import conftest
    for i in range(20):
        ok(tenant["admin_api"].post("/api/v1/crm/contacts", json={"first_name": f"M{i}", "email": f"m{i}@metrics.io"}),
           201)
    # In a constellation the subscribers run in core (its port is the gateway's + 1).
    url = server.url if conftest.TOPOLOGY == "monolith" else f"http://127.0.0.1:{server.port + 1}"
    caught_up = wait_for(lambda: (lambda m: m if m and all(
        v == 0 for (k, _), v in m.items()) else None)(subscriber_metrics(url)), timeout=10)
    assert caught_up, subscriber_metrics(url)
    assert {s for (k, s) in caught_up} >= {"purge", "aggregates", "webhooks"}
    assert {k for (k, s) in caught_up} == {"cdx_event_subscriber_lag", "cdx_event_subscriber_failing"}
