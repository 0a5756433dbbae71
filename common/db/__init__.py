"""Database access: a per-process psycopg 3 pool, migrations, and the queries.

SQL lives only in this package. The pool is opened lazily by the first caller
in each process (never at import time) and re-opened after a fork, so Celery's
prefork children and gunicorn workers never share a connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from common.errors import DatabaseError
from common.settings import Settings, get_settings

T = TypeVar("T")
_lock = threading.Lock()
_pool: ConnectionPool | None = None
_pool_pid: int | None = None
_pool_url: str | None = None


def open_pool(settings: Settings | None = None, *, max_size: int = 20) -> ConnectionPool:
    """The pool of this process for the settings' database, opened on first use. Sized for
    a threads worker: each copy and its heartbeat may hold a connection at once."""
    global _pool, _pool_pid, _pool_url
    url = (settings or get_settings()).require_database_url()
    with _lock:
        if _pool is not None and _pool_pid == os.getpid() and _pool_url == url:
            return _pool
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        # After a fork the parent's pool is abandoned, not closed: closing it
        # would close sockets the parent still uses.
        _pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": False},
            open=False,
            name="ferry",
        )
        _pool.open(wait=False)
        _pool_pid, _pool_url = os.getpid(), url
        return _pool


def close_pool() -> None:
    """Close this process's pool (tests, shutdown)."""
    global _pool, _pool_pid, _pool_url
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        _pool = _pool_pid = _pool_url = None


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[psycopg.Connection]:
    """A pooled connection inside one transaction: committed on success, rolled back on error."""
    try:
        with open_pool(settings).connection(timeout=10) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"PostgreSQL is unreachable: {first_line(exc)}") from None


def in_transaction(
    settings: Settings | None, query: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``query(conn, *args, **kwargs)`` run in one transaction of its own."""
    with transaction(settings) as conn:
        return query(conn, *args, **kwargs)


def first_line(exc: BaseException) -> str:
    """The first line of an exception message (psycopg's are multi-line)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A single connection outside the pool (CLI, migrations, readiness)."""
    try:
        return psycopg.connect(url, row_factory=dict_row, connect_timeout=5, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"PostgreSQL is unreachable: {first_line(exc)}") from None
