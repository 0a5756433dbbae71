"""Shared fixtures: real PostgreSQL, real Redis, real registries, real workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.registry import RegistryServer


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., RegistryServer]]:
    """Start docker-registry servers on free ports; all are stopped after the test."""
    started: list[RegistryServer] = []

    def start(users: dict[str, str] | None = None, **extra_config) -> RegistryServer:
        server = RegistryServer(users=users or {}, extra_config=extra_config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def registry(registry_factory) -> RegistryServer:
    """One registry with user ``alice`` / ``alice-pw``."""
    return registry_factory({"alice": "alice-pw"})
