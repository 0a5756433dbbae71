"""The Celery application: Redis broker and result backend, JSON only, explicit names.

Configuration is read from :mod:`common.settings` when Celery first needs it
(a lazy default), not at import, so tests and ``ferry up`` can set the
environment first. Start a worker with ``celery -A worker.celery_app worker``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue

from common.domain.vocab import QueueName
from common.settings import Settings, get_settings

# How often beat reconciles (common.sync.runner.RECONCILE_SECONDS; not imported here:
# the API imports this module and must not load the pipeline).
RECONCILE_SECONDS = 20.0

QUEUES = (QueueName.PLAN, QueueName.COPY, QueueName.PUSH)

# Redis redelivers an unacknowledged message after the visibility timeout. With
# acks_late a copy is acknowledged when it ends, so the timeout must exceed the
# longest copy; copies are idempotent, so a redelivery costs only time.
VISIBILITY_TIMEOUT = 2 * 60 * 60


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from Ferry's settings."""
    redis_url = settings.require_redis_url()
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT}
    # Plain strings in what Celery and kombu keep; planning is the default queue.
    plan, copy, push = QueueName.PLAN.value, QueueName.COPY.value, QueueName.PUSH.value
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # One exchange and routing key per queue: with a shared default binding,
        # Redis would copy every message into every queue.
        "task_queues": [Queue(q.value, Exchange(q.value), routing_key=q.value) for q in QUEUES],
        "task_default_exchange": plan,
        "task_default_routing_key": plan,
        "task_default_queue": plan,
        "task_routes": {
            "ferry.plan": {"queue": plan},
            "ferry.finalize": {"queue": plan},
            "ferry.copy": {"queue": copy},
            "ferry.push_event": {"queue": push},
            "ferry.drift": {"queue": plan},
            "ferry.health_check": {"queue": plan},
            "ferry.health_sweep": {"queue": plan},
            "ferry.notify": {"queue": plan},
        },
        "result_expires": 24 * 60 * 60,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "enable_utc": True,
        "timezone": "UTC",
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(settings),
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's periodic tasks: cron dispatcher, reconciliation, optional full rescan."""
    every_minute = {"queue": QueueName.PLAN.value, "expires": 55}
    entries: dict[str, dict[str, Any]] = {
        "schedule": {"task": "ferry.schedule", "schedule": crontab(), "options": every_minute},
        # Often: a crashed worker's items run again within about a minute.
        "reconcile": {
            "task": "ferry.reconcile",
            "schedule": RECONCILE_SECONDS,
            "options": {"queue": QueueName.PLAN.value, "expires": RECONCILE_SECONDS - 2},
        },
    }
    if settings.health_check_interval:
        entries["health"] = {
            "task": "ferry.health_sweep",
            "schedule": float(settings.health_check_interval),
            "options": {"queue": QueueName.PLAN.value, "expires": settings.health_check_interval},
        }
    if settings.full_rescan_interval:
        entries["rescan"] = {
            "task": "ferry.rescan",
            "schedule": float(settings.full_rescan_interval),
            "options": {"queue": QueueName.PLAN.value},
        }
    return entries


def create_celery() -> Celery:
    """A Celery app that configures itself from settings on first use."""
    celery = Celery("ferry", include=["worker.tasks", "worker.operations"])

    # A callable default is evaluated when Celery first loads its configuration,
    # after tests or `ferry up` have prepared the environment.
    celery.add_defaults(lambda: celery_config(get_settings()))

    return celery


app = create_celery()

# Logging and metrics hooks connect to Celery's signals on import.
import worker.observe  # noqa: E402, F401
