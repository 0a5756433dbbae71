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

import psycopg

from common.db import rules as rules_q
from common.db import tasks as q
from common.db import transaction
from common.domain.models import Rule
from common.domain.rules import next_run
from common.domain.vocab import Trigger
from common.settings import Settings

# A rescan may run this much earlier than its interval, so that ticks drifting
# by a few seconds never push a rule's rescan to the next interval.
RESCAN_SLACK = 0.9


def _start_or_skip(
    conn: psycopg.Connection, rule: Rule, trigger: Trigger, message: str
) -> UUID | None:
    """Create the run's task, or a Skipped row when the previous task still runs."""
    running = q.open_tasks_of_rule(conn, rule.id)
    if running:
        previous = q.get_task(conn, running[0])
        q.skip_task(
            conn,
            rule,
            trigger,
            f"skipped: task {previous.task_id if previous else '?'} is still running",
        )
        return None
    return q.create_task(conn, rule, trigger, message=message).id


def dispatch_due(
    settings: Settings, now: dt.datetime, enqueue_plan: Callable[[UUID, Trigger], None]
) -> dict[str, int]:
    """Trigger every rule whose cron schedule is due at ``now``; returns counts."""
    started = skipped = 0
    with transaction(settings) as conn:
        # Rules never scheduled yet (new, or schedule just set) get their first time.
        for rule in rules_q.unscheduled_rules(conn):
            assert rule.schedule is not None
            rules_q.set_first_run(
                conn, rule.id, next_run(rule.schedule, now, rule.schedule_timezone)
            )
        due = rules_q.due_rules(conn, now)
    for rule in due:
        assert rule.schedule is not None
        # Missed runs collapse into one: the next time is computed from now.
        following = next_run(rule.schedule, now, rule.schedule_timezone)
        with transaction(settings) as conn:
            if not rules_q.claim_scheduled_run(conn, rule, following):
                continue  # another dispatcher took it
            task_uuid = _start_or_skip(conn, rule, Trigger.SCHEDULE, f"schedule {rule.schedule}")
        if task_uuid is None:
            skipped += 1
        else:
            started += 1
            enqueue_plan(task_uuid, Trigger.SCHEDULE)
    return {"started": started, "skipped": skipped}


def rescan_all(
    settings: Settings,
    now: dt.datetime,
    interval_seconds: int,
    enqueue_plan: Callable[[UUID, Trigger], None],
) -> dict[str, int]:
    """Rescan every enabled rule not rescanned within the interval (the webhook safety net)."""
    started = 0
    with transaction(settings) as conn:
        candidates = rules_q.enabled_rules(conn)
    for rule in candidates:
        with transaction(settings) as conn:
            claimed = rules_q.claim_rescan(conn, rule.id, now, interval_seconds * RESCAN_SLACK)
            if not claimed or q.has_open_task(conn, rule.id):
                continue
            task_uuid = q.create_task(conn, rule, Trigger.SCHEDULE, message="full rescan").id
        started += 1
        enqueue_plan(task_uuid, Trigger.SCHEDULE)
    return {"started": started}
