"""Sync tasks and their items: creation, claims, outcomes and the figures of the log.

Every figure of a task is computed here from its item rows; Celery's chord is
only the fast path that asks for the computation. Claims are conditional
UPDATEs, so a redelivered or duplicated message finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from common.errors import NotFound

OPEN_TASK = ("Pending", "InProgress")

TASK_COLUMNS = """
    t.id, t.task_id, t.tenant_id, t.rule_id, t.source_instance_id, t.trigger, t.status,
    t.message, t.stop_requested, t.retry_of, t.total, t.copied, t.up_to_date, t.kept,
    t.failed, t.stopped, t.repositories_count, t.bytes_transferred, t.success_rate,
    t.created_at, t.started_at, t.finished_at,
    EXTRACT(EPOCH FROM (coalesce(t.finished_at, now()) - t.started_at))::float8
        AS time_spent_seconds
"""


@dataclass(frozen=True)
class NewItem:
    """One repository:tag a task will copy (or found already up to date)."""

    source_repository: str
    source_tag: str
    target_repository: str
    target_tag: str
    kind: str | None = None
    source_digest: str | None = None
    status: str = "pending"
    digest: str | None = None
    reason: str | None = None


def create_task(
    conn: psycopg.Connection,
    rule: dict[str, Any],
    trigger: str,
    *,
    message: str = "",
    retry_of: UUID | None = None,
) -> dict[str, Any]:
    """Insert a Pending task for ``rule`` with a readable id unique in the source instance."""
    row = conn.execute(
        "UPDATE instances SET task_seq = task_seq + 1 WHERE id = %s RETURNING task_seq",
        (rule["source_instance_id"],),
    ).fetchone()
    if row is None:
        raise NotFound("the rule's source instance no longer exists")
    # The instance id prefix makes the readable id unique across instances too.
    task_id = f"{str(rule['source_instance_id'])[:8]}-{row['task_seq']:06d}"
    created = conn.execute(
        """INSERT INTO sync_tasks (task_id, tenant_id, rule_id, source_instance_id, trigger,
                                   message, retry_of)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            task_id,
            rule["tenant_id"],
            rule["id"],
            rule["source_instance_id"],
            trigger,
            message,
            retry_of,
        ),
    ).fetchone()
    assert created is not None
    task = get_task(conn, created["id"])
    assert task is not None
    return task


def skip_task(
    conn: psycopg.Connection, rule: dict[str, Any], trigger: str, message: str
) -> dict[str, Any]:
    """Record a run that did not happen (its previous task still ran) in the rule's log."""
    task = create_task(conn, rule, trigger, message=message)
    conn.execute(
        """UPDATE sync_tasks SET status = 'Skipped', started_at = now(), finished_at = now()
           WHERE id = %s""",
        (task["id"],),
    )
    return task


def get_task(conn: psycopg.Connection, task_uuid: UUID | str) -> dict[str, Any] | None:
    """A task by its primary key, with ``time_spent_seconds``."""
    return conn.execute(
        f"SELECT {TASK_COLUMNS} FROM sync_tasks t WHERE t.id = %s", (task_uuid,)
    ).fetchone()


def find_task(conn: psycopg.Connection, task_id: str, tenant_id: UUID) -> dict[str, Any]:
    """A task of ``tenant_id`` by its readable id; NotFound otherwise (also for other tenants).

    While the task runs, its counts are computed live from the items.
    """
    row = conn.execute(
        f"SELECT {TASK_COLUMNS} FROM sync_tasks t WHERE t.task_id = %s AND t.tenant_id = %s",
        (task_id, tenant_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    if row["status"] in OPEN_TASK:
        live = conn.execute(
            """SELECT count(*) AS total,
                      count(*) FILTER (WHERE status = 'copied') AS copied,
                      count(*) FILTER (WHERE status = 'up-to-date') AS up_to_date,
                      count(*) FILTER (WHERE status = 'kept') AS kept,
                      count(*) FILTER (WHERE status = 'failed') AS failed,
                      count(*) FILTER (WHERE status = 'stopped') AS stopped,
                      count(DISTINCT source_repository) AS repositories_count,
                      coalesce(sum(bytes_transferred), 0) AS bytes_transferred
               FROM sync_items WHERE task_id = %s""",
            (row["id"],),
        ).fetchone()
        row.update(live or {})
    return row


def list_tasks(
    conn: psycopg.Connection, rule_id: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a rule's tasks, newest first, and the total count."""
    total = conn.execute(
        "SELECT count(*) AS n FROM sync_tasks WHERE rule_id = %s", (rule_id,)
    ).fetchone()["n"]  # type: ignore[index]
    if offset >= total:
        return [], total  # also keeps a huge page number from overflowing OFFSET
    rows = conn.execute(
        f"""SELECT {TASK_COLUMNS} FROM sync_tasks t WHERE t.rule_id = %s
            ORDER BY t.created_at DESC, t.task_id DESC LIMIT %s OFFSET %s""",
        (rule_id, limit, offset),
    ).fetchall()
    return rows, total


def list_items(
    conn: psycopg.Connection, task_uuid: UUID, *, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a task's items (optionally of one status), and the matching count."""
    where, params = "task_id = %s", [task_uuid]
    if status:
        where += " AND status = %s"
        params.append(status)
    total = conn.execute(f"SELECT count(*) AS n FROM sync_items WHERE {where}", params).fetchone()[
        "n"
    ]  # type: ignore[index]
    if offset >= total:
        return [], total
    rows = conn.execute(
        f"""SELECT *, EXTRACT(EPOCH FROM (finished_at - started_at))::float8 AS seconds
            FROM sync_items WHERE {where}
            ORDER BY source_repository, source_tag LIMIT %s OFFSET %s""",
        (*params, limit, offset),
    ).fetchall()
    return rows, total


def insert_items(conn: psycopg.Connection, task_uuid: UUID, items: Iterable[NewItem]) -> int:
    """Insert items, ignoring any already there (a re-run plan); returns how many were new."""
    rows = [
        (
            task_uuid,
            i.source_repository,
            i.source_tag,
            i.target_repository,
            i.target_tag,
            i.kind,
            i.source_digest,
            i.status,
            i.digest,
            i.reason,
        )
        for i in items
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,
                                       target_tag, kind, source_digest, status, digest, reason,
                                       started_at, finished_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       CASE WHEN %s = 'pending' THEN NULL ELSE now() END,
                       CASE WHEN %s = 'pending' THEN NULL ELSE now() END)
               ON CONFLICT (task_id, source_repository, source_tag) DO NOTHING""",
            [(*r, r[7], r[7]) for r in rows],
        )
        return cur.rowcount if cur.rowcount >= 0 else len(rows)


def insert_item(conn: psycopg.Connection, task_uuid: UUID, item: NewItem) -> int | None:
    """Insert one pending item; its id, or None if the task already has that repository:tag."""
    row = conn.execute(
        """INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,
                                   target_tag, kind, source_digest)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (task_id, source_repository, source_tag) DO NOTHING RETURNING id""",
        (
            task_uuid,
            item.source_repository,
            item.source_tag,
            item.target_repository,
            item.target_tag,
            item.kind,
            item.source_digest,
        ),
    ).fetchone()
    return row["id"] if row else None


def start_task(conn: psycopg.Connection, task_uuid: UUID) -> dict[str, Any] | None:
    """Claim a task for planning: Pending → InProgress. None if stopped or already finished."""
    row = conn.execute(
        """UPDATE sync_tasks SET status = 'InProgress', started_at = coalesce(started_at, now())
           WHERE id = %s AND status IN ('Pending', 'InProgress') AND NOT stop_requested
           RETURNING id""",
        (task_uuid,),
    ).fetchone()
    return get_task(conn, row["id"]) if row else None


def pending_item_ids(conn: psycopg.Connection, task_uuid: UUID) -> list[int]:
    """Ids of the items still to copy."""
    return [
        r["id"]
        for r in conn.execute(
            "SELECT id FROM sync_items WHERE task_id = %s AND status = 'pending' ORDER BY id",
            (task_uuid,),
        )
    ]


def claim_item(
    conn: psycopg.Connection, item_id: int, lease_seconds: float
) -> dict[str, Any] | None:
    """Claim an item for copying; None if it is done, stopped, or held by a live worker.

    A running item whose lease expired (its worker died) can be claimed again.
    """
    return conn.execute(
        """UPDATE sync_items i
           SET status = 'running', attempts = i.attempts + 1,
               lease_until = now() + make_interval(secs => %s),
               started_at = coalesce(i.started_at, now())
           FROM sync_tasks t
           WHERE i.id = %s AND t.id = i.task_id AND t.status = 'InProgress'
             AND NOT t.stop_requested
             AND (i.status = 'pending' OR (i.status = 'running' AND i.lease_until < now()))
           RETURNING i.*, t.rule_id, t.trigger, t.tenant_id AS task_tenant_id""",
        (lease_seconds, item_id),
    ).fetchone()


def renew_lease(conn: psycopg.Connection, item_id: int, lease_seconds: float) -> bool:
    """Extend a running item's lease; False when the task was asked to stop."""
    row = conn.execute(
        """UPDATE sync_items i SET lease_until = now() + make_interval(secs => %s)
           FROM sync_tasks t
           WHERE i.id = %s AND i.status = 'running' AND t.id = i.task_id
           RETURNING t.stop_requested""",
        (lease_seconds, item_id),
    ).fetchone()
    return bool(row) and not row["stop_requested"]


def record_outcome(
    conn: psycopg.Connection,
    item_id: int,
    *,
    status: str,
    digest: str | None,
    kind: str | None,
    reason: str | None,
    bytes_transferred: int = 0,
    blobs_skipped: int = 0,
    blobs_mounted: int = 0,
    blobs_uploaded: int = 0,
) -> bool:
    """Write the final outcome of a running item; False if it was no longer ours to write."""
    row = conn.execute(
        """UPDATE sync_items SET status = %s, digest = coalesce(%s, digest),
               kind = coalesce(%s, kind), reason = %s,
               bytes_transferred = bytes_transferred + %s, blobs_skipped = %s,
               blobs_mounted = %s, blobs_uploaded = %s, lease_until = NULL, finished_at = now()
           WHERE id = %s AND status = 'running' RETURNING id""",
        (
            status,
            digest,
            kind,
            reason,
            bytes_transferred,
            blobs_skipped,
            blobs_mounted,
            blobs_uploaded,
            item_id,
        ),
    ).fetchone()
    return row is not None


def abandon_item(conn: psycopg.Connection, item_id: int, reason: str) -> None:
    """Stop an item that can no longer run (its rule was deleted)."""
    conn.execute(
        """UPDATE sync_items SET status = 'stopped', reason = %s, lease_until = NULL,
               finished_at = now()
           WHERE id = %s AND status IN ('pending', 'running')""",
        (reason, item_id),
    )


def release_item(
    conn: psycopg.Connection, item_id: int, *, reason: str, bytes_transferred: int = 0
) -> None:
    """Give a running item back (a retry follows); its reason keeps the last error."""
    conn.execute(
        """UPDATE sync_items SET status = 'pending', lease_until = NULL, reason = %s,
               bytes_transferred = bytes_transferred + %s
           WHERE id = %s AND status = 'running'""",
        (reason, bytes_transferred, item_id),
    )


def finalize_task(conn: psycopg.Connection, task_uuid: UUID) -> dict[str, Any] | None:
    """Compute every figure from the items and finish the task if nothing is left to run.

    Returns the finished task, or None when items are still pending or running
    (or the task was already finished). Safe to call any number of times.
    """
    row = conn.execute(
        """WITH agg AS (
               SELECT count(*) AS total,
                      count(*) FILTER (WHERE status = 'copied') AS copied,
                      count(*) FILTER (WHERE status = 'up-to-date') AS up_to_date,
                      count(*) FILTER (WHERE status = 'kept') AS kept,
                      count(*) FILTER (WHERE status = 'failed') AS failed,
                      count(*) FILTER (WHERE status = 'stopped') AS stopped,
                      count(*) FILTER (WHERE status IN ('pending', 'running')) AS open,
                      count(DISTINCT source_repository) AS repositories,
                      coalesce(sum(bytes_transferred), 0) AS bytes
               FROM sync_items WHERE task_id = %(t)s)
           UPDATE sync_tasks t SET
               total = agg.total, copied = agg.copied, up_to_date = agg.up_to_date,
               kept = agg.kept, failed = agg.failed, stopped = agg.stopped,
               repositories_count = agg.repositories, bytes_transferred = agg.bytes,
               success_rate = CASE WHEN agg.total = 0 THEN 1
                   ELSE round((agg.copied + agg.up_to_date + agg.kept)::numeric / agg.total, 4)
                   END,
               status = CASE
                   WHEN t.stop_requested THEN 'Stopped'
                   WHEN agg.failed = 0 THEN 'Succeeded'
                   WHEN agg.failed = agg.total THEN 'Failed'
                   ELSE 'PartiallySucceeded' END,
               message = CASE WHEN agg.total = 0 AND t.message = ''
                   THEN 'the rule selected nothing' ELSE t.message END,
               started_at = coalesce(t.started_at, now()),
               finished_at = now()
           FROM agg
           WHERE t.id = %(t)s AND t.status IN ('Pending', 'InProgress') AND agg.open = 0
           RETURNING t.id""",
        {"t": task_uuid},
    ).fetchone()
    return get_task(conn, row["id"]) if row else None


def fail_task(conn: psycopg.Connection, task_uuid: UUID, message: str) -> None:
    """Finish a task that could not be planned (source unreachable, rule deleted...)."""
    conn.execute(
        """UPDATE sync_tasks SET status = 'Failed', message = %s, success_rate = 0,
               started_at = coalesce(started_at, now()), finished_at = now()
           WHERE id = %s AND status IN ('Pending', 'InProgress')""",
        (message, task_uuid),
    )


def request_stop(conn: psycopg.Connection, task_uuid: UUID) -> bool:
    """Mark a task to stop and its pending items stopped; False if it had already finished."""
    row = conn.execute(
        """UPDATE sync_tasks SET stop_requested = true
           WHERE id = %s AND status IN ('Pending', 'InProgress') RETURNING id""",
        (task_uuid,),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        """UPDATE sync_items SET status = 'stopped', reason = 'stopped before it started',
               finished_at = now()
           WHERE task_id = %s AND status = 'pending'""",
        (task_uuid,),
    )
    return True


def open_tasks_of_rule(conn: psycopg.Connection, rule_id: UUID) -> list[UUID]:
    """Ids of the rule's tasks that have not finished."""
    return [
        r["id"]
        for r in conn.execute(
            "SELECT id FROM sync_tasks WHERE rule_id = %s AND status IN ('Pending', 'InProgress')",
            (rule_id,),
        )
    ]


def has_open_task(conn: psycopg.Connection, rule_id: UUID) -> bool:
    """True while one of the rule's tasks is Pending or InProgress."""
    return bool(open_tasks_of_rule(conn, rule_id))


def seed_retry(conn: psycopg.Connection, old_task_uuid: UUID, new_task_uuid: UUID) -> int:
    """Copy the failed items of one task into another as pending; returns how many."""
    cur = conn.execute(
        """INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,
                                   target_tag, kind, source_digest)
           SELECT %s, source_repository, source_tag, target_repository, target_tag, kind,
                  source_digest
           FROM sync_items WHERE task_id = %s AND status = 'failed'
           ON CONFLICT DO NOTHING""",
        (new_task_uuid, old_task_uuid),
    )
    return cur.rowcount


@dataclass(frozen=True)
class Requeue:
    """Items reconciliation found abandoned, by task, with the queue they belong on."""

    task_uuid: UUID
    trigger: str
    item_ids: Sequence[int]


def expired_items(
    conn: psycopg.Connection, *, now: datetime | None = None, stale_seconds: float
) -> list[Requeue]:
    """Release items whose lease expired and list every item that needs a new message.

    Running items past their lease go back to pending. Pending items of a task
    with no activity for ``stale_seconds`` are listed too: their message may
    have been reserved by a worker that died.
    """
    at = now or conn.execute("SELECT now() AS n").fetchone()["n"]  # type: ignore[index]
    # In a task asked to stop, a lost copy is simply stopped.
    conn.execute(
        """UPDATE sync_items i
           SET status = CASE WHEN t.stop_requested THEN 'stopped' ELSE 'pending' END,
               lease_until = NULL,
               finished_at = CASE WHEN t.stop_requested THEN now() END,
               reason = CASE WHEN t.stop_requested THEN 'stopped (its worker was lost)'
                             ELSE 'worker lost; re-queued' END
           FROM sync_tasks t
           WHERE t.id = i.task_id AND t.status = 'InProgress'
             AND i.status = 'running' AND i.lease_until < %s""",
        (at,),
    )
    rows = conn.execute(
        """SELECT t.id AS task_uuid, t.trigger, array_agg(i.id ORDER BY i.id) AS item_ids
           FROM sync_tasks t JOIN sync_items i ON i.task_id = t.id
           WHERE t.status = 'InProgress' AND NOT t.stop_requested AND i.status = 'pending'
             AND greatest(t.started_at,
                          (SELECT max(greatest(x.started_at, x.finished_at))
                           FROM sync_items x WHERE x.task_id = t.id))
                 < %s - make_interval(secs => %s)
           GROUP BY t.id, t.trigger""",
        (at, stale_seconds),
    ).fetchall()
    return [Requeue(r["task_uuid"], r["trigger"], r["item_ids"]) for r in rows]


def unfinished_tasks(conn: psycopg.Connection) -> list[UUID]:
    """Tasks still open whose items are all done (their chord callback was lost)."""
    return [
        r["id"]
        for r in conn.execute(
            """SELECT t.id FROM sync_tasks t
           WHERE t.status = 'InProgress'
             AND NOT EXISTS (SELECT 1 FROM sync_items i WHERE i.task_id = t.id
                             AND i.status IN ('pending', 'running'))
             AND (EXISTS (SELECT 1 FROM sync_items i WHERE i.task_id = t.id)
                  OR t.stop_requested)"""
        )
    ]


def unplanned_tasks(conn: psycopg.Connection, older_than_seconds: float) -> list[dict]:
    """Tasks whose plan message was lost: Pending, or InProgress with no item, for too long."""
    return conn.execute(
        """SELECT t.id, t.trigger FROM sync_tasks t
           WHERE NOT t.stop_requested
             AND ((t.status = 'Pending'
                   AND t.created_at < now() - make_interval(secs => %(s)s))
               OR (t.status = 'InProgress'
                   AND t.started_at < now() - make_interval(secs => %(s)s)
                   AND NOT EXISTS (SELECT 1 FROM sync_items i WHERE i.task_id = t.id)))""",
        {"s": older_than_seconds},
    ).fetchall()
