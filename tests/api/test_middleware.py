"""The middleware chain's plan gate: a module's routes answer only tenants whose plan lists the module
(403 problem+json otherwise, for every credential kind); the operator acts everywhere; changing the plan
takes effect at once. Runs in both topologies (the gateway runs the same chain)."""
import uuid

from conftest import assert_problem, tenant_with_clients


def test_a_plan_without_crm_closes_the_crm_routes(sa, anon):
    key = "nocrm-" + uuid.uuid4().hex[:8]
    r = sa.post("/api/v1/plans", json={"key": key, "name": "No CRM " + key, "modules": ["auth", "cms"]})
    assert r.status_code == 201, r.text
    t = tenant_with_clients(sa, anon)
    assert t["admin_api"].get("/api/v1/crm/contacts").status_code == 200, "the free plan has crm"

    assert sa.patch(f"/api/v1/tenants/{t['id']}", json={"plan": key}).status_code == 200
    for api in (t["admin_api"], t["key_api"]):
        for method, path, body in (("GET", "/api/v1/crm/contacts", None),
                                   ("POST", "/api/v1/crm/companies", {"name": "Gated"}),
                                   ("GET", "/api/v1/crm/deals/" + str(uuid.uuid4()), None),
                                   ("GET", "/api/v1/crm/pipelines", None)):
            problem = assert_problem(api.request(method, path, json=body), 403, "forbidden")
            assert "crm" in problem["detail"] and key in problem["detail"], problem
    # Other modules' routes still answer; so does the operator acting in the tenant.
    assert t["admin_api"].get("/api/v1/auth/me").status_code == 200
    assert sa.get("/api/v1/crm/contacts", headers={"X-Tenant-ID": t["id"]}).status_code == 200
    # Nothing was created behind the gate.
    assert sa.get("/api/v1/crm/companies", headers={"X-Tenant-ID": t["id"]}).json()["data"] == []

    assert sa.patch(f"/api/v1/tenants/{t['id']}", json={"plan": "free"}).status_code == 200
    assert t["key_api"].get("/api/v1/crm/contacts").status_code == 200, "the gate opens with the plan"


def test_unauthenticated_crm_requests_are_401_not_403(anon):
    r = anon.get("/api/v1/crm/contacts")
    assert_problem(r, 401)
