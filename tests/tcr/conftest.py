"""Fixtures of the TCR-compatible API tests: the API on a real socket, a tenant with a
SecretId/SecretKey pair, and the official SDK's client pointed at Ferry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tcr.v20190924 import tcr_client

from common.settings import Settings
from tests.support.api import Api, tenant_api
from tests.support.liveserver import LiveServer
from tests.support.worker import WorkerProcess


@dataclass(frozen=True)
class SecretPair:
    secret_id: str
    secret_key: str


def secret_pair(api: Api, user_id: str) -> SecretPair:
    """A new SecretId/SecretKey pair of the user (as ``api``, an admin)."""
    key = api.post(f"/users/{user_id}/keys", {"kind": "secret_pair"}, expect=201)
    return SecretPair(key["secret_id"], key["secret_key"])


def admin_id(api: Api) -> str:
    """The id of the tenant's first user, ``admin``."""
    return next(u["id"] for u in api.get("/users") if u["name"] == "admin")


def sdk_client(server: LiveServer, pair: SecretPair) -> tcr_client.TcrClient:
    """The official SDK's TCR client, over http to ``server``."""
    http = HttpProfile(protocol="http", endpoint=server.host, reqTimeout=30)
    profile = ClientProfile(httpProfile=http, signMethod="TC3-HMAC-SHA256")
    cred = credential.Credential(pair.secret_id, pair.secret_key)
    return tcr_client.TcrClient(cred, "ap-guangzhou", profile)


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    """The app served on a real socket, stopped after the test."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def acme(live: LiveServer, settings: Settings) -> Api:
    """The tenant ``acme`` driving the JSON API over the live server."""
    return tenant_api(live.client(), settings, "acme")


@pytest.fixture
def sdk(live: LiveServer, acme: Api) -> Callable[..., tcr_client.TcrClient]:
    """``sdk()``: an SDK client signed with a new pair of acme's admin (or of ``user_id``)."""

    def make(user_id: str | None = None, pair: SecretPair | None = None):
        pair = pair or secret_pair(acme, user_id or admin_id(acme))
        return sdk_client(live, pair)

    return make


@pytest.fixture
def worker(settings: Settings) -> Iterator[WorkerProcess]:
    """A real Celery worker process on all queues, stopped after the test."""
    proc = WorkerProcess(settings).start()
    yield proc
    proc.stop()
