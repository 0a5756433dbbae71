"""Reading blobs: presence checks, streaming bodies, verified downloads, blob sources.

A blob is streamed, never held whole: :class:`BlobBody` yields the raw bytes
exactly as stored (no content decoding, ``Accept-Encoding: identity``, so a
compressing proxy cannot change what we hash). A body that breaks off raises
RegistryUnavailable; :class:`RemoteBlob` lets an upload reopen it where it
broke with a Range request, and copes with a server that ignores the Range.

A body is read as it arrives (``read1``), never waiting for a full buffer:
each 64 KiB received gives the request's guard another ``stall`` seconds, so a
trickling source is cut off, and a ``stop`` predicate given to :meth:`open`
cuts a stalled read within a fraction of a second (:class:`Stopped`).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

import urllib3

from common.errors import BlobNotFound, DigestMismatch, RegistryError, RegistryUnavailable
from common.registry import auth as _auth
from common.registry.deadline import DEADLINE, STOP, Stopped
from common.registry.digest import Hasher, check_digest
from common.registry.media import check_repository
from common.registry.reply import Reply
from common.registry.transport import STREAM_PROGRESS_BYTES, Transport

__all__ = ["BlobBody", "BlobReader", "BlobSource", "BytesSource", "RemoteBlob", "Stopped"]

READ_SIZE = 1024 * 1024
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-")


class BlobSource(Protocol):
    """Where blob bytes come from; ``open(offset)`` yields raw bytes from ``offset`` on."""

    where: str

    def open(self, offset: int = 0) -> Iterator[bytes]: ...


class BytesSource:
    """A blob already in memory."""

    where = "memory"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, offset: int = 0) -> Iterator[bytes]:
        for i in range(offset, len(self.data), READ_SIZE):
            yield self.data[i : i + READ_SIZE]


class BlobBody:
    """A streaming blob body: raw bytes exactly as stored (no content decoding)."""

    def __init__(self, transport: Transport, reply: Reply, skip: int, what: str) -> None:
        self._transport, self._reply, self._skip, self._what = transport, reply, skip, what
        self.size = int(reply.headers.get("Content-Length") or -1) - skip

    def skip(self, count: int) -> None:
        """Drop the first ``count`` bytes (the server sent the body from the start)."""
        self._skip = count

    def chunks(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """Yield the body as it arrives; a broken connection raises RegistryUnavailable
        (retryable), a stop request Stopped."""
        raw, guard = self._reply.raw, self._reply.guard
        moved = 0
        try:
            while True:
                chunk = raw.read1(size, decode_content=False)
                if not chunk:
                    if guard is not None:
                        guard.close()  # the connection goes back to the pool
                    return
                moved += len(chunk)
                if guard is not None and moved >= STREAM_PROGRESS_BYTES:
                    guard.extend(self._transport.stall)
                    moved = 0
                if self._skip:  # the server ignored our Range: drop what we already have
                    drop = min(self._skip, len(chunk))
                    chunk, self._skip = chunk[drop:], self._skip - drop
                    if not chunk:
                        continue
                yield chunk
        except (
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            tripped = guard.tripped if guard is not None else None
            if tripped == STOP:
                raise Stopped() from None
            if tripped == DEADLINE:
                # Not reopened at once (a trickling source stays slow); the item may be
                # tried again later.
                kib, stall = STREAM_PROGRESS_BYTES // 1024, self._transport.stall
                raise RegistryError(
                    f"{self._transport.display}: download of {self._what} stalled: less "
                    f"than {kib} KiB in {stall:.0f} s",
                    origin=self._transport,
                    retryable=True,
                ) from None
            raise RegistryUnavailable(
                f"{self._transport.display}: download of {self._what} broke off: "
                f"{type(exc).__name__}",
                origin=self._transport,
            ) from None

    def close(self) -> None:
        self._reply.close()


class BlobReader:
    """The blobs of one registry, read through its transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @property
    def display(self) -> str:
        return self.transport.display

    def exists(self, repository: str, digest: str) -> bool:
        """True when the blob is present (and linked) in ``repository``."""
        check_repository(repository)
        check_digest(digest)
        reply = self.transport.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=_auth.pull(repository), follow=True
        )
        reply.close()
        if reply.status_code == 200:
            return True
        if reply.status_code == 404:
            return False
        raise self.transport.fail(reply, f"blob {digest} in {repository}", repository=repository)

    def open(
        self,
        repository: str,
        digest: str,
        offset: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> BlobBody:
        """A streaming body of the blob from ``offset`` (Range request when > 0); ``stop``
        turning true cuts it off (Stopped)."""
        check_repository(repository)
        check_digest(digest)
        # identity: a compressing proxy would otherwise change the bytes we hash.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        reply = self.transport.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            headers=headers,
            scopes=_auth.pull(repository),
            stream=True,
            follow=True,
            stop=stop,
        )
        what = f"{repository}@{digest}"
        if reply.status_code == 206:
            m = _CONTENT_RANGE_RE.match(reply.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset:
                return BlobBody(self.transport, reply, 0, what)
            reply.close()
            body = self.open(repository, digest, 0, stop)
            body.skip(offset)
            return body
        if reply.status_code != 200:
            raise self.transport.fail(
                reply, f"blob {digest} in {repository}", repository=repository, missing=BlobNotFound
            )
        return BlobBody(self.transport, reply, offset, what)

    def download(self, repository: str, digest: str, out: BinaryIO) -> int:
        """Stream the blob into ``out``; raises DigestMismatch unless the bytes hash right."""
        hasher, count = Hasher(digest), 0
        body = self.open(repository, digest)
        try:
            for chunk in body.chunks():
                hasher.update(chunk)
                out.write(chunk)
                count += len(chunk)
        finally:
            body.close()
        if not hasher.matches:
            raise DigestMismatch(f"{self.display}: blob {digest} hashes to {hasher.digest}")
        return count


class RemoteBlob:
    """A blob on a registry, streamed; reopened with a Range request after a break."""

    def __init__(
        self,
        reader: BlobReader,
        repository: str,
        digest: str,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.reader, self.repository, self.digest = reader, repository, digest
        self.stop = stop
        self.where = f"{reader.display}/{repository}"

    def open(self, offset: int = 0) -> Iterator[bytes]:
        if self.stop is not None and self.stop():
            raise Stopped()
        body = self.reader.open(self.repository, self.digest, offset, self.stop)
        try:
            yield from body.chunks()
        finally:
            body.close()
