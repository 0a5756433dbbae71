"""Incoming cross-tenant rules: the target account lists and blocks them; deleting or moving
the target instance suspends them, and a password never follows a moved URL."""

from __future__ import annotations

import base64

from common.sync import runner
from tests.support.api import ROBOT_PW, assert_error
from tests.support.faultproxy import FaultProxy

BLOCKED = "blocked by the target account"


def _plan(world, db, settings, task_id: str) -> dict:
    """Run the planning step of a task (no worker here) and read the task back over HTTP."""
    row = db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    runner.plan_task(row["id"], settings)
    return world.alice.get(f"/tasks/{task_id}")


def test_the_target_account_lists_and_blocks_incoming_rules(world, db, settings):
    rule = world.post(world.cross()).get_json()
    incoming = world.bob.get("/incoming-rules")
    assert incoming == [
        {
            "id": rule["id"],
            "source_account_id": str(world.alice.tenant.id),
            "name": "to-bob",
            "target_instance_id": world.bob_dst["id"],
            "target_namespace": "team",
            "enabled": True,
            "blocked": False,
            "last_task_status": None,
            "last_task_at": None,
        }
    ]
    text = world.bob.request("GET", "/incoming-rules").get_data(as_text=True)
    assert world.src["url"] not in text and "robot" not in text and ROBOT_PW not in text
    assert world.alice.get("/incoming-rules") == []
    # Only the target account can block; for anyone else the rule does not exist.
    assert_error(world.alice.request("POST", f"/incoming-rules/{rule['id']}/block"), 404)

    blocked = world.bob.post(f"/incoming-rules/{rule['id']}/block")
    assert blocked["blocked"] is True
    assert world.alice.get(f"/rules/{rule['id']}")["health"] == BLOCKED
    assert [r["health"] for r in world.alice.get("/rules")] == [BLOCKED]
    task = _plan(world, db, settings, world.alice.trigger(rule["id"]))
    assert (task["status"], task["message"]) == ("Failed", BLOCKED)
    seen = world.bob.get("/incoming-rules")[0]
    assert seen["last_task_status"] == "Failed" and seen["last_task_at"] is not None

    world.bob.post(f"/incoming-rules/{rule['id']}/unblock")
    assert world.alice.get(f"/rules/{rule['id']}")["health"] == "ok"
    log = world.bob.get("/audit", query_string={"object_type": "incoming-rule"})
    assert [(e["action"], e["object_id"], e["user_name"]) for e in log] == [
        ("unblock", rule["id"], "admin"),
        ("block", rule["id"], "admin"),
    ]


def test_deleting_a_target_instance_suspends_the_incoming_rules(world, db, settings):
    rule = world.post(world.cross()).get_json()
    world.bob.delete(f"/instances/{world.bob_dst['id']}")
    shown = world.alice.get(f"/rules/{rule['id']}")
    assert shown["health"].startswith("suspended: the target account deleted the target instance")
    assert shown["target"]["instance_id"] is None
    task = _plan(world, db, settings, world.alice.trigger(rule["id"]))
    assert (task["status"], task["message"]) == ("Failed", shown["health"])
    assert world.bob.get("/incoming-rules") == []


def test_a_moved_target_suspends_the_rule_and_the_password_does_not_follow(
    world, db, settings, registry_factory
):
    rule = world.post(world.cross()).get_json()
    elsewhere = registry_factory({"bob": "bob-pw", "robot": ROBOT_PW})
    robot_basic = "Basic " + base64.b64encode(f"robot:{ROBOT_PW}".encode()).decode()
    with FaultProxy(elsewhere.host) as recorder:
        # Bob points his instance elsewhere (checked with Bob's own credentials).
        world.bob.patch(f"/instances/{world.bob_dst['id']}", {"url": recorder.url})
        assert any(a and a.startswith("Basic ") for a in recorder.authorizations)
        health = world.alice.get(f"/rules/{rule['id']}")["health"]
        assert health.startswith("suspended: the target account changed")
        task = _plan(world, db, settings, world.alice.trigger(rule["id"]))
        assert (task["status"], task["message"]) == ("Failed", health)
        # Even with the suspension lifted behind Ferry's back, the binding holds.
        db.execute("UPDATE rules SET suspended_reason = NULL WHERE id = %s", (rule["id"],))
        task = _plan(world, db, settings, world.alice.trigger(rule["id"]))
        assert task["status"] == "Failed"
        assert robot_basic not in recorder.authorizations

        # Alice re-enters the password: it is checked against the new address (which the
        # recorder sees, so it would have seen any earlier use), and the rule runs again.
        again = world.alice.patch(f"/rules/{rule['id']}", {"target": {"password": ROBOT_PW}})
        assert again["health"] == "ok"
        assert robot_basic in recorder.authorizations


def test_changing_only_the_tls_setting_suspends_too(world):
    rule = world.post(world.cross()).get_json()
    world.bob.patch(f"/instances/{world.bob_dst['id']}", {"verify_tls": False})
    assert world.alice.get(f"/rules/{rule['id']}")["health"].startswith("suspended:")
    # A change that keeps the address and TLS setting does not.
    other = world.post(world.cross(name="second")).get_json()
    world.bob.patch(f"/instances/{world.bob_dst['id']}", {"region": "ap-shanghai"})
    assert world.alice.get(f"/rules/{other['id']}")["health"] == "ok"
