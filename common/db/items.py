"""Items of sync tasks: planning writes them, copies claim them, reconciliation rescues them.

Claims are conditional UPDATEs with a lease, so a redelivered message or a
second worker finds nothing to do, and a dead worker's item can be claimed
again once its lease has lapsed. Statuses reach the SQL as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_dict, fetch_tuples, fetch_value, fetch_values
from common.domain.models import Item, NewItem, PlannedCopy
from common.domain.vocab import OPEN_ITEM_STATUSES, ItemStatus, TaskStatus

FIELDS = (
    "id",
    "task_id",
    "source_repository",
    "source_tag",
    "target_repository",
    "target_tag",
    "kind",
    "source_digest",
    "digest",
    "status",
    "reason",
    "attempts",
    "lease_until",
    "bytes_transferred",
    "blobs_skipped",
    "blobs_mounted",
    "blobs_uploaded",
    "started_at",
    "finished_at",
    "worker",
)
COLUMNS = ", ".join(FIELDS)
OPEN_ITEMS = list(OPEN_ITEM_STATUSES)
# The item log of a task, with how long each copy took.
ITEM_LOG = Table(
    Item,
    f"{COLUMNS}, EXTRACT(EPOCH FROM (finished_at - started_at))::float8 AS seconds",
    "sync_items",
    order_by="source_repository, source_tag",
)


@dataclass(frozen=True)
class ItemState:
    """Where an item is, and the rule of its task (None once the rule was deleted)."""

    status: ItemStatus
    task_uuid: UUID
    rule_id: UUID | None
    trigger: str  # the task's: a pushed tag's copy goes first at the target's slots


@dataclass(frozen=True)
class ClaimedItem:
    """An item claimed for copying, with what its plan read (first attempt only)."""

    item: Item
    planned: PlannedCopy | None


def list_items(
    conn: psycopg.Connection,
    task_uuid: UUID,
    *,
    status: ItemStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Item], int]:
    """A page of a task's items (optionally of one status), and the matching count."""
    where, params = "task_id = %s", [task_uuid]
    if status:
        where += " AND status = %s"
        params.append(status)
    return ITEM_LOG.page(conn, where, params, limit=limit, offset=offset)


def insert_items(conn: psycopg.Connection, task_uuid: UUID, items: Iterable[NewItem]) -> int:
    """Insert items, ignoring any already there (a re-run plan); returns how many were new.

    An item planned with its outcome (up-to-date, kept, failed) starts and ends now.
    """
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
            i.manifest,
            i.media_type,
            i.target_checked,
            i.target_digest,
            i.status != ItemStatus.PENDING,
        )
        for i in items
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,
                                       target_tag, kind, source_digest, status, digest, reason,
                                       source_manifest, source_media_type, target_checked,
                                       target_digest, started_at, finished_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       CASE WHEN %s THEN now() END, CASE WHEN %s THEN now() END)
               ON CONFLICT (task_id, source_repository, source_tag) DO NOTHING""",
            [(*r, r[-1]) for r in rows],
        )
        return cur.rowcount if cur.rowcount >= 0 else len(rows)


def insert_item(conn: psycopg.Connection, task_uuid: UUID, item: NewItem) -> int | None:
    """Insert one pending item; its id, or None if the task already has that repository:tag."""
    return fetch_value(
        conn,
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
    )


def pending_item_ids(conn: psycopg.Connection, task_uuid: UUID) -> list[int]:
    """Ids of the items still to copy."""
    return fetch_values(
        conn,
        "SELECT id FROM sync_items WHERE task_id = %s AND status = %s ORDER BY id",
        (task_uuid, ItemStatus.PENDING),
    )


def item_state(conn: psycopg.Connection, item_id: int) -> ItemState | None:
    """The item's status and its task's rule; None when the item does not exist."""
    row = fetch_tuples(
        conn,
        """SELECT i.status, i.task_id, t.rule_id, t.trigger FROM sync_items i
           JOIN sync_tasks t ON t.id = i.task_id WHERE i.id = %s""",
        (item_id,),
    )
    if not row:
        return None
    status, task_uuid, rule_id, trigger = row[0]
    return ItemState(ItemStatus(status), task_uuid, rule_id, trigger)


def claim_item(
    conn: psycopg.Connection, item_id: int, lease_seconds: float, worker: str | None = None
) -> ClaimedItem | None:
    """Claim an item for copying as ``worker``; None if done, stopped, or held by a live worker.

    A running item whose lease expired (its worker died) can be claimed again.
    What the plan read comes along on the first attempt only: a retry reads afresh.
    """
    row = fetch_dict(
        conn,
        f"""UPDATE sync_items i
           SET status = %(running)s, attempts = i.attempts + 1,
               lease_until = now() + make_interval(secs => %(lease)s),
               started_at = coalesce(i.started_at, now()), worker = %(worker)s
           FROM sync_tasks t
           WHERE i.id = %(id)s AND t.id = i.task_id AND t.status = %(in_progress)s
             AND NOT t.stop_requested
             AND (i.status = %(pending)s OR (i.status = %(running)s AND i.lease_until < now()))
           RETURNING {", ".join(f"i.{f}" for f in FIELDS)}, i.source_manifest,
                     i.source_media_type, i.target_checked, i.target_digest""",
        {
            "id": item_id,
            "lease": lease_seconds,
            "worker": worker,
            "running": ItemStatus.RUNNING,
            "pending": ItemStatus.PENDING,
            "in_progress": TaskStatus.IN_PROGRESS,
        },
    )
    if row is None:
        return None
    item = Item(**{f: row[f] for f in FIELDS})
    planned = None
    if item.attempts == 1 and row["target_checked"] and row["source_manifest"] is not None:
        planned = PlannedCopy(
            bytes(row["source_manifest"]), row["source_media_type"] or "", row["target_digest"]
        )
    return ClaimedItem(item, planned)


def renew_lease(conn: psycopg.Connection, item_id: int, lease_seconds: float) -> bool:
    """Extend a running item's lease; False when the task was asked to stop."""
    stop_requested = fetch_value(
        conn,
        """UPDATE sync_items i SET lease_until = now() + make_interval(secs => %s)
           FROM sync_tasks t
           WHERE i.id = %s AND i.status = %s AND t.id = i.task_id
           RETURNING t.stop_requested""",
        (lease_seconds, item_id, ItemStatus.RUNNING),
    )
    return stop_requested is not None and not stop_requested


def record_outcome(
    conn: psycopg.Connection,
    item_id: int,
    *,
    status: ItemStatus,
    digest: str | None,
    kind: str | None,
    reason: str | None,
    bytes_transferred: int = 0,
    blobs_skipped: int = 0,
    blobs_mounted: int = 0,
    blobs_uploaded: int = 0,
) -> bool:
    """Write the final outcome of a running item; False if it was no longer ours to write."""
    recorded = fetch_value(
        conn,
        """UPDATE sync_items SET status = %s, digest = coalesce(%s, digest),
               kind = coalesce(%s, kind), reason = %s,
               bytes_transferred = bytes_transferred + %s, blobs_skipped = %s,
               blobs_mounted = %s, blobs_uploaded = %s, lease_until = NULL, finished_at = now(),
               source_manifest = NULL
           WHERE id = %s AND status = %s RETURNING id""",
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
            ItemStatus.RUNNING,
        ),
    )
    return recorded is not None


def abandon_item(conn: psycopg.Connection, item_id: int, reason: str) -> None:
    """Stop an item that can no longer run (its rule was deleted)."""
    conn.execute(
        """UPDATE sync_items SET status = %s, reason = %s, lease_until = NULL,
               finished_at = now(), source_manifest = NULL
           WHERE id = %s AND status = ANY(%s)""",
        (ItemStatus.STOPPED, reason, item_id, OPEN_ITEMS),
    )


def fail_open_items(conn: psycopg.Connection, task_uuid: UUID, reason: str) -> None:
    """Fail every item of the task still to be copied, with ``reason`` (the rule may not run)."""
    conn.execute(
        """UPDATE sync_items SET status = %s, reason = %s, lease_until = NULL,
               finished_at = now()
           WHERE task_id = %s AND status = ANY(%s)""",
        (ItemStatus.FAILED, reason, task_uuid, OPEN_ITEMS),
    )


def release_item(
    conn: psycopg.Connection, item_id: int, *, reason: str, bytes_transferred: int = 0
) -> None:
    """Give a running item back (a retry follows); its reason keeps the last error."""
    conn.execute(
        """UPDATE sync_items SET status = %s, lease_until = NULL, reason = %s,
               bytes_transferred = bytes_transferred + %s
           WHERE id = %s AND status = %s""",
        (ItemStatus.PENDING, reason, bytes_transferred, item_id, ItemStatus.RUNNING),
    )


def seed_retry(conn: psycopg.Connection, old_task_uuid: UUID, new_task_uuid: UUID) -> int:
    """Copy the failed items of one task into another as pending; returns how many."""
    cur = conn.execute(
        """INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,
                                   target_tag, kind, source_digest)
           SELECT %s, source_repository, source_tag, target_repository, target_tag, kind,
                  source_digest
           FROM sync_items WHERE task_id = %s AND status = %s
           ON CONFLICT DO NOTHING""",
        (new_task_uuid, old_task_uuid, ItemStatus.FAILED),
    )
    return cur.rowcount
