"""Webhook events: stored once per delivery key, then turned into push tasks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from common.db.rows import fetch_one, fetch_value, fetch_values
from common.domain.models import WebhookEvent


def store_event(
    conn: psycopg.Connection,
    instance_id: UUID,
    *,
    dedup_key: str,
    repository: str,
    tag: str,
    digest: str | None,
    payload: dict[str, Any],
    action: str = "push",
) -> int | None:
    """Insert an event; None when the same delivery was stored before (a replay)."""
    return fetch_value(
        conn,
        """INSERT INTO webhook_events
               (instance_id, dedup_key, repository, tag, digest, payload, action)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (instance_id, dedup_key) DO NOTHING RETURNING id""",
        (instance_id, dedup_key, repository, tag, digest, Jsonb(payload), action),
    )


def get_event(conn: psycopg.Connection, event_id: int) -> WebhookEvent | None:
    """One stored event."""
    return fetch_one(
        conn,
        WebhookEvent,
        """SELECT id, instance_id, repository, tag, digest, processed_at, action
           FROM webhook_events WHERE id = %s""",
        (event_id,),
    )


def claim_event(conn: psycopg.Connection, event_id: int) -> WebhookEvent | None:
    """Mark an event processed and return it; None if it already was (redelivery)."""
    return fetch_one(
        conn,
        WebhookEvent,
        """UPDATE webhook_events SET processed_at = now()
           WHERE id = %s AND processed_at IS NULL
           RETURNING id, instance_id, repository, tag, digest, processed_at, action""",
        (event_id,),
    )


def claim_lost_events(conn: psycopg.Connection, older_than_seconds: float) -> list[int]:
    """Claim events whose processing message was lost; an event claimed within
    ``older_than_seconds`` is not claimed again, so two beats re-send it once."""
    # SKIP LOCKED: concurrent reconciles take disjoint events instead of waiting.
    return fetch_values(
        conn,
        """UPDATE webhook_events SET requeued_at = now()
           WHERE id IN (SELECT id FROM webhook_events
                        WHERE processed_at IS NULL
                          AND received_at < now() - make_interval(secs => %(s)s)
                          AND (requeued_at IS NULL
                               OR requeued_at < now() - make_interval(secs => %(s)s))
                        ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
           RETURNING id""",
        {"s": older_than_seconds},
    )


def purge_processed(conn: psycopg.Connection, older_than_days: int) -> int:
    """Delete events processed more than ``older_than_days`` ago; how many went.

    Their only remaining use is de-duplication, and a replay older than that
    only leads to an idempotent copy that finds the target up to date.
    """
    cur = conn.execute(
        "DELETE FROM webhook_events WHERE processed_at < now() - make_interval(days => %s)",
        (older_than_days,),
    )
    return cur.rowcount
