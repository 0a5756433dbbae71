"""Sync tasks: creation, claims and the figures of the log.

Every figure of a task is computed here from its item rows; Celery's chord is
only the fast path that asks for the computation. Claims are conditional
UPDATEs, so a redelivered or duplicated message finds nothing to do. Statuses
and triggers reach the SQL as parameters (``common.domain.vocab``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_dict, fetch_tuples, fetch_value, fetch_values
from common.domain.models import Rule, Task
from common.domain.vocab import (
    OPEN_ITEM_STATUSES,
    OPEN_TASK_STATUSES,
    ItemStatus,
    TaskStatus,
    Trigger,
)
from common.errors import NotFound

TASK_COLUMNS = """
    t.id, t.task_id, t.tenant_id, t.rule_id, t.source_instance_id, t.trigger, t.status,
    t.message, t.stop_requested, t.retry_of, t.total, t.copied, t.up_to_date, t.kept,
    t.failed, t.stopped, t.deleted, t.repositories_count, t.bytes_transferred, t.success_rate,
    t.created_at, t.started_at, t.finished_at, t.listed_at, t.plan_attempts,
    EXTRACT(EPOCH FROM (coalesce(t.finished_at, now()) - t.started_at))::float8
        AS time_spent_seconds
"""
# The figures of a task, counted from its items (``%(t)s`` is the task).
ITEM_COUNTS = """
    count(*) AS total,
    count(*) FILTER (WHERE status = %(copied)s) AS copied,
    count(*) FILTER (WHERE status = %(up_to_date)s) AS up_to_date,
    count(*) FILTER (WHERE status = %(kept)s) AS kept,
    count(*) FILTER (WHERE status = %(failed)s) AS failed,
    count(*) FILTER (WHERE status = %(stopped)s) AS stopped,
    count(*) FILTER (WHERE status = %(deleted)s) AS deleted,
    count(*) FILTER (WHERE status = ANY(%(open_items)s)) AS open,
    count(DISTINCT source_repository) AS repositories_count,
    coalesce(sum(bytes_transferred), 0) AS bytes_transferred
"""
COUNT_PARAMS: dict[str, Any] = {
    "copied": ItemStatus.COPIED,
    "up_to_date": ItemStatus.UP_TO_DATE,
    "kept": ItemStatus.KEPT,
    "failed": ItemStatus.FAILED,
    "stopped": ItemStatus.STOPPED,
    "deleted": ItemStatus.DELETED,
    "open_items": list(OPEN_ITEM_STATUSES),
}
OPEN_TASK = list(OPEN_TASK_STATUSES)
# Newest first: the rule's task log.
TASKS = Table(Task, TASK_COLUMNS, "sync_tasks t", order_by="t.created_at DESC, t.task_id DESC")


def create_task(
    conn: psycopg.Connection,
    rule: Rule,
    trigger: Trigger,
    *,
    message: str = "",
    retry_of: UUID | None = None,
) -> Task:
    """Insert a Pending task for ``rule`` with a readable id unique in the source instance."""
    seq = fetch_value(
        conn,
        "UPDATE instances SET task_seq = task_seq + 1 WHERE id = %s RETURNING task_seq",
        (rule.source_instance_id,),
    )
    if seq is None:
        raise NotFound("the rule's source instance no longer exists")
    # The instance id prefix makes the readable id unique across instances too.
    task_id = f"{str(rule.source_instance_id)[:8]}-{seq:06d}"
    created = fetch_value(
        conn,
        """INSERT INTO sync_tasks (task_id, tenant_id, rule_id, source_instance_id, trigger,
                                   message, retry_of)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (task_id, rule.tenant_id, rule.id, rule.source_instance_id, trigger, message, retry_of),
    )
    task = get_task(conn, created)
    assert task is not None
    return task


def skip_task(conn: psycopg.Connection, rule: Rule, trigger: Trigger, message: str) -> Task:
    """Record a run that did not happen (its previous task still ran) in the rule's log."""
    task = create_task(conn, rule, trigger, message=message)
    conn.execute(
        """UPDATE sync_tasks SET status = %s, started_at = now(), finished_at = now()
           WHERE id = %s""",
        (TaskStatus.SKIPPED, task.id),
    )
    return task


def get_task(conn: psycopg.Connection, task_uuid: UUID) -> Task | None:
    """A task by its primary key, with ``time_spent_seconds``."""
    return TASKS.one(conn, "t.id = %s", (task_uuid,))


def find_task(conn: psycopg.Connection, task_id: str, tenant_id: UUID) -> Task:
    """A task of ``tenant_id`` by its readable id; NotFound otherwise (also for other tenants).

    While the task runs, its counts are computed live from the items.
    """
    task = TASKS.one(conn, "t.task_id = %s AND t.tenant_id = %s", (task_id, tenant_id))
    if task is None:
        raise NotFound(f"task {task_id} not found")
    if task.is_open:
        live = fetch_dict(
            conn,
            f"SELECT {ITEM_COUNTS} FROM sync_items WHERE task_id = %(t)s",
            {**COUNT_PARAMS, "t": task.id},
        )
        if live:
            live.pop("open")
            task = replace(task, **live)
    return task


def readable_id(conn: psycopg.Connection, task_uuid: UUID) -> str | None:
    """The readable ``task_id`` of a task, or None when it no longer exists."""
    return fetch_value(conn, "SELECT task_id FROM sync_tasks WHERE id = %s", (task_uuid,))


def list_tasks(
    conn: psycopg.Connection, rule_id: UUID, *, limit: int, offset: int
) -> tuple[list[Task], int]:
    """A page of a rule's tasks, newest first, and the total count."""
    return TASKS.page(conn, "t.rule_id = %s", (rule_id,), limit=limit, offset=offset)


def start_task(conn: psycopg.Connection, task_uuid: UUID, lease_seconds: float) -> Task | None:
    """Claim a task for planning (Pending → InProgress) with a lease on its plan.

    None if the task was stopped or finished, or another plan holds a live
    lease. Each claim of a task not yet listed counts as a plan attempt.
    """
    started = fetch_value(
        conn,
        """UPDATE sync_tasks SET status = %s, started_at = coalesce(started_at, now()),
               plan_attempts = plan_attempts + CASE WHEN listed_at IS NULL THEN 1 ELSE 0 END,
               plan_lease_until = now() + make_interval(secs => %s)
           WHERE id = %s AND status = ANY(%s) AND NOT stop_requested
             AND (plan_lease_until IS NULL OR plan_lease_until < now())
           RETURNING id""",
        (TaskStatus.IN_PROGRESS, lease_seconds, task_uuid, OPEN_TASK),
    )
    return get_task(conn, started) if started else None


def renew_plan_lease(conn: psycopg.Connection, task_uuid: UUID, lease_seconds: float) -> bool:
    """Extend a running plan's lease; False when the task was stopped or finished."""
    renewed = fetch_value(
        conn,
        """UPDATE sync_tasks SET plan_lease_until = now() + make_interval(secs => %s)
           WHERE id = %s AND status = %s AND NOT stop_requested RETURNING id""",
        (lease_seconds, task_uuid, TaskStatus.IN_PROGRESS),
    )
    return renewed is not None


def lock_for_planning(conn: psycopg.Connection, task_uuid: UUID) -> bool:
    """Lock a task that still wants items (open, not stopped); False otherwise.

    Items inserted under this lock are seen by a concurrent stop, which waits
    for it and then marks them stopped.
    """
    locked = fetch_value(
        conn,
        """SELECT id FROM sync_tasks WHERE id = %s AND status = ANY(%s) AND NOT stop_requested
           FOR UPDATE""",
        (task_uuid, OPEN_TASK),
    )
    return locked is not None


def record_listed(conn: psycopg.Connection, task_uuid: UUID) -> None:
    """Record that the plan has listed everything and ended: from now on the task may finish."""
    conn.execute(
        """UPDATE sync_tasks SET listed_at = coalesce(listed_at, now()), plan_lease_until = NULL
           WHERE id = %s""",
        (task_uuid,),
    )


def record_plan_crash(conn: psycopg.Connection, task_uuid: UUID, message: str) -> None:
    """End a crashed plan's lease now and keep its reason on the task (a retry follows)."""
    conn.execute(
        """UPDATE sync_tasks SET plan_lease_until = now(), message = %s
           WHERE id = %s AND status = ANY(%s)""",
        (message, task_uuid, OPEN_TASK),
    )


def finalize_task(conn: psycopg.Connection, task_uuid: UUID) -> Task | None:
    """Compute every figure from the items and finish the task if nothing is left to run.

    Returns the finished task, or None when items are still pending or running,
    the plan has not recorded that listing is complete (a stop needs no listing),
    or the task was already finished. Safe to call any number of times.
    """
    finished = fetch_value(
        conn,
        f"""WITH agg AS (SELECT {ITEM_COUNTS} FROM sync_items WHERE task_id = %(t)s)
           UPDATE sync_tasks t SET
               total = agg.total, copied = agg.copied, up_to_date = agg.up_to_date,
               kept = agg.kept, failed = agg.failed, stopped = agg.stopped,
               deleted = agg.deleted, repositories_count = agg.repositories_count,
               bytes_transferred = agg.bytes_transferred,
               success_rate = CASE WHEN agg.total = 0 THEN 1
                   ELSE round((agg.copied + agg.up_to_date + agg.kept + agg.deleted)::numeric
                              / agg.total, 4)
                   END,
               status = CASE
                   WHEN t.stop_requested THEN %(task_stopped)s
                   WHEN agg.failed = 0 THEN %(task_succeeded)s
                   WHEN agg.failed = agg.total THEN %(task_failed)s
                   ELSE %(task_partial)s END,
               message = CASE WHEN agg.total = 0 AND t.message = ''
                   THEN 'the rule selected nothing' ELSE t.message END,
               started_at = coalesce(t.started_at, now()),
               finished_at = now()
           FROM agg
           WHERE t.id = %(t)s AND t.status = ANY(%(open_tasks)s) AND agg.open = 0
             AND (t.listed_at IS NOT NULL OR t.stop_requested)
           RETURNING t.id""",
        {
            **COUNT_PARAMS,
            "t": task_uuid,
            "task_stopped": TaskStatus.STOPPED,
            "task_succeeded": TaskStatus.SUCCEEDED,
            "task_failed": TaskStatus.FAILED,
            "task_partial": TaskStatus.PARTIALLY_SUCCEEDED,
            "open_tasks": OPEN_TASK,
        },
    )
    return get_task(conn, finished) if finished else None


def finish_after_item(conn: psycopg.Connection, task_uuid: UUID) -> Task | None:
    """Finish the task when no item is left open; in the transaction that recorded an
    item's outcome, after :func:`lock_task`.

    The lock makes the outcome transactions of one task take turns, so the last
    one to commit sees every other outcome; the open-item check reads the small
    partial index, and the full count runs once, for the last item.
    """
    still_open = fetch_value(
        conn,
        "SELECT EXISTS (SELECT 1 FROM sync_items WHERE task_id = %s AND status = ANY(%s))",
        (task_uuid, list(OPEN_ITEM_STATUSES)),
    )
    return None if still_open else finalize_task(conn, task_uuid)


def lock_task(conn: psycopg.Connection, task_uuid: UUID) -> str | None:
    """Hold the task's row until the transaction ends (see :func:`finish_after_item`);
    its trigger (None when the task is gone), read by the same statement."""
    return fetch_value(
        conn, "SELECT trigger FROM sync_tasks WHERE id = %s FOR UPDATE", (task_uuid,)
    )


def fail_task(conn: psycopg.Connection, task_uuid: UUID, message: str) -> None:
    """Finish a task that could not be planned (source unreachable, rule deleted...)."""
    conn.execute(
        """UPDATE sync_tasks SET status = %s, message = %s, success_rate = 0,
               plan_lease_until = NULL,
               started_at = coalesce(started_at, now()), finished_at = now()
           WHERE id = %s AND status = ANY(%s)""",
        (TaskStatus.FAILED, message, task_uuid, OPEN_TASK),
    )


def request_stop(conn: psycopg.Connection, task_uuid: UUID) -> bool:
    """Mark a task to stop and its pending items stopped; False if it had already finished."""
    marked = fetch_value(
        conn,
        """UPDATE sync_tasks SET stop_requested = true
           WHERE id = %s AND status = ANY(%s) RETURNING id""",
        (task_uuid, OPEN_TASK),
    )
    if marked is None:
        return False
    conn.execute(
        """UPDATE sync_items SET status = %s, reason = 'stopped before it started',
               finished_at = now(), source_manifest = NULL
           WHERE task_id = %s AND status = %s""",
        (ItemStatus.STOPPED, task_uuid, ItemStatus.PENDING),
    )
    return True


def open_tasks_of_rule(conn: psycopg.Connection, rule_id: UUID) -> list[UUID]:
    """Ids of the rule's tasks that have not finished."""
    return fetch_values(
        conn,
        "SELECT id FROM sync_tasks WHERE rule_id = %s AND status = ANY(%s)",
        (rule_id, OPEN_TASK),
    )


def has_open_task(conn: psycopg.Connection, rule_id: UUID) -> bool:
    """True while one of the rule's tasks is Pending or InProgress."""
    return bool(open_tasks_of_rule(conn, rule_id))


def stop_tasks_of_rule(conn: psycopg.Connection, rule_id: UUID) -> list[UUID]:
    """Ask every open task of a rule to stop (before the rule is deleted); their keys.

    The caller finalizes them after committing, so that a copy finishing
    meanwhile is seen.
    """
    ids = open_tasks_of_rule(conn, rule_id)
    for task_uuid in ids:
        request_stop(conn, task_uuid)
    return ids


def open_push_task(conn: psycopg.Connection, rule_id: UUID, window_seconds: float) -> Task | None:
    """The rule's newest push task, still open and younger than the window, locked."""
    return TASKS.one(
        conn,
        """t.rule_id = %s AND t.trigger = %s AND t.status = ANY(%s)
             AND NOT t.stop_requested AND t.created_at > now() - make_interval(secs => %s)
           ORDER BY t.created_at DESC LIMIT 1 FOR UPDATE""",
        (rule_id, Trigger.PUSH, OPEN_TASK, window_seconds),
    )


def unfinished_tasks(conn: psycopg.Connection) -> list[UUID]:
    """Tasks still open, fully listed (or stopped), whose items are all done (their chord
    callback was lost)."""
    return fetch_values(
        conn,
        """SELECT t.id FROM sync_tasks t
           WHERE t.status = %(in_progress)s
             AND (t.listed_at IS NOT NULL OR t.stop_requested)
             AND NOT EXISTS (SELECT 1 FROM sync_items i WHERE i.task_id = t.id
                             AND i.status = ANY(%(open_items)s))""",
        {"in_progress": TaskStatus.IN_PROGRESS, "open_items": list(OPEN_ITEM_STATUSES)},
    )


def claim_unplanned_tasks(
    conn: psycopg.Connection, older_than_seconds: float
) -> list[tuple[UUID, Trigger]]:
    """Claim the tasks whose plan was lost (not listed yet, and no live plan lease nor any
    sign of a plan for ``older_than_seconds``: a lost message, a dead worker); (id, trigger)
    of each. A task claimed within ``older_than_seconds`` is not claimed again, so two
    beats re-plan it once."""
    rows = fetch_tuples(
        conn,
        """UPDATE sync_tasks t SET requeued_at = now()
           WHERE NOT t.stop_requested AND t.listed_at IS NULL
             AND t.status = ANY(%(open)s)
             AND coalesce(t.plan_lease_until, t.started_at, t.created_at)
                 < now() - make_interval(secs => %(s)s)
             AND (t.requeued_at IS NULL
                  OR t.requeued_at < now() - make_interval(secs => %(s)s))
           RETURNING t.id, t.trigger""",
        {"s": older_than_seconds, "open": OPEN_TASK},
    )
    return [(task_uuid, Trigger(trigger)) for task_uuid, trigger in rows]


def last_tasks(conn: psycopg.Connection, rule_ids: list[UUID]) -> list[Task]:
    """The newest task of each of ``rule_ids`` that has one (one query for a rule list)."""
    return TASKS.all(
        conn,
        "t.id IN (SELECT DISTINCT ON (rule_id) id FROM sync_tasks WHERE rule_id = ANY(%s) "
        "ORDER BY rule_id, created_at DESC, task_id DESC)",
        (rule_ids,),
    )
