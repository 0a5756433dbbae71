"""RetryPolicy: every decision to try again, and how long to wait first.

A request is retried with exponential backoff and jitter on connection errors,
timeouts and answers that break off half-way, and on 5xx and 429 (honouring
Retry-After, capped), never on 400/401/403/404, which become errors a person
can act on. A body that cannot be replayed (a generator) is never resent.
Above single requests, the same policy bounds how often a broken source is
reopened, a chunk resumed, an upload restarted from zero, and a manifest PUT
repeated when the registry trips over a concurrent push of the same bytes.
Each method answers "wait this long, then try again" or None: give up.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar


def retryable_status(status: int) -> bool:
    """True for answers worth another try: 429 and 5xx, but not 501/505 (never better)."""
    return status == 429 or (500 <= status < 600 and status not in (501, 505))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request (and an upload) is retried."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    # An upload the registry forgot, or that broke while streaming, starts over
    # from zero at most this often: each restart resends every byte.
    MAX_RESTARTS: ClassVar[int] = 2
    # A concurrent push of the same manifest settles within a try or two.
    RACE_ATTEMPTS: ClassVar[int] = 3

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (from 1): jittered, capped."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        wait = base / 2 + random.uniform(0, base / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def after_status(
        self, attempt: int, status: int, headers: Mapping[str, str], *, replayable: bool = True
    ) -> float | None:
        """The wait before resending after answer ``status`` to try ``attempt``, or None."""
        if not retryable_status(status) or not replayable or attempt >= self.attempts:
            return None
        return self.delay(attempt, retry_after(headers))

    def after_break(self, attempt: int, *, replayable: bool = True) -> float | None:
        """The wait after failure number ``attempt`` of the connection (refused, timed out,
        broken off), or None: retries are spent or the body cannot be sent again."""
        if not replayable or attempt >= self.attempts:
            return None
        return self.delay(attempt)

    def after_race(self, attempt: int) -> float | None:
        """The wait after try ``attempt`` of a manifest PUT refused by a concurrent push."""
        if attempt >= min(self.RACE_ATTEMPTS, self.attempts):
            return None
        return self.delay(attempt)

    def may_restart(self, restarts: int) -> bool:
        """True when an upload that has restarted ``restarts`` times may start over again."""
        return restarts < self.MAX_RESTARTS

    def after_restart(self, restarts: int) -> float | None:
        """The wait before restart number ``restarts + 1`` of an upload, or None."""
        if not self.may_restart(restarts):
            return None
        return self.delay(restarts + 1)
