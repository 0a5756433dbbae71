"""Rule health: the last check of each rule, and what the checks need to know."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_dict, fetch_one, fetch_value
from common.domain.operations import RuleHealth

HEALTH = Table(
    RuleHealth, "rule_id, state, reason, since, checked_at", "rule_health", order_by="rule_id"
)


def get_health(conn: psycopg.Connection, rule_id: UUID) -> RuleHealth | None:
    """The rule's stored health, or None when it was never checked."""
    return HEALTH.one(conn, "rule_id = %s", (rule_id,))


def health_of(conn: psycopg.Connection, rule_ids: list[UUID]) -> dict[UUID, RuleHealth]:
    """Stored health of several rules, by rule id (rules never checked are absent)."""
    if not rule_ids:
        return {}
    return {h.rule_id: h for h in HEALTH.all(conn, "rule_id = ANY(%s)", (rule_ids,))}


def record_health(
    conn: psycopg.Connection, rule_id: UUID, state: str, reason: str
) -> tuple[RuleHealth | None, RuleHealth]:
    """Store a check's result; (the previous row or None, the new row). ``since`` moves only
    when the state changes. The previous row is locked, so two checks take turns."""
    before = HEALTH.one(conn, "rule_id = %s FOR UPDATE", (rule_id,))
    after = fetch_one(
        conn,
        RuleHealth,
        """INSERT INTO rule_health (rule_id, state, reason) VALUES (%s, %s, %s)
           ON CONFLICT (rule_id) DO UPDATE SET
             since = CASE WHEN rule_health.state = EXCLUDED.state THEN rule_health.since
                          ELSE now() END,
             state = EXCLUDED.state, reason = EXCLUDED.reason, checked_at = now()
           RETURNING rule_id, state, reason, since, checked_at""",
        (rule_id, state, reason),
    )
    assert after is not None
    return before, after


def last_final_status(conn: psycopg.Connection, rule_id: UUID) -> tuple[str, str] | None:
    """(status, message) of the rule's last finished task that ran (Skipped ones aside)."""
    row = fetch_dict(
        conn,
        "SELECT status, message FROM sync_tasks WHERE rule_id = %s "
        "AND status NOT IN ('Pending', 'InProgress', 'Skipped') "
        "ORDER BY finished_at DESC NULLS LAST, created_at DESC LIMIT 1",
        (rule_id,),
    )
    return (row["status"], row["message"]) if row else None


def last_webhook_at(conn: psycopg.Connection, instance_id: UUID) -> dt.datetime | None:
    """When the instance last delivered a webhook event (None: never, or purged)."""
    return fetch_value(
        conn, "SELECT max(received_at) FROM webhook_events WHERE instance_id = %s", (instance_id,)
    )
