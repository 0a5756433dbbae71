"""The layout is a contract: each layer of ``common`` imports only the layers below it.

The README's "How it is built" draws the same ladder; these tests keep the two
true together.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. A module may import its own layer and any layer listed before it.
LADDER = [
    {"settings", "errors", "observe"},
    {"security"},
    {"domain"},
    {"registry"},
    {"db"},
    {"sync"},
    {"services"},
    {"runtime"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LADDER) for name in names}
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)", re.I)


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "common" and len(parts) > 1 and parts[1] in RANK else None


def _layer_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT / "common").with_suffix("")
    return rel.parts[0] if rel.parts[0] in RANK else None


def test_every_module_of_common_belongs_to_a_layer():
    loose = [
        str(p.relative_to(ROOT))
        for p in _modules("common")
        if _layer_of(p) is None and p.name != "__init__.py"
    ]
    assert loose == []


@pytest.mark.parametrize("path", _modules("common"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path: Path):
    mine = _layer_of(path)
    if mine is None:
        return
    above = sorted(
        name for name in _imports(path) if (other := _layer(name)) and RANK[other] > RANK[mine]
    )
    assert above == [], f"{mine} must not import {above}"


def test_common_imports_neither_flask_nor_celery_and_click_only_in_cli():
    offenders = []
    for path in _modules("common"):
        roots = {name.split(".")[0] for name in _imports(path)}
        banned = {"flask", "flask_smorest", "celery", "kombu"}
        if _layer_of(path) != "cli":
            banned.add("click")
        offenders += [f"{path.relative_to(ROOT)}: {r}" for r in sorted(roots & banned)]
    assert offenders == []


def test_sql_is_written_only_under_common_db():
    outside = [
        str(p.relative_to(ROOT))
        for package in ("api", "worker", "common")
        for p in _modules(package)
        if not p.is_relative_to(ROOT / "common" / "db") and SQL.search(p.read_text())
    ]
    assert outside == []


def test_the_api_reaches_the_database_only_through_services():
    direct = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in _modules("api")
        for name in sorted(_imports(p))
        if name == "common.db" or name.startswith("common.db.")
    ]
    assert direct == []
