"""Deadlines and caps of registry requests (issue 16, #4): a trickle cannot hold a thread,
bodies are capped, a thread's budget bounds every request inside it, Stop cuts a stream."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from common.errors import RegistryError, RegistryUnavailable
from common.registry.blob_reader import BlobReader, Stopped
from common.registry.deadline import budget
from common.registry.retry import RetryPolicy
from common.registry.transport import SMALL_ANSWER_BYTES, Transport
from common.settings import load_settings
from tests.support.servers import HandlerServer, QuietHandler

DIGEST = "sha256:" + "a" * 64


class _Slow(QuietHandler):
    """GET /drip: 10 KB announced, one byte every 50 ms. /big: a 1 MiB error page.
    /stall: a blob body that sends 1 KiB, then nothing until released."""

    def do_GET(self) -> None:
        owner = self.owner
        if self.path == "/big":
            body = b"x" * (1024 * 1024)
            self.send_response(500 if owner.fail_big else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", "10000")
        self.end_headers()
        try:
            if "blobs" in self.path:
                self.wfile.write(b"y" * 1024)
                self.wfile.flush()
                owner.release.wait(30)
                return
            for _ in range(10000):
                self.wfile.write(b"z")
                self.wfile.flush()
                if owner.release.wait(0.05):
                    return
        except OSError:
            return


class SlowServer(HandlerServer):
    def __init__(self) -> None:
        super().__init__(_Slow)
        self.release = threading.Event()
        self.fail_big = False

    def stop(self) -> None:
        self.release.set()
        super().stop()


@pytest.fixture
def slow():
    with SlowServer() as server:
        yield server


def _transport(server, **kw) -> Transport:
    return Transport(server.url, settings=load_settings({}), retry=RetryPolicy(attempts=1), **kw)


def test_a_trickling_answer_is_cut_at_the_deadline(slow):
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="did not finish within 1 s"):
        _transport(slow, deadline=1).request("GET", "/drip", read_limit=100_000)
    assert time.monotonic() - started < 3


def test_answers_nobody_reads_are_capped(slow):
    reply = _transport(slow).request("GET", "/big")
    assert len(reply.content) == SMALL_ANSWER_BYTES
    with pytest.raises(RegistryError, match="exceeds 4096 bytes"):
        _transport(slow).request("GET", "/big", read_limit=4096)


def test_a_budget_bounds_every_request_inside_it(slow):
    transport = _transport(slow)  # its own deadline is 120 s
    started = time.monotonic()
    with budget(1.0), pytest.raises(RegistryUnavailable):
        transport.request("GET", "/drip", read_limit=100_000)
    assert time.monotonic() - started < 3


def test_a_stalled_blob_stream_is_cut_by_stop_and_by_the_stall_time(slow):
    stop = threading.Event()
    reader = BlobReader(_transport(slow))
    body = reader.open("p/app", DIGEST, stop=stop.is_set)
    chunks = body.chunks()
    assert next(chunks) == b"y" * 1024
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        next(chunks)
    assert time.monotonic() - started < 1.5
    body.close()
    # Without a stop, a stream that stops moving is cut after the stall time.
    stalled = BlobReader(_transport(slow, stall=1)).open("p/app", DIGEST)
    chunks = stalled.chunks()
    next(chunks)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="stalled: less than 64 KiB in 1 s"):
        next(chunks)
    assert time.monotonic() - started < 3


def test_the_settings_give_the_defaults():
    settings = load_settings({"FERRY_REGISTRY_DEADLINE": "7", "FERRY_REGISTRY_STALL": "3"})
    transport = Transport("http://127.0.0.1:1", settings=settings)
    assert (transport.deadline, transport.stall) == (7.0, 3.0)
    assert replace(settings).to_env()["FERRY_REGISTRY_STALL"] == "3"
