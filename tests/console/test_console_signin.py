"""Sign-in, sign-out, CSRF, the rate limit and the end of sessions."""

from __future__ import annotations

import time
from dataclasses import replace

from api.app import create_app
from common.services import users
from common.settings import Settings
from tests.support.console import Account, Console


def test_root_is_the_sign_in_page_then_the_console(client, account: Account):
    console = Console(client)
    page = console.get("/")
    assert 'id="login-form"' in page and "Account" in page
    assert client.get("/instances").status_code == 302  # signed out: to the sign-in page
    r = console.sign_in(account, "admin", account.admin_password)
    assert r.status_code == 302 and r.headers["Location"].endswith("/instances")
    cookie = r.headers["Set-Cookie"]
    assert "ferry_session=" in cookie and "HttpOnly" in cookie and "Expires=" in cookie
    assert client.get("/").headers["Location"].endswith("/instances")
    page = console.get("/instances")
    assert "admin" in page and "Sign out" in page
    headers = client.get("/instances").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def test_wrong_password_or_name_says_the_same(client, account: Account):
    console = Console(client)
    for tenant, user, password in (
        (account.name, "admin", "wrong-password"),
        (account.name, "nobody", account.admin_password),
        ("no-such-account", "admin", account.admin_password),
    ):
        r = console.sign_in(tenant, user, password)
        assert r.status_code == 401
        assert "Unknown account, user name or password." in r.get_data(as_text=True)
    assert client.get("/instances").status_code == 302


def test_the_account_id_signs_in_too_and_next_stays_on_this_site(client, account: Account):
    console = Console(client)
    data = {"tenant": str(account.id), "user_name": "admin", "password": account.admin_password}
    r = console.post("/login?next=//evil.example/x", data)
    assert r.status_code == 302 and r.headers["Location"].endswith("/instances")
    r = console.post("/login?next=/incoming", data)
    assert r.headers["Location"].endswith("/incoming")


def test_forms_without_the_csrf_token_are_refused_but_the_api_is_not(
    client, account: Account, signed_in
):
    r = client.post("/login", data={"tenant": account.name, "user_name": "admin", "password": "x"})
    assert r.status_code == 400 and "form expired" in r.get_data(as_text=True)
    console = signed_in("admin")
    r = console.client.post("/logout")
    assert r.status_code == 400
    # The JSON API keeps its bearer tokens and no CSRF token.
    assert client.post("/api/v1/instances", json={}).status_code == 401


def test_sign_out_ends_the_session(signed_in):
    console = signed_in("viewer")
    r = console.post("/logout")
    assert r.status_code == 302
    assert console.client.get("/instances").status_code == 302


def test_sign_in_attempts_are_rate_limited(settings: Settings, account: Account):
    app = create_app(replace(settings, console_login_rate_limit="3/minute"))
    console = Console(app.test_client())
    codes = [console.sign_in(account, "admin", "bad-password").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    r = console.sign_in(account, "admin", account.admin_password)
    assert r.status_code == 429 and "Too many sign-in attempts" in r.get_data(as_text=True)


def test_a_session_expires_and_a_new_password_ends_it(
    settings: Settings, account: Account, signed_in
):
    console = signed_in("operator")
    assert console.client.get("/instances").status_code == 200
    with console.client.session_transaction() as session:
        session["signed_in_at"] = time.time() - settings.console_session_hours * 3600 - 1
    assert console.client.get("/instances").status_code == 302

    console = signed_in("viewer")
    user = next(
        u
        for u in users.list_users(settings, account.id, limit=10, offset=0)[0]
        if u.name == "viewer-user"
    )
    users.update_user(settings, account.id, user.id, {"password": "a-new-password"})
    assert console.client.get("/instances").status_code == 302
