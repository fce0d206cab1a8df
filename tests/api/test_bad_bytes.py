"""Raw bytes that are not UTF-8, in query strings and headers, answer a clear 4xx on both databases and
never reach SQL (PostgreSQL refuses such text; that used to be a 500)."""
import pytest

from conftest import Api, assert_problem


@pytest.mark.parametrize("path,field", [("/api/v1/tenants?q=%ff", "q"), ("/api/v1/tenants?plan=%c3", "plan")])
def test_invalid_utf8_in_a_query_parameter_is_422_naming_it(sa, path, field):
    body = assert_problem(sa.get(path), 422, "validation_failed")
    assert body["errors"][0]["field"] == field


def test_valid_utf8_in_a_query_parameter_is_fine(sa):
    assert sa.get("/api/v1/tenants?q=caf%C3%A9").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/crm/contacts?q=%ff", "/api/v1/auth/users?q=%fe", "/api/v1/auth/audit?action=%ff"])
def test_invalid_utf8_on_tenant_lists(tenant, path):
    assert_problem(tenant["key_api"].get(path), 422, "validation_failed")


def test_raw_bytes_in_x_tenant_id_name_no_tenant(sa):
    r = sa.request("GET", "/api/v1/auth/users", headers={"X-Tenant-ID": b"\xff\xfe".decode("latin-1")})
    assert_problem(r, 404, "not_found")


def test_raw_bytes_in_x_tenant_id_on_login_are_just_bad_credentials(anon):
    r = anon.post("/api/v1/auth/login", json={"email": "a@b.example.com", "password": "whatever-1"},
                  headers={"X-Tenant-ID": b"\xff".decode("latin-1")})
    assert_problem(r, 401, "unauthorized")


@pytest.mark.parametrize("value", ["%F4%90%80%80", "%ED%A0%80", "%E0%80%80", "%C2%85"])
def test_bytes_past_utf8_or_c1_controls_in_a_query_are_422(tenant, value):
    # Found by pagination_fuzz: a code point past U+10FFFF, a surrogate, an overlong form and a C1 control
    # passed the query check and reached SQL: SQLite took them (200), PostgreSQL refused the first three
    # (400, naming nothing).
    r = tenant["key_api"].get("/api/v1/auth/audit?action=" + value)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "action"
