"""/api/v1/rules across tenants: the target account's credentials, checked and never shown."""

from __future__ import annotations

import logging

import pytest

from common.security.crypto import SecretBox
from tests.support.api import ROBOT_PW, assert_error, leaks, make_tenant, raw_rows_text, rule_body
from tests.support.registry import RegistryServer
from tests.support.tokenserver import TokenServer, User


def test_cross_tenant_rule_with_good_credentials(world, settings, db, caplog):
    caplog.set_level(logging.DEBUG)
    assert world.post(world.cross("bad-first", password="wrong-pw")).status_code == 422
    r = world.post(world.cross())
    assert r.status_code == 201, r.get_json()
    rule = r.get_json()
    assert rule["target"] == {
        "instance_id": world.bob_dst["id"],
        "namespace": "team",
        "cross_tenant": True,
        "account_id": str(world.bob.tenant.id),
        "username": "robot",
        "has_credentials": True,
    }
    assert ROBOT_PW not in r.get_data(as_text=True)
    for path in ("/rules", f"/rules/{rule['id']}"):
        assert ROBOT_PW not in world.alice.request("GET", path).get_data(as_text=True)
    row = db.execute(
        "SELECT target_password_enc FROM rules WHERE id = %s", (rule["id"],)
    ).fetchone()
    assert SecretBox(settings).decrypt(row["target_password_enc"]) == ROBOT_PW
    rows = raw_rows_text(settings)
    for secret in (
        ROBOT_PW,
        "alice-pw",
        "bob-pw",
        world.alice.tenant.token,
        world.bob.tenant.token,
        world.src["webhook_secret"],
    ):
        assert not leaks(secret, rows), secret
    assert ROBOT_PW not in caplog.text and "wrong-pw" not in caplog.text


def test_cross_tenant_rule_with_bad_credentials_is_422_with_the_registry_reason(world):
    r = world.post(world.cross(password="wrong-pw"))
    body = assert_error(r, 422, "target.password")
    assert body["message"].startswith(
        f"credentials rejected by target instance {world.bob_dst['id']}"
    )
    assert "401" in body["message"]
    text = r.get_data(as_text=True)
    assert "wrong-pw" not in text
    # Nothing about Bob's registry beyond what the caller sent: not even its address.
    assert str(world.bob_registry.port) not in text


def test_cross_tenant_push_permission_is_checked_on_the_target_namespace(world, settings):
    tokens = TokenServer(
        users={
            "reader": User("reader-pw", [("team/*", {"pull"})]),
            "writer": User("writer-pw", [("team/*", {"pull", "push"})]),
        }
    ).start()
    reg = RegistryServer(extra_config=tokens.registry_config()).start()
    try:
        inst = world.bob.create_instance(
            reg, "bob-token-reg", username="writer", password="writer-pw"
        )
        body = rule_body(
            world.src["id"],
            inst["id"],
            "perm",
            target={
                "cross_tenant": True,
                "account_id": str(world.bob.tenant.id),
                "username": "reader",
                "password": "reader-pw",
                "namespace": "team",
            },
        )
        r = world.post(body)
        msg = assert_error(r, 422, "target.password")["message"]
        assert "credentials rejected by target instance" in msg and "push" in msg
        body["target"].update(username="writer", password="writer-pw")
        assert world.post(body).status_code == 201
        body["name"], body["target"]["namespace"] = "perm-2", "other"
        assert_error(world.post(body), 422, "target.password")
    finally:
        reg.cleanup()
        tokens.stop()


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"account_id": None}, "target.account_id"),
        ({"username": None}, "target.username"),
        ({"password": None}, "target.password"),
        ({"account_id": "00000000-0000-4000-8000-000000000000"}, "target.instance_id"),
    ],
)
def test_cross_tenant_requires_account_and_credentials(world, target, field):
    assert_error(world.post(world.cross(**target)), 422, field)


def test_cross_tenant_instance_must_belong_to_the_named_account(world, settings, registry):
    carol = make_tenant(settings, "carol-co")
    r = world.post(world.cross(account_id=str(carol.id)))
    body = assert_error(r, 422, "target.instance_id")
    assert "bob" not in r.get_data(as_text=True)
    # Alice's own instance named as cross-tenant: refused, use a same-tenant rule.
    body = world.cross(account_id=str(world.alice.tenant.id), instance_id=world.dst["id"])
    assert_error(world.post(body), 422, "target.account_id")


def test_bob_may_delete_an_instance_alices_rules_target(world):
    # Issue 11: deletion is no longer refused; Alice's rule is suspended instead
    # (tests/api/test_api_incoming.py).
    assert world.post(world.cross()).status_code == 201
    assert world.bob.request("DELETE", f"/instances/{world.bob_dst['id']}").status_code == 204


def test_put_keeps_the_cross_tenant_password_only_for_the_same_target_and_user(world):
    rule = world.post(world.cross()).get_json()
    path = f"/rules/{rule['id']}"
    r = world.alice.request("PUT", path, json={**rule, "description": "kept"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["target"]["has_credentials"] is True
    changed = {**rule, "target": {**rule["target"], "username": "bob"}}
    assert_error(world.alice.request("PUT", path, json=changed), 422, "target.password")


def test_patch_rechecks_cross_tenant_credentials_only_when_they_or_the_target_change(world):
    rule = world.post(world.cross()).get_json()
    path = f"/rules/{rule['id']}"
    world.bob_registry.stop()
    try:
        r = world.alice.request("PATCH", path, json={"enabled": False, "description": "no check"})
        assert r.status_code == 200, r.get_json()
        r = world.alice.request("PATCH", path, json={"target": {"namespace": "elsewhere"}})
        body = assert_error(r, 422, "target.instance_id")
        assert "unreachable" in body["message"]
        assert str(world.bob_registry.port) not in r.get_data(as_text=True)
    finally:
        world.bob_registry.start()
    r = world.alice.request("PATCH", path, json={"target": {"password": "bad-pw"}})
    assert_error(r, 422, "target.password")
    # Back to a same-tenant target: the cross-tenant fields go away with one flag.
    r = world.alice.request(
        "PATCH", path, json={"target": {"cross_tenant": False, "instance_id": world.dst["id"]}}
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["target"] == {
        "instance_id": world.dst["id"],
        "namespace": "team",
        "cross_tenant": False,
        "account_id": None,
        "username": None,
        "has_credentials": False,
    }
