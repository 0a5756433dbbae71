"""/api/v1/instances: creating one checks the registry, its URL and the network policy."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network

import pytest

from api.app import create_app
from common.security.crypto import SecretBox
from common.security.tokens import matches
from tests.support.api import Api, assert_error, instance_body, leaks, raw_rows_text
from tests.support.registry import RegistryServer, free_port
from tests.support.servers import HandlerServer, QuietHandler
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


def test_create_checks_the_registry_and_returns_the_secret_once(client, alice, registry, db):
    body = instance_body(registry, "tcr-prod", region="ap-shanghai")
    r = alice.request("POST", "/instances", json=body)
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

    shown = alice.request("GET", f"/instances/{created['id']}")
    assert shown.status_code == 200
    assert set(shown.get_json()) == INSTANCE_KEYS
    listed = alice.request("GET", "/instances")
    assert "webhook_secret" not in listed.get_data(as_text=True)
    assert secret not in listed.get_data(as_text=True) + shown.get_data(as_text=True)

    row = db.execute("SELECT * FROM instances WHERE id = %s", (created["id"],)).fetchone()
    assert matches(secret, row["webhook_secret_hash"])
    assert row["webhook_secret_prev_hash"] is None
    assert SecretBox(db_settings(client)).decrypt(row["password_enc"]) == "alice-pw"


def db_settings(client):
    return client.application.extensions["ferry"].settings


def test_create_without_credentials_on_an_open_registry(alice, registry_factory):
    open_registry = registry_factory()
    r = alice.request(
        "POST",
        "/instances",
        json={
            "name": "open",
            "url": open_registry.url + "/",
            "kind": "harbor",
            "verify_tls": False,
        },
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["has_credentials"] is False and body["username"] is None
    assert body["url"] == open_registry.url  # the trailing slash is normalised away
    assert body["kind"] == "harbor" and body["verify_tls"] is False


def test_wrong_password_is_422_quoting_the_registry(alice, registry):
    r = alice.request("POST", "/instances", json=instance_body(registry, password="wrong-pw"))
    body = assert_error(r, 422, "password")
    assert "refused the credentials" in body["message"]
    assert "401" in body["message"]
    assert "wrong-pw" not in r.get_data(as_text=True)


def test_missing_credentials_on_a_protected_registry_is_422(alice, registry):
    r = alice.request("POST", "/instances", json={"name": "r", "url": registry.url})
    body = assert_error(r, 422, "username")
    assert "requires credentials" in body["message"]


def test_unreachable_registry_is_422(alice):
    r = alice.request(
        "POST", "/instances", json={"name": "r", "url": f"http://127.0.0.1:{free_port()}"}
    )
    body = assert_error(r, 422, "url")
    assert "registry check failed" in body["message"]


def test_an_internal_address_answers_the_same_open_or_closed(alice):
    """Issue 16: the check must not tell which internal ports are open."""

    class NotARegistry(QuietHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with HandlerServer(NotARegistry) as server:
        open_url = server.url
        open_port = alice.request("POST", "/instances", json={"name": "r", "url": open_url})
    closed_url = f"http://127.0.0.1:{free_port()}"
    closed = alice.request("POST", "/instances", json={"name": "r", "url": closed_url})
    messages = []
    for r, url in ((open_port, open_url), (closed, closed_url)):
        body = assert_error(r, 422, "url")
        # Without the URL: a port number may contain "404" itself.
        message = body["message"].replace(url, "URL")
        assert "404" not in message and "refused" not in message.lower()
        messages.append(message)
    assert messages[0] == messages[1]
    assert "no OCI registry answered at URL" in messages[0]


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
def test_urls_refused(alice, url, fragment):
    r = alice.request("POST", "/instances", json={"name": "r", "url": url})
    body = assert_error(r, 422, "url")
    assert fragment in " ".join(body["errors"]["url"]), body


def test_deny_and_allow_networks_govern_other_addresses(settings, alice, registry):
    denied = create_app(replace(settings, registry_deny_networks=(ip_network("127.0.0.0/8"),)))
    r = Api(denied.test_client(), alice.tenant).request(
        "POST", "/instances", json=instance_body(registry)
    )
    assert "FERRY_REGISTRY_DENY_NETWORKS" in assert_error(r, 422, "url")["message"]

    only_private = create_app(
        replace(settings, registry_allow_networks=(ip_network("10.0.0.0/8"),))
    )
    r = Api(only_private.test_client(), alice.tenant).request(
        "POST", "/instances", json=instance_body(registry)
    )
    assert "FERRY_REGISTRY_ALLOW_NETWORKS" in assert_error(r, 422, "url")["message"]

    # The defaults allow loopback (and private ranges): self-hosted registries work.
    r = Api(create_app(settings).test_client(), alice.tenant).request(
        "POST", "/instances", json=instance_body(registry)
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
def test_invalid_fields_are_422_naming_the_field(alice, registry, change, field):
    body = {**instance_body(registry), **change}
    assert_error(alice.request("POST", "/instances", json=body), 422, field)


def test_passwords_and_secrets_never_in_responses_or_rows_in_plain_text(settings, alice, registry):
    created = alice.request("POST", "/instances", json=instance_body(registry))
    secret = created.get_json()["webhook_secret"]
    responses = [
        created.get_data(as_text=True).replace(secret, ""),
        alice.request("GET", "/instances").get_data(as_text=True),
        alice.request("GET", f"/instances/{created.get_json()['id']}").get_data(as_text=True),
    ]
    assert not any("alice-pw" in text for text in responses)
    rows = raw_rows_text(settings)
    for plain in ("alice-pw", secret, alice.tenant.token):
        assert not leaks(plain, rows), plain


def test_the_network_policy_covers_token_realms(alice):
    # The registry sends clients to a realm on another host: refused unless allowed.
    tokens = TokenServer(
        users={"alice": User("alice-pw", [("*", {"*"})])}, realm_host="localhost"
    ).start()
    reg = RegistryServer(extra_config=tokens.registry_config()).start()
    try:
        r = alice.request(
            "POST",
            "/instances",
            json={"name": "t", "url": reg.url, "username": "alice", "password": "alice-pw"},
        )
        body = assert_error(r, 422, "url")
        assert "token realm host localhost" in body["message"]
    finally:
        reg.cleanup()
        tokens.stop()
