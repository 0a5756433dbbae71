"""Scheduled runs: the cron dispatcher and the periodic full rescan, run by beat.

Each due rule is claimed with a compare-and-set on ``next_run_at`` (or
``last_rescan_at``), so two beat processes or a slow tick never trigger a rule
twice. A rule whose previous task still runs is skipped, and the skip is a
``Skipped`` row in its log. The clock is a parameter: tests pass their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from uuid import UUID

from common.db import tasks as q
from common.db import transaction
from common.db.rules import COLUMNS as RULE_COLUMNS
from common.domain.rules import next_run
from common.settings import Settings


def _start_or_skip(conn, rule: dict, trigger: str, message: str) -> UUID | None:
    """Create the run's task, or a Skipped row when the previous task still runs."""
    running = q.open_tasks_of_rule(conn, rule["id"])
    if running:
        previous = q.get_task(conn, running[0])
        q.skip_task(
            conn,
            rule,
            trigger,
            f"skipped: task {previous['task_id'] if previous else '?'} is still running",
        )
        return None
    return q.create_task(conn, rule, trigger, message=message)["id"]


def dispatch_due(
    settings: Settings, now: dt.datetime, enqueue_plan: Callable[[UUID, str], None]
) -> dict[str, int]:
    """Trigger every rule whose cron schedule is due at ``now``; returns counts."""
    started = skipped = 0
    with transaction(settings) as conn:
        # Rules never scheduled yet (new, or schedule just set) get their first time.
        for rule in conn.execute(
            "SELECT id, schedule, schedule_timezone FROM rules "
            "WHERE enabled AND schedule IS NOT NULL AND next_run_at IS NULL"
        ).fetchall():
            conn.execute(
                "UPDATE rules SET next_run_at = %s WHERE id = %s AND next_run_at IS NULL",
                (next_run(rule["schedule"], now, rule["schedule_timezone"]), rule["id"]),
            )
        due = conn.execute(
            f"""SELECT {RULE_COLUMNS} FROM rules
                WHERE enabled AND schedule IS NOT NULL AND next_run_at <= %s""",
            (now,),
        ).fetchall()
    for rule in due:
        # Missed runs collapse into one: the next time is computed from now.
        following = next_run(rule["schedule"], now, rule["schedule_timezone"])
        with transaction(settings) as conn:
            claimed = conn.execute(
                "UPDATE rules SET next_run_at = %s WHERE id = %s AND next_run_at = %s "
                "AND enabled RETURNING id",
                (following, rule["id"], rule["next_run_at"]),
            ).fetchone()
            if claimed is None:
                continue  # another dispatcher took it
            task_uuid = _start_or_skip(conn, rule, "schedule", f"schedule {rule['schedule']}")
        if task_uuid is None:
            skipped += 1
        else:
            started += 1
            enqueue_plan(task_uuid, "schedule")
    return {"started": started, "skipped": skipped}


def rescan_all(
    settings: Settings,
    now: dt.datetime,
    interval_seconds: int,
    enqueue_plan: Callable[[UUID, str], None],
) -> dict[str, int]:
    """Rescan every enabled rule not rescanned within the interval (the webhook safety net)."""
    started = 0
    with transaction(settings) as conn:
        candidates = conn.execute(f"SELECT {RULE_COLUMNS} FROM rules WHERE enabled").fetchall()
    for rule in candidates:
        with transaction(settings) as conn:
            claimed = conn.execute(
                """UPDATE rules SET last_rescan_at = %(now)s
                   WHERE id = %(id)s AND enabled
                     AND (last_rescan_at IS NULL
                          OR last_rescan_at <= %(now)s - make_interval(secs => %(s)s))
                   RETURNING id""",
                {"now": now, "id": rule["id"], "s": interval_seconds * 0.9},
            ).fetchone()
            if claimed is None or q.has_open_task(conn, rule["id"]):
                continue
            task_uuid = q.create_task(conn, rule, "schedule", message="full rescan")["id"]
        started += 1
        enqueue_plan(task_uuid, "schedule")
    return {"started": started}
