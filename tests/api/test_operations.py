"""Operational endpoints: /health, /metrics (Prometheus text) and /openapi.json (OpenAPI 3.1 from the router)."""
import re
import shutil
import subprocess

import pytest
import requests

from conftest import assert_problem

# Every route of the Foundation, as the HTTP contract names them.
KNOWN_ROUTES = [
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/auth/superadmin/login"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/api-keys"),
    ("get", "/api/v1/auth/api-keys"),
    ("delete", "/api/v1/auth/api-keys/{id}"),
    ("post", "/api/v1/tenants"),
    ("get", "/api/v1/tenants"),
    ("get", "/api/v1/tenants/{id}"),
    ("patch", "/api/v1/tenants/{id}"),
    ("delete", "/api/v1/tenants/{id}"),
    ("post", "/api/v1/tenants/{id}/suspend"),
    ("post", "/api/v1/tenants/{id}/resume"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/services"),
    ("get", "/api/v1/tenants/{id}/usage"),
    ("post", "/api/v1/plans"),
    ("patch", "/api/v1/plans/{id}"),
    # Identity: sessions, sign-up, password reset, users, audit
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/password/forgot"),
    ("post", "/api/v1/auth/password/reset"),
    ("get", "/api/v1/auth/users"),
    ("post", "/api/v1/auth/users"),
    ("get", "/api/v1/auth/users/{id}"),
    ("patch", "/api/v1/auth/users/{id}"),
    ("delete", "/api/v1/auth/users/{id}"),
    ("get", "/api/v1/auth/audit"),
    # OAuth2 / OIDC: client registration, discovery and the protocol endpoints
    ("get", "/api/v1/auth/clients"),
    ("post", "/api/v1/auth/clients"),
    ("get", "/api/v1/auth/clients/{id}"),
    ("patch", "/api/v1/auth/clients/{id}"),
    ("delete", "/api/v1/auth/clients/{id}"),
    ("post", "/api/v1/auth/clients/{id}/secret"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/oauth/authorize"),
    ("post", "/oauth/authorize"),
    ("post", "/oauth/token"),
    ("post", "/oauth/revoke"),
    ("post", "/oauth/introspect"),
    ("get", "/oauth/userinfo"),
    ("post", "/oauth/userinfo"),
    # CRM
    ("get", "/api/v1/crm/companies"),
    ("post", "/api/v1/crm/companies"),
    ("get", "/api/v1/crm/companies/{id}"),
    ("patch", "/api/v1/crm/companies/{id}"),
    ("delete", "/api/v1/crm/companies/{id}"),
    ("get", "/api/v1/crm/companies/export"),
    ("post", "/api/v1/crm/companies/import"),
    ("get", "/api/v1/crm/contacts"),
    ("post", "/api/v1/crm/contacts"),
    ("get", "/api/v1/crm/contacts/{id}"),
    ("patch", "/api/v1/crm/contacts/{id}"),
    ("delete", "/api/v1/crm/contacts/{id}"),
    ("get", "/api/v1/crm/contacts/{id}/timeline"),
    ("get", "/api/v1/crm/contacts/export"),
    ("post", "/api/v1/crm/contacts/import"),
    ("get", "/api/v1/crm/pipelines"),
    ("post", "/api/v1/crm/pipelines"),
    ("get", "/api/v1/crm/pipelines/{id}"),
    ("patch", "/api/v1/crm/pipelines/{id}"),
    ("delete", "/api/v1/crm/pipelines/{id}"),
    ("get", "/api/v1/crm/pipelines/{id}/stages"),
    ("post", "/api/v1/crm/pipelines/{id}/stages"),
    ("get", "/api/v1/crm/pipelines/{id}/stages/{stage_id}"),
    ("patch", "/api/v1/crm/pipelines/{id}/stages/{stage_id}"),
    ("delete", "/api/v1/crm/pipelines/{id}/stages/{stage_id}"),
    ("get", "/api/v1/crm/deals"),
    ("post", "/api/v1/crm/deals"),
    ("get", "/api/v1/crm/deals/{id}"),
    ("patch", "/api/v1/crm/deals/{id}"),
    ("delete", "/api/v1/crm/deals/{id}"),
    ("get", "/api/v1/crm/deals/{id}/history"),
    ("get", "/api/v1/crm/deals/{id}/timeline"),
    ("get", "/api/v1/crm/activities"),
    ("post", "/api/v1/crm/activities"),
    ("get", "/api/v1/crm/activities/{id}"),
    ("patch", "/api/v1/crm/activities/{id}"),
    ("delete", "/api/v1/crm/activities/{id}"),
    ("get", "/api/v1/crm/events"),
]
# Routes whose POST takes no JSON body: state changes without a body, and the OAuth protocol endpoints, which
# take application/x-www-form-urlencoded bodies (RFC 6749).
NO_JSON_BODY = ("/suspend", "/resume", "/secret", "/import")  # CRM imports take text/csv
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


# --- /health -----------------------------------------------------------------------------------------------------


def test_health_shape(anon):
    r = anon.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok"
    assert body["service"] and isinstance(body["service"], str)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])
    for name in ("cdx_db", "auth_db"):
        check = body["checks"][name]
        assert check["status"] == "ok"
        assert isinstance(check["latency_ms"], (int, float)) and check["latency_ms"] >= 0


def test_health_needs_no_credential_and_ignores_a_bad_one(anon):
    r = anon.get("/health", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_health_version_matches_cli_version(anon):
    from conftest import run_cdx
    out = run_cdx(["version"])
    assert anon.get("/health").json()["version"] in out.stdout


# --- /metrics ----------------------------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from Prometheus text exposition, checking every line's syntax."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("# TYPE"):
                assert line.split()[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
            continue
        m = SAMPLE.match(line)
        assert m, f"bad exposition line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def requests_total(samples, method, route, status):
    return samples.get(("cdx_http_requests_total",
                        frozenset({("method", method), ("route", route), ("status", str(status))})), 0.0)


def test_metrics_is_prometheus_text(anon):
    r = anon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert "# TYPE cdx_http_requests_total counter" in text
    assert "# TYPE cdx_http_request_duration_seconds histogram" in text
    assert "cdx_db_pool_connections" in text
    parse_metrics(text)


def test_metrics_pass_promtool(server, anon):
    """`promtool check metrics` finds nothing to say about any /metrics text (gateway and services alike)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (scripts/setup installs the prometheus package)"
    anon.get("/health")
    anon.get("/random/unmatched/path")
    texts = {"/metrics": anon.get("/metrics").text}
    if server.topology == "constellation":
        for off in (1, 3, 4):
            texts[f":+{off}/metrics"] = requests.get(f"http://127.0.0.1:{server.port + off}/metrics", timeout=5).text
    for where, text in texts.items():
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), f"{where}: {r.stdout}{r.stderr}"


def test_request_counter_increases(anon):
    before = parse_metrics(anon.get("/metrics").text)
    for _ in range(3):
        assert anon.get("/.well-known/jwks.json").status_code == 200
    assert anon.get("/api/v1/auth/me").status_code == 401
    after = parse_metrics(anon.get("/metrics").text)
    assert requests_total(after, "GET", "/.well-known/jwks.json", 200) - \
        requests_total(before, "GET", "/.well-known/jwks.json", 200) == 3
    assert requests_total(after, "GET", "/api/v1/auth/me", 401) - \
        requests_total(before, "GET", "/api/v1/auth/me", 401) == 1


def test_metrics_use_route_patterns_not_raw_paths(sa):
    sa.get("/api/v1/tenants/no-such-tenant-xyz")
    text = sa.get("/metrics").text
    assert "no-such-tenant-xyz" not in text
    samples = parse_metrics(text)
    assert requests_total(samples, "GET", "/api/v1/tenants/{id}", 404) >= 1


def test_duration_histogram_is_consistent(anon):
    anon.get("/.well-known/jwks.json")
    samples = parse_metrics(anon.get("/metrics").text)
    key = frozenset({("method", "GET"), ("route", "/.well-known/jwks.json"), ("status", "200")})
    buckets = sorted(((float("inf") if dict(l)["le"] == "+Inf" else float(dict(l)["le"])), v)
                     for (n, l), v in samples.items()
                     if n == "cdx_http_request_duration_seconds_bucket" and l - {("le", dict(l).get("le"))} == key)
    assert len(buckets) >= 5
    assert buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "bucket counts must be cumulative"
    count = samples[("cdx_http_request_duration_seconds_count", key)]
    assert counts[-1] == count >= 1
    assert samples[("cdx_http_request_duration_seconds_sum", key)] >= 0
    assert count == requests_total(samples, "GET", "/.well-known/jwks.json", 200)


def test_db_pool_gauges_present(server, anon):
    if server.topology == "constellation":
        # The gateway holds no database: each service reports its own pool, and the gateway its upstreams.
        gateway = parse_metrics(anon.get("/metrics").text)
        assert {dict(l).get("upstream") for (n, l) in gateway if n.startswith("cdx_upstream_")} >= {"core", "auth", "crm", "cms"}
        texts = [requests.get(f"http://127.0.0.1:{server.port + off}/metrics", timeout=5).text for off in (1, 3)]
    else:
        texts = [anon.get("/metrics").text]
    samples = {}
    for text in texts:
        samples.update(parse_metrics(text))
    pools = {dict(l).get("schema") for (n, l) in samples if n == "cdx_db_pool_connections"}
    assert {"cdx_db", "auth_db"} <= pools
    assert all(v >= 0 for (n, _), v in samples.items() if n == "cdx_db_pool_connections")


def test_unmatched_requests_are_counted_without_exploding_cardinality(anon):
    for i in range(3):
        anon.get(f"/random/path/{i}")
    text = anon.get("/metrics").text
    assert "/random/path/" not in text


# --- /openapi.json -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec(anon):
    r = anon.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_openapi_is_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]
    assert isinstance(spec["components"]["schemas"], dict)


def test_openapi_version_matches_health(spec, anon):
    assert spec["info"]["version"] == anon.get("/health").json()["version"]


@pytest.mark.parametrize("method,path", KNOWN_ROUTES)
def test_every_known_route_is_documented(spec, method, path):
    assert path in spec["paths"], f"{path} missing from /openapi.json"
    op = spec["paths"][path].get(method)
    assert op is not None, f"{method.upper()} {path} missing; has {sorted(spec['paths'][path])}"
    assert op.get("responses"), f"{method.upper()} {path} has no responses"


def test_no_undocumented_extra_methods_on_known_paths(spec):
    known = {}
    for m, p in KNOWN_ROUTES:
        known.setdefault(p, set()).add(m)
    for path, methods in known.items():
        documented = {k for k in spec["paths"][path] if k in HTTP_METHODS}
        assert documented == methods, (path, documented)


def test_documented_routes_exist_on_the_server(spec, anon):
    """Every documented (method, path) is routed: never 404 / 405 from the router."""
    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x-probe-0000", path)
        for method in item:
            if method not in HTTP_METHODS:
                continue
            r = anon.request(method.upper(), concrete, json={} if method in ("post", "patch") else None)
            assert r.status_code != 405, (method, path)
            if r.status_code == 404:
                assert r.json()["code"] == "not_found" and "No route" not in r.json().get("detail", ""), \
                    (method, path, r.text)


def test_path_parameters_are_declared(spec):
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            params = op.get("parameters", []) + item.get("parameters", [])
            declared = {p["name"] for p in params if p.get("in") == "path"}
            assert declared == names, (method, path, declared)
            for p in params:
                if p.get("in") == "path":
                    assert p.get("required") is True, (method, path, p)


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for item in spec["paths"].values() for m, op in item.items()
           if m in HTTP_METHODS and "operationId" in op]
    assert len(ids) == len(set(ids))


def test_json_request_bodies_documented_for_writes(spec):
    for method, path in KNOWN_ROUTES:
        if method in ("post", "patch") and not path.endswith(NO_JSON_BODY) and not path.startswith("/oauth/"):
            op = spec["paths"][path][method]
            assert "application/json" in op["requestBody"]["content"], (method, path)


def test_security_schemes_cover_the_credentials(spec):
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert any(s.get("type") == "apiKey" and s.get("name") == "X-API-Key" and s.get("in") == "header"
               for s in schemes.values())
    for path, item in spec["paths"].items():
        for m, op in item.items():
            for req in op.get("security", []) if isinstance(op, dict) else []:
                for name in req:
                    assert name in schemes, (m, path, name)


def test_public_routes_need_no_security(spec):
    for method, path in [("get", "/health"), ("post", "/api/v1/auth/login"),
                         ("post", "/api/v1/auth/superadmin/login"), ("get", "/.well-known/jwks.json"),
                         ("post", "/api/v1/auth/refresh"), ("post", "/api/v1/auth/register"),
                         ("post", "/api/v1/auth/password/forgot"), ("post", "/api/v1/auth/password/reset"),
                         ("get", "/.well-known/openid-configuration"),
                         ("get", "/.well-known/oauth-authorization-server"), ("get", "/oauth/authorize")]:
        op = spec["paths"][path][method]
        sec = op.get("security", spec.get("security", []))
        assert sec == [] or {} in sec, (method, path, sec)


def test_protected_routes_declare_security(spec):
    for method, path in [("get", "/api/v1/tenants"), ("get", "/api/v1/auth/me"), ("post", "/api/v1/auth/api-keys"),
                         ("post", "/api/v1/auth/logout"), ("get", "/api/v1/auth/users"),
                         ("post", "/api/v1/auth/users"), ("patch", "/api/v1/auth/users/{id}"),
                         ("delete", "/api/v1/auth/users/{id}"), ("get", "/api/v1/auth/audit"),
                         ("get", "/api/v1/auth/clients"), ("post", "/api/v1/auth/clients"),
                         ("patch", "/api/v1/auth/clients/{id}"), ("delete", "/api/v1/auth/clients/{id}"),
                         ("post", "/api/v1/auth/clients/{id}/secret")]:
        op = spec["paths"][path][method]
        sec = op.get("security", spec.get("security", []))
        assert sec and {} not in sec, (method, path, sec)


def collect_refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                out.append(v)
            else:
                collect_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            collect_refs(v, out)
    return out


def test_all_refs_resolve(spec):
    refs = collect_refs(spec, [])
    assert refs, "the description should reference shared schemas"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], f"dangling {ref}"


def test_schemas_describe_the_core_objects(spec):
    schemas = spec["components"]["schemas"]
    tenant_props = schemas["Tenant"].get("properties", {})
    assert {"id", "slug", "name", "status", "plan", "settings", "created_at", "updated_at"} <= set(tenant_props)
    problem_props = schemas["Problem"].get("properties", {})
    assert {"type", "title", "status", "code", "request_id"} <= set(problem_props)
    plan_props = schemas["Plan"].get("properties", {})
    assert {"id", "key", "name", "rate_limit_per_minute", "max_users", "max_api_keys", "modules"} <= set(plan_props)


def test_identity_schemas_and_list_filters(spec):
    schemas = spec["components"]["schemas"]
    token = schemas["TokenAnswer"].get("properties", {})
    assert {"access_token", "token_type", "expires_in", "refresh_token"} <= set(token)
    user = schemas["User"].get("properties", {})
    assert {"id", "email", "name", "role", "status", "created_at"} <= set(user)
    assert not any("hash" in p or p == "password" for p in user), sorted(user)
    audit = schemas["AuditEntry"].get("properties", {})
    assert {"id", "action", "actor", "target", "ip", "details", "created_at"} <= set(audit)
    for path, filters in (("/api/v1/auth/users", {"q", "role", "status"}), ("/api/v1/auth/audit",
                                                                             {"action", "actor_id"})):
        op = spec["paths"][path]["get"]
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        assert {"limit", "cursor"} | filters <= names, (path, names)
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert {"data", "next_cursor"} <= set(schema.get("properties", {}))


def test_logout_body_is_documented_as_optional(spec):
    body = spec["paths"]["/api/v1/auth/logout"]["post"].get("requestBody")
    assert body is None or body.get("required") is not True, "logout works without a body (204)"


def test_list_routes_document_pagination(spec):
    op = spec["paths"]["/api/v1/tenants"]["get"]
    names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
    assert {"limit", "cursor", "status", "plan", "q"} <= names
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"data", "next_cursor"} <= set(schema.get("properties", {}))


def test_openapi_is_public(anon):
    r = anon.get("/openapi.json", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 200
    assert_problem(anon.get("/openapi.yaml"), 404)
