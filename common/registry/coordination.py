"""Blob coordination: where a blob already is on a target, and who is uploading it.

The copier asks a :class:`BlobCoordinator` two things:

* ``locate``: a repository of the target that (probably) holds a blob, so the
  blob can be mounted instead of sent; the repository the caller prefers
  (its own) when that one is known to hold it. Answers are hints: a mount's
  own 201 confirms one from another repository; one about the caller's own
  repository is confirmed by the registry when the manifest is pushed (it
  refuses a manifest whose blobs the repository lacks), and the copier checks
  every blob when that happens.
* ``claim_upload`` / ``wait_for`` / ``release_upload``: so that a blob several
  copies need at the same time crosses the wire once. The first caller claims
  and uploads; the others wait (bounded) and then mount from where it landed.
  A claim expires after ``ttl`` seconds, so a crashed holder blocks nobody for
  long; a waiter that times out uploads the blob itself.

``target_key`` identifies a target registry (``RegistryClient.key``: its
scheme, host and port). :class:`InProcessCoordinator` serves the threads of one
process; a cross-process implementation (e.g. on Redis: ``SET NX PX`` for the
claim, a hash with expiry for locations) needs only these five methods, plus two
that each do two of them in one step (``claim_and_locate``, ``settle``): on
Redis a step is a round trip, and a new blob used to take seven.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class BlobCoordinator(Protocol):
    """What the copier needs to share blob knowledge between concurrent copies."""

    def locate(self, target_key: str, digest: str, prefer: str | None = None) -> str | None:
        """A repository on the target believed to hold ``digest`` (``prefer`` when it is
        one of them), or None."""
        ...

    def remember(self, target_key: str, digest: str, repository: str) -> None:
        """Record that ``repository`` on the target now holds ``digest``."""
        ...

    def claim_upload(self, target_key: str, digest: str, ttl: float) -> bool:
        """True if the caller may upload ``digest`` now (nobody else holds a live claim)."""
        ...

    def release_upload(self, target_key: str, digest: str) -> None:
        """End the caller's claim (uploaded or not) and wake the waiters."""
        ...

    def wait_for(
        self, target_key: str, digest: str, timeout: float, prefer: str | None = None
    ) -> str | None:
        """Wait until no claim is live on ``digest``; then where it is (``locate``), or
        None on timeout."""
        ...

    def claim_and_locate(
        self, target_key: str, claim: str, digest: str, ttl: float, prefer: str | None = None
    ) -> tuple[bool, str | None]:
        """``claim_upload(claim)``, then ``locate(digest)``: (claimed, where)."""
        ...

    def settle(
        self, target_key: str, releases: list[str], remember: tuple[str, str] | None = None
    ) -> None:
        """``remember(*remember)`` if given, then ``release_upload`` of each claim (in that
        order: a waiter woken by the release finds the blob where it landed)."""
        ...


# Repositories remembered per blob: a base layer may be in thousands; a few suffice to mount
# from, and the caller's own repository is asked for by name.
MAX_REPOSITORIES_PER_BLOB = 64


class InProcessCoordinator:
    """A BlobCoordinator for the threads of one process (bounded memory, thread-safe)."""

    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cond = threading.Condition()
        # Per blob, its repositories, the most recent last.
        self._where: OrderedDict[tuple[str, str], dict[str, None]] = OrderedDict()
        self._claims: dict[tuple[str, str], float] = {}
        self._max = max_entries
        self._clock = clock

    def _locate(self, key: tuple[str, str], prefer: str | None) -> str | None:
        repos = self._where.get(key)
        if not repos:
            return None
        if prefer is not None and prefer in repos:
            return prefer
        return next(reversed(repos))

    def locate(self, target_key: str, digest: str, prefer: str | None = None) -> str | None:
        with self._cond:
            return self._locate((target_key, digest), prefer)

    def remember(self, target_key: str, digest: str, repository: str) -> None:
        key = (target_key, digest)
        with self._cond:
            repos = self._where.setdefault(key, {})
            repos.pop(repository, None)
            repos[repository] = None
            while len(repos) > MAX_REPOSITORIES_PER_BLOB:
                del repos[next(iter(repos))]
            self._where.move_to_end(key)
            while len(self._where) > self._max:
                self._where.popitem(last=False)

    def _live(self, key: tuple[str, str]) -> float | None:
        deadline = self._claims.get(key)
        if deadline is not None and deadline <= self._clock():
            del self._claims[key]
            return None
        return deadline

    def claim_upload(self, target_key: str, digest: str, ttl: float) -> bool:
        key = (target_key, digest)
        with self._cond:
            if self._live(key) is not None:
                return False
            self._claims[key] = self._clock() + ttl
            return True

    def release_upload(self, target_key: str, digest: str) -> None:
        with self._cond:
            self._claims.pop((target_key, digest), None)
            self._cond.notify_all()

    def wait_for(
        self, target_key: str, digest: str, timeout: float, prefer: str | None = None
    ) -> str | None:
        key = (target_key, digest)
        end = self._clock() + timeout
        with self._cond:
            while (deadline := self._live(key)) is not None:
                now = self._clock()
                if now >= end:
                    return None
                self._cond.wait(min(end, deadline) - now)
            return self._locate(key, prefer)

    def claim_and_locate(
        self, target_key: str, claim: str, digest: str, ttl: float, prefer: str | None = None
    ) -> tuple[bool, str | None]:
        return self.claim_upload(target_key, claim, ttl), self.locate(target_key, digest, prefer)

    def settle(
        self, target_key: str, releases: list[str], remember: tuple[str, str] | None = None
    ) -> None:
        if remember is not None:
            self.remember(target_key, *remember)
        for claim in releases:
            self.release_upload(target_key, claim)


# The default for copies in this process that were given no coordinator.
DEFAULT_COORDINATOR = InProcessCoordinator()
