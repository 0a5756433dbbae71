"""Fixtures of the pipeline tests: a real Celery worker, a tenant's Api, two registries,
and the API on a live server for those that need a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.settings import Settings
from tests.support.api import Api, tenant_api
from tests.support.liveserver import LiveServer
from tests.support.worker import WorkerProcess


@pytest.fixture
def worker(settings: Settings) -> Iterator[WorkerProcess]:
    """A real Celery worker process on all queues, stopped after the test."""
    proc = WorkerProcess(settings).start()
    yield proc
    proc.stop()


@pytest.fixture
def api(client, settings: Settings) -> Api:
    """The tenant ``acme`` driving the API through the test client."""
    return tenant_api(client, settings, "acme")


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    """The app served on a real socket, stopped after the test."""
    with LiveServer(app) as server:
        yield server
