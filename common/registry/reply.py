"""Reply: one final answer from a registry, as the transport hands it on.

It wraps requests' response instead of writing onto it: how many tries it took
(for "failed after N attempt(s)") and, when the body was read inside the retry
loop, the body itself. Bodies are read with a limit (:func:`read_limited`), so
a registry cannot make Ferry hold more than it expects; blob bodies are not
read here at all but streamed from :attr:`Reply.raw`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from common.errors import RegistryError, RegistryUnavailable


def read_limited(resp: requests.Response, limit: int, *, cut: bool = False) -> bytes:
    """The (decoded) body of ``resp``, refusing answers larger than ``limit`` bytes, or
    with ``cut`` its first ``limit`` bytes (the rest is not read)."""
    buf = bytearray()
    try:
        for chunk in resp.iter_content(min(65536, limit + 1)):
            buf += chunk
            if len(buf) > limit:
                if cut:
                    del buf[limit:]
                    break
                raise RegistryError(
                    f"answer from {urlsplit(resp.url).netloc} exceeds {limit} bytes"
                )
    except requests.RequestException as exc:
        raise RegistryUnavailable(
            f"{urlsplit(resp.url).netloc}: answer broke off: {type(exc).__name__}"
        ) from None
    finally:
        resp.close()
    return bytes(buf)


class Reply:
    """A registry's final answer: status, headers, body (read or streaming), tries taken."""

    def __init__(
        self,
        response: requests.Response,
        attempts: int,
        body: bytes | None = None,
        *,
        guard: Any = None,
    ):
        self.response = response
        self.attempts = attempts
        self.body = body
        # A streamed answer's deadline guard (common.registry.deadline): the reader
        # extends it as the body moves, and closing the reply ends it.
        self.guard = guard

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @property
    def url(self) -> str:
        return self.response.url

    @property
    def method(self) -> str:
        """The method of the request that got this answer (after redirects)."""
        request = self.response.request
        return (request.method or "") if request is not None else ""

    @property
    def links(self) -> dict[str, Any]:
        """Parsed ``Link`` headers (pagination)."""
        return self.response.links

    @property
    def raw(self) -> Any:
        """The undecoded body stream (urllib3), for blobs."""
        return self.response.raw

    @property
    def content(self) -> bytes:
        """The whole body; for answers read in the retry loop or not streamed."""
        return self.body if self.body is not None else self.response.content

    def read(self, limit: int) -> bytes:
        """The body, refusing more than ``limit`` bytes; reads it now if not read yet."""
        if self.body is None:
            try:
                self.body = read_limited(self.response, limit)
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
