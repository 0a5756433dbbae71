"""The audit log: one row per change, never with a secret."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from common.db.rows import fetch_page, fetch_value
from common.domain.models import AuditEntry

COLUMNS = (
    "id, tenant_id, user_id, user_name, at, object_type, object_id, action, source_ip, details"
)


def record(
    conn: psycopg.Connection,
    tenant_id: UUID,
    user_id: UUID | None,
    user_name: str,
    *,
    object_type: str,
    object_id: str,
    action: str,
    source_ip: str,
    details: dict[str, Any],
) -> None:
    """Append one entry."""
    conn.execute(
        "INSERT INTO audit_log (tenant_id, user_id, user_name, object_type, object_id, action, "
        "source_ip, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id,
            user_id,
            user_name,
            object_type,
            object_id,
            action,
            source_ip,
            Jsonb(details),
        ),
    )


def list_entries(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    object_type: str | None,
    object_id: str | None,
    user_id: UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """One page of the tenant's entries, newest first, optionally of one object or user."""
    return fetch_page(
        conn,
        AuditEntry,
        columns=COLUMNS,
        source="audit_log",
        where="tenant_id = %s AND (%s::text IS NULL OR object_type = %s) "
        "AND (%s::text IS NULL OR object_id = %s) AND (%s::uuid IS NULL OR user_id = %s)",
        params=(tenant_id, object_type, object_type, object_id, object_id, user_id, user_id),
        order_by="id DESC",
        limit=limit,
        offset=offset,
    )


def starter_of_task(conn: psycopg.Connection, tenant_id: UUID, task_id: str) -> str | None:
    """The name of the user whose trigger or retry started the task ``task_id``, or None."""
    return fetch_value(
        conn,
        "SELECT user_name FROM audit_log WHERE tenant_id = %s AND action IN ('trigger', 'retry') "
        "AND details->>'task_id' = %s ORDER BY id LIMIT 1",
        (tenant_id, task_id),
    )
