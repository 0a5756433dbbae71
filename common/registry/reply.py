"""Reply: one final answer from a registry, as the transport hands it on.

It wraps urllib3's response instead of writing onto it: the request's method
and final URL, how many tries it took (for "failed after N attempt(s)") and,
when the body was read inside the retry loop, the body itself. Bodies are read
with a limit (:func:`read_limited`), so a registry cannot make Ferry hold more
than it expects; blob bodies are not read here at all but streamed from
:attr:`Reply.raw`.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from requests.utils import parse_header_links

from common.errors import RegistryError, RegistryUnavailable

# What a body that breaks off raises while it is read.
BODY_BROKE = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def read_limited(
    resp: urllib3.BaseHTTPResponse, url: str, limit: int, *, cut: bool = False
) -> bytes:
    """The (decoded) body of ``resp``, refusing answers larger than ``limit`` bytes, or
    with ``cut`` its first ``limit`` bytes (the rest is not read)."""
    try:
        # One read of at most limit + 1 bytes: http.client stops at the body's end.
        body = resp.read(limit + 1)
        if len(body) > limit:
            if not cut:
                raise RegistryError(f"answer from {urlsplit(url).netloc} exceeds {limit} bytes")
            body = body[:limit]
    except BODY_BROKE as exc:
        raise RegistryUnavailable(
            f"{urlsplit(url).netloc}: answer broke off: {type(exc).__name__}"
        ) from None
    finally:
        resp.close()
    return body


class Reply:
    """A registry's final answer: status, headers, body (read or streaming), tries taken."""

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        method: str,
        url: str,
        attempts: int,
        body: bytes | None = None,
        *,
        guard: Any = None,
    ):
        self.response = response
        self.method = method  # of the request that got this answer (after redirects)
        self.url = url
        self.attempts = attempts
        self.body = body
        # A streamed answer's deadline guard (common.registry.deadline): the reader
        # extends it as the body moves, and closing the reply ends it.
        self.guard = guard

    @property
    def status_code(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @property
    def links(self) -> dict[str, Any]:
        """Parsed ``Link`` headers (pagination), by ``rel`` (or URL)."""
        header = self.response.headers.get("Link")
        if not header:
            return {}
        return {link.get("rel") or link.get("url"): link for link in parse_header_links(header)}

    @property
    def raw(self) -> Any:
        """The undecoded body stream (urllib3), for blobs."""
        return self.response

    @property
    def content(self) -> bytes:
        """The whole body; for answers read in the retry loop or not streamed."""
        if self.body is None:
            self.body = self.response.read()
        return self.body

    def read(self, limit: int) -> bytes:
        """The body, refusing more than ``limit`` bytes; reads it now if not read yet."""
        if self.body is None:
            try:
                self.body = read_limited(self.response, self.url, limit)
            finally:
                if self.guard is not None:
                    self.guard.close()
        elif len(self.body) > limit:
            raise RegistryError(f"answer from {urlsplit(self.url).netloc} exceeds {limit} bytes")
        return self.body

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not)."""
        return json.loads(self.content)

    def error_code(self) -> str:
        """The first OCI error code of an answer already read (``stream=False``)."""
        try:
            return str(self.json()["errors"][0]["code"])
        except (ValueError, KeyError, IndexError, TypeError):
            return ""

    def close(self) -> None:
        """Release the connection (the body, if unread, is dropped)."""
        if self.guard is not None:
            self.guard.close()
        self.response.close()
