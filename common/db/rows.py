"""Shapes every query module repeats: rows as dataclasses, tables, pages, inserts and updates.

Column and table names given here are Ferry's own constants, never user input;
they are still quoted as identifiers where a statement is composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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


@dataclass(frozen=True)
class Table(Generic[T]):
    """How a query module reads one kind of row: the model, the SELECT list, the FROM
    clause (a table, maybe with an alias), and the order of its lists."""

    model: type[T]
    columns: str
    source: str
    order_by: str

    def _select(self, where: str) -> str:
        return f"SELECT {self.columns} FROM {self.source} WHERE {where}"

    def one(self, conn: psycopg.Connection, where: str, params: Any = ()) -> T | None:
        """The first row ``WHERE where`` as a ``model``, or None."""
        return fetch_one(conn, self.model, self._select(where), params)

    def all(self, conn: psycopg.Connection, where: str, params: Any = ()) -> list[T]:
        """Every row ``WHERE where`` (which may end in ORDER BY or FOR UPDATE)."""
        return fetch_all(conn, self.model, self._select(where), params)

    def page(
        self,
        conn: psycopg.Connection,
        where: str,
        params: Sequence[Any],
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[T], int]:
        """One page of the rows ``WHERE where`` in list order, and their total."""
        count = fetch_value(conn, f"SELECT count(*) FROM {self.source} WHERE {where}", params) or 0
        if offset >= count:
            return [], count  # also keeps a huge page number from overflowing OFFSET
        query = f"{self._select(where)} ORDER BY {self.order_by} LIMIT %s OFFSET %s"
        return fetch_all(conn, self.model, query, (*params, limit, offset)), count


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
    """One page of a query that has no :class:`Table` of its own (joins, views)."""
    table = Table(model, columns, source, order_by=order_by)
    return table.page(conn, where, params, limit=limit, offset=offset)
