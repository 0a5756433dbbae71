"""Sync tasks of a tenant: trigger a rule, read the log and the items, stop, retry.

Each function owns its transaction. Callers enqueue a returned task's plan
only after the function has returned, that is after the commit: the worker
must find the row.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import psycopg

from common import db as database
from common.db import items as qi
from common.db import tasks as q
from common.db.rules import get_rule
from common.domain.models import Item, Rule, Task
from common.domain.vocab import ItemStatus, Trigger
from common.errors import Conflict, NotFound
from common.settings import Settings


def _rule_of_tenant(conn: psycopg.Connection, tenant_id: UUID, rule_id: UUID) -> Rule:
    rule = get_rule(conn, rule_id, tenant_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def trigger_rule(settings: Settings, tenant_id: UUID, rule_id: UUID) -> Task:
    """A new Pending manual task of the tenant's enabled rule (Conflict for a disabled one)."""
    with database.transaction(settings) as conn:
        rule = _rule_of_tenant(conn, tenant_id, rule_id)
        if not rule.enabled:
            raise Conflict(f"rule {rule.name} is disabled; enable it first")
        return q.create_task(conn, rule, Trigger.MANUAL)


def list_tasks(
    settings: Settings, tenant_id: UUID, rule_id: UUID, *, limit: int, offset: int
) -> tuple[list[Task], int]:
    """A page of the tenant's rule's tasks, newest first, and the total count."""
    with database.transaction(settings) as conn:
        _rule_of_tenant(conn, tenant_id, rule_id)
        return q.list_tasks(conn, rule_id, limit=limit, offset=offset)


def get_task(settings: Settings, tenant_id: UUID, task_id: str) -> Task:
    """The tenant's task by its readable id, live figures while it runs, and the readable
    id of the task it retries."""
    with database.transaction(settings) as conn:
        task = q.find_task(conn, task_id, tenant_id)
        if task.retry_of:
            task = _with_retry_of(conn, task)
        return task


def _with_retry_of(conn: psycopg.Connection, task: Task) -> Task:
    assert task.retry_of is not None
    return replace(task, retry_of_task_id=q.readable_id(conn, task.retry_of))


def list_items(
    settings: Settings,
    tenant_id: UUID,
    task_id: str,
    *,
    status: ItemStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Item], int]:
    """A page of the tenant's task's items (optionally of one outcome) and their count."""
    with database.transaction(settings) as conn:
        task = q.find_task(conn, task_id, tenant_id)
        return qi.list_items(conn, task.id, status=status, limit=limit, offset=offset)


def stop_task(settings: Settings, tenant_id: UUID, task_id: str) -> Task:
    """Stop the tenant's task: pending items never start, running copies stop between chunks.

    The task is Stopped at once when nothing runs; otherwise the last copy
    finishes it. Conflict when it had already finished.
    """
    with database.transaction(settings) as conn:
        task = q.find_task(conn, task_id, tenant_id)
        if not task.is_open:
            raise Conflict(f"task {task_id} already finished ({task.status})")
        q.request_stop(conn, task.id)
    # After the commit, so that a copy finishing meanwhile is seen (or sees us).
    with database.transaction(settings) as conn:
        q.finalize_task(conn, task.id)
        return q.find_task(conn, task_id, tenant_id)


def retry_task(settings: Settings, tenant_id: UUID, task_id: str) -> Task:
    """A new Pending task with only the failed items of the tenant's finished task."""
    with database.transaction(settings) as conn:
        old = q.find_task(conn, task_id, tenant_id)
        if old.is_open:
            raise Conflict(f"task {task_id} is still running; stop it or wait for it")
        if not old.failed:
            raise Conflict(f"task {task_id} has no failed items to retry")
        rule = get_rule(conn, old.rule_id, tenant_id) if old.rule_id else None
        if rule is None:
            raise Conflict(f"the rule of task {task_id} was deleted")
        # A retry is a manual run seeded with items: ``trigger`` keeps its three
        # documented values and ``retry_of`` says where the items came from.
        new = q.create_task(
            conn, rule, Trigger.MANUAL, message=f"retry of {task_id}", retry_of=old.id
        )
        qi.seed_retry(conn, old.id, new.id)
        return new
