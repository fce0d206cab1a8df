"""Password reset by mail: /auth/password/forgot and /auth/password/reset against a local SMTP sink, the
single-use token, sessions ending on reset, and the log fallback when no SMTP server is configured."""
import re
import time
import uuid

import pytest
import requests

from conftest import (SUPERADMIN, Api, MailSink, Server, assert_problem, bearer_api, create_user, login_answer,
                      make_tenant, wait_for)

FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"
PUBLIC_URL = "https://accounts.cdx-test.example"
SENDER = "auth-mailer@cdx-test.example"
LINK = re.compile(r"(\S+)/reset-password\?token=([A-Za-z0-9-]+\.[A-Za-z0-9]{43})")


class MailServer:
    """A server that mails through an SMTP sink. Restarted (afresh) when an earlier test crashed it,
    so one crash fails the test that caused it and not every test after it."""

    def __init__(self, sink):
        self.sink, self.server = sink, None
        self.start()

    def start(self):
        if self.server:
            self.server.cleanup()
        self.server = Server(env={"CDX_SMTP_URL": self.sink.url, "CDX_PUBLIC_URL": PUBLIC_URL,
                                  "CDX_SMTP_FROM": SENDER}).start()
        self.anon = Api(self.server.url)
        r = self.anon.post("/api/v1/auth/superadmin/login",
                           json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
        assert r.status_code == 200, r.text
        self.sa = bearer_api(self.server.url, r.json()["access_token"])

    def alive(self):
        return self.server.proc.poll() is None


@pytest.fixture(scope="module")
def mail_setup():
    sink = MailSink().start()
    m = None
    try:
        m = MailServer(sink)
        yield m
    finally:
        if m:
            m.server.cleanup()
        sink.stop()


STATE = {"server": None, "forgot_called": False}


@pytest.fixture
def mail(mail_setup):
    """(sink, server, anon client, SUPERADMIN client) of the mailing server; the test fails with the server's log
    if the server dies during it (mail goes out after the answer, so a crash there may come a moment later)."""
    if not mail_setup.alive():
        mail_setup.start()
    STATE.update(server=mail_setup.server, forgot_called=False)
    yield mail_setup.sink, mail_setup.server, mail_setup.anon, mail_setup.sa
    if STATE["forgot_called"]:
        wait_for(lambda: not mail_setup.alive(), 0.3)
    if not mail_setup.alive():
        pytest.fail(f"the server died during this test (exit {mail_setup.server.proc.returncode}):\n"
                    f"{mail_setup.server.read_log()[-1500:]}")


@pytest.fixture
def account(mail):
    """A fresh tenant on the mail server with one CLIENT: (tenant, user)."""
    sink, _, anon, sa = mail
    t = make_tenant(sa)
    admin = bearer_api(anon.base, login_answer(anon, t)["access_token"])
    t["admin_api"] = admin
    return t, create_user(admin, email=f"reset-{uuid.uuid4().hex[:8]}@example.com", password="old-password-42")


def mails_to(sink, address, n=1, timeout=5.0):
    """Polls until at least n mails to address arrived (or timeout); answers them."""
    return wait_for(lambda: sink.to(address) if len(sink.to(address)) >= n else None, timeout) or sink.to(address)


def reset_token(sink, address):
    got = mails_to(sink, address)
    assert len(got) == 1, f"expected one mail to {address}, got {len(got)}"
    m = LINK.search(got[0]["text"])
    assert m, got[0]["text"]
    return m.group(2)


def forgot(anon, tenant, address):
    STATE["forgot_called"] = True
    try:
        return anon.post(FORGOT, json={"email": address, "tenant": tenant["slug"]})
    except requests.ConnectionError as e:
        s = STATE["server"]
        log = s.read_log()[-1500:] if s and s.proc.poll() is not None else ""
        pytest.fail(f"POST {FORGOT} dropped the connection ({e}); server exit "
                    f"{s.proc.returncode if s else '?'}:\n{log}")


def login_status(anon, tenant, address, password):
    return anon.post(LOGIN, json={"email": address, "password": password, "tenant": tenant["slug"]}).status_code


# --- forgot ------------------------------------------------------------------------------------------------------


def test_forgot_answers_alike_and_mails_only_known_accounts(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    ghost = "ghost-" + u["email"]
    known = forgot(anon, t, u["email"])
    unknown = forgot(anon, t, ghost)
    no_tenant = anon.post(FORGOT, json={"email": u["email"], "tenant": "no-such-tenant-" + uuid.uuid4().hex[:6]})
    assert (known.status_code, unknown.status_code, no_tenant.status_code) == (202, 202, 202)
    assert known.json() == unknown.json() == no_tenant.json()
    got = mails_to(sink, u["email"])
    assert len(got) == 1
    msg = got[0]
    assert [a.lower() for a in msg["to"]] == [u["email"].lower()]
    assert msg["from"] == SENDER
    assert re.search(r"^Subject: .+", msg["text"], re.M)
    m = LINK.search(msg["text"])
    assert m, msg["text"]
    assert m.group(1) == PUBLIC_URL, "links in mails start with the public URL"
    assert m.group(2).startswith(t["id"] + ".")
    assert "old-password-42" not in msg["text"]
    time.sleep(0.5)
    assert sink.to(ghost) == [], "no mail for an unknown account"
    assert len(sink.to(u["email"])) == 1, "exactly one mail"


def test_forgot_by_header_and_case_insensitive_email(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    r = anon.post(FORGOT, json={"email": u["email"].upper()}, headers={"X-Tenant-ID": t["id"]})
    assert r.status_code == 202, r.text
    assert len(mails_to(sink, u["email"])) == 1


@pytest.mark.parametrize("body,field", [({"tenant": "x"}, "email"), ({"email": 3, "tenant": "x"}, "email"),
                                        ({"email": "a@example.com"}, "tenant")])
def test_forgot_validation(mail, body, field):
    _, _, anon, _ = mail
    errors = assert_problem(anon.post(FORGOT, json=body), 422, "validation_failed")["errors"]
    assert field in {e["field"] for e in errors}


def test_forgot_for_a_disabled_user_sends_nothing(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    assert t["admin_api"].patch(f"/api/v1/auth/users/{u['id']}", json={"status": "disabled"}).status_code == 200
    assert forgot(anon, t, u["email"]).status_code == 202
    time.sleep(0.5)
    assert sink.to(u["email"]) == []


# --- reset -------------------------------------------------------------------------------------------------------


def test_reset_sets_the_new_password_and_ends_sessions(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    before = login_answer(anon, t, u["email"], u["password"])
    assert forgot(anon, t, u["email"]).status_code == 202
    token = reset_token(sink, u["email"])
    time.sleep(1.05)  # the reset lands in a later second than the login (see test_auth_users for same-second)
    r = anon.post(RESET, json={"token": token, "password": "fresh-password-77"})
    assert r.status_code == 204 and r.content == b"", r.text
    assert login_status(anon, t, u["email"], "fresh-password-77") == 200
    assert login_status(anon, t, u["email"], u["password"]) == 401
    assert anon.post(REFRESH, json={"refresh_token": before["refresh_token"]}).status_code == 401
    assert wait_for(lambda: bearer_api(anon.base, before["access_token"]).get(ME).status_code == 401, 2.5), \
        "the access token from before the reset still works"
    # single use
    again = anon.post(RESET, json={"token": token, "password": "another-password-88"})
    assert "token" in {e["field"] for e in assert_problem(again, 422, "validation_failed")["errors"]}
    assert login_status(anon, t, u["email"], "fresh-password-77") == 200


def test_reset_rejects_a_weak_password_without_spending_the_token(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    forgot(anon, t, u["email"])
    token = reset_token(sink, u["email"])
    for weak in ("short", "password123", "12345678"):
        r = anon.post(RESET, json={"token": token, "password": weak})
        assert "password" in {e["field"] for e in assert_problem(r, 422, "validation_failed")["errors"]}, weak
    assert login_status(anon, t, u["email"], u["password"]) == 200, "a rejected reset changes nothing"
    assert anon.post(RESET, json={"token": token, "password": "strong-enough-pw-1"}).status_code == 204
    assert login_status(anon, t, u["email"], "strong-enough-pw-1") == 200


def test_each_reset_token_works_at_most_once(mail, account):
    """Two requests, two mails: each token resets at most once, and using one never revives the other."""
    sink, _, anon, _ = mail
    t, u = account
    forgot(anon, t, u["email"])
    forgot(anon, t, u["email"])
    got = mails_to(sink, u["email"], n=2)
    assert len(got) == 2
    tokens = [LINK.search(m["text"]).group(2) for m in got]
    assert tokens[0] != tokens[1]
    statuses = [anon.post(RESET, json={"token": tok, "password": f"pw-number-{i}-xyz"}).status_code
                for i, tok in enumerate(tokens)]
    assert statuses[0] in (204, 422) and statuses[1] in (204, 422) and 204 in statuses, statuses
    for tok in tokens:
        assert anon.post(RESET, json={"token": tok, "password": "yet-another-pw-1"}).status_code == 422


@pytest.mark.parametrize("token", ["garbage", "platform." + "A" * 43,
                                   "01930000-0000-7000-8000-00000000beef." + "A" * 43, "A" * 80])
def test_garbage_reset_token_is_422(mail, token):
    _, _, anon, _ = mail
    r = anon.post(RESET, json={"token": token, "password": "good-password-123"})
    assert "token" in {e["field"] for e in assert_problem(r, 422, "validation_failed")["errors"]}


def test_reset_token_is_bound_to_its_tenant(mail, account):
    sink, _, anon, sa = mail
    t, u = account
    other = make_tenant(sa)
    forgot(anon, t, u["email"])
    token = reset_token(sink, u["email"])
    forged = other["id"] + "." + token.split(".", 1)[1]
    r = anon.post(RESET, json={"token": forged, "password": "hijack-password-1"})
    assert_problem(r, 422, "validation_failed")
    assert anon.post(RESET, json={"token": token, "password": "rightful-password-1"}).status_code == 204


def test_reset_of_one_user_leaves_others_alone(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    bystander = login_answer(anon, t)  # the tenant's ADMIN
    forgot(anon, t, u["email"])
    assert anon.post(RESET, json={"token": reset_token(sink, u["email"]),
                                  "password": "only-mine-changed-1"}).status_code == 204
    assert anon.post(REFRESH, json={"refresh_token": bystander["refresh_token"]}).status_code == 200
    assert login_status(anon, t, t["admin"]["email"], t["admin_password"]) == 200


@pytest.mark.parametrize("body,field", [({"password": "good-password-123"}, "token"),
                                        ({"token": "x." + "A" * 43}, "password"),
                                        ({"token": 5, "password": "good-password-123"}, "token")])
def test_reset_validation(mail, body, field):
    _, _, anon, _ = mail
    errors = assert_problem(anon.post(RESET, json=body), 422, "validation_failed")["errors"]
    assert field in {e["field"] for e in errors}


def test_reset_is_audited(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    forgot(anon, t, u["email"])
    assert anon.post(RESET, json={"token": reset_token(sink, u["email"]),
                                  "password": "audited-password-1"}).status_code == 204
    entries = t["admin_api"].get("/api/v1/auth/audit").json()["data"]
    requested = [e for e in entries if e["action"] == "password.reset_requested"]
    done = [e for e in entries if e["action"] == "password.reset"]
    assert len(requested) == 1 and len(done) == 1, [e["action"] for e in entries]
    assert requested[0]["target"] == {"type": "user", "id": u["id"]}
    assert done[0]["target"] == {"type": "user", "id": u["id"]}
    assert "audited-password-1" not in str(entries)
    token_secret = LINK.search(sink.to(u["email"])[0]["text"]).group(2).split(".", 1)[1]
    assert token_secret not in str(entries), "the audit log must not hold the reset token"


# --- without SMTP ------------------------------------------------------------------------------------------------


def test_without_smtp_the_mail_goes_to_the_log():
    """No CDX_SMTP_URL: the mail is written to the log (a warning) instead, and its link works."""
    s = Server(env={"CDX_LOG_LEVEL": "warn"}).start()
    STATE["server"] = s
    try:
        anon = Api(s.url)
        r = anon.post("/api/v1/auth/superadmin/login", json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
        sa = bearer_api(s.url, r.json()["access_token"])
        t = make_tenant(sa)
        admin = bearer_api(s.url, login_answer(anon, t)["access_token"])
        u = create_user(admin, email=f"logged-{uuid.uuid4().hex[:8]}@example.com")
        r = forgot(anon, t, u["email"])
        assert r.status_code == 202, r.text

        def logged():
            with open(s.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
            return [line for line in text.splitlines() if u["email"] in line and "reset-password?token=" in line]

        lines = wait_for(logged, 5.0)
        assert lines, "the reset mail was not written to the log:\n" + s.read_log()[-1500:]
        m = re.search(r"reset-password\?token=([A-Za-z0-9-]+\.[A-Za-z0-9]{43})", lines[-1])
        assert m and m.group(1).startswith(t["id"] + ".")
        # the logged link works
        r = anon.post(RESET, json={"token": m.group(1), "password": "from-the-log-1"})
        assert r.status_code == 204, r.text
        assert login_status(anon, t, u["email"], "from-the-log-1") == 200
        assert s.proc.poll() is None
    finally:
        s.cleanup()


# --- hardening (issue 14 item 4) -----------------------------------------------------------------------------------


def test_a_reset_spends_every_outstanding_link(mail, account):
    """Two links out: resetting through one makes the other useless (and ends the user's sessions)."""
    sink, _, anon, _ = mail
    t, u = account
    session = login_answer(anon, t, email=u["email"], password="old-password-42")
    forgot(anon, t, u["email"])
    forgot(anon, t, u["email"])
    got = mails_to(sink, u["email"], n=2)
    assert len(got) == 2
    first, second = [LINK.search(m["text"]).group(2) for m in got]
    assert anon.post(RESET, json={"token": second, "password": "new-password-77"}).status_code == 204
    assert_problem(anon.post(RESET, json={"token": first, "password": "attacker-pw-99"}), 422, "validation_failed")
    assert login_status(anon, t, u["email"], "new-password-77") == 200
    assert login_status(anon, t, u["email"], "attacker-pw-99") == 401
    assert anon.post(REFRESH, json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_a_new_password_set_by_an_admin_spends_the_links_too(mail, account):
    sink, _, anon, _ = mail
    t, u = account
    forgot(anon, t, u["email"])
    token = reset_token(sink, u["email"])
    assert t["admin_api"].patch(f"/api/v1/auth/users/{u['id']}", json={"password": "set-by-admin-55"}).status_code == 200
    assert_problem(anon.post(RESET, json={"token": token, "password": "late-link-pw-1"}), 422, "validation_failed")
    assert login_status(anon, t, u["email"], "set-by-admin-55") == 200


def test_forgot_is_throttled_per_account_and_answers_the_same(mail, account):
    """20 requests for one inbox: every answer alike, at most 3 mails an hour."""
    sink, _, anon, _ = mail
    t, u = account
    answers = [forgot(anon, t, u["email"]) for _ in range(20)]
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    mails_to(sink, u["email"], n=3)
    time.sleep(1.0)  # mail goes out after the answer: give any fourth the time to show
    assert len(sink.to(u["email"])) == 3


def test_forgot_is_throttled_per_address(mail, account):
    """One address asking for many accounts: the answers stay alike, at most 60 mails an hour go out."""
    sink, _, anon, _ = mail
    t, _ = account
    inboxes = [create_user(t["admin_api"], email=f"many-{i}-{uuid.uuid4().hex[:6]}@example.com")["email"]
               for i in range(70)]
    answers = [forgot(anon, t, address) for address in inboxes]
    assert {a.status_code for a in answers} == {202}
    time.sleep(1.5)
    sent = sum(len(sink.to(address)) for address in inboxes)
    assert sent <= 60, sent  # earlier tests of this module spent part of the same budget
