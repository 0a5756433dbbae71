"""Deadlines and Stop for registry requests: a watchdog that cuts connections off.

Socket timeouts bound one read each, so a server that sends a byte now and
then never times out, and a read that waits for a stalled source does not see
a Stop. A :class:`Guard` holds the connections one request uses (its try,
redirects and body) with the time it must be done by and, optionally, a stop
predicate. One watchdog thread per process looks at the active guards a few
times a second and shuts down the sockets of a guard whose time is up or whose
stop predicate is true: the blocked read returns at once, the request fails,
and the guard says why (:attr:`Guard.tripped`).

A thread may also set a budget (:func:`budget`): every request it starts
inside must be done by then (the API's own registry checks, which a person
waits for).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

log = logging.getLogger("ferry.registry")

T = TypeVar("T")

POLL_SECONDS = 0.2  # how often the watchdog looks: Stop is honoured within this (+ the caller)
DEADLINE = "deadline"
STOP = "stop"


class Stopped(Exception):
    """Asked to stop; the work in progress was abandoned (an upload is cancelled)."""


class Guard:
    """The connections of one request, the time they must be done by, and when to stop."""

    def __init__(
        self,
        expires: float | None,
        stop: Callable[[], bool] | None = None,
        *,
        cap: float | None = None,
    ) -> None:
        self.expires = expires  # time.monotonic() value; None: no deadline
        self.cap = cap  # the thread's budget: no extension goes past it
        self.started = time.monotonic()
        self.stop = stop
        self.tripped: str | None = None  # DEADLINE or STOP once cut off
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """How long the request was given (for messages)."""
        return (self.expires or self.started) - self.started

    def attach(self, conn: Any) -> None:
        """Watch ``conn`` (a urllib3 connection) too; cut it at once if already tripped."""
        with self._lock:
            self._conns.append(conn)
            tripped = self.tripped is not None
        if tripped:
            _shut(conn)

    def extend(self, seconds: float) -> None:
        """Progress was made: the request may go on ``seconds`` from now (never shorter)."""
        if self.expires is not None:
            later = time.monotonic() + seconds
            if self.cap is not None:
                later = min(later, self.cap)
            self.expires = max(self.expires, later)

    def due(self, now: float) -> str | None:
        """Why this guard must cut off now, or None."""
        if self.tripped is not None:
            return None
        if self.stop is not None and self.stop():
            return STOP
        if self.expires is not None and now >= self.expires:
            return DEADLINE
        return None

    def cut(self, why: str) -> None:
        """Shut down every connection of the request, so blocked reads and writes return."""
        with self._lock:
            self.tripped = why
            conns = list(self._conns)
        for conn in conns:
            _shut(conn)

    def __enter__(self) -> Guard:
        _WATCHDOG.add(self)
        stack = _stack()
        stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        stack = _stack()
        if stack and stack[-1] is self:
            stack.pop()

    def fed(self, data: Iterable[bytes], seconds: float) -> Iterator[bytes]:
        """An upload stream that gives the request ``seconds`` more with every piece sent."""
        for chunk in data:
            self.extend(seconds)
            yield chunk

    def close(self) -> None:
        """The request is over: stop watching it (its connections may serve others now)."""
        _WATCHDOG.discard(self)
        with self._lock:
            self._conns.clear()


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also under TLS: it only wakes the blocked call;
    # the owner closes the connection.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_local = threading.local()


def _stack() -> list[Guard]:
    stack = getattr(_local, "guards", None)
    if stack is None:
        stack = _local.guards = []
    return stack


def current() -> Guard | None:
    """The guard of the request this thread is sending, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def attach_current(conn: Any) -> None:
    """Called by a connection about to send a request: watch it under the current guard."""
    guard = current()
    if guard is not None:
        guard.attach(conn)


def budget_end() -> float | None:
    """The time (monotonic) every request of this thread must be done by, if set."""
    return getattr(_local, "budget", None)


@contextlib.contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Every registry request this thread starts inside is done within ``seconds`` in all."""
    before = budget_end()
    end = time.monotonic() + seconds
    _local.budget = end if before is None else min(before, end)
    try:
        yield
    finally:
        _local.budget = before


def carried(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run under this thread's budget, in whatever thread calls it (thread pools)."""
    end = budget_end()
    if end is None:
        return fn

    def run(*args: Any, **kwargs: Any) -> T:
        before = budget_end()
        _local.budget = end
        try:
            return fn(*args, **kwargs)
        finally:
            _local.budget = before

    return run


class _Watchdog:
    """One thread per process that cuts off guards that are due."""

    def __init__(self) -> None:
        self._guards: set[Guard] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0

    def add(self, guard: Guard) -> None:
        with self._lock:
            self._guards.add(guard)
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="ferry-watchdog", daemon=True).start()

    def discard(self, guard: Guard) -> None:
        with self._lock:
            self._guards.discard(guard)

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            with self._lock:
                guards = list(self._guards)
            now = time.monotonic()
            for guard in guards:
                try:
                    why = guard.due(now)
                except Exception:  # a stop predicate that fails must not kill the watchdog
                    log.exception("stop check failed")
                    continue
                if why is not None:
                    log.info("cutting off a registry request: %s", why)
                    guard.cut(why)


_WATCHDOG = _Watchdog()
