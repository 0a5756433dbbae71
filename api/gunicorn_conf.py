"""gunicorn settings Ferry's API runs with (``-c python:api.gunicorn_conf``):
JSON logs when FERRY_LOG_FORMAT=json, and each dead worker's metric files retired."""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from common.observe.logs import dict_config
from common.settings import get_settings, metrics_directory

_settings = get_settings()
if _settings.log_format == "json":
    logconfig_dict = dict_config(_settings.log_level)
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def child_exit(_server: Any, worker: Any) -> None:
    """A worker process ended: its live gauges stop counting (counters are kept)."""
    if metrics_directory():
        multiprocess.mark_process_dead(worker.pid)
