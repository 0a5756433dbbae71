"""Blob operations of :class:`~common.registry.client.RegistryClient`.

Downloads stream (never a whole blob in memory). Uploads pick one of three
ways by size, and always check the digest of the bytes read before the
upload is finalised (``PUT ?digest=``); a mismatch cancels the upload:

* ``size <= monolithic_threshold`` (16 MiB): read into memory, hash, then
  ``POST`` + one ``PUT``. Most blobs are small; holding them lets a corrupted
  source be caught before anything is sent and a failed PUT be replayed
  without reading the source again.
* up to ``chunked_threshold`` (4 GiB): one streamed ``PATCH`` of the whole
  blob (chunked transfer encoding, as ``docker push`` does), then
  ``PUT ?digest=``. Fastest and leanest (see ops/bench); restarted from zero
  if it breaks.
* above it: ``PATCH`` chunks of ``chunk_size`` (16 MiB) with
  ``Content-Range``, always to the latest ``Location``; after a broken chunk
  or a 416 the upload resumes from the server's ``Range``; an upload the
  registry forgot (``BLOB_UPLOAD_UNKNOWN``/``INVALID``) restarts from zero.
  For very large blobs, resuming is worth more than the ~25 % speed it costs.

Memory per blob in flight: at most ``monolithic_threshold`` x 2 (small blobs),
1 MiB (streamed), or ``chunk_size`` + 1 MiB (chunked).
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3

from common.errors import (
    BlobNotFound,
    DigestMismatch,
    RegistryError,
    RegistryUnavailable,
    UploadError,
)
from common.registry import auth as _auth
from common.registry.media import check_digest, check_repository, new_hasher

if TYPE_CHECKING:
    from common.registry.client import RegistryClient

log = logging.getLogger("ferry.registry.blobs")

MiB = 1024 * 1024
DEFAULT_MONOLITHIC_THRESHOLD = 16 * MiB
DEFAULT_CHUNKED_THRESHOLD = 4 * 1024 * MiB
DEFAULT_CHUNK_SIZE = 16 * MiB
READ_SIZE = 1 * MiB
MAX_RESTARTS = 2
_LOST_CODES = ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
_RANGE_RE = re.compile(r"^(?:bytes[= ])?(\d+)-(\d+)")


class Stopped(Exception):
    """``should_stop()`` asked to stop; the upload in progress was cancelled."""


class UploadSessionLost(UploadError):
    """The registry no longer knows the upload session (it must start again)."""

    retryable = True


class _RangeRefused(UploadError):
    """416: the registry's idea of the offset differs from ours."""


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


class RemoteBlob:
    """A blob on a registry, streamed; reopened with a Range request after a break."""

    def __init__(self, client: RegistryClient, repository: str, digest: str) -> None:
        self.client, self.repository, self.digest = client, repository, digest
        self.where = f"{client.display}/{repository}"

    def open(self, offset: int = 0) -> Iterator[bytes]:
        reader = self.client.open_blob(self.repository, self.digest, offset)
        try:
            yield from reader.chunks()
        finally:
            reader.close()


class BlobReader:
    """A streaming blob body: raw bytes exactly as stored (no content decoding)."""

    def __init__(self, client: RegistryClient, resp: requests.Response, skip: int, what: str):
        self._client, self._resp, self._skip, self._what = client, resp, skip, what
        self.size = int(resp.headers.get("Content-Length") or -1) - skip

    def chunks(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """Yield the body; a broken connection raises RegistryUnavailable (retryable)."""
        raw = self._resp.raw
        try:
            while True:
                chunk = raw.read(size, decode_content=False)
                if not chunk:
                    return
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
            requests.RequestException,
        ) as exc:
            err = RegistryUnavailable(
                f"{self._client.display}: download of {self._what} broke off: {type(exc).__name__}"
            )
            err.origin = self._client  # type: ignore[attr-defined]
            raise err from None

    def close(self) -> None:
        self._resp.close()


def _received(range_header: str | None, hint: int) -> int | None:
    """Bytes the server holds per its ``Range: 0-N`` header (``0-0`` may mean none)."""
    m = _RANGE_RE.match((range_header or "").strip())
    if not m:
        return None
    end = int(m.group(2))
    if end == 0:
        return 1 if hint == 1 else 0
    return end + 1


def _error_code(resp: requests.Response) -> str:
    try:
        return str(resp.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


class UploadSession:
    """One blob upload session on the target; ``location`` is always the latest one."""

    def __init__(self, client: RegistryClient, repository: str, location: str) -> None:
        self.client, self.repository, self.location = client, repository, location
        self._scopes = _auth.push(repository)

    def _url(self, **params: str) -> str:
        parts = urlsplit(self.location)
        query = urlencode(parse_qsl(parts.query, keep_blank_values=True) + list(params.items()))
        return urlunsplit(parts._replace(query=query))

    def _check(self, resp: requests.Response, ok: tuple[int, ...], what: str) -> None:
        if resp.status_code in ok:
            if resp.headers.get("Location"):
                self.location = urljoin(resp.url, resp.headers["Location"])
            return
        if resp.status_code == 404 and _error_code(resp) in _LOST_CODES:
            raise UploadSessionLost(
                f"{self.client.display}: upload to {self.repository} was "
                f"lost by the registry ({_error_code(resp)})"
            )
        if resp.status_code == 416:
            raise _RangeRefused(f"{self.client.display}: range refused")
        raise self.client.fail(
            resp, f"{what} to {self.repository}", repository=self.repository, writing=True
        )

    def patch(self, data: Any, start: int | None) -> int | None:
        """Send bytes (``start`` given: one chunk with Content-Range) or a stream; the
        number of bytes the server now holds, when it says."""
        headers = {"Content-Type": "application/octet-stream"}
        if start is not None:
            headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
            headers["Content-Length"] = str(len(data))
        resp = self.client.request(
            "PATCH", self.location, scopes=self._scopes, headers=headers, data=data, retry=False
        )
        resp.close()
        self._check(resp, (202, 204), "a blob chunk")
        hint = (start or 0) + (len(data) if start is not None else 0)
        return _received(resp.headers.get("Range"), hint)

    def status(self, hint: int) -> int:
        """Bytes the server holds; raises UploadSessionLost when it forgot the upload."""
        resp = self.client.request("GET", self.location, scopes=self._scopes)
        resp.close()
        self._check(resp, (204, 200), "the upload status")
        received = _received(resp.headers.get("Range"), hint)
        if received is None:
            raise UploadSessionLost(f"{self.client.display}: upload status without a Range")
        return received

    def put(self, digest: str, data: bytes = b"") -> None:
        """Finalise the upload as ``digest`` (with the remaining bytes, if any)."""
        resp = self.client.request(
            "PUT",
            self._url(digest=digest),
            scopes=self._scopes,
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        resp.close()
        if resp.status_code in (201, 204):
            stored = resp.headers.get("Docker-Content-Digest")
            if stored and stored != digest:
                raise DigestMismatch(f"{self.client.display} stored blob {digest} as {stored}")
            return
        if (
            resp.status_code == 404
            and _error_code(resp) in _LOST_CODES
            and self.client.blob_exists(self.repository, digest)
        ):
            return  # an earlier try did finish; only its answer was lost
        self._check(resp, (), f"blob {digest}")

    def cancel(self) -> None:
        """Abandon the upload (best effort: registries also expire them)."""
        try:
            self.client.request("DELETE", self.location, scopes=self._scopes, retry=False).close()
        except RegistryError as exc:
            log.debug("cancel of upload to %s failed: %s", self.repository, exc)


class _Refill:
    """Reads exact-size pieces from a BlobSource, reopening it at the offset after a break."""

    def __init__(self, source: BlobSource, client: RegistryClient) -> None:
        self.source, self.client = source, client
        self.pos = 0  # bytes taken from the source so far (including ``rest``)
        self.rest: bytes = b""
        self.failures = 0
        self.it = source.open(0)

    def read(self, n: int) -> bytearray:
        """Up to ``n`` bytes (fewer only at the end) in one preallocated buffer."""
        out = bytearray(n)
        pos = min(n, len(self.rest))
        out[:pos] = self.rest[:pos]
        self.rest = self.rest[pos:]
        while pos < n:
            try:
                chunk = next(self.it)
            except StopIteration:
                break
            except RegistryUnavailable:
                self.failures += 1
                if self.failures >= self.client.retry.attempts:
                    raise
                self.it.close()
                time.sleep(self.client.retry.delay(self.failures))
                log.info("source of a blob broke at byte %d; reopening there", self.pos)
                self.it = self.source.open(self.pos)
                continue
            self.pos += len(chunk)
            take = min(len(chunk), n - pos)
            out[pos : pos + take] = chunk[:take] if take < len(chunk) else chunk
            self.rest = chunk[take:]
            pos += take
        del out[pos:]
        return out

    def close(self) -> None:
        self.it.close()


def _mismatch(
    digest: str, source: BlobSource, actual: str, count: int, size: int
) -> DigestMismatch:
    got = f"{count} bytes" + (f" of {size}" if size >= 0 and count != size else "")
    return DigestMismatch(
        f"blob {digest} read from {source.where} hashes to {actual} ({got}); upload cancelled"
    )


class BlobOps:
    """Blob methods mixed into RegistryClient (uses its ``request`` and ``fail``)."""

    def __init__(
        self,
        *,
        monolithic_threshold: int = DEFAULT_MONOLITHIC_THRESHOLD,
        chunked_threshold: int | None = DEFAULT_CHUNKED_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.monolithic_threshold = monolithic_threshold
        self.chunked_threshold = chunked_threshold
        self.chunk_size = chunk_size

    def blob_exists(self: RegistryClient, repository: str, digest: str) -> bool:  # type: ignore[misc]
        """True when the blob is present (and linked) in ``repository``."""
        check_repository(repository)
        check_digest(digest)
        resp = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=_auth.pull(repository), follow=True
        )
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(resp, f"blob {digest} in {repository}", repository=repository)

    def open_blob(
        self: RegistryClient,
        repository: str,
        digest: str,  # type: ignore[misc]
        offset: int = 0,
    ) -> BlobReader:
        """A streaming reader of the blob from ``offset`` (Range request when > 0)."""
        check_repository(repository)
        check_digest(digest)
        # identity: a compressing proxy would otherwise change the bytes we hash.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        resp = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            headers=headers,
            scopes=_auth.pull(repository),
            stream=True,
            follow=True,
        )
        if resp.status_code == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset:
                return BlobReader(self, resp, 0, f"{repository}@{digest}")
            resp.close()
            reader = self.open_blob(repository, digest, 0)
            reader._skip = offset
            return reader
        if resp.status_code != 200:
            raise self.fail(
                resp, f"blob {digest} in {repository}", repository=repository, missing=BlobNotFound
            )
        return BlobReader(self, resp, offset, f"{repository}@{digest}")

    def download_blob(
        self: RegistryClient,
        repository: str,
        digest: str,  # type: ignore[misc]
        out: BinaryIO,
    ) -> int:
        """Stream the blob into ``out``; raises DigestMismatch unless the bytes hash right."""
        hasher, count = new_hasher(digest), 0
        reader = self.open_blob(repository, digest)
        try:
            for chunk in reader.chunks():
                hasher.update(chunk)
                out.write(chunk)
                count += len(chunk)
        finally:
            reader.close()
        actual = f"{digest.split(':')[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(f"{self.display}: blob {digest} hashes to {actual}")
        return count

    def start_upload(
        self: RegistryClient,
        repository: str,
        *,  # type: ignore[misc]
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
        resp = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=scopes,
            params=params,
            headers={"Content-Length": "0"},
        )
        resp.close()
        if resp.status_code == 201 and mount:
            return None
        if resp.status_code == 202 and resp.headers.get("Location"):
            return UploadSession(self, repository, urljoin(resp.url, resp.headers["Location"]))
        raise self.fail(resp, f"a blob upload to {repository}", repository=repository, writing=True)

    def mount_blob(
        self: RegistryClient,
        repository: str,
        digest: str,  # type: ignore[misc]
        from_repository: str,
    ) -> bool:
        """Cross-repository mount; False (and nothing left open) when the registry declined."""
        session = self.start_upload(repository, mount=digest, from_repository=from_repository)
        if session is None:
            return True
        session.cancel()
        return False

    def upload_blob(
        self: RegistryClient,  # type: ignore[misc]
        repository: str,
        digest: str,
        size: int,
        source: BlobSource | bytes,
        *,
        session: UploadSession | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Upload a blob whose bytes must hash to ``digest``; returns the bytes sent.

        ``size`` is the expected size (-1 if unknown). ``session`` continues an
        upload already opened (e.g. a declined mount). Raises DigestMismatch
        (nothing finalised), Stopped, or a RegistryError.
        """
        check_digest(digest)
        stop = should_stop or (lambda: False)
        sent_cb = on_sent or (lambda n: None)
        if isinstance(source, bytes | bytearray):
            source = BytesSource(bytes(source))
        try:
            if 0 <= size <= self.monolithic_threshold:
                data = _read_all(source, size, self.retry)
                actual = f"{digest.split(':')[0]}:{_hex(digest, data)}"
                if actual != digest or len(data) != size:
                    raise _mismatch(digest, source, actual, len(data), size)
                if stop():
                    raise Stopped()
                sent = self._upload_bytes(repository, digest, data, session)
                session = None
                sent_cb(sent)
                return sent
        except BaseException:
            if session is not None:
                session.cancel()
            raise
        if self.chunked_threshold is not None and size > self.chunked_threshold:
            return self._upload_loop(
                repository, digest, size, source, session, stop, sent_cb, self._chunked_once
            )
        return self._upload_loop(
            repository, digest, size, source, session, stop, sent_cb, self._streamed_once
        )

    def _upload_bytes(
        self: RegistryClient,
        repository: str,
        digest: str,  # type: ignore[misc]
        data: bytes,
        session: UploadSession | None,
    ) -> int:
        for restart in range(MAX_RESTARTS + 1):
            session = session or self.start_upload(repository)
            assert session is not None
            try:
                session.put(digest, data)
                return len(data)
            except UploadSessionLost:
                session = None
                if restart == MAX_RESTARTS:
                    raise
            except BaseException:
                session.cancel()
                raise
        raise AssertionError("unreachable")

    def _upload_loop(
        self: RegistryClient,
        repository: str,
        digest: str,  # type: ignore[misc]
        size: int,
        source: BlobSource,
        session: UploadSession | None,
        stop: Callable[[], bool],
        on_sent: Callable[[int], None],
        once: Callable[..., int],
    ) -> int:
        restarts = 0
        while True:
            session = session or self.start_upload(repository)
            assert session is not None
            try:
                return once(session, digest, size, source, stop, on_sent)
            except (UploadSessionLost, RegistryUnavailable) as exc:
                session.cancel()
                session = None
                if restarts >= MAX_RESTARTS:
                    raise
                restarts += 1
                log.info("upload of %s to %s restarts from zero: %s", digest, repository, exc)
                time.sleep(self.retry.delay(restarts))
            except BaseException:
                session.cancel()
                raise

    def _streamed_once(
        self: RegistryClient,
        session: UploadSession,  # type: ignore[misc]
        digest: str,
        size: int,
        source: BlobSource,
        stop: Callable[[], bool],
        on_sent: Callable[[int], None],
    ) -> int:
        hasher, count = new_hasher(digest), 0

        def body() -> Iterator[bytes]:
            nonlocal count
            chunks = source.open(0)
            try:
                for chunk in chunks:
                    if stop():
                        raise Stopped()
                    hasher.update(chunk)
                    count += len(chunk)
                    yield chunk
                    on_sent(len(chunk))
            finally:
                chunks.close()

        stream = body()
        try:
            session.patch(stream, None)
        finally:
            stream.close()
        actual = f"{digest.split(':')[0]}:{hasher.hexdigest()}"
        if actual != digest or (size >= 0 and count != size):
            raise _mismatch(digest, source, actual, count, size)
        session.put(digest)
        return count

    def _chunked_once(
        self: RegistryClient,
        session: UploadSession,  # type: ignore[misc]
        digest: str,
        size: int,
        source: BlobSource,
        stop: Callable[[], bool],
        on_sent: Callable[[int], None],
    ) -> int:
        assert self.chunk_size
        hasher, offset, sent = new_hasher(digest), 0, 0
        reader = _Refill(source, self)
        try:
            while True:
                if stop():
                    raise Stopped()
                want = self.chunk_size if size < 0 else min(self.chunk_size, size - offset)
                chunk = b""  # let the previous chunk go before reading the next one
                chunk = reader.read(want) if want > 0 else b""
                if not chunk:
                    break
                hasher.update(chunk)
                sent += self._send_chunk(session, chunk, offset, on_sent)
                offset += len(chunk)
            extra = reader.read(1) if size >= 0 else b""
        finally:
            reader.close()
        actual = f"{digest.split(':')[0]}:{hasher.hexdigest()}"
        if extra or actual != digest or (size >= 0 and offset != size):
            raise _mismatch(digest, source, actual, offset + len(extra), size)
        session.put(digest)
        return sent

    def _send_chunk(
        self: RegistryClient,
        session: UploadSession,  # type: ignore[misc]
        chunk: bytes | bytearray,
        start: int,
        on_sent: Callable[[int], None],
    ) -> int:
        """PATCH one chunk, resuming from the server's Range after a failure."""
        pos, sent, failures = 0, 0, 0
        while pos < len(chunk):
            part = chunk[pos:] if pos else chunk
            try:
                received = session.patch(part, start + pos)
                sent += len(part)
                on_sent(len(part))
                if received is None:
                    received = start + len(chunk)
            except (RegistryUnavailable, _RangeRefused) as exc:
                failures += 1
                if failures >= self.retry.attempts:
                    raise
                if isinstance(exc, RegistryUnavailable):
                    time.sleep(self.retry.delay(failures))
                received = session.status(start + pos)
                log.info(
                    "chunk at byte %d of %s failed (%s); server holds %d bytes, resuming",
                    start + pos,
                    session.repository,
                    exc,
                    received,
                )
            if not start <= received <= start + len(chunk):
                raise UploadSessionLost(
                    f"{self.display}: server holds {received} bytes, expected "
                    f"{start}..{start + len(chunk)}"
                )
            pos = received - start
        return sent


def _hex(digest: str, data: bytes) -> str:
    h = new_hasher(digest)
    h.update(data)
    return h.hexdigest()


def _read_all(source: BlobSource, size: int, retry: Any) -> bytes:
    """The whole (small) blob; reading stops one byte past ``size`` to catch oversize data."""
    for attempt in range(1, retry.attempts + 1):
        parts: list[bytes] = []
        have = 0
        it = source.open(0)
        try:
            for chunk in it:
                parts.append(chunk)
                have += len(chunk)
                if have > size:
                    break
            return b"".join(parts)
        except RegistryUnavailable:
            if attempt == retry.attempts:
                raise
            time.sleep(retry.delay(attempt))
        finally:
            it.close()
    raise AssertionError("unreachable")
