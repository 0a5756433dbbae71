"""`ferry tenant create`, `ferry users` and `ferry audit` as processes against a live API."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest

from tests.support.api import Api, Tenant, assert_error
from tests.support.cli import ferry
from tests.support.liveserver import LiveServer


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


def test_tenant_create_prints_admin_password_and_token_once(settings, live):
    out = ferry("tenant", "create", "acme", "--json", env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert set(created) == {"tenant_id", "token", "user", "password"}
    assert created["user"] == "admin" and len(created["password"]) >= 16
    admin = Api(live.client(), Tenant(created["tenant_id"], created["token"]))
    assert [u["name"] for u in admin.get("/users")] == ["admin"]
    text = ferry("tenant", "create", "globex", env=dict(os.environ))
    assert text.returncode == 0, text.stderr
    assert re.search(r"^password:  \S{16,}$", text.stdout, re.M)
    assert re.search(r"^API token: fry_\S+$", text.stdout, re.M)


def test_users_and_keys_from_the_command_line(settings, live):
    out = json.loads(ferry("tenant", "create", "acme", "--json", env=dict(os.environ)).stdout)
    env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": out["token"]}

    made = ferry("users", "create", "ci", "--role", "operator", env=env)
    assert made.returncode == 0, made.stderr
    token = re.search(r"^API token: (\S+)$", made.stdout, re.M).group(1)
    robot = Api(live.client(), Tenant(out["tenant_id"], token))
    assert robot.get("/rules") == []

    listed = ferry("users", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0][:3] == ["ID", "NAME", "ROLE"]
    assert [r[1:4] for r in rows[1:]] == [["admin", "admin", "*"], ["ci", "operator", "*"]]

    upd = ferry("users", "update", "ci", "--role", "viewer", env=env)
    assert upd.returncode == 0 and upd.stdout.strip() == "ci: viewer, grants *"

    keys = ferry("users", "keys", "list", "ci", env=env)
    assert keys.returncode == 0, keys.stderr
    key_id = keys.stdout.splitlines()[1].split()[0]
    pair = ferry("users", "keys", "create", "ci", "--kind", "secret_pair", "--json", env=env)
    assert pair.returncode == 0, pair.stderr
    assert json.loads(pair.stdout)["secret_id"].startswith("FRYID")
    rot = ferry("users", "keys", "rotate", "ci", key_id, "--json", env=env)
    assert rot.returncode == 0, rot.stderr
    assert_error(robot.request("GET", "/rules"), 401)
    new_token = json.loads(rot.stdout)["token"]
    assert Api(live.client(), Tenant(out["tenant_id"], new_token)).get("/rules") == []
    new_id = json.loads(rot.stdout)["id"]
    # As a viewer the same commands fail with one line naming the missing action.
    denied = ferry("users", "list", env={**env, "FERRY_TOKEN": new_token})
    assert denied.returncode == 1 and denied.stderr.startswith("error: 403 Forbidden: user:read")
    rev = ferry("users", "keys", "revoke", "ci", new_id, env=env)
    assert rev.returncode == 0 and rev.stdout.strip() == f"revoked key {new_id}"

    log = ferry("audit", "--user", "admin", env=env)
    assert log.returncode == 0, log.stderr
    actions = [line.split()[2:4] for line in log.stdout.splitlines()[1:]]
    assert actions == [
        ["revoke", "key"],
        ["rotate", "key"],
        ["create", "key"],
        ["update", "user"],
        ["create", "key"],
        ["create", "user"],
    ]

    missing = ferry("users", "delete", "nobody", env=env)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no user named 'nobody'"
    gone = ferry("users", "delete", "ci", env=env)
    assert gone.returncode == 0 and gone.stdout.strip() == "deleted user ci"
