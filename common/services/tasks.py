"""Starting, stopping and retrying sync tasks: the rules the API and beat apply.

Callers enqueue the returned task's plan only after their transaction commits.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from common.db import tasks as q
from common.db.rules import get_rule
from common.errors import Conflict, NotFound


def trigger_rule(
    conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID | None, trigger: str = "manual"
) -> dict[str, Any]:
    """A new Pending task for an enabled rule (409 for a disabled one)."""
    rule = get_rule(conn, rule_id, tenant_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    if not rule["enabled"]:
        raise Conflict(f"rule {rule['name']} is disabled; enable it first")
    return q.create_task(conn, rule, trigger)


def stop_task(conn: psycopg.Connection, task_id: str, tenant_id: UUID) -> UUID:
    """Ask a task to stop: pending items never start, running copies stop between chunks.

    Returns the task's key; the caller finalizes it after committing (with
    nothing running it is Stopped at once, otherwise the last copy finishes it).
    """
    task = q.find_task(conn, task_id, tenant_id)
    if task["status"] not in q.OPEN_TASK:
        raise Conflict(f"task {task_id} already finished ({task['status']})")
    q.request_stop(conn, task["id"])
    return task["id"]


def retry_task(conn: psycopg.Connection, task_id: str, tenant_id: UUID) -> dict[str, Any]:
    """A new task with only the failed items of a finished one."""
    old = q.find_task(conn, task_id, tenant_id)
    if old["status"] in q.OPEN_TASK:
        raise Conflict(f"task {task_id} is still running; stop it or wait for it")
    if not old["failed"]:
        raise Conflict(f"task {task_id} has no failed items to retry")
    rule = get_rule(conn, old["rule_id"], tenant_id) if old["rule_id"] else None
    if rule is None:
        raise Conflict(f"the rule of task {task_id} was deleted")
    # A retry is a manual run seeded with items: ``trigger`` keeps its three
    # documented values and ``retry_of`` says where the items came from.
    new = q.create_task(conn, rule, "manual", message=f"retry of {task_id}", retry_of=old["id"])
    q.seed_retry(conn, old["id"], new["id"])
    return new


def stop_rule_tasks(conn: psycopg.Connection, rule_id: UUID) -> list[UUID]:
    """Ask every open task of a rule to stop (before the rule is deleted); their keys.

    The caller finalizes them after committing, as for :func:`stop_task`.
    """
    ids = q.open_tasks_of_rule(conn, rule_id)
    for task_uuid in ids:
        q.request_stop(conn, task_uuid)
    return ids
