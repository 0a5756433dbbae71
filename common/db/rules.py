"""Rules: rows, tenant scoping and encrypted cross-tenant passwords."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from common.errors import Conflict

COLUMNS = (
    "id, tenant_id, name, description, source_instance_id, source_namespace, "
    "repository_filter, tag_filter, repository_exclude, tag_exclude, filter_syntax, "
    "resource_types, target_instance_id, target_namespace, cross_tenant, target_account_id, "
    "target_username, target_password_enc, override, enabled, schedule, schedule_timezone, "
    "next_run_at, created_at, updated_at"
)
# Columns the API may write; tenant_id, ids and timestamps are Ferry's.
WRITABLE = (
    "name",
    "description",
    "source_instance_id",
    "source_namespace",
    "repository_filter",
    "tag_filter",
    "repository_exclude",
    "tag_exclude",
    "filter_syntax",
    "resource_types",
    "target_instance_id",
    "target_namespace",
    "cross_tenant",
    "target_account_id",
    "target_username",
    "target_password_enc",
    "override",
    "enabled",
    "schedule",
    "schedule_timezone",
    "next_run_at",
)


def _translate(exc: psycopg.Error, values: Mapping[str, Any]) -> Exception:
    """A FerryError for constraint violations a concurrent request can cause."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict(
            f"a rule named {values.get('name')!r} already exists for this source instance"
        )
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return Conflict("an instance the rule refers to was deleted meanwhile")
    return exc


def insert_rule(conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any]) -> dict:
    """Insert a rule of ``tenant_id``; Conflict when its name is taken on the source."""
    cols = [c for c in WRITABLE if c in values]
    query = sql.SQL(
        "INSERT INTO rules (tenant_id, {cols}) VALUES (%s, {vals}) RETURNING " + COLUMNS
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    try:
        with conn.transaction():
            return conn.execute(query, (tenant_id, *(values[c] for c in cols))).fetchone()
    except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation) as exc:
        raise _translate(exc, values) from None


def get_rule(
    conn: psycopg.Connection, rule_id: UUID | str, tenant_id: UUID | str | None = None
) -> dict | None:
    """The rule row, or None; with ``tenant_id``, only if that tenant owns it."""
    if tenant_id is None:
        return conn.execute(f"SELECT {COLUMNS} FROM rules WHERE id = %s", (rule_id,)).fetchone()
    return conn.execute(
        f"SELECT {COLUMNS} FROM rules WHERE id = %s AND tenant_id = %s", (rule_id, tenant_id)
    ).fetchone()


def rule_name_taken(
    conn: psycopg.Connection, source_instance_id: UUID, name: str, except_id: UUID | None = None
) -> bool:
    """True when another rule on the source instance has ``name``."""
    row = conn.execute(
        "SELECT 1 FROM rules WHERE source_instance_id = %s AND name = %s "
        "AND id IS DISTINCT FROM %s",
        (source_instance_id, name, except_id),
    ).fetchone()
    return row is not None


def list_rules(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    source_instance_id: UUID | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict], int]:
    """One page of the tenant's rules (optionally of one source instance), and the total."""
    where = "tenant_id = %s AND (%s::uuid IS NULL OR source_instance_id = %s)"
    args = (tenant_id, source_instance_id, source_instance_id)
    total = conn.execute(f"SELECT count(*) AS n FROM rules WHERE {where}", args).fetchone()["n"]
    if offset >= total:
        return [], total  # also keeps a huge page number from overflowing OFFSET
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM rules WHERE {where} ORDER BY name, id LIMIT %s OFFSET %s",
        (*args, limit, offset),
    ).fetchall()
    return rows, total


def update_rule(
    conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID, values: Mapping[str, Any]
) -> dict | None:
    """Write ``values`` over the tenant's rule; the new row, or None if not found."""
    unknown = set(values) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if not values:
        return get_rule(conn, rule_id, tenant_id)
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in values)
    query = sql.SQL(
        "UPDATE rules SET {a}, updated_at = now() WHERE id = %s AND tenant_id = %s "
        "RETURNING " + COLUMNS
    ).format(a=assignments)
    try:
        with conn.transaction():
            return conn.execute(query, (*values.values(), rule_id, tenant_id)).fetchone()
    except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation) as exc:
        raise _translate(exc, values) from None


def set_rule_enabled(
    conn: psycopg.Connection,
    rule_id: UUID,
    tenant_id: UUID,
    enabled: bool,
    next_run_at: dt.datetime | None,
) -> dict | None:
    """Enable or disable the tenant's rule; the new row, or None if not found."""
    return update_rule(conn, rule_id, tenant_id, {"enabled": enabled, "next_run_at": next_run_at})


def delete_rule(conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID) -> bool:
    """Delete the tenant's rule (its tasks keep their history); False if not found."""
    row = conn.execute(
        "DELETE FROM rules WHERE id = %s AND tenant_id = %s RETURNING id", (rule_id, tenant_id)
    ).fetchone()
    return row is not None


def encrypted_passwords(conn: psycopg.Connection) -> list[dict]:
    """Every rule holding a password: ``{id, target_password_enc}``, locked for update."""
    return conn.execute(
        "SELECT id, target_password_enc FROM rules "
        "WHERE target_password_enc IS NOT NULL ORDER BY id FOR UPDATE"
    ).fetchall()


def set_encrypted_password(conn: psycopg.Connection, rule_id: UUID, password_enc: bytes) -> None:
    """Replace a rule's encrypted target password (same plaintext, new ciphertext)."""
    conn.execute("UPDATE rules SET target_password_enc = %s WHERE id = %s", (password_enc, rule_id))
