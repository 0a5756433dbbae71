"""Helpers for API tests: tenants with tokens, and instances and rules made through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from common.db.tenants import create_tenant
from common.settings import Settings

ERROR_KEYS = {"code", "status", "message", "errors"}


@dataclass(frozen=True)
class Tenant:
    id: UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_tenant(settings: Settings, name: str) -> Tenant:
    """A tenant and one API token, committed."""
    with psycopg.connect(settings.require_database_url(), row_factory=dict_row) as conn:
        tenant_id, token = create_tenant(conn, name)
    return Tenant(tenant_id, token)


def assert_error(resp: Any, code: int, *fields: str) -> dict:
    """Assert the one error body with ``code`` whose ``errors`` name every field in ``fields``."""
    assert resp.status_code == code, (resp.status_code, resp.get_json())
    body = resp.get_json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    for f in fields:
        assert f in body["errors"], (f, body)
    return body


def instance_body(
    registry: Any, name: str = "reg", user: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A POST /instances body for a test registry, with its first user's credentials."""
    body: dict[str, Any] = {"name": name, "url": registry.url}
    if registry.users:
        user = user or next(iter(registry.users))
        body.update(username=user, password=registry.users[user])
    body.update(extra)
    return body


def create_instance(
    client: Any, tenant: Tenant, registry: Any, name: str = "reg", **extra: Any
) -> dict:
    """Register ``registry`` for ``tenant``; the 201 body."""
    r = client.post(
        "/api/v1/instances", json=instance_body(registry, name, **extra), headers=tenant.headers
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def rule_body(
    source_id: Any,
    target_id: Any,
    name: str = "sync-prod",
    *,
    namespace: str = "project",
    target_namespace: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A POST /rules body; ``source``/``target`` entries in ``extra`` are merged."""
    body: dict[str, Any] = {
        "name": name,
        "source": {"instance_id": str(source_id), "namespace": namespace},
        "target": {"instance_id": str(target_id), "namespace": target_namespace},
    }
    for key, value in extra.items():
        if key in ("source", "target"):
            body[key].update(value)
        else:
            body[key] = value
    return body


def raw_rows_text(settings: Settings) -> str:
    """Every row of every table, as PostgreSQL's text form (bytea as hex)."""
    chunks = []
    with psycopg.connect(settings.require_database_url()) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for (text,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                chunks.append(text)
    return "\n".join(chunks)


def leaks(secret: str, text: str) -> bool:
    """True when ``secret`` appears in ``text`` as plain text or as bytea hex."""
    return secret in text or secret.encode().hex() in text.lower()
