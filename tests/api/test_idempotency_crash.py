"""An Idempotency-Key's answer commits with the change it describes. The process is killed the moment a
create has committed, before its answer is written (CDX_TEST_CRASH_AFTER_COMMIT); the client retries with
the same key and gets the first answer, and exactly one object exists. In the constellation the crm service
dies and its supervisor restarts it; in the monolith the whole process dies and is started again."""
import uuid

import requests

from conftest import Api, Server, SUPERADMIN, TOPOLOGY, wait_for

ROUTE = "POST /api/v1/crm/companies"


def superadmin(base):
    r = requests.post(base + "/api/v1/auth/superadmin/login",
                      json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}, timeout=10)
    assert r.status_code == 200, r.text
    return Api(base, {"Authorization": "Bearer " + r.json()["access_token"]})


def test_a_crash_between_commit_and_answer_never_makes_a_second_object():
    server = Server(env={"CDX_TEST_CRASH_AFTER_COMMIT": ROUTE}).start()
    try:
        sa = superadmin(server.url)
        slug = "crash-" + uuid.uuid4().hex[:8]
        t = sa.post("/api/v1/tenants", json={"name": slug, "slug": slug, "admin_email": f"a@{slug}.example.com",
                                             "admin_password": "admin-password-1"})
        assert t.status_code == 201, t.text
        key_api = Api(server.url, {"X-API-Key": t.json()["api_key"]})
        key = str(uuid.uuid4())
        body = {"name": "Crash " + key[:8]}

        try:
            first = key_api.post("/api/v1/crm/companies", json=body, headers={"Idempotency-Key": key})
            assert first.status_code == 502, f"the create must not be answered: {first.status_code} {first.text}"
        except requests.ConnectionError:
            pass  # the monolith died with the connection open

        if TOPOLOGY == "monolith":
            assert server.proc.wait(10) == 137, "the fault ends the process after the commit"
            server.stop()
            server = Server(storage=server.storage).start()  # same data, no fault
            key_api = Api(server.url, key_api.headers)

        # A client retries with the same key until the service answers (the supervisor restarts crm).
        answers = []

        def answered():
            answers.append(key_api.post("/api/v1/crm/companies", json=body, headers={"Idempotency-Key": key}))
            return answers[-1].status_code != 502

        assert wait_for(answered, timeout=15, interval=0.2), answers[-1].text
        retry = answers[-1]
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("Idempotent-Replayed") == "true", "the stored answer, not a second create"
        again = key_api.post("/api/v1/crm/companies", json=body, headers={"Idempotency-Key": key})
        assert again.json()["id"] == retry.json()["id"]
        listed = key_api.get("/api/v1/crm/companies", params={"q": body["name"]}).json()["data"]
        assert [c["id"] for c in listed] == [retry.json()["id"]], "exactly one object exists"
    finally:
        server.cleanup()
