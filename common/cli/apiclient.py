"""A small client of Ferry's own HTTP API, for CLI commands (FERRY_URL, FERRY_TOKEN)."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from common.errors import ConfigError, FerryError, NotFound
from common.settings import Settings


class ApiError(FerryError):
    """The API answered with an error body."""


class FerryApi:
    """Authenticated calls to ``/api/v1``; errors become one-line FerryErrors."""

    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        if not settings.client_token:
            raise ConfigError("FERRY_TOKEN: not set; create one with `ferry tenant create`")
        self.base = (settings.client_url or settings.api_url) + "/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {settings.client_token}"
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(
                f"cannot reach the Ferry API at {self.base}: {type(exc).__name__}"
            ) from None
        if r.status_code >= 400:
            try:
                body = r.json()
                message = body.get("message") or r.reason
            except ValueError:
                message = r.reason
            cls = NotFound if r.status_code == 404 else ApiError
            raise cls(f"{r.status_code} {message}")
        return r.json() if r.content else None

    def resolve_rule(self, rule: str) -> dict[str, Any]:
        """A rule by id, or by name when exactly one of the caller's rules has it."""
        try:
            uuid.UUID(rule)
            return self.call("GET", f"/rules/{rule}")
        except ValueError:
            pass
        matches: list[dict[str, Any]] = []
        page = 1
        while True:
            r = self.session.get(
                f"{self.base}/rules", params={"page": page, "page_size": 100}, timeout=self.timeout
            )
            if r.status_code >= 400:
                self.call("GET", "/rules")  # raises with the API's message
            body = r.json()
            rows = body["items"] if isinstance(body, dict) else body
            matches += [x for x in rows if x.get("name") == rule]
            if len(rows) < 100:
                break
            page += 1
        if not matches:
            raise NotFound(f"no rule named {rule!r}")
        if len(matches) > 1:
            ids = ", ".join(m["id"] for m in matches)
            raise ApiError(f"several rules are named {rule!r} (ids {ids}); give the id")
        return matches[0]
