"""Shapes every query module repeats: rows as dataclasses, pages, inserts and updates.

Column and table names given here are Ferry's own constants, never user input;
they are still quoted as identifiers where a statement is composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row, scalar_row, tuple_row

T = TypeVar("T")
Query = str | sql.Composable


def fetch_one(conn: psycopg.Connection, model: type[T], query: Query, params: Any = ()) -> T | None:
    """The first row of ``query`` as a ``model``, or None."""
    with conn.cursor(row_factory=class_row(model)) as cur:
        return cur.execute(query, params).fetchone()


def fetch_all(conn: psycopg.Connection, model: type[T], query: Query, params: Any = ()) -> list[T]:
    """Every row of ``query`` as ``model`` objects."""
    with conn.cursor(row_factory=class_row(model)) as cur:
        return cur.execute(query, params).fetchall()


def fetch_dict(conn: psycopg.Connection, query: Query, params: Any = ()) -> dict[str, Any] | None:
    """The first row of ``query`` as a dict by column name, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def fetch_dicts(conn: psycopg.Connection, query: Query, params: Any = ()) -> list[dict[str, Any]]:
    """Every row of ``query`` as a dict by column name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def fetch_value(conn: psycopg.Connection, query: Query, params: Any = ()) -> Any | None:
    """The first column of the first row of ``query``, or None when there is no row."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(query, params).fetchone()


def fetch_values(conn: psycopg.Connection, query: Query, params: Any = ()) -> list[Any]:
    """The first column of every row of ``query``."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(query, params).fetchall()


def fetch_tuples(conn: psycopg.Connection, query: Query, params: Any = ()) -> list[tuple[Any, ...]]:
    """Every row of ``query`` as a plain tuple."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(query, params).fetchall()


def fetch_page(
    conn: psycopg.Connection,
    model: type[T],
    *,
    columns: str,
    source: str,
    where: str,
    params: Sequence[Any],
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[list[T], int]:
    """One page of ``SELECT columns FROM source WHERE where ORDER BY order_by`` and the total."""
    count = fetch_value(conn, f"SELECT count(*) FROM {source} WHERE {where}", params) or 0
    if offset >= count:
        return [], count  # also keeps a huge page number from overflowing OFFSET
    rows = fetch_all(
        conn,
        model,
        f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {order_by} LIMIT %s OFFSET %s",
        (*params, limit, offset),
    )
    return rows, count


def insert_sql(table: str, columns: Sequence[str], returning: str) -> sql.Composed:
    """``INSERT INTO table (columns) VALUES (%s, ...) RETURNING returning``."""
    return sql.SQL("INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING {ret}").format(
        table=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        ret=sql.SQL(returning),
    )


def update_sql(table: str, columns: Sequence[str], where: str, returning: str) -> sql.Composed:
    """``UPDATE table SET col = %s, ..., updated_at = now() WHERE where RETURNING returning``.

    The placeholders of the SET list come first, then those of ``where``.
    """
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return sql.SQL("UPDATE {table} SET {a}, updated_at = now() WHERE {w} RETURNING {ret}").format(
        table=sql.Identifier(table), a=assignments, w=sql.SQL(where), ret=sql.SQL(returning)
    )
