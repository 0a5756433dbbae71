"""Migration 0006: today's tenant tokens become keys of each tenant's user ``admin``."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from common.db import keys
from common.db.migrate import available, upgrade
from common.security.tokens import hash_token, new_token


def test_existing_tokens_become_keys_of_an_admin_user(empty_database):
    with psycopg.connect(empty_database, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "CREATE TABLE ferry_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for mig in available():
            if mig.version < 6:
                conn.execute(mig.sql)
                conn.execute(
                    "INSERT INTO ferry_migrations (version, name) VALUES (%s, %s)",
                    (mig.version, mig.name),
                )
        tokens = {}
        for name in ("acme", "globex"):
            tenant = conn.execute(
                "INSERT INTO tenants (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()["id"]
            tokens[name] = (tenant, new_token(), new_token())
            for token in tokens[name][1:]:
                conn.execute(
                    "INSERT INTO api_tokens (tenant_id, token_hash) VALUES (%s, %s)",
                    (tenant, hash_token(token)),
                )

    assert 6 in [m.version for m in upgrade(empty_database)]

    with psycopg.connect(empty_database, row_factory=dict_row) as conn:
        for tenant, *its_tokens in tokens.values():
            for token in its_tokens:
                found = keys.principal_for_token(conn, hash_token(token))
                assert found is not None
                assert (found["tenant_id"], found["user_name"], found["role"]) == (
                    tenant,
                    "admin",
                    "admin",
                )
                assert list(found["grants"]) == ["*"]
        users = conn.execute("SELECT tenant_id, name FROM users ORDER BY name").fetchall()
        assert len(users) == 2 and {u["name"] for u in users} == {"admin"}
