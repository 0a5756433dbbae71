"""`ferry apply -f rules.yaml` against a live API: plan, dry run, prune, passwords from env."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.support.api import ROBOT_PW, RuleWorld
from tests.support.cli import ferry
from tests.support.liveserver import LiveServer


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


def _file(tmp_path, world: RuleWorld, tag_filter: str = "v.*", with_bob: bool = True) -> str:
    rules = [
        f"""
  - name: web
    source: {{instance: src, namespace: project, tag_filter: "{tag_filter}"}}
    target: {{instance: dst, namespace: mirror}}
    resource_types: [image]
"""
    ]
    if with_bob:
        rules.append(
            f"""
  - name: to-bob
    source: {{instance: src, namespace: project}}
    target:
      instance: {world.bob_dst["id"]}
      namespace: team
      cross_tenant: true
      account_id: {world.bob.tenant.id}
      username: robot
      password_env: BOB_ROBOT_PASSWORD
    schedule: "0 3 * * *"
"""
        )
    path = tmp_path / "rules.yaml"
    path.write_text("rules:" + "".join(rules))
    return str(path)


def _plan(out) -> list[tuple[str, str, list[str]]]:
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    return [(s["action"], s["name"], s["changes"]) for s in body["plan"]]


def test_apply_creates_updates_and_prunes_rules_from_a_file(world, live, tmp_path):
    alice = world.alice
    env = {
        **os.environ,
        "FERRY_URL": live.url,
        "FERRY_TOKEN": alice.tenant.token,
        "BOB_ROBOT_PASSWORD": ROBOT_PW,
    }
    kept = alice.post("/rules", world.rule("hand-made"), expect=201)
    path = _file(tmp_path, world)

    dry = ferry("apply", "-f", path, "--dry-run", "--json", env=env)
    assert _plan(dry) == [("create", "web", []), ("create", "to-bob", [])]
    assert [r["name"] for r in alice.get("/rules")] == ["hand-made"]

    table = ferry("apply", "-f", path, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ACTION", "RULE", "SOURCE", "CHANGES"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["create", "web", "src"],
        ["create", "to-bob", "src"],
    ]
    assert ROBOT_PW not in table.stdout + table.stderr
    rules = {r["name"]: r for r in alice.get("/rules")}
    assert rules["web"]["source"]["tag_filter"] == "v.*"
    assert rules["web"]["resource_types"] == ["image"]
    assert rules["to-bob"]["target"]["has_credentials"] is True
    assert rules["to-bob"]["schedule"] == "0 3 * * *"

    again = ferry("apply", "-f", path, "--json", env=env)
    assert _plan(again) == [("unchanged", "web", []), ("unchanged", "to-bob", [])]

    path = _file(tmp_path, world, tag_filter="v2.*", with_bob=False)
    pruned = ferry("apply", "-f", path, "--prune", "--dry-run", "--json", env=env)
    assert _plan(pruned) == [
        ("update", "web", ["source.tag_filter"]),
        ("delete", "hand-made", []),
        ("delete", "to-bob", []),
    ]
    assert len(alice.get("/rules")) == 3  # a dry run changes nothing
    done = ferry("apply", "-f", path, "--prune", env=env)
    assert done.returncode == 0, done.stderr
    assert "create 0, update 1, delete 2" in done.stderr
    (web,) = alice.get("/rules")
    assert web["name"] == "web" and web["source"]["tag_filter"] == "v2.*"
    assert alice.get(f"/rules/{kept['id']}", expect=404)


def test_apply_refuses_passwords_in_the_file_and_unset_references(world, live, tmp_path):
    env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": world.alice.tenant.token}
    env.pop("BOB_ROBOT_PASSWORD", None)
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - name: x\n    source: {instance: src, namespace: project}\n"
        "    target: {instance: dst, password: hunter2}\n"
    )
    out = ferry("apply", "-f", str(path), env=env)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: rules[0].target.password: passwords are never read from the file; "
        "use password_env: NAME (an environment variable)"
    )
    unset = ferry("apply", "-f", _file(tmp_path, world), env=env)
    assert unset.returncode == 1
    assert unset.stderr.strip() == (
        "error: rules[1].target.password_env: BOB_ROBOT_PASSWORD is not set"
    )
    path.write_text("rules: [name: x\n")
    broken = ferry("apply", "-f", str(path), env=env)
    assert broken.returncode == 1 and broken.stderr.startswith("error: ")
    assert "Traceback" not in broken.stderr and len(broken.stderr.splitlines()) == 1
    path.write_text(
        "rules:\n  - name: x\n    source: {instance: nope, namespace: project}\n"
        "    target: {instance: dst}\n"
    )
    missing = ferry("apply", "-f", str(path), env=env)
    assert missing.stderr.strip() == "error: rules[0].source.instance: no instance named 'nope'"
    assert world.alice.get("/rules") == []
