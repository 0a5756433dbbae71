"""API keys through HTTP: create, list, revoke, rotate, expiry, last use, SecretId/SecretKey."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from uuid import UUID

import pytest

from api.app import create_app
from common.services.apikeys import secret_key_for
from tests.support.api import Api, Tenant, assert_error, leaks, raw_rows_text, tenant_api
from tests.support.liveserver import HttpClient, LiveServer
from tests.support.registry import free_port, wait_for_port

GUNICORN = [sys.executable, "-m", "gunicorn", "--workers", "1"]
KEY_FIELDS = {
    "id",
    "kind",
    "prefix",
    "secret_id",
    "description",
    "created_at",
    "last_used_at",
    "expires_at",
}


def _as(api: Api, token: str) -> Api:
    return Api(api.client, Tenant(api.tenant.id, token))


def test_a_bearer_key_is_shown_once_and_listed_without_its_secret(client, settings):
    admin = tenant_api(client, settings, "acme")
    robot = admin.add_user("robot", "viewer")
    new = admin.post(f"/users/{robot.user_id}/keys", {"description": "ci"}, expect=201)
    assert set(new) == KEY_FIELDS | {"token", "secret_key"}
    assert new["token"].startswith(new["prefix"]) and new["secret_key"] is None
    assert _as(admin, new["token"]).get("/instances") == []
    listed = admin.get(f"/users/{robot.user_id}/keys")
    assert len(listed) == 2 and all(set(k) == KEY_FIELDS for k in listed)
    mine = next(k for k in listed if k["id"] == new["id"])
    assert mine["description"] == "ci" and mine["last_used_at"] is not None
    assert not leaks(new["token"], raw_rows_text(settings))


def _revoke_seen_by_the_other(
    settings, first, second, role: str, path: str = "/instances"
) -> tuple[Api, Api, str]:
    """Revoke a new user's key through ``first`` and check ``second`` refuses it at once;
    the admin, the user (on ``first``) and the revoked key's id."""
    admin = tenant_api(first, settings, "acme")
    robot = admin.add_user("robot", role)
    on_second = Api(second, robot.tenant)
    assert on_second.get(path) == []
    key_id = admin.get(f"/users/{robot.user_id}/keys")[0]["id"]
    admin.delete(f"/users/{robot.user_id}/keys/{key_id}")
    assert_error(on_second.request("GET", path), 401)
    return admin, robot, key_id


def test_revocation_counts_on_the_next_request_in_every_api_process(settings):
    # Two separate apps on two servers stand for two API processes.
    servers = [LiveServer(create_app(settings)).start() for _ in range(2)]
    try:
        first, second = (s.client() for s in servers)
        admin, robot, key_id = _revoke_seen_by_the_other(settings, first, second, "operator")
        assert_error(robot.request("GET", "/instances"), 401)
        assert admin.get(f"/users/{robot.user_id}/keys") == []
        assert_error(admin.request("DELETE", f"/users/{robot.user_id}/keys/{key_id}"), 404)
    finally:
        for server in servers:
            server.stop()


def test_deleting_a_user_revokes_its_keys(client, settings):
    admin = tenant_api(client, settings, "acme")
    robot = admin.add_user("robot", "operator")
    assert robot.get("/rules") == []
    admin.delete(f"/users/{robot.user_id}")
    assert_error(robot.request("GET", "/rules"), 401)


def test_an_expired_key_is_refused(client, settings, db):
    admin = tenant_api(client, settings, "acme")
    robot = admin.add_user("robot", "viewer")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    new = admin.post(f"/users/{robot.user_id}/keys", {"expires_at": soon}, expect=201)
    keyed = _as(admin, new["token"])
    assert keyed.get("/rules") == []
    assert new["expires_at"] is not None
    # The clock cannot be moved; the expiry can.
    db.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
        (new["id"],),
    )
    body = assert_error(keyed.request("GET", "/rules"), 401)
    assert "expired" in body["message"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    r = admin.request("POST", f"/users/{robot.user_id}/keys", json={"expires_at": past})
    assert_error(r, 422, "expires_at")
    naive = dt.datetime.now().replace(microsecond=0).isoformat()
    r = admin.request("POST", f"/users/{robot.user_id}/keys", json={"expires_at": naive})
    assert_error(r, 422, "expires_at")
    r = admin.request("POST", f"/users/{robot.user_id}/keys/{new['id']}/rotate")
    assert_error(r, 409)


def test_last_use_is_written_at_most_once_a_minute(client, settings, db):
    admin = tenant_api(client, settings, "acme")

    def last_used():
        return db.execute(
            "SELECT last_used_at FROM api_tokens WHERE tenant_id = %s", (admin.tenant.id,)
        ).fetchone()["last_used_at"]

    admin.get("/rules")
    first = last_used()
    assert first is not None
    admin.get("/rules")
    assert last_used() == first
    db.execute("UPDATE api_tokens SET last_used_at = last_used_at - interval '61 seconds'")
    aged = last_used()
    admin.get("/rules")
    assert last_used() > aged


def test_rotation_replaces_the_key_at_once(client, settings):
    admin = tenant_api(client, settings, "acme")
    robot = admin.add_user("robot", "viewer")
    old = admin.get(f"/users/{robot.user_id}/keys")[0]
    new = admin.post(f"/users/{robot.user_id}/keys/{old['id']}/rotate", expect=201)
    assert new["id"] != old["id"] and new["kind"] == "bearer"
    assert_error(robot.request("GET", "/rules"), 401)
    assert _as(admin, new["token"]).get("/rules") == []
    assert [k["id"] for k in admin.get(f"/users/{robot.user_id}/keys")] == [new["id"]]


def test_a_secret_pair_keeps_its_secret_key_encrypted(client, settings):
    admin = tenant_api(client, settings, "acme")
    robot = admin.add_user("robot", "operator")
    pair = admin.post(f"/users/{robot.user_id}/keys", {"kind": "secret_pair"}, expect=201)
    assert pair["token"] is None and pair["secret_id"] == pair["prefix"]
    assert pair["secret_key"] and pair["secret_id"].startswith("FRYID")
    assert not leaks(pair["secret_key"], raw_rows_text(settings))
    assert secret_key_for(settings, pair["secret_id"]) == (UUID(pair["id"]), pair["secret_key"])
    # A SecretKey is no bearer token.
    assert_error(_as(admin, pair["secret_key"]).request("GET", "/rules"), 401)
    listed = admin.get(f"/users/{robot.user_id}/keys")
    assert {k["kind"] for k in listed} == {"bearer", "secret_pair"}
    assert all("secret_key" not in k for k in listed)
    rotated = admin.post(f"/users/{robot.user_id}/keys/{pair['id']}/rotate", expect=201)
    assert rotated["secret_id"] != pair["secret_id"] and rotated["secret_key"]
    assert secret_key_for(settings, pair["secret_id"]) is None


@pytest.fixture
def api_processes(settings) -> Iterator[list[HttpClient]]:
    """Two API servers, each a gunicorn process of its own on the test database."""
    procs, clients = [], []
    env = {**os.environ, **settings.to_env()}
    try:
        for _ in range(2):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [*GUNICORN, "--bind", f"127.0.0.1:{port}", "api.wsgi:app"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for_port(port, timeout=60)
            clients.append(HttpClient(f"http://127.0.0.1:{port}"))
        yield clients
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def test_revocation_counts_in_separate_api_processes(settings, api_processes):
    first, second = api_processes
    _revoke_seen_by_the_other(settings, first, second, "viewer", "/rules")
