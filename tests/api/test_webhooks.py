"""Webhooks to tenants' apps (/api/v1/webhooks): endpoints with a secret shown once, deliveries signed per the
Standard Webhooks specification and verified here by the reference `standardwebhooks` npm package (a Node
receiver, tests/webhooks/receiver.mjs), retries, 410, timeouts, resets, Retry-After, the SSRF guard, the
delivery log, replays, rotation, tenant isolation, and one tenant's dead endpoint leaving another's deliveries
on time.

The server runs with webhooks_allow_loopback (the receiver is on 127.0.0.1), a fast retry schedule
(webhooks_retry_schedule) and a short attempt timeout (webhooks_timeout_ms) so the schedule runs in seconds."""
import json
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from conftest import SUPERADMIN, Api, Server, assert_problem, free_port, make_tenant, login, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER_DIR = os.path.join(HERE, "..", "webhooks")
ENDPOINTS = "/api/v1/webhooks/endpoints"
TIMEOUT_MS = 1500
FAST = {"CDX_WEBHOOKS_ALLOW_LOOPBACK": "true", "CDX_WEBHOOKS_RETRY_SCHEDULE": "0,0.3,0.3,0.3,0.3",
        "CDX_WEBHOOKS_TIMEOUT_MS": str(TIMEOUT_MS)}


class Receiver:
    """The Node receiver: each path answers as configured and records what it got, verified with the secrets
    it was given."""

    def __init__(self):
        if not os.path.isdir(os.path.join(RECEIVER_DIR, "node_modules", "standardwebhooks")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=RECEIVER_DIR, check=True,
                           capture_output=True)
        self.port = free_port()
        self.proc = subprocess.Popen(["node", os.path.join(RECEIVER_DIR, "receiver.mjs"), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line
        self.base = f"http://127.0.0.1:{self.port}"

    def path(self, mode="ok", secrets=(), times=None, retry_after=1):
        p = "/" + uuid.uuid4().hex
        self.configure(p, mode, secrets, times, retry_after)
        return p

    def configure(self, path, mode="ok", secrets=(), times=None, retry_after=1):
        r = requests.post(self.base + "/_config", json={"path": path, "mode": mode, "secrets": list(secrets),
                                                       "times": times, "retry_after": retry_after}, timeout=5)
        assert r.status_code == 204

    def url(self, path):
        return self.base + path

    def requests(self, path):
        return requests.get(self.base + "/_requests", params={"path": path}, timeout=5).json()

    def wait(self, path, n=1, timeout=10):
        got = wait_for(lambda: len(self.requests(path)) >= n and self.requests(path), timeout=timeout, interval=0.05)
        assert got and len(got) >= n, f"{path} got {len(got or [])} requests, expected {n}"
        return got

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def hook_server():
    s = Server(env=FAST).start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def hsa(hook_server):
    anon = Api(hook_server.url)
    r = anon.post("/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    assert r.status_code == 200, r.text
    return Api(hook_server.url, {"Authorization": "Bearer " + r.json()["access_token"]})


def new_tenant(sa):
    t = make_tenant(sa)
    anon = Api(sa.base)
    t["api"] = Api(sa.base, {"Authorization": "Bearer " + login(anon, t)})
    return t


@pytest.fixture
def ta(hsa):
    return new_tenant(hsa)


@pytest.fixture
def tb(hsa):
    return new_tenant(hsa)


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def endpoint(api, url, types=("*",), **extra):
    return ok(api.post(ENDPOINTS, json={"url": url, "event_types": list(types), **extra}), 201)


def hooked(api, receiver, types=("test.only",), mode="ok", times=None, retry_after=1):
    """An endpoint on a fresh receiver path that verifies with the endpoint's secret: (endpoint, path)."""
    path = receiver.path(mode=mode, times=times, retry_after=retry_after)
    e = endpoint(api, receiver.url(path), types)
    receiver.configure(path, mode, [e["secret"]], times, retry_after)
    return e, path


def contact(api):
    return ok(api.post("/api/v1/crm/contacts", json={"first_name": "Web", "last_name": uuid.uuid4().hex[:8],
                                                     "email": f"wh-{uuid.uuid4().hex[:10]}@example.com"}), 201)


def deliveries(api, endpoint_id, **params):
    return ok(api.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", params=params))["data"]


def settled(api, endpoint_id, n=1, timeout=10):
    """The endpoint's deliveries once n of them are no longer pending."""
    def probe():
        rows = deliveries(api, endpoint_id)
        done = [d for d in rows if d["status"] != "pending"]
        return rows if len(done) >= n else None
    rows = wait_for(probe, timeout=timeout, interval=0.1)
    assert rows, deliveries(api, endpoint_id)
    return rows


def verified(request, secret):
    assert request["verified"].get(secret) is True, request["verified"]
    return json.loads(request["body"])


# --- endpoints ---------------------------------------------------------------------------------------------


def test_endpoint_crud_and_the_secret_is_shown_once(ta):
    api = ta["api"]
    e = endpoint(api, "https://hooks.example.com/cdx?x=1", ["crm.*", "cms.entry.published"], description="CRM")
    assert e["secret"].startswith("whsec_") and len(e["secret"]) >= 6 + 32
    assert e["enabled"] is True and e["disabled_reason"] is None
    assert e["event_types"] == ["crm.*", "cms.entry.published"] and e["description"] == "CRM"
    got = ok(api.get(f"{ENDPOINTS}/{e['id']}"))
    assert "secret" not in got and got["url"] == "https://hooks.example.com/cdx?x=1"
    listed = ok(api.get(ENDPOINTS))
    assert [x["id"] for x in listed["data"]] == [e["id"]] and "secret" not in listed["data"][0]
    assert listed["next_cursor"] is None
    patched = ok(api.patch(f"{ENDPOINTS}/{e['id']}", json={"event_types": ["*"], "enabled": False,
                                                            "description": None}))
    assert patched["event_types"] == ["*"] and patched["enabled"] is False and patched["description"] is None
    assert "secret" not in patched
    assert ok(api.patch(f"{ENDPOINTS}/{e['id']}", json={"enabled": True}))["disabled_reason"] is None
    assert api.delete(f"{ENDPOINTS}/{e['id']}").status_code == 204
    assert_problem(api.get(f"{ENDPOINTS}/{e['id']}"), 404, "not_found")
    assert_problem(api.delete(f"{ENDPOINTS}/{e['id']}"), 404)


def test_list_pages_with_a_cursor(ta):
    api = ta["api"]
    made = [endpoint(api, f"https://h{i}.example.com/")["id"] for i in range(3)]
    first = ok(api.get(ENDPOINTS, params={"limit": 2}))
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = ok(api.get(ENDPOINTS, params={"limit": 2, "cursor": first["next_cursor"]}))
    assert second["next_cursor"] is None
    assert sorted(x["id"] for x in first["data"] + second["data"]) == sorted(made)
    assert_problem(api.get(ENDPOINTS, params={"cursor": "garbage!"}), 422)
    assert_problem(api.get(ENDPOINTS, params={"cursor": first["next_cursor"] + "x"}), 422)


def test_ids_that_cannot_be_ours_are_404(ta):
    api = ta["api"]
    for path in (f"{ENDPOINTS}/not-an-id", f"{ENDPOINTS}/{'a' * 36}/deliveries",
                 "/api/v1/webhooks/deliveries/01939a3c-0000-7000-8000-00000000000G/replay"):
        method = "POST" if path.endswith("replay") else "GET"
        assert_problem(api.request(method, path), 404, "not_found")


def test_event_type_patterns_are_the_event_logs(ta, receiver):
    """crm.* and crm. (the event log's ?type= grammar) are the same prefix."""
    api = ta["api"]
    dot, p_dot = hooked(api, receiver, ["crm."])
    assert dot["event_types"] == ["crm."]
    c = contact(api)
    got = receiver.wait(p_dot, timeout=10)
    assert verified(got[0], dot["secret"])["data"]["contact"]["id"] == c["id"]
    for bad in ("crm..", ".crm", "crm.**", "crm.*.x*"):
        errors = assert_problem(api.post(ENDPOINTS, json={"url": "https://e.com/", "event_types": [bad]}), 422)["errors"]
        assert errors[0]["field"] == "event_types[0]", (bad, errors)


@pytest.mark.parametrize("body,field", [
    ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "/relative", "event_types": ["*"]}, "url"),
    ({"url": "https://user:pw@example.com/", "event_types": ["*"]}, "url"),
    ({"url": "https://example.com/" + "a" * 2000, "event_types": ["*"]}, "url"),
    ({"url": "https://exa mple.com/", "event_types": ["*"]}, "url"),
    ({"event_types": ["*"]}, "url"),
    ({"url": "https://example.com/", "event_types": []}, "event_types"),
    ({"url": "https://example.com/", "event_types": ["CRM!"]}, "event_types[0]"),
    ({"url": "https://example.com/", "event_types": "crm.*"}, "event_types"),
    ({"url": "https://example.com/", "event_types": ["*"], "enabled": "yes"}, "enabled"),
    ({"url": "https://example.com/", "event_types": ["*"], "secret": "whsec_x"}, "secret"),
])
def test_bad_endpoints_are_422_naming_the_field(ta, body, field):
    r = ta["api"].post(ENDPOINTS, json=body)
    errors = assert_problem(r, 422, "validation_failed")["errors"]
    assert any(e["field"] == field or e["field"].startswith(field) for e in errors), errors


def test_malformed_json_is_400(ta):
    r = ta["api"].post(ENDPOINTS, data="{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_access_admin_and_scoped_keys_only(hsa, ta, receiver):
    api = ta["api"]
    anon = Api(hsa.base)
    assert anon.get(ENDPOINTS).status_code == 401
    reader = ok(api.post("/api/v1/auth/api-keys", json={"name": "r", "scopes": ["webhooks:read"]}), 201)["key"]
    writer = ok(api.post("/api/v1/auth/api-keys", json={"name": "w", "scopes": ["webhooks:write"]}), 201)["key"]
    crm = ok(api.post("/api/v1/auth/api-keys", json={"name": "c", "scopes": ["crm:read"]}), 201)["key"]
    e = endpoint(Api(hsa.base, {"X-API-Key": writer}), "https://example.com/hook")
    assert ok(Api(hsa.base, {"X-API-Key": reader}).get(ENDPOINTS))["data"][0]["id"] == e["id"]
    assert_problem(Api(hsa.base, {"X-API-Key": reader}).post(ENDPOINTS, json={"url": "https://e.com/",
                                                                              "event_types": ["*"]}), 403)
    assert_problem(Api(hsa.base, {"X-API-Key": crm}).get(ENDPOINTS), 403)
    # The SUPERADMIN acts inside a tenant it names.
    assert ok(hsa.get(ENDPOINTS, headers={"X-Tenant-ID": ta["id"]}))["data"][0]["id"] == e["id"]


# --- deliveries --------------------------------------------------------------------------------------------


def test_a_crm_contact_created_is_delivered_signed_and_verified(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, ["crm.*"])
    c = contact(api)
    req = receiver.wait(path)[0]
    body = verified(req, e["secret"])
    assert body["type"] == "crm.contact.created"
    assert body["data"]["contact"]["id"] == c["id"]
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    h = req["headers"]
    assert h["webhook-id"].startswith("msg_") and h["content-type"] == "application/json"
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 30
    assert h["webhook-signature"].startswith("v1,") and "user-agent" in h
    rows = settled(api, e["id"])
    d = rows[0]
    assert d["status"] == "succeeded" and d["event_type"] == "crm.contact.created" and d["webhook_id"] == h["webhook-id"]
    assert d["tries"] == 1 and len(d["attempts"]) == 1
    a = d["attempts"][0]
    assert a["status_code"] == 200 and a["error"] is None and a["latency_ms"] >= 0 and a["response"] == "ok"


def test_event_types_match_exactly_by_prefix_or_all(ta, receiver):
    api = ta["api"]
    exact, p_exact = hooked(api, receiver, ["crm.contact.created"])
    prefix, p_prefix = hooked(api, receiver, ["crm.*"])
    every, p_every = hooked(api, receiver, ["*"])
    other, p_other = hooked(api, receiver, ["cms.*", "crm.contact.deleted", "crm.contact"])
    c = contact(api)
    ok(api.patch(f"/api/v1/crm/contacts/{c['id']}", json={"title": "CTO"}))
    crm = lambda path: sorted(t for t in (json.loads(r["body"])["type"] for r in receiver.requests(path))
                              if t.startswith("crm."))
    assert wait_for(lambda: crm(p_every) == ["crm.contact.created", "crm.contact.updated"], timeout=8), \
        crm(p_every)
    assert sorted(json.loads(r["body"])["type"] for r in receiver.wait(p_prefix, 2)) == \
        ["crm.contact.created", "crm.contact.updated"]
    time.sleep(0.5)
    assert [json.loads(r["body"])["type"] for r in receiver.requests(p_exact)] == ["crm.contact.created"]
    assert receiver.requests(p_other) == []


def test_a_test_event_is_sent_at_once(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, ["crm.deal.won"])
    d = ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    assert d["event_type"] == "webhook.test" and d["status"] in ("pending", "succeeded")
    body = verified(receiver.wait(path)[0], e["secret"])
    assert body["type"] == "webhook.test" and body["data"]["endpoint_id"] == e["id"]


def test_a_disabled_endpoint_gets_nothing(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, ["crm.*"])
    live, live_path = hooked(api, receiver, ["crm.*"])
    ok(api.patch(f"{ENDPOINTS}/{e['id']}", json={"enabled": False}))
    c = contact(api)
    # The enabled endpoint of the same tenant hears of the contact: the event went through the fan-out.
    got = receiver.wait(live_path, timeout=10)
    assert verified(got[0], live["secret"])["data"]["contact"]["id"] == c["id"]
    time.sleep(0.3)
    assert receiver.requests(path) == []
    assert deliveries(api, e["id"]) == []


def test_rotation_signs_with_both_secrets_then_shows_the_new_one_once(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver)
    old = e["secret"]
    rotated = ok(api.post(f"{ENDPOINTS}/{e['id']}/rotate-secret"))
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old and rotated["previous_secret_expires_at"]
    assert "secret" not in ok(api.get(f"{ENDPOINTS}/{e['id']}"))
    receiver.configure(path, "ok", [old, new])
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    req = receiver.wait(path)[0]
    assert req["verified"] == {old: True, new: True}, req["verified"]
    assert len(req["headers"]["webhook-signature"].split(" ")) == 2


def test_failures_are_retried_with_the_same_webhook_id_until_success(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="500", times=2)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    got = receiver.wait(path, 3)
    assert len({r["headers"]["webhook-id"] for r in got}) == 1
    for r in got:
        verified(r, e["secret"])
    assert got[1]["at"] - got[0]["at"] >= 0.2  # the schedule's delay (0.3 s ± 10 %)
    d = settled(api, e["id"])[0]
    assert d["status"] == "succeeded" and d["tries"] == 3
    assert [a["status_code"] for a in d["attempts"]] == [500, 500, 200]
    assert d["attempts"][0]["response"] == "receiver error" and "500" in d["attempts"][0]["error"]
    failed = deliveries(api, e["id"], status="failed")
    assert failed == []
    assert [x["id"] for x in deliveries(api, e["id"], status="succeeded")] == [d["id"]]


def test_retries_end_in_failure_after_the_schedule(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="500")
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(api, e["id"], timeout=15)[0]
    assert d["status"] == "failed" and d["tries"] == 5 and len(receiver.requests(path)) == 5
    assert ok(api.get(f"{ENDPOINTS}/{e['id']}"))["enabled"] is True


def test_410_gone_disables_the_endpoint(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="410")
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(api, e["id"])[0]
    assert d["status"] == "failed" and [a["status_code"] for a in d["attempts"]] == [410]
    got = wait_for(lambda: not ok(api.get(f"{ENDPOINTS}/{e['id']}"))["enabled"], timeout=5)
    assert got
    ep = ok(api.get(f"{ENDPOINTS}/{e['id']}"))
    assert ep["enabled"] is False and "410" in ep["disabled_reason"]
    time.sleep(0.5)
    assert len(receiver.requests(path)) == 1  # no retry
    # The disabling is an event of the tenant's log.
    ev = wait_for(lambda: [x for x in ok(api.get("/api/v1/events", params={"type": "webhook.*"}))["data"]
                           if x["subject"] == e["id"]], timeout=8)
    assert ev and ev[0]["type"] == "webhook.endpoint.disabled" and ev[0]["tenant_id"] == ta["id"]
    assert "410" in ev[0]["data"]["endpoint"]["disabled_reason"]


def test_a_hanging_receiver_times_out_and_is_retried(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="hang", times=1)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(api, e["id"], timeout=15)[0]
    assert d["status"] == "succeeded" and d["tries"] == 2
    first = d["attempts"][0]
    assert first["status_code"] is None and "timed out" in first["error"]
    assert TIMEOUT_MS * 0.9 <= first["latency_ms"] <= TIMEOUT_MS + 1000


def test_a_reset_connection_is_a_failed_attempt_then_retried(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="reset", times=2)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(api, e["id"])[0]
    # One reset fails the attempt; on a kept-alive connection a reset before the answer is first taken for an
    # idle connection the receiver closed, and sent once more on a new one: the attempt fails on the second.
    assert d["status"] == "succeeded" and d["tries"] in (2, 3)
    assert d["attempts"][0]["status_code"] is None and d["attempts"][0]["error"]
    assert [a["status_code"] for a in d["attempts"][1:]][-1] == 200


def send_settled(api, e, n):
    """POSTs …/test and waits until the endpoint has n settled deliveries; answers the newest."""
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    return settled(api, e["id"], n=n)[0]


def test_deliveries_one_after_another_reuse_one_connection(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver)
    for n in range(1, 6):
        d = send_settled(api, e, n)
        assert d["status"] == "succeeded" and d["tries"] == 1
    got = receiver.requests(path)
    assert len(got) == 5
    assert len({r["conn"] for r in got}) == 1, [r["conn"] for r in got]


def test_a_connection_the_receiver_closed_while_idle_is_not_reused(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="close-after")
    send_settled(api, e, 1)
    time.sleep(0.3)  # the receiver closes it 50 ms after its answer
    d = send_settled(api, e, 2)
    assert d["status"] == "succeeded" and d["tries"] == 1 and d["attempts"][0]["status_code"] == 200
    got = receiver.requests(path)
    assert len(got) == 2 and got[0]["conn"] != got[1]["conn"]


def test_a_reused_connection_closed_before_the_answer_is_sent_again_on_a_new_one(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="drop-reused")
    send_settled(api, e, 1)
    d = send_settled(api, e, 2)
    # One attempt, answered 200: the request went once more, with the same webhook-id, on a new connection.
    assert d["status"] == "succeeded" and d["tries"] == 1 and d["attempts"][0]["status_code"] == 200
    second = [r for r in receiver.requests(path) if r["headers"]["webhook-id"] == d["webhook_id"]]
    assert len(second) == 2 and second[0]["conn"] != second[1]["conn"], second
    verified(second[1], e["secret"])


def test_an_interim_answer_is_read_past_and_the_connection_reused_for_the_next(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="early-hints")
    for n in (1, 2):
        d = send_settled(api, e, n)
        assert d["status"] == "succeeded" and d["tries"] == 1, d
        assert d["attempts"][0]["status_code"] == 200 and d["attempts"][0]["response"] == "ok after hints"
    got = receiver.requests(path)
    assert len(got) == 2 and got[0]["conn"] == got[1]["conn"]


def test_retry_after_on_429_is_honoured(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="429", times=1, retry_after=2)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    got = receiver.wait(path, 2, timeout=10)
    assert got[1]["at"] - got[0]["at"] >= 1.9  # not the schedule's 0.3 s
    d = settled(api, e["id"])[0]
    assert [a["status_code"] for a in d["attempts"]] == [429, 200]


@pytest.mark.parametrize("url,why", [("http://169.254.169.254/latest/meta-data", "metadata"),
                                     ("http://10.0.0.1/hook", "private"),
                                     ("http://[::ffff:10.0.0.1]:8080/hook", "private"),
                                     ("http://100.64.0.1/hook", "CGNAT"),
                                     ("http://0.0.0.0/hook", "unspecified")])
def test_the_ssrf_guard_refuses_inner_addresses(ta, url, why):
    api = ta["api"]
    e = endpoint(api, url)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = wait_for(lambda: [x for x in deliveries(api, e["id"]) if x["attempts"]], timeout=5)
    assert d, deliveries(api, e["id"])
    a = d[0]["attempts"][0]
    assert a["status_code"] is None and "SSRF" in a["error"] and why in a["error"], a
    assert a["latency_ms"] < 500  # refused before connecting


def test_loopback_is_refused_without_the_switch(receiver):
    s = Server().start()  # no webhooks_allow_loopback
    try:
        anon = Api(s.url)
        tok = anon.post("/api/v1/auth/superadmin/login",
                        json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}).json()["access_token"]
        t = new_tenant(Api(s.url, {"Authorization": "Bearer " + tok}))
        path = receiver.path()
        e = endpoint(t["api"], receiver.url(path))
        ok(t["api"].post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        d = wait_for(lambda: [x for x in deliveries(t["api"], e["id"]) if x["attempts"]], timeout=5)
        assert d
        assert "SSRF" in d[0]["attempts"][0]["error"] and "loopback" in d[0]["attempts"][0]["error"]
        time.sleep(0.3)
        assert receiver.requests(path) == []
    finally:
        s.cleanup()


# --- log, replay, isolation --------------------------------------------------------------------------------


def test_replay_one_delivery_sends_the_same_message_again(ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver)
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(api, e["id"])[0]
    again = ok(api.post(f"/api/v1/webhooks/deliveries/{d['id']}/replay"), 202)
    assert again["id"] == d["id"]
    got = receiver.wait(path, 2)
    assert got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]
    assert verified(got[1], e["secret"]) == verified(got[0], e["secret"])
    d2 = wait_for(lambda: len(deliveries(api, e["id"])[0]["attempts"]) == 2 and deliveries(api, e["id"])[0],
                  timeout=5)
    assert d2 and d2["status"] == "succeeded"


def test_replay_since_queues_the_matching_logged_events(ta, receiver):
    api = ta["api"]
    since = (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    c1, c2 = contact(api), contact(api)
    # The events are in the log (the relay moves them every second) before the endpoint exists.
    wait_for(lambda: len([e for e in ok(api.get("/api/v1/events", params={"type": "crm.*"}))["data"]
                          if e["subject"] in (c1["id"], c2["id"])]) == 2, timeout=8)
    e, path = hooked(api, receiver, ["crm.contact.created"])
    time.sleep(1.5)
    assert receiver.requests(path) == []
    assert_problem(api.post(f"{ENDPOINTS}/{e['id']}/replay"), 422)
    assert_problem(api.post(f"{ENDPOINTS}/{e['id']}/replay", params={"since": "yesterday"}), 422)
    r = ok(api.post(f"{ENDPOINTS}/{e['id']}/replay", params={"since": since}), 202)
    assert r["queued"] == 2 and r["more"] is False and r["next_since"] is None  # crm.contact.created only
    got = receiver.wait(path, 2)
    ids = {verified(x, e["secret"])["data"]["contact"]["id"] for x in got}
    assert ids == {c1["id"], c2["id"]}


def test_another_tenant_cannot_see_or_replay(ta, tb, receiver):
    e, path = hooked(ta["api"], receiver)
    ok(ta["api"].post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = settled(ta["api"], e["id"])[0]
    b = tb["api"]
    assert ok(b.get(ENDPOINTS))["data"] == []
    for method, url in [("GET", f"{ENDPOINTS}/{e['id']}"), ("PATCH", f"{ENDPOINTS}/{e['id']}"),
                        ("DELETE", f"{ENDPOINTS}/{e['id']}"), ("GET", f"{ENDPOINTS}/{e['id']}/deliveries"),
                        ("POST", f"{ENDPOINTS}/{e['id']}/test"), ("POST", f"{ENDPOINTS}/{e['id']}/rotate-secret"),
                        ("POST", f"/api/v1/webhooks/deliveries/{d['id']}/replay")]:
        kw = {"json": {"description": "x"}} if method == "PATCH" else {}
        assert_problem(b.request(method, url, **kw), 404)
    time.sleep(0.3)
    assert len(receiver.requests(path)) == 1
    assert ok(ta["api"].get(f"{ENDPOINTS}/{e['id']}"))["description"] is None


def test_two_tenants_events_interleaved_in_one_batch_reach_both(ta, tb, receiver):
    """The fan-out reads each tenant's endpoints once a batch (on PostgreSQL under that tenant's row-level
    security): events of two tenants made alternately, within one relay batch, all arrive at their own."""
    ea, pa = hooked(ta["api"], receiver, ["crm.contact.created"])
    eb, pb = hooked(tb["api"], receiver, ["crm.contact.created"])
    made_a, made_b = [], []
    for _ in range(4):
        made_a.append(contact(ta["api"])["id"])
        made_b.append(contact(tb["api"])["id"])
    got_a = receiver.wait(pa, 4, timeout=10)
    got_b = receiver.wait(pb, 4, timeout=10)
    assert sorted(verified(r, ea["secret"])["data"]["contact"]["id"] for r in got_a) == sorted(made_a)
    assert sorted(verified(r, eb["secret"])["data"]["contact"]["id"] for r in got_b) == sorted(made_b)


def test_a_dead_endpoint_of_one_tenant_does_not_delay_another(ta, tb, receiver):
    dead, dead_path = hooked(ta["api"], receiver, mode="hang")
    for _ in range(40):  # more than its slots: they hang until the timeout
        ok(ta["api"].post(f"{ENDPOINTS}/{dead['id']}/test"), 202)
    receiver.wait(dead_path, 10)
    live, live_path = hooked(tb["api"], receiver)
    latencies = []
    for i in range(5):
        t0 = time.time()
        ok(tb["api"].post(f"{ENDPOINTS}/{live['id']}/test"), 202)
        got = receiver.wait(live_path, i + 1, timeout=5)
        latencies.append(got[i]["at"] - t0)
    assert max(latencies) < 1.0, latencies  # a hang lasts 1.5 s: B never waited for one


def cdx_sql(storage, query):
    """Rows of a query on cdx_db, beside the server (as the database's owner: no row-level security)."""
    if "CDX_DATABASE_URL" in storage:
        out = subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-c", query], check=True, capture_output=True, text=True)
        return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "cdx_db.sqlite"), timeout=30)
    try:
        return [tuple(str(v) for v in r) for r in db.execute(query.replace("cdx_db.", "")).fetchall()]
    finally:
        db.close()


def cdx_write(storage, query):
    """A change to cdx_db beside the (stopped) server."""
    if "CDX_DATABASE_URL" in storage:
        subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-v", "ON_ERROR_STOP=1", "-c", query], check=True,
                       capture_output=True, text=True)
        return
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "cdx_db.sqlite"), timeout=30)
    try:
        db.execute(query.replace("cdx_db.", ""))
        db.commit()
    finally:
        db.close()


def rows_of(storage, tenant_id):
    return [int(cdx_sql(storage, f"SELECT COUNT(*) FROM cdx_db.{t} WHERE tenant_id = '{tenant_id}'")[0][0])
            for t in ("webhook_endpoints", "webhook_deliveries", "webhook_attempts")]


def test_secrets_are_sealed_at_rest(hook_server, ta):
    e = endpoint(ta["api"], "https://example.com/hook")
    stored = cdx_sql(hook_server.storage, f"SELECT secret, secret_kek FROM cdx_db.webhook_endpoints "
                                          f"WHERE id = '{e['id']}'")
    assert stored and stored[0][1]
    assert e["secret"][6:] not in stored[0][0] and "whsec_" not in stored[0][0]


def test_deleting_a_tenant_purges_its_webhooks(hook_server, hsa, receiver):
    t = new_tenant(hsa)
    e, path = hooked(t["api"], receiver)
    ok(t["api"].post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    receiver.wait(path)
    settled(t["api"], e["id"])
    assert rows_of(hook_server.storage, t["id"]) == [1, 1, 1]
    assert hsa.delete(f"/api/v1/tenants/{t['id']}").status_code == 204
    # The purge follows the tenant.deleted event (core's purge subscriber): within seconds.
    assert wait_for(lambda: rows_of(hook_server.storage, t["id"]) == [0, 0, 0], timeout=10), \
        rows_of(hook_server.storage, t["id"])


def test_an_endpoint_failing_past_the_limit_is_disabled(receiver):
    # webhooks_disable_after stands in for the five days: 1 s of continuous failure.
    s = Server(env={**FAST, "CDX_WEBHOOKS_DISABLE_AFTER": "1",
                    "CDX_WEBHOOKS_RETRY_SCHEDULE": "0,0.4,0.4,0.4,0.4,0.4,0.4"}).start()
    try:
        anon = Api(s.url)
        tok = anon.post("/api/v1/auth/superadmin/login",
                        json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}).json()["access_token"]
        t = new_tenant(Api(s.url, {"Authorization": "Bearer " + tok}))
        e, path = hooked(t["api"], receiver, mode="500")
        ok(t["api"].post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        assert wait_for(lambda: not ok(t["api"].get(f"{ENDPOINTS}/{e['id']}"))["enabled"], timeout=10)
        ep = ok(t["api"].get(f"{ENDPOINTS}/{e['id']}"))
        assert ep["disabled_reason"].startswith("failing since")
        n = len(receiver.requests(path))
        assert 3 <= n < 7  # stopped before the schedule ran out
        time.sleep(1)
        assert len(receiver.requests(path)) == n
        # Re-enabled by a user, it is tried afresh.
        receiver.configure(path, "ok", [e["secret"]])
        back = ok(t["api"].patch(f"{ENDPOINTS}/{e['id']}", json={"enabled": True}))
        assert back["enabled"] is True and back["disabled_reason"] is None
        ok(t["api"].post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        receiver.wait(path, n + 1)
    finally:
        s.cleanup()


def test_rotate_kek_reseals_webhook_secrets(receiver):
    from conftest import cdx_env, new_kek, run_cdx
    s = Server(env=FAST).start()
    try:
        anon = Api(s.url)
        tok = anon.post("/api/v1/auth/superadmin/login",
                        json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}).json()["access_token"]
        t = new_tenant(Api(s.url, {"Authorization": "Bearer " + tok}))
        e, path = hooked(t["api"], receiver)
        s.stop()
        old, new = s.storage["CDX_KEK"], new_kek()
        before = cdx_sql(s.storage, f"SELECT secret_kek FROM cdx_db.webhook_endpoints WHERE id = '{e['id']}'")[0][0]
        r = run_cdx(["admin", "rotate-kek"], env=cdx_env(s.storage, CDX_KEK=new, CDX_KEK_PREVIOUS=old))
        assert r.returncode == 0, r.stdout + r.stderr
        after = cdx_sql(s.storage, f"SELECT secret_kek FROM cdx_db.webhook_endpoints WHERE id = '{e['id']}'")[0][0]
        assert after != before
        s.storage["CDX_KEK"] = new  # the old key is gone
        s.start()
        api = Api(s.url, {"Authorization": "Bearer " + login(Api(s.url), t)})
        ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        verified(receiver.wait(path)[0], e["secret"])  # signed with the secret shown at creation
    finally:
        s.cleanup()


def test_kill_9_between_commit_and_delivery_loses_nothing(receiver):
    """The server dies right after the changes commit, before (most of) their deliveries: after the restart
    every event is delivered, each with one webhook-id (a repeat is allowed, at least once, but never a loss)."""
    import signal
    s = Server(env=FAST).start()
    try:
        anon = Api(s.url)
        token = ok(anon.post("/api/v1/auth/superadmin/login",
                             json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
        t = new_tenant(Api(s.url, {"Authorization": "Bearer " + token}))
        e, path = hooked(t["api"], receiver, types=("crm.contact.created",))
        made = [contact(t["api"])["id"] for _ in range(30)]
        s.stop(sig=signal.SIGKILL)
        s.start()
        def every_one():  # repeats (sent before the kill, not recorded) count once
            got = receiver.requests(path)
            return got if {json.loads(r["body"])["data"]["contact"]["id"] for r in got} >= set(made) else None
        # On SQLite a restart frees the leases the crash left; on PostgreSQL (other replicas may hold theirs) a
        # delivery leased when the server died is due again when its lease runs out: the attempt's timeout + 30 s.
        lease = TIMEOUT_MS / 1000 + 30 if "CDX_DATABASE_URL" in s.storage else 0
        got = wait_for(every_one, timeout=20 + lease, interval=0.1)
        assert got, f"{len(receiver.requests(path))} requests for {len(made)} contacts"
        bodies = [verified(r, e["secret"]) for r in got]
        assert sorted({b["data"]["contact"]["id"] for b in bodies}) == sorted(made)
        ids = {}
        for r, b in zip(got, bodies):
            ids.setdefault(b["data"]["contact"]["id"], set()).add(r["headers"]["webhook-id"])
        assert all(len(v) == 1 for v in ids.values())  # a repeat carries the same webhook-id
    finally:
        s.cleanup()


def own_server(env):
    s = Server(env=env).start()
    anon = Api(s.url)
    token = ok(anon.post("/api/v1/auth/superadmin/login",
                         json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
    return s, new_tenant(Api(s.url, {"Authorization": "Bearer " + token}))


def leased(storage, endpoint_id):
    return int(cdx_sql(storage, f"SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE endpoint_id = '{endpoint_id}' "
                                f"AND status = 'pending' AND lease_until IS NOT NULL")[0][0])


def test_a_hanging_endpoint_with_more_queued_than_its_slots_gets_each_attempt_once(receiver):
    """A claim leases only what has a free slot (32 per endpoint): the rest stays unleased, so no lease runs out
    while its delivery waits for a slot, and nothing is sent twice."""
    s, t = own_server({**FAST, "CDX_WEBHOOKS_RETRY_SCHEDULE": "0", "CDX_WEBHOOKS_TIMEOUT_MS": "1000"})
    try:
        api = t["api"]
        e, path = hooked(api, receiver, types=("test.only",), mode="hang")
        n = 80
        for _ in range(n):
            ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        most = 0
        deadline = time.time() + 40
        while time.time() < deadline:
            most = max(most, leased(s.storage, e["id"]))
            if int(cdx_sql(s.storage, f"SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE endpoint_id = "
                                      f"'{e['id']}' AND status = 'failed'")[0][0]) == n:
                break
            time.sleep(0.05)
        assert 0 < most <= 32, most
        rows = []
        page = {"limit": 100}
        while True:
            got = ok(api.get(f"{ENDPOINTS}/{e['id']}/deliveries", params=page))
            rows += got["data"]
            if not got["next_cursor"]:
                break
            page["cursor"] = got["next_cursor"]
        assert len(rows) == n and all(d["status"] == "failed" for d in rows), [d["status"] for d in rows]
        assert all(d["tries"] == 1 and len(d["attempts"]) == 1 for d in rows), \
            [(d["tries"], len(d["attempts"])) for d in rows if d["tries"] != 1 or len(d["attempts"]) != 1]
        assert all("timed out" in d["attempts"][0]["error"] for d in rows)
        time.sleep(1.5)  # nothing comes after the last failure
        ids = [r["headers"]["webhook-id"] for r in receiver.requests(path)]
        assert len(ids) == n and len(set(ids)) == n, (len(ids), len(set(ids)))
    finally:
        s.cleanup()


def test_an_attempt_of_a_deleted_endpoint_is_not_recorded(hook_server, ta, receiver):
    api = ta["api"]
    e, path = hooked(api, receiver, mode="hang")
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    receiver.wait(path)
    assert api.delete(f"{ENDPOINTS}/{e['id']}").status_code == 204
    time.sleep(TIMEOUT_MS / 1000 + 1)  # the attempt times out and would be recorded
    count = lambda table: int(cdx_sql(hook_server.storage, f"SELECT COUNT(*) FROM cdx_db.{table} "
                                                           f"WHERE endpoint_id = '{e['id']}'")[0][0])
    assert count("webhook_attempts") == 0 and count("webhook_deliveries") == 0
    assert len(receiver.requests(path)) == 1


def test_replaying_a_delivery_in_flight_queues_another_attempt_after_it(hook_server, ta, receiver):
    """As Svix's resend: 202, the attempt in flight finishes and is recorded, then a new attempt follows (never
    two at once), with the same webhook-id and a fresh schedule."""
    api = ta["api"]
    e, path = hooked(api, receiver, mode="hang", times=1)
    d = ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    receiver.wait(path)
    t0 = time.time()
    again = ok(api.post(f"/api/v1/webhooks/deliveries/{d['id']}/replay"), 202)
    assert again["id"] == d["id"] and again["status"] == "pending"
    leased = cdx_sql(hook_server.storage, f"SELECT lease_until IS NOT NULL FROM cdx_db.webhook_deliveries "
                                          f"WHERE id = '{d['id']}'")[0][0]
    assert leased in ("1", "t"), leased  # the attempt in flight keeps its lease
    got = receiver.wait(path, 2, timeout=10)
    assert got[1]["at"] - t0 >= TIMEOUT_MS / 1000 - 0.5  # after the hanging attempt timed out, not beside it
    done = settled(api, e["id"], timeout=10)[0]
    assert done["status"] == "succeeded" and done["tries"] == 1, done  # the replay's fresh schedule
    assert [a["status_code"] for a in done["attempts"]] == [None, 200]  # the timeout stands in the log
    time.sleep(0.5)
    assert len(receiver.requests(path)) == 2
    assert len({r["headers"]["webhook-id"] for r in receiver.requests(path)}) == 1


def test_finished_deliveries_past_the_retention_are_pruned(receiver):
    """Finished deliveries (and their attempts) last changed before event_retention_days go; pending ones and
    recent ones stay. The pass runs soon after a start, then once a minute."""
    s, t = own_server({**FAST, "CDX_EVENT_RETENTION_DAYS": "1"})
    try:
        api = t["api"]
        e, path = hooked(api, receiver)
        for _ in range(3):
            ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
        rows = settled(api, e["id"], 3)
        old, kept_old_pending, recent = rows[0]["id"], rows[1]["id"], rows[2]["id"]
        s.stop()
        # Two of them made and finished three days ago (UUIDv7 ids carry their time), one of those pending.
        ms = int((time.time() - 3 * 86400) * 1000)
        for i, (d, status) in enumerate([(old, "succeeded"), (kept_old_pending, "pending")]):
            new_id = f"{ms >> 16:08x}-{ms & 0xffff:04x}-7000-8000-00000000000{i}"
            for q in (f"UPDATE cdx_db.webhook_attempts SET delivery_id = '{new_id}' WHERE delivery_id = '{d}'",
                      f"UPDATE cdx_db.webhook_deliveries SET id = '{new_id}', status = '{status}', "
                      f"next_attempt_at = {int(time.time() * 1000) + 3600_000}, "
                      f"updated_at = '2020-01-01T00:00:00.000000Z' WHERE id = '{d}'"):
                cdx_write(s.storage, q)
        before = rows_of(s.storage, t["id"])
        assert before == [1, 3, 3], before
        s.start()
        assert wait_for(lambda: rows_of(s.storage, t["id"]) == [1, 2, 2], timeout=15), rows_of(s.storage, t["id"])
        left = sorted(x["id"] for x in deliveries(api, e["id"]))
        assert recent in left and len(left) == 2 and old not in left
    finally:
        s.cleanup()
