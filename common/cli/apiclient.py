"""A small client of Ferry's own HTTP API, for CLI commands (FERRY_URL, FERRY_TOKEN)."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from common.errors import ConfigError, FerryError, NotFound
from common.settings import Settings

# Page size of the API's lists (every list allows it).
PAGE = 100


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

    def response(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The raw answer (for its headers); an error status raises a one-line FerryError."""
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
        return r

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of the answer (None when empty)."""
        r = self.response(method, path, **kwargs)
        try:
            return r.json() if r.content else None
        except ValueError:
            raise ApiError(f"the API at {self.base} did not answer JSON") from None

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            rows = self.call("GET", path, params={**params, "page": page, "page_size": PAGE})
            found += rows
            if len(rows) < PAGE:
                return found
            page += 1

    def _by_name(self, kind: str, path: str, key: str, **params: Any) -> dict[str, Any]:
        try:
            uuid.UUID(key)
            return self.call("GET", f"{path}/{key}")
        except ValueError:
            pass
        matches = [x for x in self.all_pages(path, **params) if x.get("name") == key]
        if not matches:
            raise NotFound(f"no {kind} named {key!r}")
        if len(matches) > 1:
            ids = ", ".join(m["id"] for m in matches)
            raise ApiError(f"several {kind}s are named {key!r} (ids {ids}); give the id")
        return matches[0]

    def resolve_rule(self, rule: str) -> dict[str, Any]:
        """A rule by id, or by name when exactly one of the caller's rules has it."""
        return self._by_name("rule", "/rules", rule)

    def resolve_instance(self, instance: str) -> dict[str, Any]:
        """An instance by id, or by its name (unique in the account)."""
        return self._by_name("instance", "/instances", instance)
