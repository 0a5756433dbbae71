"""Registry instances: rows, tenant scoping, webhook secrets and encrypted passwords."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from common.errors import Conflict

COLUMNS = (
    "id, tenant_id, name, url, region, kind, verify_tls, username, password_enc, "
    "webhook_secret_hash, webhook_secret_prev_hash, max_concurrent_copies, task_seq, "
    "created_at, updated_at"
)
# Columns an update may set; anything else is a programming error.
UPDATABLE = frozenset(
    {
        "name",
        "url",
        "region",
        "kind",
        "verify_tls",
        "username",
        "password_enc",
        "max_concurrent_copies",
    }
)


def _duplicate_name(name: str) -> Conflict:
    return Conflict(f"an instance named {name!r} already exists")


def insert_instance(
    conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any], webhook_secret_hash: bytes
) -> dict:
    """Insert an instance of ``tenant_id``; raises Conflict when its name is taken."""
    cols = [c for c in values if c in UPDATABLE]
    query = sql.SQL(
        "INSERT INTO instances (tenant_id, webhook_secret_hash, {cols}) "
        "VALUES (%s, %s, {vals}) RETURNING " + COLUMNS
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    try:
        with conn.transaction():
            return conn.execute(
                query, (tenant_id, webhook_secret_hash, *(values[c] for c in cols))
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise _duplicate_name(values["name"]) from None


def get_instance(
    conn: psycopg.Connection, instance_id: UUID | str, tenant_id: UUID | str | None = None
) -> dict | None:
    """The instance row, or None; with ``tenant_id``, only if that tenant owns it."""
    if tenant_id is None:
        return conn.execute(
            f"SELECT {COLUMNS} FROM instances WHERE id = %s", (instance_id,)
        ).fetchone()
    return conn.execute(
        f"SELECT {COLUMNS} FROM instances WHERE id = %s AND tenant_id = %s",
        (instance_id, tenant_id),
    ).fetchone()


def instance_name_taken(
    conn: psycopg.Connection, tenant_id: UUID, name: str, except_id: UUID | None = None
) -> bool:
    """True when another instance of the tenant has ``name``."""
    row = conn.execute(
        "SELECT 1 FROM instances WHERE tenant_id = %s AND name = %s AND id IS DISTINCT FROM %s",
        (tenant_id, name, except_id),
    ).fetchone()
    return row is not None


def list_instances(
    conn: psycopg.Connection, tenant_id: UUID, *, limit: int, offset: int
) -> tuple[list[dict], int]:
    """One page of the tenant's instances by name, and the total count."""
    total = conn.execute(
        "SELECT count(*) AS n FROM instances WHERE tenant_id = %s", (tenant_id,)
    ).fetchone()["n"]
    if offset >= total:
        return [], total  # also keeps a huge page number from overflowing OFFSET
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM instances WHERE tenant_id = %s ORDER BY name, id "
        "LIMIT %s OFFSET %s",
        (tenant_id, limit, offset),
    ).fetchall()
    return rows, total


def update_instance(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID, changes: Mapping[str, Any]
) -> dict | None:
    """Apply ``changes`` to the tenant's instance; the new row, or None if not found."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return get_instance(conn, instance_id, tenant_id)
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes)
    query = sql.SQL(
        "UPDATE instances SET {a}, updated_at = now() WHERE id = %s AND tenant_id = %s "
        "RETURNING " + COLUMNS
    ).format(a=assignments)
    try:
        with conn.transaction():
            return conn.execute(query, (*changes.values(), instance_id, tenant_id)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise _duplicate_name(str(changes.get("name"))) from None


def rules_using_instance(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID
) -> tuple[list[str], int]:
    """Names of the tenant's rules using the instance (source or target), and how many
    rules of other tenants target it."""
    rows = conn.execute(
        "SELECT name, tenant_id = %s AS own FROM rules "
        "WHERE source_instance_id = %s OR target_instance_id = %s ORDER BY name",
        (tenant_id, instance_id, instance_id),
    ).fetchall()
    return [r["name"] for r in rows if r["own"]], sum(1 for r in rows if not r["own"])


def delete_instance(conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID) -> bool:
    """Delete the tenant's instance; False if not found. Raises Conflict if a rule uses it."""
    try:
        with conn.transaction():
            row = conn.execute(
                "DELETE FROM instances WHERE id = %s AND tenant_id = %s RETURNING id",
                (instance_id, tenant_id),
            ).fetchone()
    except psycopg.errors.ForeignKeyViolation:
        raise Conflict("the instance is used by a rule") from None
    return row is not None


def rotate_webhook_secret(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID, new_hash: bytes
) -> bool:
    """Make ``new_hash`` the current secret and the current one the previous; False if
    not found. The secret before the previous one stops working."""
    row = conn.execute(
        "UPDATE instances SET webhook_secret_prev_hash = webhook_secret_hash, "
        "webhook_secret_hash = %s, updated_at = now() "
        "WHERE id = %s AND tenant_id = %s RETURNING id",
        (new_hash, instance_id, tenant_id),
    ).fetchone()
    return row is not None


def encrypted_passwords(conn: psycopg.Connection) -> list[dict]:
    """Every instance holding a password: ``{id, password_enc}``, locked for update."""
    return conn.execute(
        "SELECT id, password_enc FROM instances "
        "WHERE password_enc IS NOT NULL ORDER BY id FOR UPDATE"
    ).fetchall()


def set_encrypted_password(
    conn: psycopg.Connection, instance_id: UUID, password_enc: bytes
) -> None:
    """Replace an instance's encrypted password (same plaintext, new ciphertext)."""
    conn.execute(
        "UPDATE instances SET password_enc = %s WHERE id = %s", (password_enc, instance_id)
    )
