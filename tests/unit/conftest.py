"""Unit tests: pure code, no services. The shared fixtures that start or reach PostgreSQL,
Redis or a registry are refused here, so a test that needs one lives in its layer's folder."""

from __future__ import annotations

from typing import Any

import pytest


def _refusing(name: str) -> Any:
    """A fixture ``name`` that fails the test asking for it."""

    @pytest.fixture(name=name)
    def refused() -> None:
        pytest.fail(
            f"unit tests use no services ({name}): "
            "put this test in the folder of its layer (db, registry, api, sync, ops)"
        )

    return refused


database_url = _refusing("database_url")
redis_url = _refusing("redis_url")
settings = _refusing("settings")
registry_factory = _refusing("registry_factory")
