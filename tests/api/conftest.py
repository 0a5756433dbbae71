"""Fixtures of the HTTP API tests: tenants' Api objects, the registries rules point at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from common.settings import Settings
from tests.support.api import ROBOT_PW, Api, RuleWorld, tenant_api
from tests.support.registry import RegistryServer, free_port


@pytest.fixture
def unreachable_settings(settings: Settings) -> Settings:
    """Settings whose database nothing listens on."""
    return replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")


@pytest.fixture
def alice(client, settings: Settings) -> Api:
    """The tenant ``alice-co`` driving the API through the test client."""
    return tenant_api(client, settings, "alice-co")


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """Alice's and Bob's registries, shared by the module (tests leave them running)."""
    pair = (
        RegistryServer(users={"alice": "alice-pw"}).start(),
        RegistryServer(users={"bob": "bob-pw", "robot": ROBOT_PW}).start(),
    )
    yield pair
    for server in pair:
        server.cleanup()


@pytest.fixture
def world(client, settings: Settings, registries) -> RuleWorld:
    """Alice (two instances) and Bob (one instance), for rule tests."""
    alice, bob = tenant_api(client, settings, "alice-co"), tenant_api(client, settings, "bob-co")
    alice_registry, bob_registry = registries
    return RuleWorld(
        alice,
        bob,
        src=alice.create_instance(alice_registry, "src"),
        dst=alice.create_instance(alice_registry, "dst"),
        bob_dst=bob.create_instance(bob_registry, "bob-target"),
        bob_registry=bob_registry,
    )
