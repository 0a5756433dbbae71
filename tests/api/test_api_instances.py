"""/api/v1/instances against real PostgreSQL and real registries."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network

import pytest

from api.app import create_app
from common.security.crypto import SecretBox
from common.security.tokens import matches
from tests.support.api import (
    assert_error,
    create_instance,
    instance_body,
    leaks,
    make_tenant,
    raw_rows_text,
    rule_body,
)
from tests.support.registry import RegistryServer, free_port
from tests.support.tokenserver import TokenServer, User

INSTANCE_KEYS = {
    "id",
    "name",
    "url",
    "region",
    "kind",
    "verify_tls",
    "username",
    "max_concurrent_copies",
    "has_credentials",
    "created_at",
    "updated_at",
}


@pytest.fixture
def alice(settings):
    return make_tenant(settings, "alice-co")


def test_create_checks_the_registry_and_returns_the_secret_once(client, alice, registry, db):
    body = instance_body(registry, "tcr-prod", region="ap-shanghai")
    r = client.post("/api/v1/instances", json=body, headers=alice.headers)
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert set(created) == INSTANCE_KEYS | {"webhook_secret"}
    assert created["name"] == "tcr-prod"
    assert created["url"] == registry.url
    assert created["region"] == "ap-shanghai"
    assert created["kind"] == "distribution"
    assert created["verify_tls"] is True
    assert created["has_credentials"] is True
    assert created["username"] == "alice"
    secret = created["webhook_secret"]
    assert secret.startswith("fwh_") and len(secret) > 40

    shown = client.get(f"/api/v1/instances/{created['id']}", headers=alice.headers)
    assert shown.status_code == 200
    assert set(shown.get_json()) == INSTANCE_KEYS
    listed = client.get("/api/v1/instances", headers=alice.headers)
    assert "webhook_secret" not in listed.get_data(as_text=True)
    assert secret not in listed.get_data(as_text=True) + shown.get_data(as_text=True)

    row = db.execute("SELECT * FROM instances WHERE id = %s", (created["id"],)).fetchone()
    assert matches(secret, row["webhook_secret_hash"])
    assert row["webhook_secret_prev_hash"] is None
    assert SecretBox(db_settings(client)).decrypt(row["password_enc"]) == "alice-pw"


def db_settings(client):
    return client.application.extensions["ferry"].settings


def test_create_without_credentials_on_an_open_registry(client, alice, registry_factory):
    open_registry = registry_factory()
    r = client.post(
        "/api/v1/instances",
        json={
            "name": "open",
            "url": open_registry.url + "/",
            "kind": "harbor",
            "verify_tls": False,
        },
        headers=alice.headers,
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["has_credentials"] is False and body["username"] is None
    assert body["url"] == open_registry.url  # the trailing slash is normalised away
    assert body["kind"] == "harbor" and body["verify_tls"] is False


def test_wrong_password_is_422_quoting_the_registry(client, alice, registry):
    r = client.post(
        "/api/v1/instances",
        json=instance_body(registry, password="wrong-pw"),
        headers=alice.headers,
    )
    body = assert_error(r, 422, "password")
    assert "refused the credentials" in body["message"]
    assert "401" in body["message"]
    assert "wrong-pw" not in r.get_data(as_text=True)


def test_missing_credentials_on_a_protected_registry_is_422(client, alice, registry):
    r = client.post(
        "/api/v1/instances", json={"name": "r", "url": registry.url}, headers=alice.headers
    )
    body = assert_error(r, 422, "username")
    assert "requires credentials" in body["message"]


def test_unreachable_registry_is_422(client, alice):
    r = client.post(
        "/api/v1/instances",
        json={"name": "r", "url": f"http://127.0.0.1:{free_port()}"},
        headers=alice.headers,
    )
    body = assert_error(r, 422, "url")
    assert "registry check failed" in body["message"]


def test_not_a_registry_is_422_quoting_its_answer(client, alice):
    class NotARegistry(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotARegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = client.post(
            "/api/v1/instances",
            json={"name": "r", "url": f"http://127.0.0.1:{server.server_port}"},
            headers=alice.headers,
        )
    finally:
        server.shutdown()
        server.server_close()
    body = assert_error(r, 422, "url")
    assert "404" in body["message"] and "/v2/" in body["message"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://127.0.0.1:5000", "http:// or https://"),
        ("127.0.0.1:5000", "http:// or https://"),
        ("http://user:pw@127.0.0.1:5000", "must not contain credentials"),
        ("http://127.0.0.1:5000/v2/", "no path or query"),
        ("http://127.0.0.1:5000?x=1", "no path or query"),
        ("http://", "no host"),
        ("http://169.254.169.254", "link-local or a metadata address"),
        ("http://169.254.1.1:5000", "link-local or a metadata address"),
        ("http://[fe80::1]:5000", "link-local or a metadata address"),
        ("http://metadata.google.internal", "cloud metadata name"),
        ("http://metadata", "cloud metadata name"),
        ("http://0.0.0.0:5000", "link-local or a metadata address"),
        ("http://no-such-host.invalid", "does not resolve"),
        ("http://bad_host!name", "not a valid host name"),
        ("http://xn--caf-dma.invalid", "does not resolve"),
        ("http://café.example", "not a valid host name"),
        ("http://127.0.0.1:99999", "invalid URL"),
    ],
)
def test_urls_refused(client, alice, url, fragment):
    r = client.post("/api/v1/instances", json={"name": "r", "url": url}, headers=alice.headers)
    body = assert_error(r, 422, "url")
    assert fragment in " ".join(body["errors"]["url"]), body


def test_deny_and_allow_networks_govern_other_addresses(settings, registry):
    alice = make_tenant(settings, "alice-co")
    denied = create_app(replace(settings, registry_deny_networks=(ip_network("127.0.0.0/8"),)))
    r = denied.test_client().post(
        "/api/v1/instances", json=instance_body(registry), headers=alice.headers
    )
    assert "FERRY_REGISTRY_DENY_NETWORKS" in assert_error(r, 422, "url")["message"]

    only_private = create_app(
        replace(settings, registry_allow_networks=(ip_network("10.0.0.0/8"),))
    )
    r = only_private.test_client().post(
        "/api/v1/instances", json=instance_body(registry), headers=alice.headers
    )
    assert "FERRY_REGISTRY_ALLOW_NETWORKS" in assert_error(r, 422, "url")["message"]

    # The defaults allow loopback (and private ranges): self-hosted registries work.
    r = (
        create_app(settings)
        .test_client()
        .post("/api/v1/instances", json=instance_body(registry), headers=alice.headers)
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": " padded"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": None}, "name"),
        ({"url": None}, "url"),
        ({"kind": "quay"}, "kind"),
        ({"verify_tls": "yes"}, "verify_tls"),
        ({"verify_tls": 1}, "verify_tls"),
        ({"region": "r" * 65}, "region"),
        ({"username": "bob", "password": None}, "password"),
        ({"username": None, "password": "pw"}, "username"),
        ({"username": ""}, "username"),
        ({"name": "a\x00b"}, "name"),
        ({"unexpected": 1}, "unexpected"),
        ({"max_concurrent_copies": 0}, "max_concurrent_copies"),
        ({"max_concurrent_copies": 257}, "max_concurrent_copies"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, alice, registry, change, field):
    body = {**instance_body(registry), **change}
    assert_error(client.post("/api/v1/instances", json=body, headers=alice.headers), 422, field)


def test_concurrency_limit_is_set_and_changed(client, alice, registry):
    created = create_instance(client, alice, registry, "limited", max_concurrent_copies=2)
    assert created["max_concurrent_copies"] == 2
    r = client.patch(
        f"/api/v1/instances/{created['id']}",
        json={"max_concurrent_copies": 3},
        headers=alice.headers,
    )
    assert r.status_code == 200 and r.get_json()["max_concurrent_copies"] == 3
    other = create_instance(client, alice, registry, "default")
    assert other["max_concurrent_copies"] == 8


def test_duplicate_name_is_409(client, alice, registry):
    create_instance(client, alice, registry, "dup")
    r = client.post("/api/v1/instances", json=instance_body(registry, "dup"), headers=alice.headers)
    assert "already exists" in assert_error(r, 409)["message"]


def test_same_name_in_two_tenants_is_fine(client, settings, alice, registry):
    bob = make_tenant(settings, "bob-co")
    create_instance(client, alice, registry, "shared-name")
    create_instance(client, bob, registry, "shared-name")


def test_patch_rechecks_only_when_url_tls_or_credentials_change(
    client, alice, registry_factory, db
):
    reg = registry_factory({"alice": "alice-pw", "bob": "bob-pw"})
    inst = create_instance(client, alice, reg, "p")
    path = f"/api/v1/instances/{inst['id']}"

    r = client.patch(
        path, json={"region": "eu", "name": "p2", "kind": "harbor"}, headers=alice.headers
    )
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["region"], r.get_json()["name"], r.get_json()["kind"]) == (
        "eu",
        "p2",
        "harbor",
    )

    r = client.patch(path, json={"username": "bob", "password": "nope"}, headers=alice.headers)
    assert_error(r, 422, "password")
    r = client.patch(path, json={"username": "bob"}, headers=alice.headers)
    assert_error(r, 422, "password")
    r = client.patch(path, json={"username": "bob", "password": "bob-pw"}, headers=alice.headers)
    assert r.status_code == 200 and r.get_json()["username"] == "bob"

    # A registry that is down makes a URL change fail, but not a rename.
    r = client.patch(path, json={"url": f"http://127.0.0.1:{free_port()}"}, headers=alice.headers)
    assert_error(r, 422, "url")
    reg.stop()
    r = client.patch(path, json={"region": "us"}, headers=alice.headers)
    assert r.status_code == 200
    r = client.patch(path, json={"verify_tls": False}, headers=alice.headers)
    assert_error(r, 422, "url")

    # Clearing credentials (both null) is a change too, checked against the registry.
    reg.start()
    r = client.patch(path, json={"username": None, "password": None}, headers=alice.headers)
    assert_error(r, 422, "username")
    assert client.get(path, headers=alice.headers).get_json()["has_credentials"] is True


def test_patch_name_collision_is_409(client, alice, registry):
    create_instance(client, alice, registry, "one")
    two = create_instance(client, alice, registry, "two")
    r = client.patch(f"/api/v1/instances/{two['id']}", json={"name": "one"}, headers=alice.headers)
    assert_error(r, 409)


def test_webhook_secret_rotation_keeps_the_previous_one_until_the_next(client, alice, registry, db):
    inst = create_instance(client, alice, registry)
    first = inst["webhook_secret"]
    path = f"/api/v1/instances/{inst['id']}/webhook-secret"

    r = client.post(path, headers=alice.headers)
    assert r.status_code == 200
    second = r.get_json()["webhook_secret"]
    assert r.get_json()["id"] == inst["id"]
    row = db.execute("SELECT * FROM instances WHERE id = %s", (inst["id"],)).fetchone()
    stored = (row["webhook_secret_hash"], row["webhook_secret_prev_hash"])
    assert matches(second, *stored) and matches(first, *stored)

    third = client.post(path, headers=alice.headers).get_json()["webhook_secret"]
    row = db.execute("SELECT * FROM instances WHERE id = %s", (inst["id"],)).fetchone()
    stored = (row["webhook_secret_hash"], row["webhook_secret_prev_hash"])
    assert matches(third, *stored) and matches(second, *stored)
    assert not matches(first, *stored)
    assert len({first, second, third}) == 3


def test_delete_is_409_naming_the_rules_then_204(client, alice, registry):
    src = create_instance(client, alice, registry, "src")
    dst = create_instance(client, alice, registry, "dst")
    for name in ("r-one", "r-two"):
        r = client.post(
            "/api/v1/rules",
            json=rule_body(src["id"], dst["id"], name, target_namespace="mirror"),
            headers=alice.headers,
        )
        assert r.status_code == 201, r.get_json()
    for inst in (src, dst):
        r = client.delete(f"/api/v1/instances/{inst['id']}", headers=alice.headers)
        body = assert_error(r, 409)
        assert "'r-one'" in body["message"] and "'r-two'" in body["message"]
    rules = client.get("/api/v1/rules", headers=alice.headers).get_json()
    for rule in rules:
        assert (
            client.delete(f"/api/v1/rules/{rule['id']}", headers=alice.headers).status_code == 204
        )
    r = client.delete(f"/api/v1/instances/{src['id']}", headers=alice.headers)
    assert r.status_code == 204 and r.data == b""
    assert client.get(f"/api/v1/instances/{src['id']}", headers=alice.headers).status_code == 404
    assert client.delete(f"/api/v1/instances/{src['id']}", headers=alice.headers).status_code == 404


def test_list_is_paginated_by_name(client, alice, registry):
    for name in ("c", "a", "b"):
        create_instance(client, alice, registry, name)
    r = client.get("/api/v1/instances?page=1&page_size=2", headers=alice.headers)
    assert r.status_code == 200
    assert [i["name"] for i in r.get_json()] == ["a", "b"]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["total_pages"] == 2 and meta["next_page"] == 2
    r = client.get("/api/v1/instances?page=2&page_size=2", headers=alice.headers)
    assert [i["name"] for i in r.get_json()] == ["c"]
    r = client.get("/api/v1/instances?page=9", headers=alice.headers)
    assert r.status_code == 200 and r.get_json() == []
    for bad in ("page=0", "page_size=0", "page_size=201", "page=x"):
        assert_error(client.get(f"/api/v1/instances?{bad}", headers=alice.headers), 422)


def test_passwords_and_secrets_never_in_responses_or_rows_in_plain_text(
    client, settings, alice, registry
):
    created = client.post("/api/v1/instances", json=instance_body(registry), headers=alice.headers)
    secret = created.get_json()["webhook_secret"]
    responses = [
        created.get_data(as_text=True).replace(secret, ""),
        client.get("/api/v1/instances", headers=alice.headers).get_data(as_text=True),
        client.get(f"/api/v1/instances/{created.get_json()['id']}", headers=alice.headers).get_data(
            as_text=True
        ),
    ]
    assert not any("alice-pw" in text for text in responses)
    rows = raw_rows_text(settings)
    for plain in ("alice-pw", secret, alice.token):
        assert not leaks(plain, rows), plain


def test_the_network_policy_covers_token_realms(client, alice):
    # The registry sends clients to a realm on another host: refused unless allowed.
    tokens = TokenServer(
        users={"alice": User("alice-pw", [("*", {"*"})])}, realm_host="localhost"
    ).start()
    reg = RegistryServer(extra_config=tokens.registry_config()).start()
    try:
        r = client.post(
            "/api/v1/instances",
            json={"name": "t", "url": reg.url, "username": "alice", "password": "alice-pw"},
            headers=alice.headers,
        )
        body = assert_error(r, 422, "url")
        assert "token realm host localhost" in body["message"]
    finally:
        reg.cleanup()
        tokens.stop()
