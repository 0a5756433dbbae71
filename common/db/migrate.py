"""Numbered SQL migrations, applied in order under an advisory lock.

Files are ``migrations/NNNN_name.sql``; each runs in its own transaction and is
recorded in ``ferry_migrations``. Running twice, or from two processes at once,
applies each file exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from common.db import connect

# Any constant works; it only has to be the same in every Ferry process.
ADVISORY_LOCK_KEY = 0x46455252  # "FERR"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with this Ferry, in order."""
    found = []
    for entry in resources.files("common.db").joinpath("migrations").iterdir():
        m = _NAME.fullmatch(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(found, key=lambda mig: mig.version)


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS ferry_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def applied_versions(conn: psycopg.Connection) -> set[int]:
    """Versions recorded in the database (empty when none is)."""
    row = conn.execute("SELECT to_regclass('ferry_migrations') AS t").fetchone()
    if row is None or row["t"] is None:
        return set()
    return {r["version"] for r in conn.execute("SELECT version FROM ferry_migrations")}


def pending(conn: psycopg.Connection) -> list[Migration]:
    """Migrations not yet applied."""
    done = applied_versions(conn)
    return [m for m in available() if m.version not in done]


def upgrade(url: str) -> list[Migration]:
    """Apply every pending migration; returns those this call applied."""
    applied: list[Migration] = []
    with connect(url, autocommit=True) as conn:
        # Session-level lock: a second process waits here, then finds nothing to do.
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            _ensure_table(conn)
            for mig in pending(conn):
                with conn.transaction():
                    conn.execute(mig.sql)
                    conn.execute(
                        "INSERT INTO ferry_migrations (version, name) VALUES (%s, %s)",
                        (mig.version, mig.name),
                    )
                applied.append(mig)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied
