"""Tenants, created with their first user ``admin`` and its first API token."""

from __future__ import annotations

from uuid import UUID

import psycopg

from common.db import keys
from common.db.rows import fetch_value
from common.domain.vocab import KeyKind, Role
from common.errors import Conflict
from common.security.tokens import display_prefix, hash_token, new_token

ADMIN_USER = "admin"


def create_tenant(
    conn: psycopg.Connection, name: str, admin_password_hash: str | None = None
) -> tuple[UUID, str]:
    """Create a tenant, its user ``admin`` and one API token of that user; returns
    (tenant id, token). The token is not stored, only its hash."""
    tenant_id = fetch_value(
        conn,
        "INSERT INTO tenants (name) VALUES (%s) ON CONFLICT (name) DO NOTHING RETURNING id",
        (name,),
    )
    if tenant_id is None:
        raise Conflict(f"a tenant named {name!r} already exists")
    user_id = fetch_value(
        conn,
        "INSERT INTO users (tenant_id, name, role, password_hash) VALUES (%s, %s, %s, %s) "
        "RETURNING id",
        (tenant_id, ADMIN_USER, Role.ADMIN.value, admin_password_hash),
    )
    token = issue_token(conn, tenant_id, user_id)
    return tenant_id, token


def admin_user_id(conn: psycopg.Connection, tenant_id: UUID) -> UUID | None:
    """The id of the tenant's user ``admin``, if it still exists."""
    return fetch_value(
        conn, "SELECT id FROM users WHERE tenant_id = %s AND name = %s", (tenant_id, ADMIN_USER)
    )


def issue_token(
    conn: psycopg.Connection, tenant_id: UUID, user_id: UUID, description: str = ""
) -> str:
    """A new bearer token of the user; only its hash is stored."""
    token = new_token()
    keys.insert_key(
        conn,
        tenant_id,
        user_id,
        kind=KeyKind.BEARER,
        prefix=display_prefix(token),
        description=description,
        expires_at=None,
        token_hash=hash_token(token),
    )
    return token


def tenant_for_token(conn: psycopg.Connection, token: str) -> UUID | None:
    """The tenant owning a live bearer ``token``, or None (looked up by its SHA-256)."""
    found = keys.principal_for_token(conn, hash_token(token))
    return found["tenant_id"] if found else None
