"""Celery tasks around the sync: drift reports, health checks, notifications.

Thin: ids in, a use case of common.services.watch or notify, deliveries out.
Names are a wire contract: ferry.drift, ferry.health_check, ferry.health_sweep,
ferry.notify. A notification is its own task, so its failure never touches
the sync task that caused it.
"""

from __future__ import annotations

from uuid import UUID

from celery import Task

from common.services import notify as notify_service
from common.services import watch
from common.settings import get_settings
from worker.celery_app import app
from worker.dispatch import enqueue_health_check, enqueue_notify


def send_all(delivery_ids: list[int]) -> None:
    """Enqueue every recorded delivery (after the rows were committed)."""
    for delivery_id in delivery_ids:
        enqueue_notify(delivery_id)


def after_task(task_uuid: str) -> None:
    """Announce a task that may have finished (called where a task can end)."""
    send_all(watch.on_task_finished(get_settings(), UUID(task_uuid)))


@app.task(name="ferry.drift")
def drift(report_id: str) -> None:
    """Fill a drift report; announce the drift it found."""
    send_all(watch.run_drift(get_settings(), UUID(report_id)))


@app.task(name="ferry.health_check")
def health_check(rule_id: str) -> None:
    """Check one rule's health; announce a change."""
    send_all(watch.check_rule(get_settings(), UUID(rule_id)))


@app.task(name="ferry.health_sweep")
def health_sweep() -> int:
    """Check every enabled rule (beat, every FERRY_HEALTH_CHECK_INTERVAL): one task each."""
    rules = watch.rules_to_check(get_settings())
    for rule_id in rules:
        enqueue_health_check(rule_id)
    return len(rules)


# Seconds before retry n (1, 2, 3): a few quick tries, then the delivery is failed.
def _backoff(retries: int) -> float:
    return 1.0 + retries


@app.task(name="ferry.notify", bind=True, max_retries=notify_service.MAX_ATTEMPTS - 1)
def notify(self: Task, delivery_id: int) -> None:
    """Send one delivery; retried a few times, every attempt recorded on the delivery."""
    attempt = self.request.retries + 1
    if not notify_service.deliver(get_settings(), delivery_id, attempt):
        raise self.retry(countdown=_backoff(self.request.retries))
