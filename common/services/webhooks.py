"""Push notifications from registries: who may send them, and storing what they announce.

The receiver only stores events; matching rules and creating tasks happen in
the worker, which the caller enqueues with the returned ids after the commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from uuid import UUID

from common import db as database
from common.db import events as ev
from common.db.instances import webhook_secret_hashes
from common.domain.webhooks import Push
from common.security.tokens import matches
from common.settings import Settings

# A registry notifies every pull, Ferry's own included, one delivery after the other:
# each delivery's cost bounds how soon a push queued behind them is heard of.
RECENT_SECONDS = 2.0
_recent: dict[UUID, tuple[float, tuple]] = {}
_recent_lock = threading.Lock()


def secret_matches(
    settings: Settings, instance_id: UUID, secret: str | None, *, since: float | None = None
) -> bool:
    """True when ``secret`` is the instance's current webhook secret, or its previous one
    within the grace period after a rotation.

    With ``since`` (a ``time.monotonic()`` value) the secrets this process read after it
    may answer, without a database read: ``now - RECENT_SECONDS`` for deliveries that
    store nothing (a rotated-out secret can be taken that long more, and gets nothing for
    it); the start of the request, to reuse only this request's own read.
    An unknown instance and a wrong secret give the same answer.
    """
    if not secret:
        return False
    if since is not None:
        with _recent_lock:
            seen = _recent.get(instance_id)
        if seen is not None and seen[0] >= since and matches(secret, *seen[1]):
            return True
    read_at = time.monotonic()
    with database.transaction(settings) as conn:
        hashes = webhook_secret_hashes(conn, instance_id)
    with _recent_lock:
        if len(_recent) > 10_000:  # bounded: instances come and go
            _recent.clear()
        _recent[instance_id] = (read_at, tuple(hashes))
    return matches(secret, *hashes)


def store_pushes(settings: Settings, instance_id: UUID, pushes: Iterable[Push]) -> list[int]:
    """Store each push once per delivery key, in one transaction; the ids of the new ones
    (a replayed delivery is not stored again)."""
    new_ids = []
    with database.transaction(settings) as conn:
        for push in pushes:
            event_id = ev.store_event(
                conn,
                instance_id,
                dedup_key=push.dedup_key,
                repository=push.repository,
                tag=push.tag,
                digest=push.digest,
                payload=push.raw,
                action=push.action,
            )
            if event_id is not None:
                new_ids.append(event_id)
    return new_ids
