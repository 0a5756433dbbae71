"""The only module the API imports from worker: it enqueues by task name.

Sending by name keeps task bodies (and their imports) out of the API process.
"""

from __future__ import annotations

from celery.result import AsyncResult

from worker.celery_app import app


def send_ping() -> AsyncResult:
    """Enqueue ``ferry.ping``."""
    return app.send_task("ferry.ping")
