"""Migration 0008: every rule has a per-tenant number, given once and never reused."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from common.db.migrate import available, upgrade


def _upgrade_to(conn: psycopg.Connection, last: int) -> None:
    conn.execute(
        "CREATE TABLE ferry_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for mig in available():
        if mig.version <= last:
            conn.execute(mig.sql)
            conn.execute(
                "INSERT INTO ferry_migrations (version, name) VALUES (%s, %s)",
                (mig.version, mig.name),
            )


def _rule(conn: psycopg.Connection, tenant, instance, name: str) -> dict:
    return conn.execute(
        "INSERT INTO rules (tenant_id, name, source_instance_id, source_namespace, "
        "target_instance_id) VALUES (%s, %s, %s, 'ns', %s) RETURNING *",
        (tenant, name, instance, instance),
    ).fetchone()


def _tenant_with_instance(conn: psycopg.Connection, name: str) -> tuple:
    tenant = conn.execute(
        "INSERT INTO tenants (name) VALUES (%s) RETURNING id", (name,)
    ).fetchone()["id"]
    instance = conn.execute(
        "INSERT INTO instances (tenant_id, name, url) VALUES (%s, 'reg', 'http://r:5000') "
        "RETURNING id",
        (tenant,),
    ).fetchone()["id"]
    return tenant, instance


def test_existing_rules_are_numbered_and_new_ones_follow(empty_database):
    with psycopg.connect(empty_database, autocommit=True, row_factory=dict_row) as conn:
        _upgrade_to(conn, 7)
        acme = _tenant_with_instance(conn, "acme")
        globex = _tenant_with_instance(conn, "globex")
        old = [_rule(conn, *acme, name)["id"] for name in ("a", "b")]
        _rule(conn, *globex, "g")

    assert [m.version for m in upgrade(empty_database)] == [8]

    with psycopg.connect(empty_database, autocommit=True, row_factory=dict_row) as conn:
        numbers = conn.execute(
            "SELECT id, number FROM rules WHERE tenant_id = %s", (acme[0],)
        ).fetchall()
        assert {r["id"]: r["number"] for r in numbers} == {old[0]: 1, old[1]: 2}
        conn.execute("DELETE FROM rules WHERE id = %s", (old[1],))
        assert _rule(conn, *acme, "c")["number"] == 3  # 2 is never given again
        assert _rule(conn, *globex, "h")["number"] == 2
        conn.execute("UPDATE rules SET number = 99, name = 'a2' WHERE id = %s", (old[0],))
        row = conn.execute("SELECT name, number FROM rules WHERE id = %s", (old[0],)).fetchone()
        assert (row["name"], row["number"]) == ("a2", 1)
