"""A small world for pipeline tests: tenants, registries, instances and rules via the API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.api import Tenant, instance_body
from tests.support.api import make_tenant as new_tenant
from tests.support.registry import RegistryServer

__all__ = ["FINAL", "Api", "Tenant", "new_tenant"]

FINAL = {"Succeeded", "PartiallySucceeded", "Failed", "Stopped"}


@dataclass
class Api:
    """The Flask test client as one tenant."""

    client: Any
    tenant: Tenant
    calls: list[str] = field(default_factory=list)

    def _do(self, method: str, path: str, expect: int | tuple[int, ...], **kw: Any) -> Any:
        r = self.client.open(f"/api/v1{path}", method=method, headers=self.tenant.headers, **kw)
        expected = (expect,) if isinstance(expect, int) else expect
        assert r.status_code in expected, (method, path, r.status_code, r.get_json())
        return r.get_json(silent=True)

    def get(self, path: str, expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        return self._do("GET", path, expect, **kw)

    def post(
        self,
        path: str,
        body: Any = None,
        expect: int | tuple[int, ...] = (200, 201, 202),
        **kw: Any,
    ) -> Any:
        return self._do("POST", path, expect, json=body, **kw)

    def delete(self, path: str, expect: int | tuple[int, ...] = (200, 204)) -> Any:
        return self._do("DELETE", path, expect)

    def instance(self, name: str, registry: RegistryServer, user: str | None = None) -> str:
        return self.post("/instances", instance_body(registry, name, user), expect=201)["id"]

    def rule(self, name: str, source: str, target: str, **fields: Any) -> str:
        body: dict[str, Any] = {
            "name": name,
            "source": {"instance_id": source, "namespace": fields.pop("namespace", "project")},
            "resource_types": fields.pop("resource_types", ["image", "chart"]),
            "target": {"instance_id": target, "namespace": fields.pop("target_namespace", "")},
        }
        for key in (
            "repository_filter",
            "tag_filter",
            "repository_exclude",
            "tag_exclude",
            "filter_syntax",
        ):
            if key in fields:
                body["source"][key] = fields.pop(key)
        for key in ("cross_tenant", "account_id", "username", "password"):
            if key in fields:
                body["target"][key] = fields.pop(key)
        body.update(fields)
        return self.post("/rules", body, expect=201)["id"]

    def trigger(self, rule_id: str) -> str:
        started = self.post(f"/rules/{rule_id}/trigger", expect=202)
        assert started["status"] == "Pending"
        return started["task_id"]

    def wait(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(f"/tasks/{task_id}")
            if task["status"] in FINAL:
                return task
            assert time.monotonic() < deadline, f"task still {task['status']}: {task}"
            time.sleep(0.1)

    def items(self, task_id: str, status: str | None = None) -> list[dict[str, Any]]:
        query = {"page_size": 100}
        if status:
            query["status"] = status
        return self.get(f"/tasks/{task_id}/items", query_string=query)
