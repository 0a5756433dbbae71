"""/api/v1/instances after creation: PATCH, names, webhook secrets, deletion, listing."""

from __future__ import annotations

import json

from common.security.tokens import matches
from tests.support.api import assert_error, instance_body, rule_body, tenant_api
from tests.support.registry import free_port


def test_concurrency_limit_is_set_and_changed(alice, registry):
    created = alice.create_instance(registry, "limited", max_concurrent_copies=2)
    assert created["max_concurrent_copies"] == 2
    r = alice.request("PATCH", f"/instances/{created['id']}", json={"max_concurrent_copies": 3})
    assert r.status_code == 200 and r.get_json()["max_concurrent_copies"] == 3
    other = alice.create_instance(registry, "default")
    assert other["max_concurrent_copies"] == 8


def test_duplicate_name_is_409(alice, registry):
    alice.create_instance(registry, "dup")
    r = alice.request("POST", "/instances", json=instance_body(registry, "dup"))
    assert "already exists" in assert_error(r, 409)["message"]


def test_same_name_in_two_tenants_is_fine(client, settings, alice, registry):
    bob = tenant_api(client, settings, "bob-co")
    alice.create_instance(registry, "shared-name")
    bob.create_instance(registry, "shared-name")


def test_patch_rechecks_only_when_url_tls_or_credentials_change(alice, registry_factory, db):
    reg = registry_factory({"alice": "alice-pw", "bob": "bob-pw"})
    inst = alice.create_instance(reg, "p")
    path = f"/instances/{inst['id']}"

    r = alice.request("PATCH", path, json={"region": "eu", "name": "p2", "kind": "harbor"})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["region"], r.get_json()["name"], r.get_json()["kind"]) == (
        "eu",
        "p2",
        "harbor",
    )

    r = alice.request("PATCH", path, json={"username": "bob", "password": "nope"})
    assert_error(r, 422, "password")
    r = alice.request("PATCH", path, json={"username": "bob"})
    assert_error(r, 422, "password")
    r = alice.request("PATCH", path, json={"username": "bob", "password": "bob-pw"})
    assert r.status_code == 200 and r.get_json()["username"] == "bob"

    # A registry that is down makes a URL change fail, but not a rename.
    r = alice.request("PATCH", path, json={"url": f"http://127.0.0.1:{free_port()}"})
    assert_error(r, 422, "url")
    reg.stop()
    r = alice.request("PATCH", path, json={"region": "us"})
    assert r.status_code == 200
    r = alice.request("PATCH", path, json={"verify_tls": False})
    assert_error(r, 422, "url")

    # Clearing credentials (both null) is a change too, checked against the registry.
    reg.start()
    r = alice.request("PATCH", path, json={"username": None, "password": None})
    assert_error(r, 422, "username")
    assert alice.request("GET", path).get_json()["has_credentials"] is True


def test_patch_name_collision_is_409(alice, registry):
    alice.create_instance(registry, "one")
    two = alice.create_instance(registry, "two")
    r = alice.request("PATCH", f"/instances/{two['id']}", json={"name": "one"})
    assert_error(r, 409)


def test_webhook_secret_rotation_keeps_the_previous_one_until_the_next(alice, registry, db):
    inst = alice.create_instance(registry)
    first = inst["webhook_secret"]
    path = f"/instances/{inst['id']}/webhook-secret"

    r = alice.request("POST", path)
    assert r.status_code == 200
    second = r.get_json()["webhook_secret"]
    assert r.get_json()["id"] == inst["id"]
    row = db.execute("SELECT * FROM instances WHERE id = %s", (inst["id"],)).fetchone()
    stored = (row["webhook_secret_hash"], row["webhook_secret_prev_hash"])
    assert matches(second, *stored) and matches(first, *stored)

    third = alice.request("POST", path).get_json()["webhook_secret"]
    row = db.execute("SELECT * FROM instances WHERE id = %s", (inst["id"],)).fetchone()
    stored = (row["webhook_secret_hash"], row["webhook_secret_prev_hash"])
    assert matches(third, *stored) and matches(second, *stored)
    assert not matches(first, *stored)
    assert len({first, second, third}) == 3


def test_delete_is_409_naming_the_rules_then_204(alice, registry):
    src = alice.create_instance(registry, "src")
    dst = alice.create_instance(registry, "dst")
    for name in ("r-one", "r-two"):
        r = alice.request(
            "POST", "/rules", json=rule_body(src["id"], dst["id"], name, target_namespace="mirror")
        )
        assert r.status_code == 201, r.get_json()
    for inst in (src, dst):
        r = alice.request("DELETE", f"/instances/{inst['id']}")
        body = assert_error(r, 409)
        assert "'r-one'" in body["message"] and "'r-two'" in body["message"]
    rules = alice.request("GET", "/rules").get_json()
    for rule in rules:
        assert alice.request("DELETE", f"/rules/{rule['id']}").status_code == 204
    r = alice.request("DELETE", f"/instances/{src['id']}")
    assert r.status_code == 204 and r.data == b""
    assert alice.request("GET", f"/instances/{src['id']}").status_code == 404
    assert alice.request("DELETE", f"/instances/{src['id']}").status_code == 404


def test_list_is_paginated_by_name(alice, registry):
    for name in ("c", "a", "b"):
        alice.create_instance(registry, name)
    r = alice.request("GET", "/instances?page=1&page_size=2")
    assert r.status_code == 200
    assert [i["name"] for i in r.get_json()] == ["a", "b"]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["total_pages"] == 2 and meta["next_page"] == 2
    r = alice.request("GET", "/instances?page=2&page_size=2")
    assert [i["name"] for i in r.get_json()] == ["c"]
    r = alice.request("GET", "/instances?page=9")
    assert r.status_code == 200 and r.get_json() == []
    for bad in ("page=0", "page_size=0", "page_size=201", "page=x"):
        assert_error(alice.request("GET", f"/instances?{bad}"), 422)
