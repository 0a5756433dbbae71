"""Reconciliation's claims: items whose worker was lost go back to pending (or fail
past the attempt cap), and stale tasks' pending items are claimed to be sent again.

Every claim is a conditional UPDATE, so of two concurrent reconciles (two beats, or a
restarted worker and a beat) only one gets each task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from common.db.rows import fetch_tuples, fetch_value
from common.domain.vocab import ItemStatus, TaskStatus, Trigger


@dataclass(frozen=True)
class Requeue:
    """Items reconciliation found abandoned, by task, with the queue they belong on."""

    task_uuid: UUID
    trigger: Trigger
    item_ids: Sequence[int]


def expired_items(
    conn: psycopg.Connection,
    *,
    now: datetime | None = None,
    stale_seconds: float,
    max_attempts: int,
) -> list[Requeue]:
    """Release items whose lease expired and claim every item that needs a new message.

    Running items past their lease go back to pending, or are failed once they
    have had ``max_attempts`` attempts. Pending items of a task with no
    activity for ``stale_seconds`` are listed too: their message may have been
    reserved by a worker that died. Listing them claims their task
    (``requeued_at``), so a second reconcile within ``stale_seconds`` (a second
    beat) finds nothing to re-send.
    """
    at = now or fetch_value(conn, "SELECT now()")
    _release_lost_items(conn, at, max_attempts)
    return _claim_stale_tasks(conn, at, stale_seconds)


# The statuses the reconcile statements compare and set, as named parameters.
_RECONCILE_STATUSES = {
    "stopped": ItemStatus.STOPPED,
    "failed": ItemStatus.FAILED,
    "pending": ItemStatus.PENDING,
    "running": ItemStatus.RUNNING,
    "in_progress": TaskStatus.IN_PROGRESS,
}


def _release_lost_items(conn: psycopg.Connection, at: datetime, max_attempts: int) -> None:
    """Running items of running tasks whose lease ended before ``at``: pending again, or
    failed after ``max_attempts``, or stopped when their task is stopping."""
    # In a task asked to stop, a lost copy is simply stopped.
    conn.execute(
        """UPDATE sync_items i
           SET status = CASE WHEN t.stop_requested THEN %(stopped)s
                             WHEN i.attempts >= %(max)s THEN %(failed)s
                             ELSE %(pending)s END,
               lease_until = NULL,
               finished_at = CASE WHEN t.stop_requested OR i.attempts >= %(max)s
                                  THEN now() END,
               reason = CASE WHEN t.stop_requested THEN 'stopped (its worker was lost)'
                             WHEN i.attempts >= %(max)s
                             THEN 'gave up after ' || i.attempts
                                  || ' attempts; last: its worker was lost'
                             ELSE 'worker lost; re-queued' END
           FROM sync_tasks t
           WHERE t.id = i.task_id AND t.status = %(in_progress)s
             AND i.status = %(running)s AND i.lease_until < %(at)s""",
        {**_RECONCILE_STATUSES, "at": at, "max": max_attempts},
    )


def _claim_stale_tasks(
    conn: psycopg.Connection, at: datetime, stale_seconds: float
) -> list[Requeue]:
    """Claim the running tasks with pending items and no activity for ``stale_seconds``
    before ``at``; their pending items, to be sent again."""
    # The claim: a conditional UPDATE, re-checked under the row lock, so of two
    # concurrent reconciles only one returns the task.
    rows = fetch_tuples(
        conn,
        """WITH claimed AS (
             UPDATE sync_tasks t SET requeued_at = %(at)s
             WHERE t.status = %(in_progress)s AND NOT t.stop_requested
               AND EXISTS (SELECT 1 FROM sync_items p
                           WHERE p.task_id = t.id AND p.status = %(pending)s)
               AND greatest(t.started_at, t.requeued_at,
                            (SELECT max(greatest(x.started_at, x.finished_at))
                             FROM sync_items x WHERE x.task_id = t.id))
                   < %(at)s - make_interval(secs => %(s)s)
             RETURNING t.id, t.trigger)
           SELECT c.id, c.trigger, array_agg(i.id ORDER BY i.id)
           FROM claimed c JOIN sync_items i ON i.task_id = c.id
           WHERE i.status = %(pending)s
           GROUP BY c.id, c.trigger""",
        {**_RECONCILE_STATUSES, "at": at, "s": stale_seconds},
    )
    return [Requeue(task_uuid, Trigger(trigger), ids) for task_uuid, trigger, ids in rows]


def release_worker_items(conn: psycopg.Connection, worker: str) -> list[Requeue]:
    """A worker named ``worker`` (re)started: the items still running under that name are
    its dead predecessor's. Put them back to pending, and list every pending item of
    their tasks (the predecessor may also have held their messages) to be sent again."""
    rows = fetch_tuples(
        conn,
        """WITH released AS (
             UPDATE sync_items i
             SET status = %(pending)s, lease_until = NULL,
                 reason = 'its worker restarted; re-queued'
             FROM sync_tasks t
             WHERE t.id = i.task_id AND t.status = %(in_progress)s AND NOT t.stop_requested
               AND i.status = %(running)s AND i.worker = %(worker)s
             RETURNING i.id, i.task_id),
           tasks AS (
             UPDATE sync_tasks t SET requeued_at = now()
             WHERE t.id IN (SELECT task_id FROM released)
             RETURNING t.id, t.trigger)
           SELECT k.id, k.trigger, array_agg(i.id ORDER BY i.id)
           FROM tasks k JOIN sync_items i ON i.task_id = k.id
           -- One snapshot for the whole statement: the released items still read as running.
           WHERE i.status = %(pending)s OR i.id IN (SELECT id FROM released)
           GROUP BY k.id, k.trigger""",
        {**_RECONCILE_STATUSES, "worker": worker},
    )
    return [Requeue(task_uuid, Trigger(trigger), ids) for task_uuid, trigger, ids in rows]
