"""Celery's side of logs and metrics: JSON lines when FERRY_LOG_FORMAT=json (worker and
beat), each task's ids on its log records, and a pool child's metric files retired."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals
from prometheus_client import multiprocess

from common.observe import logs
from common.settings import get_settings, metrics_directory

# The first argument of each task, by task name: what it is the id of.
_ARGUMENT_IDS = {
    "ferry.copy": "item_id",
    "ferry.plan": "task_id",
    "ferry.finalize": "task_id",
}


@signals.celeryd_init.connect
def _json_from_the_start(**_: Any) -> None:
    """Before Celery's own set-up (and its start-up warnings): JSON on stderr, which Celery
    then keeps (it adds no handler to a logger that has one)."""
    settings = get_settings()
    if settings.log_format == "json":
        logs.configure("json", settings.log_level)
        logging.captureWarnings(True)


@signals.after_setup_logger.connect
def _json_root(logger: logging.Logger, **_: Any) -> None:
    settings = get_settings()
    if settings.log_format == "json":
        logs.reformat("json", logger)
        logging.captureWarnings(True)  # Python's warnings as records, not raw text


@signals.after_setup_task_logger.connect
def _json_tasks(logger: logging.Logger, **_: Any) -> None:
    if get_settings().log_format == "json":
        logs.reformat("json", logger)


@signals.task_prerun.connect
def _bind_task(task: Any = None, args: Any = None, **_: Any) -> None:
    logs.clear()
    key = _ARGUMENT_IDS.get(getattr(task, "name", ""))
    if key and args:
        logs.bind(**{key: args[0]})


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    logs.clear()


@signals.worker_process_shutdown.connect
def _retire_metrics(pid: int | None = None, **_: Any) -> None:
    if metrics_directory():
        multiprocess.mark_process_dead(pid or os.getpid())
