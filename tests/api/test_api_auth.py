"""Authentication by tenant token, and tenant isolation (404, never 403)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.api import assert_error, make_tenant, rule_body, tenant_api

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(client):
    """(method, path template, operation) for every documented operation."""
    spec = client.get("/api/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def _tenant_operations(client):
    return [
        (m, p, op)
        for m, p, op in _operations(client)
        if p.startswith("/api/v1/") and not p.startswith("/api/v1/webhooks/")
    ]


def _fill(path: str, **ids: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def test_every_tenant_route_documents_bearer_auth_and_401(client):
    ops = _tenant_operations(client)
    assert len(ops) >= 12
    for method, path, op in ops:
        assert op.get("security") == [{"bearerAuth": []}], (method, path)
        assert "401" in op["responses"], (method, path)
    spec = client.get("/api/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path, op in _operations(client):
        if not path.startswith("/api/v1/"):
            assert "security" not in op, (method, path)


def test_webhook_routes_do_not_ask_for_the_tenant_token(client):
    for method, path, op in _operations(client):
        if path.startswith("/api/v1/webhooks/"):
            assert "security" not in op, (method, path)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "bearer fry_unknown",
        "Bearer fry_" + "x" * 43,
        "Token abc",
    ],
)
def test_missing_or_wrong_token_is_401_on_every_tenant_route(client, settings, header):
    make_tenant(settings, "someone")
    headers = {"Authorization": header} if header is not None else {}
    for method, path, _ in _tenant_operations(client):
        r = getattr(client, method)(_fill(path), headers=headers, json={})
        body = assert_error(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        assert body["status"] == "Unauthorized"


def test_a_valid_token_is_accepted_and_a_revoked_one_is_not(client, settings, db):
    alice = tenant_api(client, settings, "alice-co")
    assert alice.request("GET", "/instances").status_code == 200
    lower = {"Authorization": "bearer " + alice.tenant.token}
    assert client.get("/api/v1/instances", headers=lower).status_code == 200
    db.execute("UPDATE api_tokens SET revoked_at = now() WHERE tenant_id = %s", (alice.tenant.id,))
    assert_error(alice.request("GET", "/instances"), 401)


def test_tokens_are_stored_hashed(settings, db):
    alice = make_tenant(settings, "alice-co")
    row = db.execute("SELECT token_hash::text AS h FROM api_tokens").fetchone()
    assert alice.token not in row["h"] and alice.token.encode().hex() not in row["h"]


def test_health_and_docs_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_another_tenants_instance_and_rule_are_404_everywhere(client, settings, registry):
    alice, bob = tenant_api(client, settings, "alice-co"), tenant_api(client, settings, "bob-co")
    src = alice.create_instance(registry, "src")
    dst = alice.create_instance(registry, "dst")
    body = rule_body(src["id"], dst["id"], target_namespace="mirror")
    rule = alice.request("POST", "/rules", json=body).get_json()
    before = {
        "src": alice.request("GET", f"/instances/{src['id']}").get_json(),
        "rule": alice.request("GET", f"/rules/{rule['id']}").get_json(),
    }
    swept = 0
    for method, path, _ in _tenant_operations(client):
        if "{rule_id}" not in path and "{instance_id}" not in path:
            continue
        url = _fill(path, rule_id=rule["id"], instance_id=src["id"])
        payload = body if method == "put" else {} if method == "patch" else None
        r = getattr(client, method)(url, headers=bob.tenant.headers, json=payload)
        assert_error(r, 404)
        assert "alice" not in r.get_data(as_text=True)
        swept += 1
    assert swept >= 10
    assert alice.request("GET", f"/instances/{src['id']}").get_json() == before["src"]
    assert alice.request("GET", f"/rules/{rule['id']}").get_json() == before["rule"]

    # Bob's lists show nothing of Alice's, even when he names her instance.
    assert bob.request("GET", "/instances").get_json() == []
    assert bob.request("GET", "/rules").get_json() == []
    r = bob.request("GET", f"/rules?source_instance_id={src['id']}")
    assert r.status_code == 200 and r.get_json() == []


def test_another_tenants_instances_cannot_be_used_in_rules(client, settings, registry):
    alice, bob = tenant_api(client, settings, "alice-co"), tenant_api(client, settings, "bob-co")
    a_src = alice.create_instance(registry, "a-src")
    b_src = bob.create_instance(registry, "b-src")
    # Bob names Alice's instance as his same-tenant target, then as his source.
    for body, field in (
        (rule_body(b_src["id"], a_src["id"], target_namespace="x"), "target.instance_id"),
        (rule_body(a_src["id"], b_src["id"], target_namespace="x"), "source.instance_id"),
    ):
        r = bob.request("POST", "/rules", json=body)
        assert_error(r, 422, field)
        # The answer is the same as for an id that exists nowhere.
        ghost = {**body}
        key = field.split(".")[0]
        ghost[key] = {**body[key], "instance_id": str(uuid.uuid4())}
        r2 = bob.request("POST", "/rules", json=ghost)
        assert r2.get_json()["errors"] == r.get_json()["errors"]


def test_malformed_ids_are_404(client, settings):
    alice = tenant_api(client, settings, "alice-co")
    for path in ("/instances/not-a-uuid", "/rules/123", "/rules/zzz/enable"):
        assert_error(alice.request("GET", path), 404)
