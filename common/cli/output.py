"""How CLI commands print: rich tables for people, one JSON document for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

# Off a terminal, lines are never cut: scripts split them on spaces.
_PIPE_WIDTH = 10_000


def console(err: bool = False) -> Console:
    """A console on stdout (or stderr); wide enough that a table row is one line off a tty."""
    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=_PIPE_WIDTH, highlight=False, color_system=None)


def json_option(func: F) -> F:
    """``--json``: print the API's JSON instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(func)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table without borders: one header line, then one line per row."""
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for name in header:
        table.add_column(name, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console().print(table)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``name: value`` lines, names aligned."""
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}} {cell(value)}")


def size(n: int | None) -> str:
    """Bytes as B, KiB, MiB or GiB."""
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def rate(value: float | None) -> str:
    return f"{float(value) * 100:.0f}%" if value is not None else "-"
