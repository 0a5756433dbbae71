"""Notifications of a tenant and the log of their deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_one, fetch_value, insert_sql, update_sql
from common.domain.operations import Delivery, DeliveryStatus, Notification
from common.errors import Conflict

COLUMNS = (
    "id, tenant_id, rule_id, name, urls_enc, schemes, on_task, on_health, on_drift, enabled, "
    "created_at, updated_at"
)
NOTIFICATIONS = Table(Notification, COLUMNS, "notifications", order_by="name, id")
WRITABLE = ("rule_id", "name", "urls_enc", "schemes", "on_task", "on_health", "on_drift", "enabled")
DELIVERY_COLUMNS = (
    "id, notification_id, event, event_key, rule_id, title, body, status, attempts, "
    "last_error, created_at, updated_at"
)
DELIVERIES = Table(Delivery, DELIVERY_COLUMNS, "notification_deliveries", order_by="id DESC")


def _name_taken(values: Mapping[str, Any]) -> Conflict:
    return Conflict(f"a notification named {values.get('name')!r} already exists")


def insert_notification(
    conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any]
) -> Notification:
    """A new notification of the tenant; Conflict when its name is taken."""
    cols = [c for c in WRITABLE if c in values]
    try:
        with conn.transaction():
            row = fetch_one(
                conn,
                Notification,
                insert_sql("notifications", ["tenant_id", *cols], COLUMNS),
                (tenant_id, *(values[c] for c in cols)),
            )
    except psycopg.errors.UniqueViolation:
        raise _name_taken(values) from None
    except psycopg.errors.ForeignKeyViolation:
        raise Conflict("the rule was deleted meanwhile") from None
    assert row is not None
    return row


def update_notification(
    conn: psycopg.Connection, notification_id: UUID, tenant_id: UUID, values: Mapping[str, Any]
) -> Notification | None:
    """Write ``values`` over the tenant's notification; the new row, or None."""
    if not values:
        return get_notification(conn, notification_id, tenant_id)
    query = update_sql("notifications", list(values), "id = %s AND tenant_id = %s", COLUMNS)
    try:
        with conn.transaction():
            return fetch_one(
                conn, Notification, query, (*values.values(), notification_id, tenant_id)
            )
    except psycopg.errors.UniqueViolation:
        raise _name_taken(values) from None


def get_notification(
    conn: psycopg.Connection, notification_id: UUID, tenant_id: UUID | None = None
) -> Notification | None:
    if tenant_id is None:
        return NOTIFICATIONS.one(conn, "id = %s", (notification_id,))
    return NOTIFICATIONS.one(conn, "id = %s AND tenant_id = %s", (notification_id, tenant_id))


def list_notifications(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    rule_id: UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[Notification], int]:
    """One page of the tenant's notifications (with ``rule_id``, that rule's), and the total."""
    return NOTIFICATIONS.page(
        conn,
        "tenant_id = %s AND (%s::uuid IS NULL OR rule_id = %s)",
        (tenant_id, rule_id, rule_id),
        limit=limit,
        offset=offset,
    )


def delete_notification(conn: psycopg.Connection, notification_id: UUID, tenant_id: UUID) -> bool:
    deleted = fetch_value(
        conn,
        "DELETE FROM notifications WHERE id = %s AND tenant_id = %s RETURNING id",
        (notification_id, tenant_id),
    )
    return deleted is not None


def listeners(
    conn: psycopg.Connection, tenant_id: UUID, rule_id: UUID | None
) -> list[Notification]:
    """The tenant's enabled notifications that hear about ``rule_id``: the tenant-wide ones
    and the rule's own."""
    return NOTIFICATIONS.all(
        conn,
        "tenant_id = %s AND enabled AND (rule_id IS NULL OR rule_id = %s) ORDER BY id",
        (tenant_id, rule_id),
    )


def claim_delivery(
    conn: psycopg.Connection,
    notification_id: UUID,
    *,
    event: str,
    event_key: str,
    rule_id: UUID | None,
    title: str,
    body: str,
) -> int | None:
    """Record a message to send; None when this event was already recorded for it."""
    return fetch_value(
        conn,
        """INSERT INTO notification_deliveries
             (notification_id, event, event_key, rule_id, title, body)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (notification_id, event_key) DO NOTHING RETURNING id""",
        (notification_id, event, event_key, rule_id, title, body),
    )


def get_delivery(conn: psycopg.Connection, delivery_id: int) -> Delivery | None:
    return DELIVERIES.one(conn, "id = %s", (delivery_id,))


def record_attempt(
    conn: psycopg.Connection, delivery_id: int, status: DeliveryStatus, error: str = ""
) -> None:
    """Count one attempt at sending and its result."""
    conn.execute(
        "UPDATE notification_deliveries SET attempts = attempts + 1, status = %s, "
        "last_error = %s, updated_at = now() WHERE id = %s",
        (status, error, delivery_id),
    )


def list_deliveries(
    conn: psycopg.Connection, notification_id: UUID, *, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """One page of a notification's deliveries, newest first, and the total."""
    return DELIVERIES.page(
        conn, "notification_id = %s", (notification_id,), limit=limit, offset=offset
    )
