"""What the worker runs around the sync: health checks, drift reports, and the
notifications they and finished tasks give. Each returns the delivery ids to send."""

from __future__ import annotations

from uuid import UUID

from common import db as database
from common.db.rules import enabled_rules
from common.db.tasks import get_task
from common.domain.vocab import OPEN_TASK_STATUSES, TaskStatus
from common.services import notify
from common.settings import Settings
from common.sync import drift, health
from common.sync.health import HealthChange


def announce_health(settings: Settings, change: HealthChange | None) -> list[int]:
    if change is None or not change.changed:
        return []
    return notify.health_changed(settings, change.rule, change.before, change.after)


def on_task_finished(settings: Settings, task_uuid: UUID) -> list[int]:
    """After a task may have finished: its notification, and what it says of the rule's
    health. Nothing while the task still runs; each event is recorded once."""
    task = database.in_transaction(settings, get_task, task_uuid)
    if task is None or task.rule_id is None or task.status in OPEN_TASK_STATUSES:
        return []
    deliveries = notify.task_finished(settings, task_uuid)
    change = health.after_task(task.rule_id, TaskStatus(task.status), task.message, settings)
    return deliveries + announce_health(settings, change)


def check_rule(settings: Settings, rule_id: UUID) -> list[int]:
    """Check the rule's health now and announce a change."""
    return announce_health(settings, health.check_rule(rule_id, settings))


def run_drift(settings: Settings, report_id: UUID) -> list[int]:
    """Fill the drift report and announce drift found."""
    report = drift.run_report(report_id, settings)
    return notify.drift_found(settings, report) if report is not None else []


def rules_to_check(settings: Settings) -> list[UUID]:
    """Every enabled rule (beat checks them all)."""
    return [r.id for r in database.in_transaction(settings, enabled_rules)]
