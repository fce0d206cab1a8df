"""The tenant overview (GET /api/v1/tenants/{id}/overview): users, API keys, contacts, companies, deals, published
entries, media, events in the last 24 hours and API calls, kept up to date from the event log within two seconds;
who may read it; and `cdx admin rebuild-aggregates`, which recounts from the modules the same numbers and repairs a
counter broken in the database."""
import datetime
import io
import os
import sqlite3
import subprocess
import time
import uuid

from PIL import Image

from conftest import (SUPERADMIN, Api, Server, assert_problem, cdx_env, create_user, make_tenant, run_cdx,
                      tenant_with_clients, user_session)

CRM = "/api/v1/crm"
CMS = "/api/v1/cms"
KEYS = "/api/v1/auth/api-keys"
TYPES = CMS + "/content-types"
VISIBLE = 2.0  # seconds: a change shows in the overview within this

NOTE = {"key": "note", "name": "Note", "fields": [{"key": "title", "type": "text", "required": True, "max": 200}]}


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json() if status != 204 else None


def overview_path(tenant_key):
    return f"/api/v1/tenants/{tenant_key}/overview"


def overview(sa, tenant):
    return ok(sa.get(overview_path(tenant["id"])))


def numbers(o):
    """The overview without what moves on its own (calls, events, time)."""
    return {k: v for k, v in o.items() if k not in ("api_calls", "events_24h", "updated_at")}


def baseline(tenant_id):
    """A new tenant: its first ADMIN and its default secret key, nothing else."""
    return {"tenant_id": tenant_id, "users": 1, "api_keys": 1, "contacts": 0, "companies": 0,
            "deals": {"open": 0, "open_value": {}, "won_this_month": 0, "won_value_this_month": {}},
            "entries": {"published": 0}, "media": 0,
            "billing": {"active_subscriptions": 0, "mrr": {}, "open_invoices": 0}}


def shows(sa, tenant, expected, timeout=VISIBLE):
    """Polls the overview until its numbers are `expected` (within the two seconds the overview promises);
    answers the overview."""
    deadline = time.time() + timeout
    while True:
        o = overview(sa, tenant)
        if numbers(o) == expected:
            return o
        if time.time() > deadline:
            assert numbers(o) == expected, "not within %.1f s" % timeout
        time.sleep(0.05)


def with_(expected, **changes):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in expected.items()}
    for k, v in changes.items():
        if "__" in k:
            a, b = k.split("__")
            out[a][b] = v
        else:
            out[k] = v
    return out


def png():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def fill(t):
    """Does a bit of everything in tenant t through its ADMIN; answers the ids it may delete later and the
    numbers the overview must show."""
    api = t["admin_api"]
    ids = {}
    ids["client"] = create_user(api, role="CLIENT")
    create_user(api, role="ADMIN")
    ids["key"] = ok(api.post(KEYS, json={"name": "ci"}), 201)["id"]
    ok(api.post(KEYS, json={"name": "web", "type": "publishable"}), 201)
    gone_key = ok(api.post(KEYS, json={"name": "old"}), 201)["id"]
    ok(api.delete(f"{KEYS}/{gone_key}"), 204)  # revoked: not counted
    ids["contacts"] = [ok(api.post(f"{CRM}/contacts", json={"first_name": f"C{i}",
                                                             "email": f"c{i}-{uuid.uuid4().hex[:6]}@x.com"}), 201)["id"]
                       for i in range(3)]
    ids["companies"] = [ok(api.post(f"{CRM}/companies", json={"name": f"Co {i}"}), 201)["id"] for i in range(2)]
    deal = lambda **b: ok(api.post(f"{CRM}/deals", json={"title": "D " + uuid.uuid4().hex[:4], **b}), 201)["id"]
    deal(amount=100000, currency="EUR")
    deal(amount=50000, currency="USD")
    deal()  # no amount
    ids["won"] = deal(amount=200000, currency="EUR")
    ok(api.patch(f"{CRM}/deals/{ids['won']}", json={"status": "won"}))
    ids["lost"] = deal(amount=30000, currency="EUR", status="lost")
    # A deal won at creation, with a value in another currency.
    ids["won_gbp"] = deal(amount=7000, currency="GBP", status="won")
    ok(api.post(TYPES, json=NOTE), 201)
    notes = [ok(api.post(f"{TYPES}/note/entries", json={"data": {"title": f"N{i}"}}), 201)["id"] for i in range(3)]
    for n in notes[:2]:
        ok(api.post(f"{TYPES}/note/entries/{n}/publish"))
    # An edit and a second publish of a published entry: still one published entry.
    ok(api.patch(f"{TYPES}/note/entries/{notes[0]}", json={"data": {"title": "N0 again"}}))
    ok(api.post(f"{TYPES}/note/entries/{notes[0]}/publish"))
    ids["notes"] = notes
    ids["media"] = [ok(api.post(f"{CMS}/media", files={"file": (f"p{i}.png", png(), "image/png")}), 201)["id"]
                    for i in range(2)]
    expected = with_(baseline(t["id"]), users=3, api_keys=3, contacts=3, companies=2, media=2)
    expected["deals"] = {"open": 3, "open_value": {"EUR": 100000, "USD": 50000}, "won_this_month": 2,
                         "won_value_this_month": {"EUR": 200000, "GBP": 7000}}
    expected["entries"] = {"published": 2}
    return ids, expected


def log_count(sa, tenant_id):
    """How many events the log holds for the tenant (every one of them is younger than 24 hours here)."""
    n, cursor = 0, None
    while True:
        params = {"tenant_id": tenant_id, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = ok(sa.get("/api/v1/events", params=params))
        n += len(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return n


def test_a_new_tenant_starts_with_its_admin_and_key(sa, anon):
    t = make_tenant(sa)
    o = shows(sa, t, baseline(t["id"]))
    assert set(o) == {"tenant_id", "users", "api_keys", "contacts", "companies", "deals", "entries", "media",
                      "billing", "events_24h", "api_calls", "updated_at"}
    assert o["updated_at"] and o["updated_at"].endswith("Z")
    # by slug the same
    assert numbers(ok(sa.get(overview_path(t["slug"])))) == baseline(t["id"])
    assert_problem(sa.get(overview_path("no-such-tenant")), 404)


def test_the_overview_counts_what_the_tenant_does_and_undoes(sa, anon):
    t = tenant_with_clients(sa, anon)
    other = tenant_with_clients(sa, anon)
    ids, expected = fill(t)
    shows(sa, t, expected)

    api = t["admin_api"]
    ok(api.delete(f"{CRM}/contacts/{ids['contacts'][0]}"), 204)
    ok(api.delete(f"{CRM}/companies/{ids['companies'][0]}"), 204)
    ok(api.delete(f"/api/v1/auth/users/{ids['client']['id']}"), 204)
    ok(api.delete(f"{KEYS}/{ids['key']}"), 204)
    ok(api.delete(f"{CMS}/media/{ids['media'][0]}"), 204)
    expected = with_(expected, contacts=2, companies=1, users=2, api_keys=2, media=1)
    shows(sa, t, expected)

    # Deals: a won deal reopened is open again (with its value); a lost one won; one deleted.
    ok(api.patch(f"{CRM}/deals/{ids['won']}", json={"status": "open"}))
    ok(api.patch(f"{CRM}/deals/{ids['lost']}", json={"status": "won", "amount": 45000}))
    ok(api.delete(f"{CRM}/deals/{ids['won_gbp']}"), 204)
    expected["deals"] = {"open": 4, "open_value": {"EUR": 300000, "USD": 50000}, "won_this_month": 1,
                         "won_value_this_month": {"EUR": 45000}}
    shows(sa, t, expected)
    # An open deal's value changes with its amount and currency.
    ok(api.patch(f"{CRM}/deals/{ids['won']}", json={"amount": 1000, "currency": "USD"}))
    expected["deals"]["open_value"] = {"EUR": 100000, "USD": 51000}
    shows(sa, t, expected)

    # Entries: unpublished, a published one deleted, and a type deleted with its published entry.
    notes = ids["notes"]
    ok(api.post(f"{TYPES}/note/entries/{notes[1]}/unpublish"))
    expected["entries"] = {"published": 1}
    shows(sa, t, expected)
    ok(api.post(f"{TYPES}/note/entries/{notes[1]}/publish"))
    ok(api.delete(f"{TYPES}/note/entries/{notes[0]}"), 204)
    ok(api.delete(f"{TYPES}/note/entries/{notes[2]}"), 204)  # a draft: the count stays
    shows(sa, t, expected)
    ok(api.delete(f"{TYPES}/note", params={"cascade": "true"}), 204)
    expected["entries"] = {"published": 0}
    shows(sa, t, expected)

    # Another tenant's numbers never move.
    assert numbers(overview(sa, other)) == baseline(other["id"])


def test_events_and_api_calls_are_the_logs_and_the_meters(sa, anon):
    t = tenant_with_clients(sa, anon)
    for _ in range(5):
        ok(t["key_api"].get("/api/v1/auth/me"))
    ok(t["admin_api"].post(f"{CRM}/contacts", json={"first_name": "Ann"}), 201)
    # A marker call: once it is metered, every call before it is too.
    deadline = time.time() + 10
    while True:
        o = overview(sa, t)
        usage = ok(sa.get(f"/api/v1/tenants/{t['id']}/usage"))
        logged = log_count(sa, t["id"])
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        calls_today = sum(d["calls"] for d in usage["days"] if d["day"] == today)
        if (o["api_calls"] == {"today": calls_today, "last_30_days": usage["total"]} and usage["total"] >= 6
                and o["events_24h"] == logged and o["contacts"] == 1):
            break
        assert time.time() < deadline, (o, usage, logged)
        time.sleep(0.2)
    # tenant.created, auth.user.created, auth.api_key.created, crm.pipeline (none yet), crm.contact.created …
    assert o["events_24h"] >= 3


def test_who_may_read_an_overview(sa, anon):
    t = tenant_with_clients(sa, anon)
    other = tenant_with_clients(sa, anon)
    admin = t["admin_api"]
    mine = ok(admin.get(overview_path(t["id"])))
    assert mine["tenant_id"] == t["id"]
    assert ok(admin.get(overview_path(t["slug"])))["tenant_id"] == t["id"]
    assert ok(t["key_api"].get(overview_path(t["id"])))["tenant_id"] == t["id"]  # its secret key ("*")
    # Another tenant, existing or not, is refused alike (no existence leak).
    assert_problem(admin.get(overview_path(other["id"])), 403)
    assert_problem(admin.get(overview_path(other["slug"])), 403)
    assert_problem(admin.get(overview_path("no-such-tenant")), 403)
    client = create_user(admin, role="CLIENT")
    _, client_api = user_session(anon, t, client)
    assert_problem(client_api.get(overview_path(t["id"])), 403)
    narrow = ok(admin.post(KEYS, json={"name": "crm only", "scopes": ["crm:read"]}), 201)["key"]
    assert_problem(Api(anon.base, {"X-API-Key": narrow}).get(overview_path(t["id"])), 403)
    assert_problem(anon.get(overview_path(t["id"])), 401)


def test_the_overview_is_in_the_openapi_document(anon):
    doc = ok(anon.get("/openapi.json"))
    op = doc["paths"]["/api/v1/tenants/{id}/overview"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/TenantOverview")
    schema = doc["components"]["schemas"]["TenantOverview"]
    assert {"users", "deals", "billing", "events_24h", "api_calls"} <= set(schema["required"])


# ---- storage helpers: the rebuild runs on the server's storage, and a test breaks a counter in it


def sql(storage, statement):
    """Runs one statement on cdx_db of the server's storage (psql or sqlite3); answers the rows."""
    if "CDX_DATABASE_URL" in storage:
        out = subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c",
                              statement.replace("FROM ", "FROM cdx_db.").replace("UPDATE ", "UPDATE cdx_db.")],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("|")) for line in out.splitlines() if line]
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "cdx_db.sqlite"), timeout=10)
    try:
        rows = db.execute(statement).fetchall()
        db.commit()
        return [tuple(str(c) for c in r) for r in rows]
    finally:
        db.close()


def rebuild(server):
    proc = run_cdx(["admin", "rebuild-aggregates"], env=cdx_env(server.storage), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def superadmin_of(server):
    token = ok(Api(server.url).post("/api/v1/auth/superadmin/login",
                                    json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
    return Api(server.url, {"Authorization": "Bearer " + token})


def test_rebuild_recounts_the_same_numbers_and_repairs_a_broken_counter():
    s = Server().start()
    try:
        sa = superadmin_of(s)
        anon = Api(s.url)
        t = tenant_with_clients(sa, anon)
        other = tenant_with_clients(sa, anon)
        ids, expected = fill(t)
        ok(other["admin_api"].post(f"{CRM}/contacts", json={"first_name": "Other"}), 201)
        other_expected = with_(baseline(other["id"]), contacts=1)
        before = shows(sa, t, expected)
        shows(sa, other, other_expected)

        out = rebuild(s)
        assert "rebuilt" in out
        after = overview(sa, t)
        assert numbers(after) == expected
        # the hour buckets recounted from the log: every event of the tenant (all of them younger than a day)
        assert before["events_24h"] <= after["events_24h"] == log_count(sa, t["id"])
        assert numbers(overview(sa, other)) == other_expected

        # A change after the rebuild is counted once, from where the rebuild left the cursor.
        ok(t["admin_api"].post(f"{CRM}/contacts", json={"first_name": "After"}), 201)
        expected = with_(expected, contacts=expected["contacts"] + 1)
        shows(sa, t, expected)

        # Counters and deal states broken in the database show as broken, and the rebuild repairs them.
        sql(s.storage, f"UPDATE tenant_counters SET value = 999 WHERE tenant_id = '{t['id']}' AND name = 'contacts'")
        sql(s.storage, f"UPDATE aggregate_deals SET status = 'lost' WHERE tenant_id = '{t['id']}'")
        sql(s.storage, f"DELETE FROM tenant_counters WHERE tenant_id = '{other['id']}'")
        assert overview(sa, t)["contacts"] == 999
        assert overview(sa, other)["users"] == 0
        rebuild(s)
        assert numbers(overview(sa, t)) == expected
        assert numbers(overview(sa, other)) == other_expected
        # The won deal's state is right again: deleting it takes back what it added.
        ok(t["admin_api"].delete(f"{CRM}/deals/{ids['won']}"), 204)
        expected["deals"] = dict(expected["deals"], won_this_month=1, won_value_this_month={"GBP": 7000})
        shows(sa, t, expected)
    finally:
        s.cleanup()


def test_a_deleted_tenants_aggregates_go_with_it(sa, anon, server):
    t = tenant_with_clients(sa, anon)
    ok(t["admin_api"].post(f"{CRM}/contacts", json={"first_name": "Gone"}), 201)
    shows(sa, t, with_(baseline(t["id"]), contacts=1))
    assert sql(server.storage, f"SELECT COUNT(*) FROM tenant_counters WHERE tenant_id = '{t['id']}'") != [("0",)]
    ok(sa.delete(f"/api/v1/tenants/{t['id']}"), 204)
    assert_problem(sa.get(overview_path(t["id"])), 404)
    deadline = time.time() + VISIBLE
    while True:
        left = [sql(server.storage, f"SELECT COUNT(*) FROM {table} WHERE tenant_id = '{t['id']}'")[0][0]
                for table in ("tenant_counters", "event_hours", "aggregate_deals")]
        if left == ["0", "0", "0"]:
            break
        assert time.time() < deadline, left
        time.sleep(0.05)


def all_events_count(sa):
    """How many events the whole log holds (every tenant's and the platform's)."""
    n, cursor = 0, None
    while True:
        page = ok(sa.get("/api/v1/events", params={"limit": 200, **({"cursor": cursor} if cursor else {})}))
        n += len(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return n


def test_the_platform_overview_counts_tenants_events_and_calls():
    """GET /api/v1/overview, the operator's first page: on a server of its own, so every number is known."""
    s = Server().start()
    try:
        sa = superadmin_of(s)
        anon = Api(s.url)
        tenants = [tenant_with_clients(sa, anon) for _ in range(3)]
        ok(sa.post(f"/api/v1/tenants/{tenants[0]['id']}/suspend"))
        for _ in range(4):
            ok(tenants[1]["key_api"].get("/api/v1/auth/me"))
        deadline = time.time() + 10
        while True:
            o = ok(sa.get("/api/v1/overview"))
            logged = all_events_count(sa)
            if o["events_24h"] == logged and o["api_calls"]["today"] >= 4:
                break
            assert time.time() < deadline, (o, logged)
            time.sleep(0.2)
        assert o["tenants"] == {"total": 3, "active": 2, "suspended": 1}
        assert o["api_calls"]["last_30_days"] >= o["api_calls"]["today"]
        hours = o["events_by_hour"]
        assert sum(h["events"] for h in hours) == o["events_24h"] and hours[-1]["hour"].endswith(":00:00Z")
        assert o["services"]["total"] >= 1 and o["services"]["up"] + o["services"]["down"] == o["services"]["total"]
        # The rebuild recounts the platform's hour buckets from the log: the same number.
        rebuild(s)
        assert ok(sa.get("/api/v1/overview"))["events_24h"] == all_events_count(sa)
        # The operator's page only.
        assert_problem(tenants[1]["admin_api"].get("/api/v1/overview"), 403)
        assert_problem(anon.get("/api/v1/overview"), 401)
    finally:
        s.cleanup()
