"""Planning a task without Celery: list the source, write the items, record the end.

A plan claims its task with a lease (renewed while it lists), writes items
batch by batch, and records that listing is complete only at the end; until
then no finishing path may close the task. A crashing plan is retried up to
:data:`MAX_PLAN_ATTEMPTS` times, then its task is Failed with the reason.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from common.db import items as qi
from common.db import tasks as q
from common.db import transaction
from common.db.instances import get_instance
from common.db.rules import get_rule
from common.domain.models import Rule, Task
from common.domain.rules import Selector
from common.domain.vocab import Trigger
from common.errors import DatabaseError, FerryError, ListingLimit, ValidationError
from common.observe import logs
from common.settings import Settings
from common.sync.clients import Endpoints, endpoints_for, refusal
from common.sync.deletions import rescan
from common.sync.planner import plan

log = logging.getLogger(__name__)

# A plan holds a lease on its task, renewed while it lists; reconciliation
# re-plans a task only once the lease has lapsed (its worker died).
PLAN_LEASE_SECONDS = 30.0
PLAN_HEARTBEAT_SECONDS = 5.0
# A plan that crashes is retried; after this many attempts the task is Failed.
MAX_PLAN_ATTEMPTS = 3
# Reasons kept on tasks and items are cut to this many characters.
MAX_REASON_CHARS = 500


@dataclass
class PlanResult:
    """Items to fan out after planning (empty when the task already finished), or a retry."""

    task_uuid: UUID
    trigger: Trigger | None
    item_ids: list[int] = field(default_factory=list)
    retry_in: float | None = None


def crash_reason(exc: BaseException) -> str:
    """A one-line reason for an unexpected exception, short enough for a task's log."""
    text = f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00").splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:MAX_REASON_CHARS]


def plan_task(task_uuid: UUID, settings: Settings) -> PlanResult:
    """List, filter and compare; write the items; record that listing is complete; return
    the items that need a copy. A task whose plan has not completed never finishes."""
    with transaction(settings) as conn:
        task = q.start_task(conn, task_uuid, PLAN_LEASE_SECONDS)
        if task is None:
            return PlanResult(task_uuid, None)
        rule = get_rule(conn, task.rule_id) if task.rule_id else None
        logs.bind(task_id=task.task_id, rule_id=task.rule_id, tenant_id=task.tenant_id)
        if rule is None:
            q.fail_task(conn, task_uuid, "the rule was deleted")
            return PlanResult(task_uuid, task.trigger)
        # Blocked by the target account, or suspended until its owner re-checks credentials.
        target = get_instance(conn, rule.target_instance_id) if rule.target_instance_id else None
        reason = refusal(rule, target)
        if reason is not None:
            qi.fail_open_items(conn, task_uuid, reason)
            q.fail_task(conn, task_uuid, reason)
            return PlanResult(task_uuid, task.trigger)
        if task.listed_at is None and task.plan_attempts > MAX_PLAN_ATTEMPTS:
            q.fail_task(
                conn,
                task_uuid,
                f"planning gave up after {MAX_PLAN_ATTEMPTS} attempts; last: {task.message}",
            )
            return PlanResult(task_uuid, task.trigger)
    # Push and retry tasks are created with their items; only scans list.
    scan = task.trigger in (Trigger.MANUAL, Trigger.SCHEDULE) and task.retry_of is None
    if task.listed_at is None and scan:
        ended = _list_source(task, rule, settings)
        if ended is not None:
            return ended
    with transaction(settings) as conn:
        q.record_listed(conn, task_uuid)
        ids = qi.pending_item_ids(conn, task_uuid)
        if not ids:
            q.finalize_task(conn, task_uuid)
    return PlanResult(task_uuid, task.trigger, ids)


def _list_source(task: Task, rule: Rule, settings: Settings) -> PlanResult | None:
    """Write the items the rule selects, batch by batch; None once everything is listed.

    Otherwise the result to return: the task was stopped, failed, or the plan
    crashed and is to be retried (its lease ended and its reason kept).
    """
    try:
        # A pattern saved before Ferry matched with RE2 may be one RE2 refuses.
        Selector.from_rule(rule)
    except ValidationError as exc:
        with transaction(settings) as conn:
            q.fail_task(conn, task.id, f"the rule's filters cannot be used ({exc}); edit the rule")
        return PlanResult(task.id, task.trigger)
    lease = _Lease(
        lambda conn: q.renew_plan_lease(conn, task.id, PLAN_LEASE_SECONDS),
        settings,
        PLAN_HEARTBEAT_SECONDS,
        f"ferry-plan-lease-{task.task_id}",
    )
    lease.start()
    try:
        with transaction(settings) as conn:
            ends = endpoints_for(conn, rule, settings)
        batches = plan(
            ends.source,
            ends.target,
            rule,
            max_repositories=settings.max_repositories_per_task,
            max_tags=settings.max_tags_per_task,
        )
        for batch in batches:
            with transaction(settings) as conn:
                if not q.lock_for_planning(conn, task.id):
                    break  # stopped: its finalize needs no listing
                qi.insert_items(conn, task.id, [c.item for c in batch])
        else:
            if _add_deletions(task, rule, ends, settings):
                return None
        with transaction(settings) as conn:
            q.finalize_task(conn, task.id)
        return PlanResult(task.id, task.trigger)
    except DatabaseError:
        raise  # not the source's fault: the lease lapses and reconciliation re-plans
    except ListingLimit as exc:
        with transaction(settings) as conn:
            q.fail_task(conn, task.id, f"listing stopped: {exc}")
        return PlanResult(task.id, task.trigger)
    except FerryError as exc:
        with transaction(settings) as conn:
            q.fail_task(conn, task.id, f"cannot list the source: {exc}")
        return PlanResult(task.id, task.trigger)
    except Exception as exc:  # a crash must end in a retry or a reason
        return _plan_crashed(task, settings, exc)
    finally:
        lease.done.set()
        lease.join()


def _add_deletions(task: Task, rule: Rule, ends: Endpoints, settings: Settings) -> bool:
    """Listing is complete: with ``deletion``, add what this rule placed whose source tag is
    gone (a full rescan). False when the task was stopped meanwhile."""
    if not rule.deletion:
        return True
    gone = rescan(settings, rule, ends.source, ends.target)
    with transaction(settings) as conn:
        if not q.lock_for_planning(conn, task.id):
            return False
        qi.insert_items(conn, task.id, gone)
    return True


def _plan_crashed(task: Task, settings: Settings, exc: Exception) -> PlanResult:
    log.exception("plan of task %s crashed (attempt %s)", task.task_id, task.plan_attempts)
    reason = f"listing crashed: {crash_reason(exc)}"
    with transaction(settings) as conn:
        if task.plan_attempts >= MAX_PLAN_ATTEMPTS:
            q.fail_task(
                conn,
                task.id,
                f"planning gave up after {task.plan_attempts} attempts; last: {reason}",
            )
            return PlanResult(task.id, task.trigger)
        q.record_plan_crash(conn, task.id, f"attempt {task.plan_attempts}: {reason}")
    return PlanResult(task.id, task.trigger, retry_in=2**task.plan_attempts + random.random())


class _Lease(threading.Thread):
    """Calls ``renew`` in a transaction every ``period`` seconds until ``done`` is set."""

    def __init__(
        self,
        renew: Callable[[Any], bool],
        settings: Settings,
        period: float,
        name: str,
    ) -> None:
        super().__init__(daemon=True, name=name)
        self.renew, self.settings, self.period = renew, settings, period
        self.done = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period):
            try:
                with transaction(self.settings) as conn:
                    if not self.renew(conn):
                        self.lost.set()
            except FerryError:
                log.warning("%s: renewal failed; retrying", self.name)
