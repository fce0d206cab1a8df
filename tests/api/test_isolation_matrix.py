"""The isolation matrix, driven from /openapi.json: every tenant resource the server documents (a collection
with POST for tenant ADMINs and an item path such as /{id} or /{key}), made in tenant A, is invisible to tenant B for get, patch,
delete and lists, with B's JWT and with B's secret key; and B's credentials naming A in X-Tenant-ID answer
403. A new tenant resource gets its rows without anyone editing this file: its create body is generated
from its documented schema (required fields, formats, enums, limits, and links named by x-cdx-refs)."""
import re
import uuid

import pytest
import requests

from conftest import Server

TENANT_ACCESS = {"tenant_admin", "tenant_member", "tenant_admin_or_self"}
CREDENTIALS = ["jwt", "api_key"]


def _openapi():
    # Read once at collection time from a server of our own (the session's fixtures do not exist yet).
    s = Server().start()
    try:
        return requests.get(s.url + "/openapi.json", timeout=10).json()
    finally:
        s.cleanup()


DOC = _openapi()
SCHEMAS = DOC["components"]["schemas"]


def _schema(ref):
    return SCHEMAS[ref.rsplit("/", 1)[1]]


def _json_schema_of(op):
    ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return _schema(ref) if ref else None


def item_path(path):
    """The collection's item path (/{id}, or /{key} for resources addressed by key as well), if any."""
    for p in DOC["paths"]:
        rest = p[len(path):]
        if p.startswith(path + "/{") and rest.count("/") == 1 and rest.endswith("}"):
            return p
    return None


def tenant_resources():
    out = []
    for path, ops in sorted(DOC["paths"].items()):
        post = ops.get("post")
        if not path.startswith("/api/v1/") or "{" in path or not post:
            continue
        if post.get("x-cdx-access") not in TENANT_ACCESS or "201" not in post["responses"]:
            continue
        if item_path(path) is None or _json_schema_of(post) is None:
            continue
        out.append(path)
    return out


RESOURCES = tenant_resources()


def _types(prop):
    t = prop.get("type", "string")
    return [t] if isinstance(t, str) else [x for x in t if x != "null"]


def value_for(api, name, prop):
    """A valid value for one property of a create schema (creating what a link names)."""
    uniq = uuid.uuid4().hex[:10]
    if "x-cdx-refs" in prop:
        return make(api, prop["x-cdx-refs"])["id"]
    if "enum" in prop:
        return next(v for v in prop["enum"] if v is not None)
    t = _types(prop)[0]
    fmt = prop.get("format")
    if t == "string":
        if fmt == "email":
            return f"iso{uniq}@iso.example.com"
        if fmt == "hostname":
            return f"iso{uniq}.example.com"
        if fmt == "date":
            return "2026-01-31"
        if fmt == "date-time":
            return "2026-01-31T09:30:00Z"
        if "pattern" in prop:  # keys and codes: the first candidate the documented pattern takes
            for candidate in (f"iso{uniq}", f"fr-{uniq[:8]}"):
                if re.search(prop["pattern"], candidate):
                    return candidate
            raise AssertionError(f"no generated value matches {name}'s pattern {prop['pattern']}")
        text = "Iso " + uniq
        return text[: prop.get("maxLength", len(text))].ljust(prop.get("minLength", 0), "x")
    if t == "integer":
        return prop.get("minimum", 0)
    if t == "boolean":
        return False
    if t == "array":
        return []
    if t == "object":
        return {}
    raise AssertionError(f"no value for {name}: {prop}")


def make(api, path):
    schema = _json_schema_of(DOC["paths"][path]["post"])
    props = schema.get("properties", {})
    body = dict((schema.get("examples") or [{}])[0])  # a documented valid body, when the rules need one
    required = list(schema.get("required", []))
    # anyOf alternatives ("at least one of"): the first one's fields.
    for any_of in [schema.get("anyOf")] + [part.get("anyOf") for part in schema.get("allOf", [])]:
        if any_of:
            required += any_of[0].get("required", [])
    for name in required:
        if name not in body:
            body[name] = value_for(api, name, props[name])
    # Links are made too, required or not: a hook may need one of them (an activity is about something).
    for name, prop in props.items():
        if "x-cdx-refs" in prop and name not in body:
            body[name] = value_for(api, name, prop)
    r = api.post(path, json=body)
    assert r.status_code == 201, f"{path} {body}: {r.status_code} {r.text[:300]}"
    return r.json()


def patch_body(path):
    op = DOC["paths"][item_path(path)].get("patch")
    if not op:
        return None
    schema = _json_schema_of(op) or {}
    for name, prop in schema.get("properties", {}).items():
        if _types(prop)[0] == "string" and not {"format", "enum", "pattern", "x-cdx-refs"} & set(prop):
            return {name: "renamed"}
    return {}


def credential(t, kind):
    return t["admin_api"] if kind == "jwt" else t["key_api"]


def test_matrix_row_count():
    rows = len(RESOURCES) * len(CREDENTIALS)
    print(f"\nisolation matrix (from /openapi.json): {len(RESOURCES)} tenant resources x {len(CREDENTIALS)} "
          f"credential kinds = {rows} rows: {', '.join(RESOURCES)}")
    # Today's resources must all be found; a new one only adds rows.
    for known in ("/api/v1/auth/users", "/api/v1/auth/api-keys", "/api/v1/auth/clients", "/api/v1/crm/companies",
                  "/api/v1/crm/contacts", "/api/v1/crm/pipelines", "/api/v1/crm/deals", "/api/v1/crm/activities",
                  "/api/v1/cms/content-types", "/api/v1/cms/locales"):
        assert known in RESOURCES, known
    assert "/api/v1/tenants" not in RESOURCES and "/api/v1/plans" not in RESOURCES, "operator resources"


@pytest.mark.parametrize("kind", CREDENTIALS)
@pytest.mark.parametrize("path", RESOURCES)
def test_other_tenant_cannot_see_or_touch(tenant, other_tenant, path, kind):
    a = tenant["admin_api"]
    obj_id = make(a, path)["id"]
    b = credential(other_tenant, kind)

    item = DOC["paths"][item_path(path)]
    if "get" in item:
        assert b.get(f"{path}/{obj_id}").status_code == 404, path
    patch = patch_body(path)
    if patch is not None:
        assert b.patch(f"{path}/{obj_id}", json=patch).status_code == 404, path
    listed = b.get(path, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    assert obj_id not in {x["id"] for x in listed.json()["data"]}, f"{path} leaked into another tenant's list"
    if "delete" in item:
        assert b.delete(f"{path}/{obj_id}").status_code == 404, path
    # Naming A's tenant with B's credential is refused outright.
    assert b.get(path, headers={"X-Tenant-ID": tenant["id"]}).status_code == 403, path
    assert b.get(path, headers={"X-Tenant-ID": tenant["slug"]}).status_code == 403, path
    # And A still has it, untouched.
    if "get" in item:
        assert a.get(f"{path}/{obj_id}").status_code == 200, path
    else:
        assert obj_id in {x["id"] for x in a.get(path, params={"limit": 200}).json()["data"]}, path
