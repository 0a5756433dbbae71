"""One blob upload session on a target registry: open, PATCH, ask, PUT, cancel.

The registry names the session by a ``Location`` that may change with every
answer; requests always go to the latest one. A session can be opened as a
cross-repository mount (``201``: nothing to upload). The session speaks the
protocol only; how a blob's bytes are cut and resent is
:mod:`common.registry.uploader`'s business.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from common.errors import DigestMismatch, RegistryError, UploadError
from common.registry import auth as _auth
from common.registry.blob_reader import BlobReader
from common.registry.digest import check_digest
from common.registry.media import check_repository
from common.registry.reply import Reply
from common.registry.transport import Transport
from common.registry.urls import origin_of

log = logging.getLogger("ferry.registry.blobs")

_LOST_CODES = ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
_RANGE_RE = re.compile(r"^(?:bytes[= ])?(\d+)-(\d+)")


class UploadSessionLost(UploadError):
    """The registry no longer knows the upload session (it must start again)."""

    retryable = True


class RangeRefused(UploadError):
    """416: the registry's idea of the offset differs from ours."""


def _received(range_header: str | None, hint: int) -> int | None:
    """Bytes the server holds per its ``Range: 0-N`` header (``0-0`` may mean none)."""
    m = _RANGE_RE.match((range_header or "").strip())
    if not m:
        return None
    end = int(m.group(2))
    if end == 0:
        return 1 if hint == 1 else 0
    return end + 1


def _same_origin(transport: Transport, location: str) -> str:
    """``location`` if it is on the registry's own origin; an upload session never leaves
    it (a target must not make Ferry send PATCH, PUT or DELETE to another host)."""
    if origin_of(location) != transport.url:
        raise UploadError(
            f"{transport.display}: refused an upload Location on another host "
            f"({urlsplit(location).hostname}); upload sessions stay on the registry"
        )
    return location


class UploadSession:
    """One blob upload session on the target; ``location`` is always the latest one."""

    def __init__(
        self, transport: Transport, blobs: BlobReader, repository: str, location: str
    ) -> None:
        self.transport, self.blobs = transport, blobs
        self.repository, self.location = repository, location
        self._scopes = _auth.push(repository)

    @classmethod
    def start(
        cls,
        transport: Transport,
        blobs: BlobReader,
        repository: str,
        *,
        mount: str | None = None,
        from_repository: str | None = None,
    ) -> UploadSession | None:
        """Open an upload session; with ``mount``, None means the blob was mounted (201)."""
        check_repository(repository)
        scopes, params = _auth.push(repository), None
        if mount:
            check_digest(mount)
            check_repository(from_repository or "")
            params = {"mount": mount, "from": from_repository}
            scopes = scopes | _auth.pull(from_repository or "")
        reply = transport.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=scopes,
            params=params,
            headers={"Content-Length": "0"},
        )
        reply.close()
        if reply.status_code == 201 and mount:
            return None
        if reply.status_code == 202 and reply.headers.get("Location"):
            location = _same_origin(transport, urljoin(reply.url, reply.headers["Location"]))
            return cls(transport, blobs, repository, location)
        raise transport.fail(
            reply, f"a blob upload to {repository}", repository=repository, writing=True
        )

    def _url(self, **params: str) -> str:
        parts = urlsplit(self.location)
        query = urlencode(parse_qsl(parts.query, keep_blank_values=True) + list(params.items()))
        return urlunsplit(parts._replace(query=query))

    def _check(self, reply: Reply, ok: tuple[int, ...], what: str) -> None:
        if reply.status_code in ok:
            if reply.headers.get("Location"):
                location = urljoin(reply.url, reply.headers["Location"])
                self.location = _same_origin(self.transport, location)
            return
        if reply.status_code == 404 and reply.error_code() in _LOST_CODES:
            raise UploadSessionLost(
                f"{self.transport.display}: upload to {self.repository} was "
                f"lost by the registry ({reply.error_code()})"
            )
        if reply.status_code == 416:
            raise RangeRefused(f"{self.transport.display}: range refused")
        raise self.transport.fail(
            reply, f"{what} to {self.repository}", repository=self.repository, writing=True
        )

    def patch(
        self, data: Any, start: int | None, stop: Callable[[], bool] | None = None
    ) -> int | None:
        """Send bytes (``start`` given: one chunk with Content-Range) or a stream; the
        number of bytes the server now holds, when it says. ``stop`` cuts it off."""
        headers = {"Content-Type": "application/octet-stream"}
        if start is not None:
            headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
            headers["Content-Length"] = str(len(data))
        reply = self.transport.request(
            "PATCH",
            self.location,
            scopes=self._scopes,
            headers=headers,
            data=data,
            retry=False,
            stop=stop,
        )
        reply.close()
        self._check(reply, (202, 204), "a blob chunk")
        hint = (start or 0) + (len(data) if start is not None else 0)
        return _received(reply.headers.get("Range"), hint)

    def status(self, hint: int) -> int:
        """Bytes the server holds; raises UploadSessionLost when it forgot the upload."""
        reply = self.transport.request("GET", self.location, scopes=self._scopes)
        reply.close()
        self._check(reply, (204, 200), "the upload status")
        received = _received(reply.headers.get("Range"), hint)
        if received is None:
            raise UploadSessionLost(f"{self.transport.display}: upload status without a Range")
        return received

    def put(
        self,
        digest: str,
        data: bytes | Iterator[bytes] = b"",
        *,
        length: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Finalise the upload as ``digest`` with the remaining bytes, if any: bytes, or a
        stream of exactly ``length`` bytes (sent once, never replayed)."""
        streamed = not isinstance(data, bytes | bytearray)
        size = length if streamed else len(data)
        reply = self.transport.request(
            "PUT",
            self._url(digest=digest),
            scopes=self._scopes,
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            retry=not streamed,
            stop=stop,
        )
        reply.close()
        if reply.status_code in (201, 204):
            stored = reply.headers.get("Docker-Content-Digest")
            if stored and stored != digest:
                raise DigestMismatch(f"{self.transport.display} stored blob {digest} as {stored}")
            return
        if (
            reply.status_code == 404
            and reply.error_code() in _LOST_CODES
            and self.blobs.exists(self.repository, digest)
        ):
            return  # an earlier try did finish; only its answer was lost
        self._check(reply, (), f"blob {digest}")

    def cancel(self) -> None:
        """Abandon the upload (best effort: registries also expire them)."""
        try:
            self.transport.request(
                "DELETE", self.location, scopes=self._scopes, retry=False
            ).close()
        except RegistryError as exc:
            log.debug("cancel of upload to %s failed: %s", self.repository, exc)
