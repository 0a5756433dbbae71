"""Structured logs: with ``FERRY_LOG_FORMAT=json`` every process writes one JSON object
per line, carrying ``tenant_id``, ``rule_id``, ``task_id`` and ``item_id`` where known.

The ids live in a context variable that the code doing the work binds (a request's
tenant, a copy's item); every record picks them up. Every line, JSON or not once
configured here, goes through :func:`redact`: a password, token, webhook secret or
notification URL that reached a message or a traceback is masked before it is written.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CONTEXT_KEYS = ("tenant_id", "rule_id", "task_id", "item_id")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "ferry_log_context", default=None
)

MASK = "***"
_SECRET_WORDS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|secret[_-]?key|authorization)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A URL of any scheme but http(s): notification (apprise) URLs keep secrets in the path.
    (re.compile(r"\b(?!https?://)([a-z][a-z0-9+.-]{1,20})://[^\s'\"<>]+", re.I), r"\1://" + MASK),
    # Credentials in an http(s) URL.
    (re.compile(r"\b(https?://)[^/\s:@'\"]+:[^/\s@'\"]+@", re.I), r"\1" + MASK + "@"),
    # Secret-looking query parameters.
    (re.compile(rf"([?&][^=&\s]*{_SECRET_WORDS}[^=&\s]*=)[^&\s'\"]+", re.I), r"\1" + MASK),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.I), r"\1 " + MASK),
    # Ferry's own tokens and webhook secrets, recognisable by their prefixes.
    (re.compile(r"\b(fry|fwh)_[A-Za-z0-9_-]+"), r"\1_" + MASK),
    # key=value and "key": "value" pairs whose key names a secret.
    (
        re.compile(rf"({_SECRET_WORDS}[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}}&]+", re.I),
        r"\1" + MASK,
    ),
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a secret masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def bind(**ids: object) -> None:
    """Add ids (tenant_id, rule_id, task_id, item_id) to this context's log records."""
    current = dict(_context.get() or {})
    current.update({k: str(v) for k, v in ids.items() if v is not None and k in CONTEXT_KEYS})
    _context.set(current)


def clear() -> None:
    """Forget the ids (the end of a request or a task)."""
    _context.set(None)


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """The ids bound for the ``with`` block only."""
    token = _context.set(dict(_context.get() or {}))
    bind(**ids)
    try:
        yield
    finally:
        _context.reset(token)


def current_ids() -> dict[str, str]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, process, the bound ids,
    and the traceback as text; every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        entry.update(current_ids())
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """The text format, redacted the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else RedactingFormatter(TEXT_FORMAT)


def configure(log_format: str, level: str) -> None:
    """Route the root logger to stderr in ``log_format`` (text or json) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def reformat(log_format: str, *loggers: logging.Logger) -> None:
    """Give every handler of ``loggers`` (and the root's) the format (Celery's own set-up)."""
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            handler.setFormatter(formatter(log_format))


def dict_config(level: str) -> dict[str, Any]:
    """A logging.config dict for JSON lines on stderr (gunicorn's ``logconfig_dict``)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
    }
