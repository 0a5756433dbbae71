"""Statements about the server itself: is it answering, does Ferry's database exist."""

from __future__ import annotations

import psycopg
from psycopg import sql

from common.db.rows import fetch_value


def ping(conn: psycopg.Connection) -> None:
    """Return when the server answers a query on ``conn``; psycopg raises otherwise."""
    conn.execute("SELECT 1")


def ensure_database(conn: psycopg.Connection, name: str) -> bool:
    """Create database ``name`` unless it exists; True when this call created it.

    ``conn`` must be in autocommit mode: CREATE DATABASE cannot run in a transaction.
    """
    if fetch_value(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)) is not None:
        return False
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def set_password(conn: psycopg.Connection, user: str, password: str) -> None:
    """Give ``user`` a password (stored as scram-sha-256, the server's default)."""
    conn.execute(
        sql.SQL("ALTER USER {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
    )


def reload_configuration(conn: psycopg.Connection) -> None:
    """Make the server re-read its configuration files (pg_hba.conf included)."""
    conn.execute("SELECT pg_reload_conf()")
