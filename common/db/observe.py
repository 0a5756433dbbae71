"""The figures ``GET /metrics`` reads from the database at scrape time, exact by
construction, and the age of a push a copy just replicated."""

from __future__ import annotations

from typing import Any

import psycopg

from common.db.rows import fetch_dicts, fetch_value
from common.db.rules import RULES
from common.domain.models import Rule
from common.domain.vocab import Trigger


def tasks_by_trigger_and_status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Rows ``{trigger, status, n}``: the task log counted, every account together."""
    return fetch_dicts(
        conn, "SELECT trigger, status, count(*) AS n FROM sync_tasks GROUP BY trigger, status"
    )


def items_by_outcome(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Rows ``{status, n}``: the items of every task by outcome."""
    return fetch_dicts(conn, "SELECT status, count(*) AS n FROM sync_items GROUP BY status")


def rules(conn: psycopg.Connection) -> list[Rule]:
    """Every rule of every account (their health is a gauge)."""
    return RULES.all(conn, "true")


def target_instances(conn: psycopg.Connection) -> list[str]:
    """Ids of the instances some rule copies into (whose copy slots are worth reporting)."""
    rows = fetch_dicts(
        conn,
        "SELECT DISTINCT target_instance_id AS id FROM rules WHERE target_instance_id IS NOT NULL",
    )
    return [str(r["id"]) for r in rows]


def push_age(conn: psycopg.Connection, item_id: int) -> float | None:
    """Seconds since the webhook announcing a push task's item arrived (the task's creation
    when no event is found); None for items of other triggers."""
    return fetch_value(
        conn,
        """SELECT EXTRACT(EPOCH FROM clock_timestamp() - coalesce(
                  (SELECT max(e.received_at) FROM webhook_events e
                    WHERE e.instance_id = t.source_instance_id
                      AND e.repository = i.source_repository AND e.tag = i.source_tag
                      AND e.received_at <= t.created_at + interval '5 seconds'),
                  t.created_at))::float8
             FROM sync_items i JOIN sync_tasks t ON t.id = i.task_id
            WHERE i.id = %s AND t.trigger = %s""",
        (item_id, Trigger.PUSH),
    )
