"""A Ferry spread over processes, as separate hosts would run it: two APIs, a push worker,
two plan+copy workers and a beat, sharing the test session's PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.settings import Settings, child_environment
from tests.support.api import Api, make_tenant
from tests.support.liveserver import HttpClient
from tests.support.registry import free_port
from tests.support.roles import RoleProcess, http_ready, log_ready

START_TIMEOUT = 90.0
COPY_WORKERS = ("copy-a", "copy-b")


@dataclass
class Cluster:
    """The processes, by name, and one tenant's Api over each API process."""

    roles: dict[str, RoleProcess]
    apis: list[Api]
    env: dict[str, str]

    def hostname(self, worker: str) -> str:
        """The Celery hostname the worker records on the items it copies."""
        return f"{worker}@scale"

    def start(self, *procs: RoleProcess) -> None:
        """Start more processes and wait until each is ready."""
        for proc in procs:
            self.roles[proc.name] = proc.start()
        deadline = time.monotonic() + START_TIMEOUT
        for proc in procs:
            proc.wait_ready(deadline)


def role_env(settings: Settings, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of one role process: the session's services, its own data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings)
    env.update(FERRY_DATA_DIR=str(data_dir), FERRY_LOG_LEVEL="INFO", **extra)
    return env


def worker_role(cluster_env: dict[str, str], name: str, queues: str) -> RoleProcess:
    """``ferry worker`` on ``queues`` as ``<name>@scale``."""
    args = ["worker", "--queues", queues, "--concurrency", "4", "--hostname", f"{name}@scale"]
    return RoleProcess(name, args, cluster_env, log_ready(" ready."))


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path) -> Iterator[Cluster]:
    """Every role as its own process, started together and stopped after the test."""
    env = role_env(settings, tmp_path / "shared")
    roles: list[RoleProcess] = []
    for i in range(2):
        port = free_port()
        api_env = role_env(settings, tmp_path / f"api{i}", FERRY_API_BIND=f"127.0.0.1:{port}")
        roles.append(
            RoleProcess(f"api{i}", ["api"], api_env, http_ready(f"http://127.0.0.1:{port}/readyz"))
        )
    roles.append(worker_role(env, "push", "push"))
    roles += [worker_role(env, name, "plan,copy") for name in COPY_WORKERS]
    beat_env = role_env(settings, tmp_path / "beat")
    roles.append(RoleProcess("beat", ["beat"], beat_env, log_ready("beat: Starting")))
    tenant = make_tenant(settings, "scale")
    apis = [
        Api(HttpClient(f"http://{proc.env['FERRY_API_BIND']}"), tenant)
        for proc in roles
        if proc.name.startswith("api")
    ]
    cluster = Cluster({}, apis, env)
    try:
        cluster.start(*roles)
        yield cluster
    finally:
        # All at once: each role takes a few seconds to stop gracefully.
        for proc in cluster.roles.values():
            proc.terminate()
        for proc in cluster.roles.values():
            proc.stop()
