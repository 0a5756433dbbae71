"""Coordination across worker processes through Redis.

- :class:`TargetSemaphore` caps concurrent copies per target instance, across
  every worker. Slots are leases (a sorted set scored by expiry), so a worker
  that dies frees its slot when the lease runs out. A pushed tag's copy goes
  first: while one waits, other copies leave it the next free slot (a bulk
  copy that just freed one would otherwise win the race again and again).
- :class:`RedisBlobCoordinator` lets copies of different items share blobs: a
  blob being uploaded to a target is leased by one copy; the others wait and
  then mount it from the repository that received it (a mount's 201, or the
  registry's check of a pushed manifest, confirms every hint).
"""

from __future__ import annotations

import time
import uuid

import redis

PREFIX = "ferry:"

# KEYS[1] = semaphore key, KEYS[2] = urgent waiters; ARGV = limit, ttl seconds, token,
# urgent (1/0). Server time keeps every worker on one clock. An urgent caller that
# finds no slot queues itself (for URGENT_WAIT_TTL s, renewed by each try); the others
# count the queued ones as taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local urgent = ARGV[4] == '1'
local taken = redis.call('ZCARD', KEYS[1])
if not urgent then
  taken = taken + redis.call('ZCARD', KEYS[2])
end
if taken < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
if urgent then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5])) + 60)
end
return 0
"""

# Seconds an urgent waiter that stopped trying (its worker died) keeps its claim on
# the next free slot.
URGENT_WAIT_TTL = 2.0

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
"""


class TargetSemaphore:
    """At most ``limit`` holders at once for one target, across processes."""

    def __init__(self, client: redis.Redis, target_id: str, limit: int, ttl: float = 120.0):
        self.client = client
        self.key = f"{PREFIX}sem:{target_id}"
        self.waiting_key = f"{PREFIX}sem-urgent:{target_id}"
        self.limit = limit
        self.ttl = ttl
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    def try_acquire(self, urgent: bool = False, token: str | None = None) -> str | None:
        """A slot token, or None when the target is at its limit. ``urgent`` (a push):
        queue for the next free slot, ahead of callers that are not."""
        token = token or uuid.uuid4().hex
        args = [self.limit, self.ttl, token, 1 if urgent else 0, URGENT_WAIT_TTL]
        ok = self._acquire(keys=[self.key, self.waiting_key], args=args)
        return token if ok else None

    def acquire(self, timeout: float, poll: float = 0.05, urgent: bool = False) -> str | None:
        """Wait up to ``timeout`` seconds for a slot."""
        deadline = time.monotonic() + timeout
        token = uuid.uuid4().hex  # one token: an urgent caller keeps its place in the queue
        while not self.try_acquire(urgent, token):
            if time.monotonic() >= deadline:
                if urgent:
                    self.client.zrem(self.waiting_key, token)  # gives up its place
                return None
            time.sleep(poll)
        return token

    def renew(self, token: str) -> bool:
        """Extend the lease; False if it had already expired."""
        self._renew(keys=[self.key], args=[self.ttl, token])
        return self.client.zscore(self.key, token) is not None

    def release(self, token: str) -> None:
        self.client.zrem(self.key, token)

    def holders(self) -> int:
        """Live slots right now (expired leases excluded)."""
        return int(self.client.zcount(self.key, time.time(), "+inf"))


class RedisBlobCoordinator:
    """Blob locations and upload leases per target registry, shared by all workers.

    A blob's locations are a set of repositories (with an expiry), so a copy can
    ask whether its own repository holds the blob and mount from another one
    otherwise, in one round trip.
    """

    def __init__(self, client: redis.Redis, location_ttl: int = 24 * 3600):
        self.client = client
        self.location_ttl = location_ttl

    def _key(self, kind: str, target_key: str, digest: str) -> str:
        return f"{PREFIX}blob:{kind}:{target_key}:{digest}"

    def locate(self, target_key: str, digest: str, prefer: str | None = None) -> str | None:
        """A repository of the target believed to hold ``digest``: ``prefer`` when it is
        one of them (a hint; see common.registry.coordination)."""
        key = self._key("where", target_key, digest)
        pipe = self.client.pipeline(transaction=False)
        pipe.sismember(key, prefer or "")
        pipe.srandmember(key)
        member, anyone = pipe.execute()
        return _pick(prefer, member, anyone)

    def remember(self, target_key: str, digest: str, repository: str) -> None:
        key = self._key("where", target_key, digest)
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(key, repository)
        pipe.expire(key, self.location_ttl)
        pipe.execute()

    def claim_upload(self, target_key: str, digest: str, ttl: float) -> bool:
        """True if this caller now owns the upload of ``digest`` to the target."""
        return bool(
            self.client.set(
                self._key("up", target_key, digest), "1", nx=True, px=max(1, int(ttl * 1000))
            )
        )

    def release_upload(self, target_key: str, digest: str) -> None:
        self.client.delete(self._key("up", target_key, digest))

    def claim_and_locate(
        self, target_key: str, claim: str, digest: str, ttl: float, prefer: str | None = None
    ) -> tuple[bool, str | None]:
        """The claim of ``claim`` and the locations of ``digest``, in one round trip."""
        key = self._key("where", target_key, digest)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self._key("up", target_key, claim), "1", nx=True, px=max(1, int(ttl * 1000)))
        pipe.sismember(key, prefer or "")
        pipe.srandmember(key)
        claimed, member, anyone = pipe.execute()
        return bool(claimed), _pick(prefer, member, anyone)

    def settle(
        self, target_key: str, releases: list[str], remember: tuple[str, str] | None = None
    ) -> None:
        """Remember, then release, in one round trip (a pipeline keeps the order)."""
        pipe = self.client.pipeline(transaction=False)
        if remember is not None:
            key = self._key("where", target_key, remember[0])
            pipe.sadd(key, remember[1])
            pipe.expire(key, self.location_ttl)
        for claim in releases:
            pipe.delete(self._key("up", target_key, claim))
        pipe.execute()

    def wait_for(
        self, target_key: str, digest: str, timeout: float, prefer: str | None = None
    ) -> str | None:
        """Wait while another copy uploads ``digest``; its repository once done, else None."""
        deadline = time.monotonic() + timeout
        up = self._key("up", target_key, digest)
        while time.monotonic() < deadline:
            where = self.locate(target_key, digest, prefer)
            if where:
                return where
            if not self.client.exists(up):
                return self.locate(target_key, digest, prefer)
            time.sleep(0.05)
        return None


def _pick(prefer: str | None, member: object, anyone: object) -> str | None:
    """``prefer`` when the set holds it, else the random member SRANDMEMBER gave."""
    if prefer and member:
        return prefer
    return anyone.decode() if isinstance(anyone, bytes) else anyone  # type: ignore[return-value]
