"""Redis coordination: the per-target semaphore and the blob coordinator, on real Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis as redis_lib

from common.sync.leases import RedisBlobCoordinator, TargetSemaphore


@pytest.fixture
def r(settings):
    client = redis_lib.Redis.from_url(settings.require_redis_url())
    yield client
    client.close()


def test_semaphore_caps_holders_across_clients(r, settings):
    other = redis_lib.Redis.from_url(settings.require_redis_url())
    a = TargetSemaphore(r, "target-1", limit=2, ttl=30)
    b = TargetSemaphore(other, "target-1", limit=2, ttl=30)
    t1, t2 = a.try_acquire(), b.try_acquire()
    assert t1 and t2
    assert a.try_acquire() is None and b.try_acquire() is None
    assert TargetSemaphore(r, "target-2", limit=2).try_acquire()  # another target is free
    b.release(t2)
    assert a.try_acquire() is not None
    other.close()


def test_semaphore_lease_expires_when_holder_dies(r):
    sem = TargetSemaphore(r, "t", limit=1, ttl=0.3)
    token = sem.try_acquire()
    assert token and sem.try_acquire() is None
    time.sleep(0.4)  # the holder never renewed: as if its worker died
    assert sem.try_acquire() is not None
    assert sem.renew(token) is False


def test_semaphore_renew_keeps_the_slot(r):
    sem = TargetSemaphore(r, "t", limit=1, ttl=0.3)
    token = sem.try_acquire()
    for _ in range(4):
        time.sleep(0.1)
        assert sem.renew(token)
    assert sem.try_acquire() is None
    assert sem.holders() == 1


def test_blob_coordinator_one_uploader_others_wait_then_mount(r):
    coord = RedisBlobCoordinator(r)
    key, digest = "http://127.0.0.1:5000", "sha256:" + "a" * 64
    assert coord.claim_upload(key, digest, ttl=5)
    assert not coord.claim_upload(key, digest, ttl=5)
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(coord.wait_for(key, digest, 5)))
    waiter.start()
    time.sleep(0.2)
    coord.remember(key, digest, "project/a")
    coord.release_upload(key, digest)
    waiter.join(5)
    assert got == ["project/a"]
    assert coord.locate(key, digest) == "project/a"


def test_blob_claim_expires(r):
    coord = RedisBlobCoordinator(r)
    key, digest = "k", "sha256:" + "b" * 64
    assert coord.claim_upload(key, digest, ttl=0.2)
    assert coord.wait_for(key, digest, timeout=2) is None  # expired, never located
    assert coord.claim_upload(key, digest, ttl=1)


def test_blob_locations_answer_for_the_callers_repository_first(r):
    coord = RedisBlobCoordinator(r)
    key, digest = "k", "sha256:" + "c" * 64
    assert coord.locate(key, digest, prefer="p/a") is None
    for repo in ("p/a", "p/b", "p/c"):
        coord.remember(key, digest, repo)
    assert all(coord.locate(key, digest, prefer="p/b") == "p/b" for _ in range(10))
    assert coord.locate(key, digest, prefer="p/zz") in {"p/a", "p/b", "p/c"}
    assert coord.locate(key, "sha256:" + "d" * 64, prefer="p/a") is None


class _CountingConnection(redis_lib.Connection):
    """Counts round trips: one packed send per command, or per pipeline."""

    sent = 0

    def send_packed_command(self, *args, **kwargs):
        type(self).sent += 1
        return super().send_packed_command(*args, **kwargs)


@pytest.mark.parametrize("kind", ["redis", "in-process"])
def test_claim_and_locate_then_settle(r, settings, kind):
    from common.registry.coordination import InProcessCoordinator

    counted = redis_lib.Redis.from_url(
        settings.require_redis_url(), connection_class=_CountingConnection
    )
    coord = RedisBlobCoordinator(counted) if kind == "redis" else InProcessCoordinator()
    key, digest = f"k-{uuid.uuid4().hex}", "sha256:" + "e" * 64
    into = f"{digest} p/a"
    counted.ping()  # the connection's own handshake is not counted
    _CountingConnection.sent = 0
    assert coord.claim_and_locate(key, into, digest, 5, prefer="p/a") == (True, None)
    assert coord.claim_and_locate(key, into, digest, 5, prefer="p/a") == (False, None)
    coord.remember(key, digest, "p/b")
    assert coord.claim_and_locate(key, digest, digest, 5, prefer="p/a") == (True, "p/b")
    # Remembered before the claims end: a waiter woken by the release finds it.
    coord.settle(key, [into, digest], remember=(digest, "p/a"))
    assert coord.locate(key, digest, prefer="p/a") == "p/a"
    assert coord.claim_upload(key, into, 5) and coord.claim_upload(key, digest, 5)
    coord.settle(key, [into, digest])
    assert coord.claim_upload(key, digest, 5)
    if kind == "redis":
        # One round trip per step: 3 claim_and_locate, remember, 2 settle, locate, 3 claims.
        assert _CountingConnection.sent == 10, _CountingConnection.sent
    counted.close()


def test_a_pushed_copy_gets_the_next_free_slot(r):
    sem = TargetSemaphore(r, f"t-{uuid.uuid4().hex}", limit=2, ttl=30)
    a, b = sem.try_acquire(), sem.try_acquire()
    assert a and b
    assert sem.try_acquire(urgent=True, token="push-1") is None  # full: it queues
    sem.release(a)
    # A bulk copy that comes first does not take the slot the queued push waits for.
    assert sem.try_acquire() is None
    assert sem.try_acquire(urgent=True, token="push-1") == "push-1"
    sem.release(b)
    assert sem.try_acquire() is not None  # nobody queued: first come, first served


def test_a_queued_push_that_stops_trying_gives_its_place_back(r, monkeypatch):
    from common.sync import leases

    sem = TargetSemaphore(r, f"t-{uuid.uuid4().hex}", limit=1, ttl=30)
    held = sem.try_acquire()
    # Giving up (a timeout) leaves the queue at once.
    assert sem.acquire(0.1, poll=0.02, urgent=True) is None
    sem.release(held)
    held = sem.try_acquire()
    assert held
    # A push whose worker died while queued: its place lapses.
    monkeypatch.setattr(leases, "URGENT_WAIT_TTL", 1.0)
    assert sem.try_acquire(urgent=True, token="gone") is None
    sem.release(held)
    assert sem.try_acquire() is None  # still kept for the push
    deadline = time.monotonic() + 10
    while sem.try_acquire() is None:
        assert time.monotonic() < deadline, "the dead push's place never lapsed"
        time.sleep(0.05)
