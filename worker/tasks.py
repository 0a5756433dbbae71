"""Celery tasks. Thin: take ids, call common.sync.runner, route the follow-up work.

Names are a wire contract: ferry.ping, ferry.plan, ferry.copy, ferry.finalize,
ferry.reconcile. Arguments are ids only, never credentials.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import redis
from celery import Task, chord
from celery.signals import worker_ready

from common.domain.vocab import Trigger
from common.errors import DatabaseError
from common.settings import get_settings
from common.sync import push as push_flow
from common.sync import runner
from common.sync import schedule as sched
from worker.celery_app import app
from worker.dispatch import enqueue_copy, enqueue_plan, enqueue_push_event, queue_for
from worker.operations import after_task

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().require_redis_url())


@app.task(name="ferry.ping")
def ping() -> str:
    """Proves the round trip API → broker → worker → result backend."""
    return "pong"


@app.task(name="ferry.plan", bind=True, max_retries=None)
def plan(self: Task, task_uuid: str) -> dict[str, Any]:
    """Plan a sync task, then become the chord of its copies and their finalize."""
    result = runner.plan_task(UUID(task_uuid), get_settings())
    if result.retry_in is not None:
        # The runner counts attempts in the database and fails the task at its cap.
        raise self.retry(countdown=result.retry_in)
    if not result.item_ids:
        _announce(task_uuid)
        return {"task": task_uuid, "copies": 0}
    assert result.trigger is not None
    queue = queue_for(result.trigger).value
    header = [copy.si(item_id).set(queue=queue) for item_id in result.item_ids]
    raise self.replace(chord(header, finalize.si(task_uuid).set(queue=queue)))


@app.task(name="ferry.copy", bind=True, max_retries=None)
def copy(self: Task, item_id: int) -> str:
    """Copy one item; expected failures are outcomes, so the chord never breaks on them."""
    # The hostname goes on the item, so a task's items show which worker copied them.
    try:
        result = runner.copy_item(item_id, get_settings(), _redis(), self.request.hostname)
    except DatabaseError:
        # PostgreSQL is unreachable (a restart): keep the message, and come back once a
        # claimed item's lease has lapsed, so this very message can claim it again.
        raise self.retry(countdown=runner.LEASE_SECONDS + 5 * random.random()) from None
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)
    return str(result.status)


@app.task(name="ferry.finalize")
def finalize(task_uuid: str) -> str | None:
    """Compute the task's figures from its items (the chord's callback)."""
    task = runner.finalize(UUID(task_uuid), get_settings())
    _announce(task_uuid)
    return task.status.value if task else None


def _announce(task_uuid: str) -> None:
    """Notifications and health of a task that may have ended; their trouble never
    reaches the sync task (its outcome is already committed)."""
    try:
        after_task(task_uuid)
    except Exception:
        log.exception("announcing the end of task %s failed", task_uuid)


@app.task(name="ferry.push_event")
def push_event(event_id: int) -> dict[str, int]:
    """Create push tasks for a stored webhook event (idempotent: the event is claimed once)."""
    result = push_flow.handle_event(event_id, get_settings())
    for task_uuid in result.new_tasks:
        enqueue_plan(task_uuid, Trigger.PUSH)
    for item_id in result.added_items:
        enqueue_copy(item_id, Trigger.PUSH)
    return {
        "rules": result.rules_matched,
        "tasks": len(result.new_tasks),
        "coalesced": len(result.added_items),
    }


@app.task(name="ferry.schedule")
def schedule() -> dict[str, int]:
    """Trigger the rules whose cron schedule is due (run by beat every minute)."""
    return sched.dispatch_due(get_settings(), datetime.now(UTC), enqueue_plan)


@app.task(name="ferry.rescan")
def rescan() -> dict[str, int]:
    """Rescan every enabled rule (FERRY_FULL_RESCAN_INTERVAL): the net for lost webhooks."""
    settings = get_settings()
    if not settings.full_rescan_interval:
        return {"started": 0}
    return sched.rescan_all(
        settings, datetime.now(UTC), settings.full_rescan_interval, enqueue_plan
    )


@app.task(name="ferry.reconcile")
def reconcile() -> dict[str, int]:
    """Re-queue items of dead workers, re-plan lost plans, finish tasks whose callback was lost."""
    return runner.reconcile(get_settings(), enqueue_copy, enqueue_plan, enqueue_push_event)


@worker_ready.connect
def _release_claims_of_a_dead_predecessor(sender: Any = None, **_: Any) -> None:
    """A worker restarted under its name (``ferry up``) resumes its predecessor's copies."""
    name = getattr(sender, "hostname", None)
    if name:
        runner.release_worker_claims(get_settings(), name, enqueue_copy)
