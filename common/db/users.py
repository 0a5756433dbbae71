"""Users of a tenant: rows, tenant scoping and the last-admin guard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_one, fetch_value, insert_sql, update_sql
from common.domain.models import User
from common.domain.vocab import Role
from common.errors import Conflict

COLUMNS = "id, tenant_id, name, password_hash, role, grants, created_at, updated_at"
USERS = Table(User, COLUMNS, "users", order_by="name, id")
WRITABLE = frozenset({"name", "password_hash", "role", "grants"})


def insert_user(conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any]) -> User:
    """Insert a user of ``tenant_id``; Conflict when the name is taken in the tenant."""
    cols = [c for c in values if c in WRITABLE]
    try:
        with conn.transaction():
            row = fetch_one(
                conn,
                User,
                insert_sql("users", ["tenant_id", *cols], COLUMNS),
                (tenant_id, *(values[c] for c in cols)),
            )
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"a user named {values['name']!r} already exists") from None
    assert row is not None
    return row


def get_user(conn: psycopg.Connection, user_id: UUID, tenant_id: UUID) -> User | None:
    """The tenant's user, or None."""
    return USERS.one(conn, "id = %s AND tenant_id = %s", (user_id, tenant_id))


def list_users(
    conn: psycopg.Connection, tenant_id: UUID, *, limit: int, offset: int
) -> tuple[list[User], int]:
    """One page of the tenant's users by name, and the total."""
    return USERS.page(conn, "tenant_id = %s", (tenant_id,), limit=limit, offset=offset)


def update_user(
    conn: psycopg.Connection, user_id: UUID, tenant_id: UUID, values: Mapping[str, Any]
) -> User | None:
    """Write ``values`` over the tenant's user; the new row, or None if not found."""
    unknown = set(values) - WRITABLE
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if not values:
        return get_user(conn, user_id, tenant_id)
    query = update_sql("users", list(values), "id = %s AND tenant_id = %s", COLUMNS)
    try:
        with conn.transaction():
            return fetch_one(conn, User, query, (*values.values(), user_id, tenant_id))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"a user named {values.get('name')!r} already exists") from None


def delete_user(conn: psycopg.Connection, user_id: UUID, tenant_id: UUID) -> bool:
    """Delete the tenant's user and its keys; False if not found."""
    deleted = fetch_value(
        conn,
        "DELETE FROM users WHERE id = %s AND tenant_id = %s RETURNING id",
        (user_id, tenant_id),
    )
    return deleted is not None


def lock_admins(conn: psycopg.Connection, tenant_id: UUID) -> Sequence[UUID]:
    """The ids of the tenant's admins, locked until the transaction ends.

    Locking them serialises concurrent demotions and deletions, so two
    requests cannot each remove "another" admin and leave none.
    """
    rows = conn.execute(
        "SELECT id FROM users WHERE tenant_id = %s AND role = %s ORDER BY id FOR UPDATE",
        (tenant_id, Role.ADMIN.value),
    ).fetchall()
    return [r["id"] if isinstance(r, dict) else r[0] for r in rows]


def find_login(conn: psycopg.Connection, tenant: str, user_name: str) -> User | None:
    """The user ``user_name`` of the tenant named ``tenant`` (or with that id), or None."""
    return USERS.one(
        conn,
        "name = %s AND tenant_id = (SELECT id FROM tenants WHERE name = %s OR id::text = %s "
        "ORDER BY name = %s DESC LIMIT 1)",
        (user_name, tenant, tenant.lower(), tenant),
    )
