"""The only module the API imports from worker: it enqueues by task name.

Sending by name keeps task bodies (and their imports) out of the API process.
Call these only after the transaction that wrote the rows has committed.
"""

from __future__ import annotations

from uuid import UUID

from celery.result import AsyncResult

from common.domain.vocab import QueueName, Trigger
from worker.celery_app import app


def queue_for(trigger: Trigger) -> QueueName:
    """Push-triggered work has its own queue so a bulk rescan never delays it."""
    return QueueName.PUSH if trigger == Trigger.PUSH else QueueName.COPY


def send_ping() -> AsyncResult:
    """Enqueue ``ferry.ping``."""
    return app.send_task("ferry.ping")


def enqueue_plan(task_uuid: UUID | str, trigger: Trigger) -> None:
    """Start a sync task: ``ferry.plan`` on the plan queue (push queue for pushes)."""
    queue = QueueName.PUSH if trigger == Trigger.PUSH else QueueName.PLAN
    app.send_task("ferry.plan", args=[str(task_uuid)], queue=queue.value)


def enqueue_copy(item_id: int, trigger: Trigger) -> None:
    """Re-send one item's copy (reconciliation)."""
    app.send_task("ferry.copy", args=[item_id], queue=queue_for(trigger).value)


def enqueue_push_event(event_id: int) -> None:
    """Turn a stored push event into tasks (``ferry.push_event`` on the push queue)."""
    app.send_task("ferry.push_event", args=[event_id], queue=QueueName.PUSH.value)


def enqueue_drift(report_id: UUID | str) -> None:
    """Fill a drift report (``ferry.drift`` on the plan queue: it lists like a plan)."""
    app.send_task("ferry.drift", args=[str(report_id)], queue=QueueName.PLAN.value)


def enqueue_health_check(rule_id: UUID | str) -> None:
    """Check one rule's health now (``ferry.health_check``)."""
    app.send_task("ferry.health_check", args=[str(rule_id)], queue=QueueName.PLAN.value)


def enqueue_notify(delivery_id: int) -> None:
    """Send one recorded notification (``ferry.notify``)."""
    app.send_task("ferry.notify", args=[delivery_id], queue=QueueName.PLAN.value)
