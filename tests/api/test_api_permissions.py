"""Roles and grants on every route: allowed, 403 naming the action and object, or 404."""

from __future__ import annotations

import re

import pytest

from tests.support.api import API, Api, assert_error, instance_body, rule_body, tenant_api

ROLES = ("viewer", "operator", "admin")
V, OP, A = "viewer", "operator", "admin"
HOOK = "json://127.0.0.1:9/ferry"  # never sent to: the tests here run no worker
# (method, path) -> (action, least role allowed). Written out, not derived from the code.
TABLE = {
    ("get", "/instances"): ("instance:read", V),
    ("post", "/instances"): ("instance:create", A),
    ("get", "/instances/{instance_id}"): ("instance:read", V),
    ("patch", "/instances/{instance_id}"): ("instance:update", OP),
    ("delete", "/instances/{instance_id}"): ("instance:delete", A),
    ("post", "/instances/{instance_id}/webhook-secret"): ("instance:update", OP),
    ("get", "/rules"): ("rule:read", V),
    ("post", "/rules"): ("rule:create", OP),
    ("get", "/rules/{rule_id}"): ("rule:read", V),
    ("put", "/rules/{rule_id}"): ("rule:update", OP),
    ("patch", "/rules/{rule_id}"): ("rule:update", OP),
    ("delete", "/rules/{rule_id}"): ("rule:delete", A),
    ("post", "/rules/{rule_id}/enable"): ("rule:update", OP),
    ("post", "/rules/{rule_id}/disable"): ("rule:update", OP),
    ("post", "/rules/{rule_id}/trigger"): ("rule:trigger", OP),
    ("get", "/rules/{rule_id}/tasks"): ("task:read", V),
    ("get", "/rules/{rule_id}/preview"): ("rule:read", V),
    ("get", "/tasks/{task_id}"): ("task:read", V),
    ("get", "/tasks/{task_id}/items"): ("task:read", V),
    ("post", "/tasks/{task_id}/stop"): ("task:stop", OP),
    ("post", "/tasks/{task_id}/retry"): ("task:retry", OP),
    ("get", "/users"): ("user:read", A),
    ("post", "/users"): ("user:manage", A),
    ("get", "/users/{user_id}"): ("user:read", A),
    ("patch", "/users/{user_id}"): ("user:manage", A),
    ("delete", "/users/{user_id}"): ("user:manage", A),
    ("get", "/users/{user_id}/keys"): ("key:manage", A),
    ("post", "/users/{user_id}/keys"): ("key:manage", A),
    ("delete", "/users/{user_id}/keys/{key_id}"): ("key:manage", A),
    ("post", "/users/{user_id}/keys/{key_id}/rotate"): ("key:manage", A),
    ("get", "/audit"): ("audit:read", A),
    ("get", "/incoming-rules"): ("incoming:read", V),
    ("post", "/incoming-rules/{rule_id}/block"): ("incoming:block", A),
    ("post", "/incoming-rules/{rule_id}/unblock"): ("incoming:block", A),
    ("post", "/rules/{rule_id}/drift"): ("rule:check", OP),
    ("get", "/drift/{report_id}"): ("rule:read", V),
    ("post", "/rules/{rule_id}/check"): ("rule:check", OP),
    ("get", "/notifications"): ("notification:read", V),
    ("post", "/notifications"): ("notification:manage", OP),
    ("get", "/notifications/{notification_id}"): ("notification:read", V),
    ("patch", "/notifications/{notification_id}"): ("notification:manage", OP),
    ("delete", "/notifications/{notification_id}"): ("notification:manage", OP),
    ("get", "/notifications/{notification_id}/deliveries"): ("notification:read", V),
    ("post", "/notifications/{notification_id}/test"): ("notification:manage", OP),
}
# Destructive operations run last, in this order, so that every other one finds its objects.
LAST = [
    ("delete", "/notifications/{notification_id}"),
    ("delete", "/users/{user_id}/keys/{key_id}"),
    ("delete", "/users/{user_id}"),
    ("delete", "/instances/{instance_id}"),
    ("delete", "/rules/{rule_id}"),
]


def _spec_operations(client) -> dict[tuple[str, str], dict]:
    spec = client.get("/api/openapi.json").get_json()
    ops = {}
    for path, item in spec["paths"].items():
        if not path.startswith(API + "/") or path.startswith(API + "/webhooks/"):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                ops[(method, path.removeprefix(API))] = item[method]
    return ops


def test_the_table_covers_every_route_and_matches_the_document(client):
    ops = _spec_operations(client)
    assert set(ops) == set(TABLE)
    for key, op in ops.items():
        assert op["x-ferry-action"] == TABLE[key][0], key
        assert "403" in op["responses"], key


class Scene:
    """Alice's account: two instances, a rule between them, a task, a spare user with keys,
    and Carol's rule writing into Alice's ``dst``."""

    def __init__(self, owner: Api, registry, carol: Api) -> None:
        self.owner, self.registry = owner, registry
        self.src = owner.instance("src", registry)
        self.dst = owner.instance("dst", registry)
        self.rule = owner.rule("sync", self.src, self.dst, target_namespace="mirror")
        self.task = owner.trigger(self.rule)
        self.user = owner.post("/users", {"name": "spare", "role": "viewer"})["id"]
        self.keys = [owner.post(f"/users/{self.user}/keys", {})["id"] for _ in range(2)]
        target = {
            "cross_tenant": True,
            "account_id": str(owner.tenant.id),
            "username": "alice",
            "password": "alice-pw",
        }
        carol_src = carol.instance("carol-src", registry)
        self.incoming = carol.rule("into-alice", carol_src, self.dst, **target)
        self.report = owner.post(f"/rules/{self.rule}/drift", {}, expect=202)["id"]
        self.notification = owner.post("/notifications", {"name": "n", "urls": [HOOK]})["id"]

    def url(self, method: str, path: str) -> str:
        ids = {
            "instance_id": self.src,
            "rule_id": self.incoming if path.startswith("/incoming-rules/") else self.rule,
            "task_id": self.task,
            "user_id": self.user,
            "key_id": self.keys[0] if path.endswith("/rotate") else self.keys[1],
            "report_id": self.report,
            "notification_id": self.notification,
        }
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)

    def body(self, method: str, path: str, role: str) -> dict | None:
        bodies = {
            ("post", "/instances"): instance_body(self.registry, f"new-{role}"),
            ("patch", "/instances/{instance_id}"): {"region": "ap-guangzhou"},
            ("post", "/rules"): rule_body(self.src, self.dst, f"new-{role}", target_namespace="n"),
            ("put", "/rules/{rule_id}"): rule_body(
                self.src, self.dst, "sync", target_namespace="mirror"
            ),
            ("patch", "/rules/{rule_id}"): {"description": "changed"},
            ("post", "/users"): {"name": f"new-{role}", "role": "viewer"},
            ("patch", "/users/{user_id}"): {"role": "operator"},
            ("post", "/users/{user_id}/keys"): {},
            ("post", "/notifications"): {"name": f"new-{role}", "urls": [HOOK]},
            ("patch", "/notifications/{notification_id}"): {"on_task": "always"},
        }
        return bodies.get((method, path), {} if method in ("post", "put", "patch") else None)


def _ordered():
    return [k for k in TABLE if k not in LAST] + LAST


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_or_refused_with_403_on_every_route(client, settings, registry, role):
    owner = tenant_api(client, settings, "alice-co")
    scene = Scene(owner, registry, tenant_api(client, settings, "carol-co"))
    caller = owner.add_user(f"the-{role}", role) if role != "admin" else owner
    for method, path in _ordered():
        action, least = TABLE[(method, path)]
        r = caller.request(
            method.upper(), scene.url(method, path), json=scene.body(method, path, role)
        )
        if ROLES.index(role) >= ROLES.index(least):
            assert r.status_code not in (401, 403, 404) and r.status_code < 500, (
                role,
                method,
                path,
                r.status_code,
                r.get_json(silent=True),
            )
        else:
            body = assert_error(r, 403)
            assert body["errors"]["action"] == [action], (method, path, body)
            assert action in body["message"] and body["errors"]["object"], body


@pytest.mark.parametrize("role", ROLES)
def test_another_accounts_objects_are_404_for_every_role(client, settings, registry, role):
    carol = tenant_api(client, settings, "carol-co")
    scene = Scene(tenant_api(client, settings, "alice-co"), registry, carol)
    bob_admin = tenant_api(client, settings, "bob-co")
    bob = bob_admin.add_user(f"bob-{role}", role) if role != "admin" else bob_admin
    swept = 0
    for method, path in _ordered():
        if "{" not in path:
            continue
        r = bob.request(method.upper(), scene.url(method, path), json=scene.body(method, path, A))
        assert_error(r, 404)
        swept += 1
    assert swept >= 20


def test_grants_limited_to_one_instance(client, settings, registry):
    owner = tenant_api(client, settings, "alice-co")
    src, dst = owner.instance("src", registry), owner.instance("dst", registry)
    both = owner.rule("src-to-dst", src, dst, target_namespace="mirror")
    inside = owner.rule("src-to-src", src, src, target_namespace="mirror")
    op = owner.add_user("ci", "operator", grants=[src])

    assert [i["id"] for i in op.get("/instances")] == [src]
    assert [r["id"] for r in op.get("/rules")] == [inside]
    assert op.get(f"/instances/{src}")["id"] == src
    body = assert_error(op.request("GET", f"/instances/{dst}"), 403)
    assert body["errors"] == {"action": ["instance:read"], "object": [f"instance {dst}"]}
    assert dst in body["message"]

    # A rule needs both its source and its (own) target.
    body = assert_error(op.request("POST", f"/rules/{both}/trigger"), 403)
    assert body["errors"]["action"] == ["rule:trigger"] and dst in body["message"]
    assert_error(op.request("GET", f"/rules/{both}"), 403)
    op.trigger(inside)
    created = op.request("POST", "/rules", json=rule_body(src, dst, "x", target_namespace="y"))
    assert_error(created, 403)
    created = op.request("POST", "/rules", json=rule_body(src, src, "x", target_namespace="y"))
    assert created.status_code == 201
    # Moving a granted rule onto an instance outside the grants is refused too.
    moved = op.request("PATCH", f"/rules/{inside}", json={"target": {"instance_id": dst}})
    assert_error(moved, 403)
    assert op.patch(f"/instances/{src}", {"region": "r1"})["region"] == "r1"
    assert_error(op.request("PATCH", f"/instances/{dst}", json={"region": "r1"}), 403)


def test_grants_must_name_instances_of_the_account_and_admins_have_all(client, settings, registry):
    owner = tenant_api(client, settings, "alice-co")
    other = tenant_api(client, settings, "bob-co")
    theirs = other.instance("theirs", registry)
    r = owner.request("POST", "/users", json={"name": "x", "role": "viewer", "grants": [theirs]})
    assert_error(r, 422, "grants")
    r = owner.request("POST", "/users", json={"name": "x", "role": "viewer", "grants": ["nope"]})
    assert_error(r, 422, "grants")
    mine = owner.instance("mine", registry)
    r = owner.request("POST", "/users", json={"name": "x", "role": "admin", "grants": [mine]})
    assert_error(r, 422, "grants")
