"""Driving the console in view tests: a signed-in browser-like client with CSRF tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from common.services import users
from common.services.tenants import create_tenant
from common.settings import Settings

_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Account:
    """A tenant made for the console: its id, name and the admin's password."""

    id: UUID
    name: str
    admin_password: str


def make_account(settings: Settings, name: str) -> Account:
    new = create_tenant(settings, name)
    return Account(new.tenant_id, name, new.password)


def add_user(
    settings: Settings, account: Account, name: str, role: str, grants: list[str] | None = None
) -> str:
    """A user of ``account`` with console password ``<name>-password``; its password."""
    password = f"{name}-password"
    users.create_user(
        settings,
        account.id,
        {"name": name, "role": role, "password": password, "grants": grants or ["*"]},
    )
    return password


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Console:
    """Flask's test client used as a browser: GET pages, POST forms with the page's token."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str, expect: int = 200, **kw: Any) -> str:
        r = self.client.get(path, **kw)
        assert r.status_code == expect, (path, r.status_code, r.get_data(as_text=True)[:2000])
        return r.get_data(as_text=True)

    def token(self) -> str:
        return csrf_of(self.get("/login"))

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """POST a form with a fresh CSRF token; the raw response."""
        body = {"csrf_token": self.token(), **(data or {})}
        return self.client.post(path, data=body, **kw)

    def sign_in(self, account: Account | str, user: str, password: str) -> Any:
        tenant = account if isinstance(account, str) else account.name
        return self.post("/login", {"tenant": tenant, "user_name": user, "password": password})
