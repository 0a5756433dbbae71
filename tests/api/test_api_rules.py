"""/api/v1/rules: validation, cross-tenant credentials, PUT/PATCH, enable/disable, listing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from common.security.crypto import SecretBox
from tests.support.api import (
    Tenant,
    assert_error,
    create_instance,
    leaks,
    make_tenant,
    raw_rows_text,
    rule_body,
)
from tests.support.registry import RegistryServer
from tests.support.tokenserver import TokenServer, User

RULE_KEYS = {
    "id",
    "name",
    "description",
    "source",
    "resource_types",
    "target",
    "override",
    "enabled",
    "schedule",
    "schedule_timezone",
    "next_run_at",
    "created_at",
    "updated_at",
}
SOURCE_KEYS = {
    "instance_id",
    "namespace",
    "repository_filter",
    "tag_filter",
    "repository_exclude",
    "tag_exclude",
    "filter_syntax",
}
TARGET_KEYS = {
    "instance_id",
    "namespace",
    "cross_tenant",
    "account_id",
    "username",
    "has_credentials",
}
ROBOT_PW = "robot-Pushes-pw"


@dataclass
class World:
    client: Any
    alice: Tenant
    bob: Tenant
    src: dict  # alice's source instance
    dst: dict  # alice's second instance (same-tenant target)
    bob_dst: dict  # bob's instance (cross-tenant target)
    bob_registry: RegistryServer

    def post(self, body: dict, tenant: Tenant | None = None):
        return self.client.post("/api/v1/rules", json=body, headers=(tenant or self.alice).headers)

    def rule(self, name: str = "sync-prod", **extra: Any) -> dict:
        extra.setdefault("target_namespace", "mirror")
        return rule_body(self.src["id"], self.dst["id"], name, **extra)

    def cross(self, name: str = "to-bob", password: str = ROBOT_PW, **target: Any) -> dict:
        return rule_body(
            self.src["id"],
            self.bob_dst["id"],
            name,
            target={
                "cross_tenant": True,
                "account_id": str(self.bob.id),
                "username": "robot",
                "password": password,
                "namespace": "team",
                **target,
            },
        )


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """Alice's and Bob's registries, shared by the module (tests leave them running)."""
    pair = (
        RegistryServer(users={"alice": "alice-pw"}).start(),
        RegistryServer(users={"bob": "bob-pw", "robot": ROBOT_PW}).start(),
    )
    yield pair
    for server in pair:
        server.cleanup()


@pytest.fixture
def world(client, settings, registries) -> World:
    alice, bob = make_tenant(settings, "alice-co"), make_tenant(settings, "bob-co")
    alice_registry, bob_registry = registries
    return World(
        client,
        alice,
        bob,
        src=create_instance(client, alice, alice_registry, "src"),
        dst=create_instance(client, alice, alice_registry, "dst"),
        bob_dst=create_instance(client, bob, bob_registry, "bob-target"),
        bob_registry=bob_registry,
    )


def test_create_returns_the_rule_with_defaults(world):
    r = world.post(world.rule())
    assert r.status_code == 201, r.get_json()
    rule = r.get_json()
    assert set(rule) == RULE_KEYS
    assert set(rule["source"]) == SOURCE_KEYS and set(rule["target"]) == TARGET_KEYS
    assert rule["name"] == "sync-prod" and rule["description"] == ""
    assert rule["source"] == {
        "instance_id": world.src["id"],
        "namespace": "project",
        "repository_filter": "",
        "tag_filter": "",
        "repository_exclude": "",
        "tag_exclude": "",
        "filter_syntax": "regex",
    }
    assert rule["resource_types"] == ["image", "chart"]
    assert rule["target"] == {
        "instance_id": world.dst["id"],
        "namespace": "mirror",
        "cross_tenant": False,
        "account_id": None,
        "username": None,
        "has_credentials": False,
    }
    assert (rule["override"], rule["enabled"], rule["schedule"], rule["next_run_at"]) == (
        False,
        True,
        None,
        None,
    )
    got = world.client.get(f"/api/v1/rules/{rule['id']}", headers=world.alice.headers)
    assert got.status_code == 200 and got.get_json() == rule


@pytest.mark.parametrize(
    "extra",
    [
        {
            "source": {
                "repository_filter": "sub1/.*",
                "tag_filter": "v[0-9]+\\..*",
                "repository_exclude": "tmp/.*",
                "tag_exclude": ".*-rc",
            }
        },
        {
            "source": {
                "filter_syntax": "glob",
                "repository_filter": "**/app-*",
                "tag_filter": "{v1,v2}.*",
                "tag_exclude": "*-debug",
            }
        },
        {"resource_types": ["chart"]},
        {"resource_types": ["image"]},
        {"schedule": "*/15 * * * *"},
        {"override": True, "enabled": False, "description": "Nightly copy"},
        {"target_namespace": "team-a"},
        {"name": "a" * 64},
        {"name": "0.rule_x-y"},
    ],
)
def test_valid_rules_are_accepted(world, extra):
    r = world.post(
        world.rule(**extra)
        if "target_namespace" in extra
        else world.rule(**extra, target_namespace="mirror")
    )
    assert r.status_code == 201, r.get_json()
    rule = r.get_json()
    if "schedule" in extra:
        assert rule["schedule"] == "*/15 * * * *" and rule["next_run_at"] is not None


def test_same_instance_is_fine_with_another_namespace(world):
    r = world.post(
        rule_body(world.src["id"], world.src["id"], "mirror-ns", target_namespace="backup")
    )
    assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"name": "Sync"}, "name", "lowercase"),
        ({"name": "-sync"}, "name", "starting with a letter or digit"),
        ({"name": "a" * 65}, "name", ""),
        ({"name": "sp ace"}, "name", ""),
        ({"name": ""}, "name", ""),
        ({"description": "d" * 1025}, "description", ""),
        ({"source": {"namespace": ""}}, "source.namespace", ""),
        ({"source": {"namespace": "a/b"}}, "source.namespace", "one path level"),
        ({"source": {"namespace": "Project"}}, "source.namespace", "lowercase"),
        ({"source": {"namespace": None}}, "source.namespace", ""),
        (
            {"source": {"repository_filter": "sub1/(.*"}},
            "source.repository_filter",
            "at position 5",
        ),
        ({"source": {"tag_filter": "v[0-9"}}, "source.tag_filter", "at position 1"),
        ({"source": {"repository_exclude": "*x"}}, "source.repository_exclude", "at position 0"),
        ({"source": {"tag_exclude": "a)"}}, "source.tag_exclude", "at position 1"),
        (
            {"source": {"filter_syntax": "glob", "tag_filter": "{v1,v2"}},
            "source.tag_filter",
            "unclosed '{' at position 0",
        ),
        (
            {"source": {"filter_syntax": "glob", "repository_filter": "a/[bc"}},
            "source.repository_filter",
            "unclosed '[' at position 2",
        ),
        ({"source": {"filter_syntax": "wildcard"}}, "source.filter_syntax", ""),
        ({"source": {"instance_id": "not-a-uuid"}}, "source.instance_id", ""),
        ({"resource_types": []}, "resource_types", ""),
        ({"resource_types": ["helm"]}, "resource_types.0", ""),
        ({"resource_types": "image"}, "resource_types", ""),
        ({"target": {"namespace": "a/b"}}, "target.namespace", ""),
        ({"target": {"namespace": "Team"}}, "target.namespace", ""),
        ({"schedule": "@daily"}, "schedule", "5 fields"),
        ({"schedule": "61 * * * *"}, "schedule", "invalid cron"),
        ({"schedule": "0 0 30 2 *"}, "schedule", "never fires"),
        ({"schedule": ""}, "schedule", "5 fields"),
        (
            {"schedule": "0 3 * * *", "schedule_timezone": "Mars/Olympus"},
            "schedule_timezone",
            "unknown time zone",
        ),
        ({"override": "false"}, "override", ""),
        ({"enabled": 0}, "enabled", ""),
        ({"surprise": True}, "surprise", "Unknown field"),
        ({"target": {"username": "robot"}}, "target.username", "only when cross_tenant"),
        ({"target": {"password": "pw"}}, "target.password", "only when cross_tenant"),
        (
            {"target": {"account_id": "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"}},
            "target.account_id",
            "only when cross_tenant",
        ),
    ],
)
def test_invalid_rules_are_422_naming_the_field(world, extra, field, fragment):
    body = assert_error(world.post(world.rule(**extra)), 422, field)
    assert fragment in " ".join(body["errors"][field])


def test_every_field_error_is_reported_at_once(world):
    body = assert_error(
        world.post(
            world.rule(name="Bad", source={"tag_filter": "(", "namespace": "A"}, schedule="x")
        ),
        422,
        "name",
        "source.tag_filter",
        "source.namespace",
        "schedule",
    )
    assert "source.tag_filter" in body["message"]


@pytest.mark.parametrize("missing", ["name", "source", "target"])
def test_required_fields(world, missing):
    body = world.rule()
    del body[missing]
    assert_error(world.post(body), 422, missing)


def test_required_nested_fields(world):
    body = world.rule()
    del body["source"]["namespace"], body["target"]["instance_id"]
    assert_error(world.post(body), 422, "source.namespace", "target.instance_id")


@pytest.mark.parametrize("target_namespace", ["", "project"])
def test_source_and_target_may_not_be_the_same_repository_set(world, target_namespace):
    body = rule_body(world.src["id"], world.src["id"], target_namespace=target_namespace)
    assert (
        "same repository set" in assert_error(world.post(body), 422, "target.namespace")["message"]
    )
    # Two instances of one registry URL are the same registry too.
    body = rule_body(world.src["id"], world.dst["id"], target_namespace=target_namespace)
    assert_error(world.post(body), 422, "target.namespace")


def test_names_are_unique_per_source_instance(world):
    assert world.post(world.rule("dup")).status_code == 201
    assert "already exists" in assert_error(world.post(world.rule("dup")), 409)["message"]
    other_source = rule_body(world.dst["id"], world.src["id"], "dup", target_namespace="m")
    assert world.post(other_source).status_code == 201


def test_unknown_or_foreign_instances_are_refused(world):
    foreign = create_instance(world.client, world.bob, world.bob_registry, "bob-src")
    body = rule_body(foreign["id"], world.dst["id"])
    assert_error(world.post(body), 422, "source.instance_id")
    # Bob's instance cannot be a same-tenant target of Alice's.
    body = rule_body(world.src["id"], world.bob_dst["id"])
    assert_error(world.post(body), 422, "target.instance_id")
    body = rule_body(world.src["id"], "00000000-0000-4000-8000-000000000000")
    assert_error(world.post(body), 422, "target.instance_id")


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
        "account_id": str(world.bob.id),
        "username": "robot",
        "has_credentials": True,
    }
    assert ROBOT_PW not in r.get_data(as_text=True)
    for path in ("/api/v1/rules", f"/api/v1/rules/{rule['id']}"):
        assert ROBOT_PW not in world.client.get(path, headers=world.alice.headers).get_data(
            as_text=True
        )
    row = db.execute(
        "SELECT target_password_enc FROM rules WHERE id = %s", (rule["id"],)
    ).fetchone()
    assert SecretBox(settings).decrypt(row["target_password_enc"]) == ROBOT_PW
    rows = raw_rows_text(settings)
    for secret in (
        ROBOT_PW,
        "alice-pw",
        "bob-pw",
        world.alice.token,
        world.bob.token,
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
        inst = create_instance(
            world.client, world.bob, reg, "bob-token-reg", username="writer", password="writer-pw"
        )
        body = rule_body(
            world.src["id"],
            inst["id"],
            "perm",
            target={
                "cross_tenant": True,
                "account_id": str(world.bob.id),
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
    body = world.cross(account_id=str(world.alice.id), instance_id=world.dst["id"])
    assert_error(world.post(body), 422, "target.account_id")


def test_bob_cannot_delete_an_instance_alices_rules_target(world):
    assert world.post(world.cross()).status_code == 201
    r = world.client.delete(f"/api/v1/instances/{world.bob_dst['id']}", headers=world.bob.headers)
    body = assert_error(r, 409)
    assert "1 rule(s) of other accounts" in body["message"] and "to-bob" not in body["message"]


def test_put_replaces_and_a_get_body_can_be_sent_back(world):
    rule = world.post(world.rule(schedule="0 3 * * *", description="x")).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    edited = {**rule, "description": "edited", "override": True}
    r = world.client.put(path, json=edited, headers=world.alice.headers)
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert got["description"] == "edited" and got["override"] is True
    assert got["next_run_at"] == rule["next_run_at"]  # schedule unchanged
    # PUT is a replacement: omitted optional fields return to their defaults.
    r = world.client.put(path, json=world.rule(), headers=world.alice.headers)
    assert r.get_json()["description"] == "" and r.get_json()["schedule"] is None
    assert_error(
        world.client.put(path, json=world.rule(name="Bad"), headers=world.alice.headers),
        422,
        "name",
    )


def test_put_keeps_the_cross_tenant_password_only_for_the_same_target_and_user(world):
    rule = world.post(world.cross()).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    r = world.client.put(path, json={**rule, "description": "kept"}, headers=world.alice.headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["target"]["has_credentials"] is True
    changed = {**rule, "target": {**rule["target"], "username": "bob"}}
    assert_error(
        world.client.put(path, json=changed, headers=world.alice.headers), 422, "target.password"
    )


def test_patch_merges_then_validates_the_whole_rule(world):
    rule = world.post(world.rule()).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    r = world.client.patch(
        path, json={"source": {"tag_filter": "v.*"}, "enabled": False}, headers=world.alice.headers
    )
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert got["source"]["tag_filter"] == "v.*" and got["enabled"] is False
    assert got["source"]["namespace"] == "project" and got["target"] == rule["target"]
    assert_error(
        world.client.patch(
            path, json={"source": {"tag_filter": "v("}}, headers=world.alice.headers
        ),
        422,
        "source.tag_filter",
    )
    # Merged validation: "a}" is a valid regex, but switching to glob makes it invalid.
    r = world.client.patch(
        path, json={"source": {"repository_filter": "a}"}}, headers=world.alice.headers
    )
    assert r.status_code == 200, r.get_json()
    r = world.client.patch(
        path, json={"source": {"filter_syntax": "glob"}}, headers=world.alice.headers
    )
    assert "unmatched '}' at position 1" in " ".join(
        assert_error(r, 422, "source.repository_filter")["errors"]["source.repository_filter"]
    )
    # ... and a target namespace equal to the source's makes the same repository set.
    assert_error(
        world.client.patch(
            path, json={"target": {"namespace": "project"}}, headers=world.alice.headers
        ),
        422,
        "target.namespace",
    )
    r = world.client.patch(path, json={}, headers=world.alice.headers)
    assert r.status_code == 200


def test_patch_rechecks_cross_tenant_credentials_only_when_they_or_the_target_change(world):
    rule = world.post(world.cross()).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    world.bob_registry.stop()
    try:
        r = world.client.patch(
            path, json={"enabled": False, "description": "no check"}, headers=world.alice.headers
        )
        assert r.status_code == 200, r.get_json()
        r = world.client.patch(
            path, json={"target": {"namespace": "elsewhere"}}, headers=world.alice.headers
        )
        body = assert_error(r, 422, "target.instance_id")
        assert "unreachable" in body["message"]
        assert str(world.bob_registry.port) not in r.get_data(as_text=True)
    finally:
        world.bob_registry.start()
    r = world.client.patch(
        path, json={"target": {"password": "bad-pw"}}, headers=world.alice.headers
    )
    assert_error(r, 422, "target.password")
    # Back to a same-tenant target: the cross-tenant fields go away with one flag.
    r = world.client.patch(
        path,
        json={"target": {"cross_tenant": False, "instance_id": world.dst["id"]}},
        headers=world.alice.headers,
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


def test_enable_and_disable(world):
    rule = world.post(world.rule(schedule="*/5 * * * *")).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    r = world.client.post(f"{path}/disable", headers=world.alice.headers)
    assert r.status_code == 200 and r.get_json()["enabled"] is False
    r = world.client.post(f"{path}/enable", headers=world.alice.headers)
    assert r.status_code == 200 and r.get_json()["enabled"] is True
    assert r.get_json()["next_run_at"] is not None


def test_delete(world):
    rule = world.post(world.rule()).get_json()
    path = f"/api/v1/rules/{rule['id']}"
    r = world.client.delete(path, headers=world.alice.headers)
    assert r.status_code == 204 and r.data == b""
    assert_error(world.client.get(path, headers=world.alice.headers), 404)
    assert_error(world.client.delete(path, headers=world.alice.headers), 404)


def test_list_filters_by_source_and_paginates(world):
    for name in ("c", "a", "b"):
        assert world.post(world.rule(name)).status_code == 201
    other = rule_body(world.dst["id"], world.src["id"], "z", target_namespace="m")
    assert world.post(other).status_code == 201
    h = world.alice.headers
    r = world.client.get("/api/v1/rules?page_size=2", headers=h)
    assert [x["name"] for x in r.get_json()] == ["a", "b"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 4
    r = world.client.get(
        f"/api/v1/rules?source_instance_id={world.src['id']}&page=2&page_size=2", headers=h
    )
    assert [x["name"] for x in r.get_json()] == ["c"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 3
    assert_error(
        world.client.get("/api/v1/rules?source_instance_id=nope", headers=h),
        422,
        "source_instance_id",
    )


def test_schedule_in_the_rule_time_zone(world):
    rule = world.post(world.rule(schedule="0 9 * * *", schedule_timezone="Asia/Tokyo")).get_json()
    assert rule["schedule_timezone"] == "Asia/Tokyo"
    # 09:00 in Tokyo is 00:00 UTC.
    assert rule["next_run_at"].endswith("T00:00:00+00:00")
    plain = world.post(world.rule(name="plain", schedule="0 9 * * *")).get_json()
    assert plain["schedule_timezone"] == "UTC" and plain["next_run_at"].endswith("T09:00:00+00:00")
