"""Fixtures of the registry client and copier tests: two tenants' registries, secret-free logs.

``no_secret_logs`` captures every log record at DEBUG and fails the test if a
password, token or Basic header value shows up in it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support.copyenv import SECRETS, Tenants, register_user
from tests.support.registry import RegistryServer
from tests.support.tokenserver import ALL_ISSUED


@pytest.fixture(scope="module")
def tenants() -> Iterator[Tenants]:
    """Source registry (user alice) and target registry (user bob), shared by a module."""
    register_user("alice", "alice-Secr3t-pw")
    register_user("bob", "bob-Secr3t-pw")
    src = RegistryServer(users={"alice": "alice-Secr3t-pw"}).start()
    dst = RegistryServer(users={"bob": "bob-Secr3t-pw"}).start()
    try:
        yield Tenants(src, dst)
    finally:
        src.cleanup()
        dst.cleanup()


@pytest.fixture
def no_secret_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture all logs at DEBUG; fail if any secret appears in them."""
    caplog.set_level(logging.DEBUG)
    yield
    # At teardown caplog.records holds teardown records only: read every phase.
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]
    records += caplog.records
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    leaked = sorted(s for s in SECRETS | set(ALL_ISSUED) if s and s in text)
    assert not leaked, f"secrets in logs: {[s[:6] + '...' for s in leaked]}"
