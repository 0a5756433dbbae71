"""Migrations: recorded, idempotent, safe from two processes at once; constraints hold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from common.db.migrate import available, upgrade


def recorded(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM ferry_migrations ORDER BY 1")]


def test_upgrade_applies_every_migration_once(empty_database):
    first = upgrade(empty_database)
    assert [m.version for m in first] == [m.version for m in available()]
    assert upgrade(empty_database) == []
    assert recorded(empty_database) == [m.version for m in available()]


def test_concurrent_upgrades_apply_each_migration_once(empty_database):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: upgrade(empty_database), range(4)))
    applied = [m.version for r in results for m in r]
    assert sorted(applied) == [m.version for m in available()]
    assert recorded(empty_database) == [m.version for m in available()]


def _tenant(db, name="t1"):
    row = db.execute("INSERT INTO tenants (name) VALUES (%s) RETURNING id", (name,)).fetchone()
    return row["id"]


def _instance(db, tenant, name="reg"):
    return db.execute(
        "INSERT INTO instances (tenant_id, name, url) VALUES (%s, %s, 'http://r:5000')"
        " RETURNING id",
        (tenant, name),
    ).fetchone()["id"]


def _rule(db, tenant, source, target, name="r1", **cols):
    keys = [
        "tenant_id",
        "name",
        "source_instance_id",
        "source_namespace",
        "target_instance_id",
        *cols,
    ]
    values = [tenant, name, source, "project", target, *cols.values()]
    db.execute(
        f"INSERT INTO rules ({', '.join(keys)}) VALUES ({', '.join(['%s'] * len(keys))})", values
    )


def test_rule_name_unique_per_source_instance(db):
    t = _tenant(db)
    a, b = _instance(db, t, "a"), _instance(db, t, "b")
    _rule(db, t, a, b, "sync")
    _rule(db, t, b, a, "sync")  # same name, other source: allowed
    with pytest.raises(psycopg.errors.UniqueViolation):
        _rule(db, t, a, b, "sync")


@pytest.mark.parametrize(
    "cols",
    [
        {"resource_types": []},
        {"resource_types": ["image", "vm"]},
        {"filter_syntax": "sql"},
        {"cross_tenant": True},
    ],
)
def test_rule_checks(db, cols):
    t = _tenant(db)
    a, b = _instance(db, t, "a"), _instance(db, t, "b")
    with pytest.raises(psycopg.errors.CheckViolation):
        _rule(db, t, a, b, **cols)


def test_rule_source_must_belong_to_rule_tenant(db):
    t1, t2 = _tenant(db, "one"), _tenant(db, "two")
    foreign = _instance(db, t2)
    own = _instance(db, t1)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        _rule(db, t1, foreign, own)


def test_item_unique_per_task_and_tag_and_status_checked(db):
    t = _tenant(db)
    a = _instance(db, t)
    task = db.execute(
        "INSERT INTO sync_tasks (task_id, tenant_id, source_instance_id, trigger) "
        "VALUES ('x-1', %s, %s, 'manual') RETURNING id",
        (t, a),
    ).fetchone()["id"]
    item = (
        "INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository,"
        " target_tag, status) VALUES (%s, 'p/a', 'v1', 'q/a', 'v1', %s)"
    )
    db.execute(item, (task, "pending"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(item, (task, "pending"))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(item.replace("'v1', 'q/a'", "'v2', 'q/a'"), (task, "done"))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE sync_tasks SET status = 'Finished' WHERE id = %s", (task,))
