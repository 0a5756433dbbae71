"""What the Celery tasks do, without Celery: plan a task, copy one item, finish a task.

Planning lives in :mod:`common.sync.plan_run` and is re-exported here.

Every step re-loads its rows by id, claims its work with a conditional UPDATE
and returns early when there is nothing (left) to do, so redelivered and
duplicated messages are harmless.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import redis

from common.db import items as qi
from common.db import reclaim, transaction
from common.db import tasks as q
from common.db.events import claim_lost_events, purge_processed
from common.db.instances import get_instance
from common.db.observe import push_age
from common.db.rules import get_rule
from common.domain.models import Item, PlannedCopy, Rule, Task
from common.domain.vocab import OPEN_ITEM_STATUSES, REFERRER, ItemStatus, Trigger
from common.errors import DatabaseError, FerryError
from common.observe import logs, metrics
from common.registry import CopyOutcome, Manifest, Prefetched, copy_artifact
from common.settings import Settings
from common.sync.clients import Endpoints, endpoints_for
from common.sync.leases import RedisBlobCoordinator, TargetSemaphore
from common.sync.namespaces import ensure_namespace
from common.sync.plan_run import (
    MAX_PLAN_ATTEMPTS,
    MAX_REASON_CHARS,
    PlanResult,
    crash_reason,
    plan_task,
)
from common.sync.referrers import list_on_target

__all__ = [
    "MAX_PLAN_ATTEMPTS",
    "PlanResult",
    "copy_item",
    "finalize",
    "plan_task",
    "reconcile",
]

log = logging.getLogger(__name__)

# A claimed item's lease; the heartbeat renews it while the copy runs, so only
# a dead worker (or a Stop: then it is no longer renewed) lets it lapse. Short,
# with beat reconciling every 20 s (worker.celery_app): a crashed worker's items
# run again within about a minute.
LEASE_SECONDS = 20.0
HEARTBEAT_SECONDS = 1.0
# Pending items of a task with no activity for this long are sent again (their
# messages may sit reserved by a worker that died).
STALE_SECONDS = 40.0
# Retryable registry errors (5xx, timeouts) are retried this many times in all.
MAX_ATTEMPTS = 4
# No item is attempted more often than this, whatever ends its attempts (a
# worker that dies on it each time): then it is failed with the last reason.
MAX_ITEM_ATTEMPTS = 5
# How long a copy waits for a slot under the target's concurrency limit
# before its message is put back with a short delay.
SLOT_WAIT_SECONDS = 5.0
# Outcomes after which the target holds the pushed tag (push-to-replica latency).
REPLICATED = (ItemStatus.COPIED, ItemStatus.UP_TO_DATE)
# Processed webhook events are kept this long (for de-duplication), then purged.
EVENT_RETENTION_DAYS = 7
# Outcomes after which a copied referrer is listed in the target's fallback index.
DONE = frozenset({ItemStatus.COPIED, ItemStatus.UP_TO_DATE})


@dataclass
class CopyResult:
    """What the copy task should do next: nothing, or run again after ``retry_in`` seconds."""

    status: str
    retry_in: float | None = None


class _Heartbeat(threading.Thread):
    """Renews the item's lease and slot while a copy runs; notices a stop request."""

    def __init__(self, settings: Settings, item_id: int, sem: TargetSemaphore, token: str):
        super().__init__(daemon=True, name=f"ferry-heartbeat-{item_id}")
        self.settings, self.item_id, self.sem, self.token = settings, item_id, sem, token
        self.stop_requested = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            if self.stop_requested.is_set():
                continue  # a stopped item's lease is not renewed: it lapses if the copy hangs
            try:
                with transaction(self.settings) as conn:
                    if not qi.renew_lease(conn, self.item_id, LEASE_SECONDS):
                        self.stop_requested.set()
                self.sem.renew(self.token)
            except (FerryError, redis.RedisError):
                log.warning("heartbeat of item %s failed; retrying", self.item_id)


def copy_item(
    item_id: int, settings: Settings, redis_client: redis.Redis, worker: str | None = None
) -> CopyResult:
    """Claim one item as ``worker``, copy it under the target's limit, record the outcome."""
    with transaction(settings) as conn:
        state = qi.item_state(conn, item_id)
        if state is None or state.status not in OPEN_ITEM_STATUSES:
            return CopyResult(state.status if state else "missing")
        rule = get_rule(conn, state.rule_id) if state.rule_id else None
        logs.bind(item_id=item_id, task_id=q.readable_id(conn, state.task_uuid))
        if rule is None:
            qi.abandon_item(conn, item_id, "the rule was deleted")
        else:
            logs.bind(rule_id=rule.id, tenant_id=rule.tenant_id)
        target = (
            get_instance(conn, rule.target_instance_id)
            if rule and rule.target_instance_id
            else None
        )
    if rule is None:
        finalize(state.task_uuid, settings)
        return CopyResult(ItemStatus.STOPPED)
    limit = target.max_concurrent_copies if target else 1
    sem = TargetSemaphore(redis_client, str(rule.target_instance_id), limit, ttl=LEASE_SECONDS)
    token = sem.acquire(SLOT_WAIT_SECONDS, urgent=state.trigger == Trigger.PUSH)
    if token is None:
        return CopyResult("waiting", retry_in=0.5 + random.random())
    try:
        return _copy_claimed(item_id, rule, settings, redis_client, sem, token, worker)
    finally:
        try:
            sem.release(token)
        except redis.RedisError:
            log.warning("slot of item %s not released (Redis); its lease lapses", item_id)


def _copy_claimed(
    item_id: int,
    rule: Rule,
    settings: Settings,
    redis_client: redis.Redis,
    sem: TargetSemaphore,
    token: str,
    worker: str | None,
) -> CopyResult:
    problem: FerryError | None = None
    with transaction(settings) as conn:
        claimed = qi.claim_item(conn, item_id, LEASE_SECONDS, worker)
        if claimed is None:
            return CopyResult("not-claimed")
        try:  # in the claim's transaction: one round trip fewer per item
            ends = endpoints_for(conn, rule, settings)
        except FerryError as exc:
            problem = exc
    item = claimed.item
    started = time.monotonic()
    if item.attempts > MAX_ITEM_ATTEMPTS:
        last = item.reason or "no reason recorded"
        _fail(settings, item, f"gave up after {MAX_ITEM_ATTEMPTS} attempts; last: {last}", started)
        return CopyResult(ItemStatus.FAILED)
    try:
        if problem is not None:
            raise problem
        outcome = _run_copy(item, claimed.planned, ends, rule, redis_client, sem, token, settings)
        if item.kind == REFERRER and outcome.digest and outcome.status in DONE:
            note = list_on_target(ends.target, item.target_repository, outcome.digest, redis_client)
            if note:
                outcome.note = f"{outcome.note}; {note}" if outcome.note else note
    except DatabaseError:
        raise  # the item stays running: its lease lapses and reconciliation re-queues it
    except redis.RedisError as exc:
        # Blob coordination or the target's slots are unreachable (a Redis restart): not
        # the item's fault, so it runs again rather than failing as a poison item.
        return _retry_later(settings, item, f"Redis unavailable ({type(exc).__name__})", started)
    except FerryError as exc:
        _fail(settings, item, str(exc), started)
        return CopyResult(ItemStatus.FAILED)
    except Exception as exc:  # a poison item must end with an outcome, not crash the copy
        log.exception("copy of item %s crashed", item.id)
        _fail(settings, item, f"copy crashed: {crash_reason(exc)}", started)
        return CopyResult(ItemStatus.FAILED)
    return _record(settings, item, outcome, started)


def _run_copy(
    item: Item,
    planned: PlannedCopy | None,
    ends: Endpoints,
    rule: Rule,
    redis_client: redis.Redis,
    sem: TargetSemaphore,
    token: str,
    settings: Settings,
) -> CopyOutcome:
    ensure_namespace(
        ends.target_kind,
        ends.target,
        item.target_repository.split("/")[0],
        *ends.target_user,
    )
    beat = _Heartbeat(settings, item.id, sem, token)
    beat.start()
    try:
        return copy_artifact(
            ends.source,
            item.source_repository,
            item.source_tag,
            ends.target,
            item.target_repository,
            item.target_tag,
            override=rule.override,
            coordinator=RedisBlobCoordinator(redis_client),
            should_stop=beat.stop_requested.is_set,
            expected_digest=item.source_digest,
            prefetched=_prefetched(planned, item.source_digest),
        )
    finally:
        beat.done.set()
        beat.join()


def _fail(settings: Settings, item: Item, reason: str, started: float) -> None:
    _finish(
        settings,
        item,
        started,
        status=ItemStatus.FAILED,
        digest=None,
        kind=None,
        reason=reason[:MAX_REASON_CHARS],
    )


def _prefetched(planned: PlannedCopy | None, source_digest: str | None) -> Prefetched | None:
    """What the plan read, as the copier takes it; None when it does not hash to the
    digest the plan noted (then the copy reads again)."""
    if planned is None:
        return None
    try:
        manifest = Manifest.from_bytes(planned.manifest, planned.media_type, source_digest)
    except FerryError:
        return None
    return Prefetched(manifest, planned.target_digest)


def _retry_later(
    settings: Settings, item: Item, reason: str, started: float, bytes_transferred: int = 0
) -> CopyResult:
    """Give the item back for another attempt after a backoff, or fail it past the cap."""
    if item.attempts >= MAX_ATTEMPTS:
        _fail(settings, item, reason, started)
        return CopyResult(ItemStatus.FAILED)
    with transaction(settings) as conn:
        qi.release_item(
            conn,
            item.id,
            reason=f"attempt {item.attempts}: {reason}",
            bytes_transferred=bytes_transferred,
        )
    metrics.copy_retried(bytes_transferred)
    # Exponential backoff with jitter: 2, 4, 8 s ... plus up to 1 s.
    return CopyResult("retrying", retry_in=2**item.attempts + random.random())


def _record(settings: Settings, item: Item, outcome: CopyOutcome, started: float) -> CopyResult:
    status = ItemStatus(outcome.status)
    reason = outcome.reason
    if outcome.note:
        reason = f"{reason}; {outcome.note}" if reason else outcome.note
    if status == ItemStatus.FAILED and outcome.retryable and item.attempts < MAX_ATTEMPTS:
        return _retry_later(settings, item, reason, started, outcome.bytes_transferred)
    _finish(
        settings,
        item,
        started,
        status=status,
        digest=outcome.digest,
        kind=REFERRER if item.kind == REFERRER else str(outcome.kind) if outcome.kind else None,
        reason=reason,
        bytes_transferred=outcome.bytes_transferred,
        blobs_skipped=outcome.blobs_skipped,
        blobs_mounted=outcome.blobs_mounted,
        blobs_uploaded=outcome.blobs_uploaded,
    )
    return CopyResult(status)


def _finish(settings: Settings, item: Item, started: float, **outcome: Any) -> None:
    """Record an item's outcome and finish its task if it was the last one, in one
    transaction.

    The task's row is locked first: a finalize cannot see a concurrent copy's
    uncommitted outcome, so without the lock the last two copies could each
    think the other still runs. With it, they take turns, and the last one sees
    every outcome. (The chord's callback is the fast path; this keeps the log
    exact when a worker died and the chord never fires.)
    """
    with transaction(settings) as conn:
        trigger = q.lock_task(conn, item.task_id)
        recorded = qi.record_outcome(conn, item.id, **outcome)
        q.finish_after_item(conn, item.task_id)
        # Push-to-replica latency: one more query, for pushed items only.
        pushed = trigger == Trigger.PUSH and outcome["status"] in REPLICATED
        replicated = push_age(conn, item.id) if pushed else None
    if recorded:
        status = str(outcome["status"])
        took = time.monotonic() - started
        metrics.item_finished(status, took, outcome.get("bytes_transferred", 0))
        if replicated is not None:
            metrics.replicated_after(replicated)


def finalize(task_uuid: UUID, settings: Settings) -> Task | None:
    """Finish the task from its items if nothing is left to run."""
    with transaction(settings) as conn:
        return q.finalize_task(conn, task_uuid)


def reconcile(
    settings: Settings,
    enqueue_copy: Callable[[int, Trigger], None],
    enqueue_plan: Callable[[UUID, Trigger], None],
    enqueue_event: Callable[[int], None] | None = None,
    *,
    stale_seconds: float = STALE_SECONDS,
    now: datetime | None = None,
) -> dict[str, int]:
    """Re-queue abandoned work and finish tasks whose callback was lost; returns counts.

    Every effect is claimed in SQL (re-queues and re-plans by a conditional
    UPDATE of the task or event, finishing by finalize's own), so two beats running it
    at once send each piece of work once. ``now`` lets tests move the clock
    past leases instead of sleeping.
    """
    with transaction(settings) as conn:
        requeue = reclaim.expired_items(
            conn, stale_seconds=stale_seconds, now=now, max_attempts=MAX_ITEM_ATTEMPTS
        )
        unplanned = q.claim_unplanned_tasks(conn, stale_seconds)
        finished = [t for t in q.unfinished_tasks(conn) if q.finalize_task(conn, t)]
        events = claim_lost_events(conn, stale_seconds) if enqueue_event else []
        purged = purge_processed(conn, EVENT_RETENTION_DAYS)
    for r in requeue:
        for item_id in r.item_ids:
            enqueue_copy(item_id, r.trigger)
    for task_uuid, trigger in unplanned:
        enqueue_plan(task_uuid, trigger)
    for event_id in events:
        assert enqueue_event is not None
        enqueue_event(event_id)
    return {
        "requeued_items": sum(len(r.item_ids) for r in requeue),
        "replanned_tasks": len(unplanned),
        "finalized_tasks": len(finished),
        "requeued_events": len(events),
        "purged_events": purged,
    }


def release_worker_claims(
    settings: Settings, worker: str, enqueue_copy: Callable[[int, Trigger], None]
) -> int:
    """``worker`` (a Celery node name) just started: what a dead worker of that name held
    runs again now, not when its leases lapse. Returns the number of items sent."""
    with transaction(settings) as conn:
        requeue = reclaim.release_worker_items(conn, worker)
    for r in requeue:
        for item_id in r.item_ids:
            enqueue_copy(item_id, r.trigger)
    if requeue:
        log.info("released %d task(s) held by a previous %s", len(requeue), worker)
    return sum(len(r.item_ids) for r in requeue)
