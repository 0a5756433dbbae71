"""Uploading a blob: three ways by size, the digest always checked before the PUT.

Uploads pick one of three ways by size, and always check the digest of the
bytes read before the upload is finalised (``PUT ?digest=``); a mismatch
cancels the upload:

* ``size <= monolithic_threshold`` (4 MiB): read into memory, hash, then
  ``POST`` + one ``PUT``. Most blobs are small; holding them lets a corrupted
  source be caught before anything is sent and a failed PUT be replayed
  without reading the source again.
* up to ``chunked_threshold`` (4 GiB): the session's one ``PUT ?digest=``
  carries the whole blob as it is read, with its ``Content-Length`` (no
  chunked encoding, which not every registry takes on a PUT): the same two
  requests as a small blob, at streaming's memory. The last piece is sent
  only once every byte hashed right, so a corrupted source never completes
  an upload. Restarted from zero if it breaks. A blob of unknown size goes
  as one streamed ``PATCH`` (chunked, as ``docker push`` does), then the
  ``PUT``.
* above it: ``PATCH`` chunks of ``chunk_size`` (16 MiB) with
  ``Content-Range``, always to the latest ``Location``; after a broken chunk
  or a 416 the upload resumes from the server's ``Range``; an upload the
  registry forgot (``BLOB_UPLOAD_UNKNOWN``/``INVALID``) restarts from zero.
  For very large blobs, resuming is worth more than the ~25 % speed it costs.

Memory per blob in flight: at most ``monolithic_threshold`` x 2 (small blobs),
1 MiB (streamed), or ``chunk_size`` + 1 MiB (chunked). How often a source is
reopened, a chunk resumed or an upload restarted is the transport's
:class:`~common.registry.retry.RetryPolicy`'s decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from common.errors import DigestMismatch, RegistryUnavailable
from common.registry.blob_reader import BlobReader, BlobSource, BytesSource, Stopped
from common.registry.digest import Hasher, algorithm_of, check_digest, digest_of
from common.registry.retry import RetryPolicy
from common.registry.transport import Transport
from common.registry.upload_session import RangeRefused, UploadSession, UploadSessionLost

log = logging.getLogger("ferry.registry.blobs")

MiB = 1024 * 1024
# Kept small: a copy holds up to four blobs at once, and a worker runs several copies.
DEFAULT_MONOLITHIC_THRESHOLD = 4 * MiB
DEFAULT_CHUNKED_THRESHOLD = 4 * 1024 * MiB
DEFAULT_CHUNK_SIZE = 16 * MiB

Stop = Callable[[], bool]
OnSent = Callable[[int], None]


@dataclass(frozen=True)
class _Blob:
    """One blob to send: the digest and size its bytes must have, where they come from,
    when to stop, and whom to tell about bytes sent."""

    digest: str
    size: int  # -1 when unknown
    source: BlobSource
    stop: Stop
    on_sent: OnSent


# One way of sending a blob through an open session; returns the bytes sent.
_Way = Callable[[UploadSession, _Blob], int]


class _Refill:
    """Reads exact-size pieces from a BlobSource, reopening it at the offset after a break."""

    def __init__(self, source: BlobSource, retry: RetryPolicy) -> None:
        self.source, self.retry = source, retry
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
                wait = self.retry.after_break(self.failures)
                if wait is None:
                    raise
                self.it.close()
                time.sleep(wait)
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


def _read_all(source: BlobSource, size: int, retry: RetryPolicy) -> bytes:
    """The whole (small) blob; reading stops one byte past ``size`` to catch oversize data."""
    attempt = 0
    while True:
        attempt += 1
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
            wait = retry.after_break(attempt)
            if wait is None:
                raise
            time.sleep(wait)
        finally:
            it.close()


def _mismatch(
    digest: str, source: BlobSource, actual: str, count: int, size: int
) -> DigestMismatch:
    got = f"{count} bytes" + (f" of {size}" if size >= 0 and count != size else "")
    return DigestMismatch(
        f"blob {digest} read from {source.where} hashes to {actual} ({got}); upload cancelled"
    )


class _Abandoned(Exception):
    """Raised inside a streamed body to cut its request off (the bytes were wrong)."""


class _Feed:
    """A blob's bytes as they are read, hashed and counted, for a streamed request.

    One piece is always held back; ``guarded``, the last one goes only once every
    byte hashed right, and wrong bytes cut the request off instead (a PUT that
    finalises cannot complete with them).
    """

    def __init__(self, blob: _Blob, *, guarded: bool) -> None:
        self.blob, self.guarded = blob, guarded
        self.hasher, self.count = Hasher(blob.digest), 0

    def wrong(self) -> bool:
        size = self.blob.size
        return not self.hasher.matches or (size >= 0 and self.count != size)

    def checked(self) -> int:
        """The bytes read, or DigestMismatch."""
        if self.wrong():
            blob = self.blob
            raise _mismatch(blob.digest, blob.source, self.hasher.digest, self.count, blob.size)
        return self.count

    def __iter__(self) -> Iterator[bytes]:
        blob, held = self.blob, b""
        chunks = blob.source.open(0)
        try:
            for chunk in chunks:
                if blob.stop():
                    raise Stopped()
                self.hasher.update(chunk)
                self.count += len(chunk)
                if 0 <= blob.size < self.count:
                    break  # more than the blob's size: wrong already
                if held:
                    yield held
                    blob.on_sent(len(held))
                held = chunk
            if self.guarded and self.wrong():
                raise _Abandoned()
            if held:
                yield held
                blob.on_sent(len(held))
        finally:
            chunks.close()


class Uploader:
    """Sends blobs to one registry the way their size calls for."""

    def __init__(
        self,
        transport: Transport,
        blobs: BlobReader,
        *,
        monolithic_threshold: int = DEFAULT_MONOLITHIC_THRESHOLD,
        chunked_threshold: int | None = DEFAULT_CHUNKED_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.transport, self.blobs = transport, blobs
        self.retry = transport.retry
        self.monolithic_threshold = monolithic_threshold
        self.chunked_threshold = chunked_threshold
        self.chunk_size = chunk_size

    def upload(
        self,
        repository: str,
        digest: str,
        size: int,
        source: BlobSource | bytes,
        *,
        session: UploadSession | None = None,
        should_stop: Stop | None = None,
        on_sent: OnSent | None = None,
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
                actual = digest_of(data, algorithm_of(digest))
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
        way = self._streamed_once
        if self.chunked_threshold is not None and size > self.chunked_threshold:
            way = self._chunked_once
        blob = _Blob(digest, size, source, stop, sent_cb)
        return self._upload_loop(repository, blob, session, way)

    def _open(self, repository: str) -> UploadSession:
        session = UploadSession.start(self.transport, self.blobs, repository)
        assert session is not None  # None only answers a mount
        return session

    def _upload_bytes(
        self, repository: str, digest: str, data: bytes, session: UploadSession | None
    ) -> int:
        restarts = 0
        while True:
            session = session or self._open(repository)
            try:
                session.put(digest, data)
                return len(data)
            except UploadSessionLost:
                session = None
                if not self.retry.may_restart(restarts):
                    raise
                restarts += 1
            except BaseException:
                session.cancel()
                raise

    def _upload_loop(
        self, repository: str, blob: _Blob, session: UploadSession | None, way: _Way
    ) -> int:
        restarts = 0
        while True:
            session = session or self._open(repository)
            try:
                return way(session, blob)
            except (UploadSessionLost, RegistryUnavailable) as exc:
                session.cancel()
                session = None
                if blob.stop():
                    raise Stopped() from None  # a Stop cut the source or the target off
                wait = self.retry.after_restart(restarts)
                if wait is None:
                    raise
                restarts += 1
                log.info("upload of %s to %s restarts from zero: %s", blob.digest, repository, exc)
                time.sleep(wait)
            except BaseException:
                session.cancel()
                raise

    def _streamed_once(self, session: UploadSession, blob: _Blob) -> int:
        if blob.size < 0:
            return self._patched_once(session, blob)
        feed = _Feed(blob, guarded=True)
        stream = iter(feed)
        try:
            session.put(blob.digest, stream, length=blob.size, stop=blob.stop)
        except _Abandoned:
            pass  # the bytes were wrong: checked() says how
        finally:
            stream.close()
        return feed.checked()

    def _patched_once(self, session: UploadSession, blob: _Blob) -> int:
        feed = _Feed(blob, guarded=False)
        stream = iter(feed)
        try:
            session.patch(stream, None, stop=blob.stop)
        finally:
            stream.close()
        count = feed.checked()
        session.put(blob.digest)
        return count

    def _chunked_once(self, session: UploadSession, blob: _Blob) -> int:
        assert self.chunk_size
        size = blob.size
        hasher, offset, sent = Hasher(blob.digest), 0, 0
        reader = _Refill(blob.source, self.retry)
        try:
            while True:
                if blob.stop():
                    raise Stopped()
                want = self.chunk_size if size < 0 else min(self.chunk_size, size - offset)
                chunk = b""  # let the previous chunk go before reading the next one
                chunk = reader.read(want) if want > 0 else b""
                if not chunk:
                    break
                hasher.update(chunk)
                sent += self._send_chunk(session, chunk, offset, blob.on_sent)
                offset += len(chunk)
            extra = reader.read(1) if size >= 0 else b""
        finally:
            reader.close()
        if extra or not hasher.matches or (size >= 0 and offset != size):
            raise _mismatch(blob.digest, blob.source, hasher.digest, offset + len(extra), size)
        session.put(blob.digest)
        return sent

    def _send_chunk(
        self, session: UploadSession, chunk: bytes | bytearray, start: int, on_sent: OnSent
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
            except (RegistryUnavailable, RangeRefused) as exc:
                failures += 1
                wait = self.retry.after_break(failures)
                if wait is None:
                    raise
                if isinstance(exc, RegistryUnavailable):
                    time.sleep(wait)
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
                    f"{self.transport.display}: server holds {received} bytes, expected "
                    f"{start}..{start + len(chunk)}"
                )
            pos = received - start
        return sent
