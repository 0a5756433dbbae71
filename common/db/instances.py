"""Registry instances: rows, tenant scoping, webhook secrets and encrypted passwords."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_one, fetch_tuples, fetch_value, insert_sql, update_sql
from common.domain.models import Instance
from common.errors import Conflict

COLUMNS = (
    "id, tenant_id, name, url, region, kind, verify_tls, username, password_enc, "
    "webhook_secret_hash, webhook_secret_prev_hash, max_concurrent_copies, task_seq, "
    "created_at, updated_at, checked_at, check_error"
)
INSTANCES = Table(Instance, COLUMNS, "instances", order_by="name, id")
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
        "checked_at",
        "check_error",
    }
)


def _duplicate_name(name: str) -> Conflict:
    return Conflict(f"an instance named {name!r} already exists")


def insert_instance(
    conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any], webhook_secret_hash: bytes
) -> Instance:
    """Insert an instance of ``tenant_id``; raises Conflict when its name is taken."""
    cols = [c for c in values if c in UPDATABLE]
    query = insert_sql("instances", ["tenant_id", "webhook_secret_hash", *cols], COLUMNS)
    try:
        with conn.transaction():
            row = fetch_one(
                conn, Instance, query, (tenant_id, webhook_secret_hash, *(values[c] for c in cols))
            )
    except psycopg.errors.UniqueViolation:
        raise _duplicate_name(values["name"]) from None
    assert row is not None
    return row


def get_instance(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID | None = None
) -> Instance | None:
    """The instance, or None; with ``tenant_id``, only if that tenant owns it."""
    if tenant_id is None:
        return INSTANCES.one(conn, "id = %s", (instance_id,))
    return INSTANCES.one(conn, "id = %s AND tenant_id = %s", (instance_id, tenant_id))


def instance_name_taken(
    conn: psycopg.Connection, tenant_id: UUID, name: str, except_id: UUID | None = None
) -> bool:
    """True when another instance of the tenant has ``name``."""
    found = fetch_value(
        conn,
        "SELECT 1 FROM instances WHERE tenant_id = %s AND name = %s AND id IS DISTINCT FROM %s",
        (tenant_id, name, except_id),
    )
    return found is not None


def list_instances(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[Instance], int]:
    """One page of the tenant's instances by name (only those of ``only`` when given), and
    the total count."""
    return INSTANCES.page(
        conn,
        "tenant_id = %s AND (%s::uuid[] IS NULL OR id = ANY(%s::uuid[]))",
        (tenant_id, only, only),
        limit=limit,
        offset=offset,
    )


def update_instance(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID, changes: Mapping[str, Any]
) -> Instance | None:
    """Apply ``changes`` to the tenant's instance; the new row, or None if not found."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return get_instance(conn, instance_id, tenant_id)
    query = update_sql("instances", list(changes), "id = %s AND tenant_id = %s", COLUMNS)
    try:
        with conn.transaction():
            return fetch_one(conn, Instance, query, (*changes.values(), instance_id, tenant_id))
    except psycopg.errors.UniqueViolation:
        raise _duplicate_name(str(changes.get("name"))) from None


def rules_using_instance(
    conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID
) -> tuple[list[str], int]:
    """Names of the tenant's rules using the instance (source or target), and how many
    rules of other tenants target it."""
    rows = fetch_tuples(
        conn,
        "SELECT name, tenant_id = %s AS own FROM rules "
        "WHERE source_instance_id = %s OR target_instance_id = %s ORDER BY name",
        (tenant_id, instance_id, instance_id),
    )
    return [name for name, own in rows if own], sum(1 for _, own in rows if not own)


def delete_instance(conn: psycopg.Connection, instance_id: UUID, tenant_id: UUID) -> bool:
    """Delete the tenant's instance; False if not found. Raises Conflict if a rule uses it."""
    try:
        with conn.transaction():
            deleted = fetch_value(
                conn,
                "DELETE FROM instances WHERE id = %s AND tenant_id = %s RETURNING id",
                (instance_id, tenant_id),
            )
    except (psycopg.errors.ForeignKeyViolation, psycopg.errors.CheckViolation):
        raise Conflict("the instance is used by a rule") from None
    return deleted is not None


def rotate_webhook_secret(
    conn: psycopg.Connection,
    instance_id: UUID,
    tenant_id: UUID,
    new_hash: bytes,
    grace_seconds: int,
) -> bool:
    """Make ``new_hash`` the current secret; the current one stays valid for
    ``grace_seconds`` (none at all when 0: revoked at once). False if not found.
    The secret before the previous one stops working."""
    updated = fetch_value(
        conn,
        """UPDATE instances SET
               webhook_secret_prev_hash = CASE WHEN %(grace)s > 0 THEN webhook_secret_hash END,
               webhook_secret_prev_expires_at = CASE WHEN %(grace)s > 0
                   THEN now() + make_interval(secs => %(grace)s) END,
               webhook_secret_hash = %(new)s, updated_at = now()
           WHERE id = %(id)s AND tenant_id = %(tenant)s RETURNING id""",
        {"grace": grace_seconds, "new": new_hash, "id": instance_id, "tenant": tenant_id},
    )
    return updated is not None


def webhook_secret_hashes(conn: psycopg.Connection, instance_id: UUID) -> list[bytes]:
    """The hashes of the instance's webhook secrets that work now: the current one, and the
    previous one until its grace period ends. Empty for an unknown instance."""
    row = fetch_tuples(
        conn,
        """SELECT webhook_secret_hash,
                  CASE WHEN webhook_secret_prev_expires_at > now()
                       THEN webhook_secret_prev_hash END
           FROM instances WHERE id = %s""",
        (instance_id,),
    )
    return [bytes(h) for h in (row[0] if row else ()) if h is not None]


def encrypted_passwords(conn: psycopg.Connection) -> list[Instance]:
    """Every instance holding a password, locked for update."""
    return INSTANCES.all(conn, "password_enc IS NOT NULL ORDER BY id FOR UPDATE")


def set_encrypted_password(
    conn: psycopg.Connection, instance_id: UUID, password_enc: bytes
) -> None:
    """Replace an instance's encrypted password (same plaintext, new ciphertext)."""
    conn.execute(
        "UPDATE instances SET password_enc = %s WHERE id = %s", (password_enc, instance_id)
    )


def existing_ids(conn: psycopg.Connection, tenant_id: UUID, ids: list[UUID]) -> set[UUID]:
    """Those of ``ids`` that are instances of the tenant."""
    rows = fetch_tuples(
        conn, "SELECT id FROM instances WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, ids)
    )
    return {r[0] for r in rows}
