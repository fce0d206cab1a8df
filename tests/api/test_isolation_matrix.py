"""The isolation matrix: every tenant resource that exists, made in tenant A, is invisible to tenant B
for get, patch, delete and lists, with B's JWT and with B's secret key; and B's credentials naming A in
X-Tenant-ID answer 403. Adding a resource adds a row to RESOURCES."""
import uuid

import pytest

from conftest import Api


def _uniq():
    return uuid.uuid4().hex[:8]


# (name, collection path, create body factory (api → body), patch body, id field)
RESOURCES = [
    ("auth user", "/api/v1/auth/users",
     lambda api: {"email": f"u{_uniq()}@iso.example.com", "role": "CLIENT", "password": "Iso-pass-2026"},
     {"name": "renamed"}),
    ("api key", "/api/v1/auth/api-keys", lambda api: {"name": "iso-" + _uniq()}, None),
    ("oauth client", "/api/v1/auth/clients",
     lambda api: {"name": "iso-" + _uniq(), "redirect_uris": ["https://app.example.com/cb"]}, {"name": "renamed"}),
    ("crm company", "/api/v1/crm/companies", lambda api: {"name": "Iso " + _uniq()}, {"name": "renamed"}),
    ("crm contact", "/api/v1/crm/contacts", lambda api: {"first_name": "Iso", "email": f"c{_uniq()}@iso.example.com"},
     {"first_name": "renamed"}),
    ("crm pipeline", "/api/v1/crm/pipelines", lambda api: {"name": "Iso " + _uniq()}, {"name": "renamed"}),
    ("crm deal", "/api/v1/crm/deals", lambda api: {"title": "Iso " + _uniq(), "amount": 1000, "currency": "EUR"},
     {"title": "renamed"}),
    ("crm activity", "/api/v1/crm/activities",
     lambda api: {"type": "note", "body": "iso",
                  "contact_id": api.post("/api/v1/crm/contacts", json={"first_name": "Iso"}).json()["id"]},
     {"body": "renamed"}),
]

CREDENTIALS = ["jwt", "api_key"]


def credential(t, kind):
    return t["admin_api"] if kind == "jwt" else t["key_api"]


def test_matrix_row_count():
    rows = len(RESOURCES) * len(CREDENTIALS)
    print(f"\nisolation matrix: {len(RESOURCES)} tenant resources x {len(CREDENTIALS)} credential kinds = {rows} rows")
    assert rows == 16


@pytest.mark.parametrize("kind", CREDENTIALS)
@pytest.mark.parametrize("name,path,make,patch", RESOURCES, ids=[r[0] for r in RESOURCES])
def test_other_tenant_cannot_see_or_touch(tenant, other_tenant, name, path, make, patch, kind):
    a = tenant["admin_api"]
    r = a.post(path, json=make(a))
    assert r.status_code == 201, f"{name}: {r.status_code} {r.text[:300]}"
    obj_id = r.json()["id"]
    b = credential(other_tenant, kind)

    assert b.get(f"{path}/{obj_id}").status_code in (404, 405), name
    if patch is not None:
        assert b.patch(f"{path}/{obj_id}", json=patch).status_code == 404, name
    listed = b.get(path, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    assert obj_id not in {x["id"] for x in listed.json()["data"]}, f"{name} leaked into another tenant's list"
    assert b.delete(f"{path}/{obj_id}").status_code == 404, name
    # Naming A's tenant with B's credential is refused outright.
    assert b.get(path, headers={"X-Tenant-ID": tenant["id"]}).status_code == 403, name
    assert b.get(path, headers={"X-Tenant-ID": tenant["slug"]}).status_code == 403, name
    # And A still has it, untouched.
    mine = a.get(f"{path}/{obj_id}") if name != "api key" else a.get(path, params={"limit": 200})
    assert mine.status_code == 200, name
