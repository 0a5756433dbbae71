"""Fixtures of the database tests: a database of their own for the migrations to run on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.databases import create_database, drop_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    """The URL of a new database with no tables, dropped after the test."""
    name = f"ferry_mig_{uuid.uuid4().hex[:8]}"
    yield create_database(name)
    drop_database(name)
