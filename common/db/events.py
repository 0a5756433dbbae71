"""Webhook events: stored once per delivery key, then turned into push tasks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from common.db.rules import COLUMNS as RULE_COLUMNS


def store_event(
    conn: psycopg.Connection,
    instance_id: UUID,
    *,
    dedup_key: str,
    repository: str,
    tag: str,
    digest: str | None,
    payload: dict[str, Any],
) -> int | None:
    """Insert an event; None when the same delivery was stored before (a replay)."""
    row = conn.execute(
        """INSERT INTO webhook_events (instance_id, dedup_key, repository, tag, digest, payload)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (instance_id, dedup_key) DO NOTHING RETURNING id""",
        (instance_id, dedup_key, repository, tag, digest, Jsonb(payload)),
    ).fetchone()
    return row["id"] if row else None


def get_event(conn: psycopg.Connection, event_id: int) -> dict[str, Any] | None:
    """One stored event."""
    return conn.execute(
        """SELECT id, instance_id, repository, tag, digest, processed_at
           FROM webhook_events WHERE id = %s""",
        (event_id,),
    ).fetchone()


def claim_event(conn: psycopg.Connection, event_id: int) -> dict[str, Any] | None:
    """Mark an event processed and return it; None if it already was (redelivery)."""
    return conn.execute(
        """UPDATE webhook_events SET processed_at = now()
           WHERE id = %s AND processed_at IS NULL
           RETURNING id, instance_id, repository, tag, digest""",
        (event_id,),
    ).fetchone()


def unprocessed_events(conn: psycopg.Connection, older_than_seconds: float) -> list[int]:
    """Events whose processing message was lost."""
    return [
        r["id"]
        for r in conn.execute(
            """SELECT id FROM webhook_events WHERE processed_at IS NULL
           AND received_at < now() - make_interval(secs => %s) ORDER BY id LIMIT 1000""",
            (older_than_seconds,),
        )
    ]


def enabled_rules_on_source(conn: psycopg.Connection, instance_id: UUID) -> list[dict[str, Any]]:
    """Every enabled rule whose source is ``instance_id``."""
    return conn.execute(
        f"SELECT {RULE_COLUMNS} FROM rules WHERE source_instance_id = %s AND enabled",
        (instance_id,),
    ).fetchall()


def open_push_task(
    conn: psycopg.Connection, rule_id: UUID, window_seconds: float
) -> dict[str, Any] | None:
    """The rule's newest push task, still open and younger than the window, locked."""
    return conn.execute(
        """SELECT id, task_id, status FROM sync_tasks
           WHERE rule_id = %s AND trigger = 'push' AND status IN ('Pending', 'InProgress')
             AND NOT stop_requested AND created_at > now() - make_interval(secs => %s)
           ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
        (rule_id, window_seconds),
    ).fetchone()


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
