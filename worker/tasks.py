"""Celery tasks. Thin: load ids, call common, write outcomes."""

from __future__ import annotations

from worker.celery_app import app


@app.task(name="ferry.ping")
def ping() -> str:
    """Proves the round trip API → broker → worker → result backend."""
    return "pong"
