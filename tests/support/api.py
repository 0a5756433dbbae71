"""Driving the Ferry API in tests: tenants, the :class:`Api` of one tenant, request bodies.

:class:`Api` works over Flask's test client and over a live server's
:class:`~tests.support.liveserver.HttpClient` alike. Raw calls (``request``)
return the response for tests that look at statuses, headers and error bodies;
``get``/``post``/... assert the status and return the JSON body.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from common.domain.vocab import FINAL_TASK_STATUSES
from common.services.tenants import create_tenant
from common.settings import Settings
from tests.support.registry import RegistryServer

API = "/api/v1"
ERROR_KEYS = {"code", "status", "message", "errors"}
# What docker-registry sends its notifications as.
DIST_EVENTS = "application/vnd.docker.distribution.events.v1+json"
# Rule fields that Api.rule accepts flat and sends inside "source" / "target".
SOURCE_FIELDS = (
    "repository_filter",
    "tag_filter",
    "repository_exclude",
    "tag_exclude",
    "filter_syntax",
    "semver",
    "latest",
)
TARGET_FIELDS = ("cross_tenant", "account_id", "username", "password")


@dataclass(frozen=True)
class Tenant:
    id: UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_tenant(settings: Settings, name: str) -> Tenant:
    """A tenant and the API token of its user ``admin``, committed."""
    new = create_tenant(settings, name)
    return Tenant(new.tenant_id, new.token)


def assert_error(resp: Any, code: int, *fields: str) -> dict:
    """Assert the one error body with ``code`` whose ``errors`` name every field in ``fields``."""
    assert resp.status_code == code, (resp.status_code, resp.get_json())
    body = resp.get_json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    for f in fields:
        assert f in body["errors"], (f, body)
    return body


def instance_body(
    registry: Any, name: str = "reg", user: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A POST /instances body for a test registry, with its first user's credentials."""
    body: dict[str, Any] = {"name": name, "url": registry.url}
    if registry.users:
        user = user or next(iter(registry.users))
        body.update(username=user, password=registry.users[user])
    body.update(extra)
    return body


def rule_body(
    source_id: Any,
    target_id: Any,
    name: str = "sync-prod",
    *,
    namespace: str = "project",
    target_namespace: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A POST /rules body; ``source``/``target`` entries in ``extra`` are merged."""
    body: dict[str, Any] = {
        "name": name,
        "source": {"instance_id": str(source_id), "namespace": namespace},
        "target": {"instance_id": str(target_id), "namespace": target_namespace},
    }
    for key, value in extra.items():
        if key in ("source", "target"):
            body[key].update(value)
        else:
            body[key] = value
    return body


def post_webhook(
    client: Any, instance_id: Any, body: Any, secret: str, content_type: str = DIST_EVENTS
) -> Any:
    """POST ``body`` (JSON-encoded unless bytes) to an instance's webhook; the raw response."""
    return client.open(
        f"{API}/webhooks/{instance_id}",
        method="POST",
        data=body if isinstance(body, bytes) else json.dumps(body),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": content_type},
    )


class Api:
    """One tenant driving /api/v1 through ``client`` (a Flask test client or an HttpClient)."""

    def __init__(self, client: Any, tenant: Tenant, user_id: str | None = None) -> None:
        self.client = client
        self.tenant = tenant
        self.user_id = user_id

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """The raw response to ``method /api/v1{path}`` as this tenant."""
        return self.client.open(API + path, method=method, headers=self.tenant.headers, **kw)

    def call(self, method: str, path: str, expect: int | tuple[int, ...], **kw: Any) -> Any:
        """The JSON body of the answer, after asserting its status is (one of) ``expect``."""
        r = self.request(method, path, **kw)
        expected = (expect,) if isinstance(expect, int) else expect
        assert r.status_code in expected, (method, path, r.status_code, r.get_json(silent=True))
        return r.get_json(silent=True)

    def get(self, path: str, expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        return self.call("GET", path, expect, **kw)

    def post(
        self,
        path: str,
        body: Any = None,
        expect: int | tuple[int, ...] = (200, 201, 202),
        **kw: Any,
    ) -> Any:
        return self.call("POST", path, expect, json=body, **kw)

    def patch(self, path: str, body: Any, expect: int | tuple[int, ...] = 200) -> Any:
        return self.call("PATCH", path, expect, json=body)

    def delete(self, path: str, expect: int | tuple[int, ...] = (200, 204)) -> Any:
        return self.call("DELETE", path, expect)

    def create_instance(self, registry: Any, name: str = "reg", **extra: Any) -> dict:
        """Register ``registry`` (its first user's credentials unless ``extra`` says); the 201
        body, with the webhook secret."""
        return self.post("/instances", instance_body(registry, name, **extra), expect=201)

    def instance(
        self, name: str, registry: RegistryServer, user: str | None = None, **extra: Any
    ) -> str:
        """Register ``registry`` as ``name`` (as ``user``); its id."""
        return self.create_instance(registry, name, user=user, **extra)["id"]

    def rule(self, name: str, source: str, target: str, **fields: Any) -> str:
        """Create a rule; filter and cross-tenant fields may be given flat. Its id."""
        nested = {
            "source": {k: fields.pop(k) for k in SOURCE_FIELDS if k in fields},
            "target": {k: fields.pop(k) for k in TARGET_FIELDS if k in fields},
        }
        body = rule_body(source, target, name, **nested, **fields)
        return self.post("/rules", body, expect=201)["id"]

    def add_user(self, name: str, role: str, grants: list[str] | None = None) -> Api:
        """Create a user of this tenant with a bearer key (as this admin); the user's Api."""
        user = self.post("/users", {"name": name, "role": role, "grants": grants or ["*"]})
        key = self.post(f"/users/{user['id']}/keys", {}, expect=201)
        return Api(self.client, Tenant(self.tenant.id, key["token"]), user_id=user["id"])

    def trigger(self, rule_id: str) -> str:
        """Trigger a rule; the new task's id (the task is Pending)."""
        started = self.post(f"/rules/{rule_id}/trigger", expect=202)
        assert started["status"] == "Pending"
        return started["task_id"]

    def wait(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The task once it has a final status (polled; fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(f"/tasks/{task_id}")
            if task["status"] in FINAL_TASK_STATUSES:
                return task
            assert time.monotonic() < deadline, f"task still {task['status']}: {task}"
            time.sleep(0.1)

    def items(self, task_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """The task's items (up to 100), only those with ``status`` if given."""
        query: dict[str, Any] = {"page_size": 100}
        if status:
            query["status"] = status
        return self.get(f"/tasks/{task_id}/items", query_string=query)


def tenant_api(client: Any, settings: Settings, name: str) -> Api:
    """A new tenant ``name`` and its :class:`Api` over ``client``."""
    return Api(client, make_tenant(settings, name))


ROBOT_PW = "robot-Pushes-pw"


@dataclass
class RuleWorld:
    """Alice with two instances of one registry, Bob with one on a registry of his own
    (with user ``robot`` / ``ROBOT_PW``): the parties of same- and cross-tenant rules."""

    alice: Api
    bob: Api
    src: dict  # alice's source instance
    dst: dict  # alice's second instance (same-tenant target)
    bob_dst: dict  # bob's instance (cross-tenant target)
    bob_registry: RegistryServer

    def post(self, body: dict) -> Any:
        """POST /rules as Alice; the raw response."""
        return self.alice.request("POST", "/rules", json=body)

    def rule(self, name: str = "sync-prod", **extra: Any) -> dict:
        """A same-tenant rule body from ``src`` to ``dst`` (namespace ``mirror`` by default)."""
        extra.setdefault("target_namespace", "mirror")
        return rule_body(self.src["id"], self.dst["id"], name, **extra)

    def cross(self, name: str = "to-bob", password: str = ROBOT_PW, **target: Any) -> dict:
        """A cross-tenant rule body from Alice's ``src`` to Bob's instance, as ``robot``."""
        return rule_body(
            self.src["id"],
            self.bob_dst["id"],
            name,
            target={
                "cross_tenant": True,
                "account_id": str(self.bob.tenant.id),
                "username": "robot",
                "password": password,
                "namespace": "team",
                **target,
            },
        )


def raw_rows_text(settings: Settings) -> str:
    """Every row of every table, as PostgreSQL's text form (bytea as hex)."""
    chunks = []
    with psycopg.connect(settings.require_database_url()) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for (text,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                chunks.append(text)
    return "\n".join(chunks)


def leaks(secret: str, text: str) -> bool:
    """True when ``secret`` appears in ``text`` as plain text or as bytea hex."""
    return secret in text or secret.encode().hex() in text.lower()
