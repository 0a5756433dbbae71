"""Tenants and their API tokens."""

from __future__ import annotations

from uuid import UUID

import psycopg

from common.db.rows import fetch_value
from common.errors import Conflict
from common.security.tokens import hash_token, new_token


def create_tenant(conn: psycopg.Connection, name: str) -> tuple[UUID, str]:
    """Create a tenant with one API token; returns (tenant id, token). The token is not stored."""
    tenant_id = fetch_value(
        conn,
        "INSERT INTO tenants (name) VALUES (%s) ON CONFLICT (name) DO NOTHING RETURNING id",
        (name,),
    )
    if tenant_id is None:
        raise Conflict(f"a tenant named {name!r} already exists")
    token = issue_token(conn, tenant_id)
    return tenant_id, token


def issue_token(conn: psycopg.Connection, tenant_id: UUID, description: str = "") -> str:
    """A new API token for ``tenant_id``; only its hash is stored."""
    token = new_token()
    conn.execute(
        "INSERT INTO api_tokens (tenant_id, token_hash, description) VALUES (%s, %s, %s)",
        (tenant_id, hash_token(token), description),
    )
    return token


def tenant_for_token(conn: psycopg.Connection, token: str) -> UUID | None:
    """The tenant owning an unrevoked ``token``, or None.

    The lookup is by the token's SHA-256 through a unique index, so timing
    reveals nothing about stored tokens.
    """
    return fetch_value(
        conn,
        "SELECT tenant_id FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
        (hash_token(token),),
    )
