"""Throwaway PostgreSQL databases on the test server, created and dropped by name."""

from __future__ import annotations

import os

import psycopg

# Where the test server is; CI and developer machines run it locally.
ADMIN_URL = os.environ.get("FERRY_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_database(name: str) -> str:
    """Create the empty database ``name``; its URL."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    """Drop the database ``name`` (if it exists), ending its sessions."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
