"""Manifests of one registry: HEAD, GET and PUT, byte for byte.

A manifest is fetched with every media type in ``Accept`` (or Distribution
answers with schema1, or with one platform of an index), read with a size
limit, and its digest verified on the exact bytes: against the reference when
that is a digest, else against ``Docker-Content-Digest``. It is pushed as the
same bytes with the same Content-Type, so digests on the target equal those
on the source.
"""

from __future__ import annotations

import logging
import time

from common.errors import DigestMismatch, ManifestNotFound
from common.registry import auth as _auth
from common.registry.digest import is_digest
from common.registry.media import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestRef,
    check_reference,
    check_repository,
)
from common.registry.reply import Reply
from common.registry.transport import Transport

log = logging.getLogger("ferry.registry")

# Distribution refuses a PUT with these while a concurrent push of the same
# content is half-written (it writes link files non-atomically).
_RACY_MANIFEST_CODES = frozenset({"DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"})


def _what(repository: str, reference: str) -> str:
    """How errors name the manifest: ``repo:tag`` or ``repo@digest``."""
    sep = "@" if is_digest(reference) else ":"
    return f"manifest {repository}{sep}{reference}"


class ManifestClient:
    """The manifests of one registry, through its transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _fetch(
        self, method: str, repository: str, reference: str, read_limit: int | None = None
    ) -> Reply:
        """HEAD or GET of a checked manifest name, every media type accepted."""
        check_repository(repository)
        check_reference(reference)
        return self.transport.request(
            method,
            f"/v2/{repository}/manifests/{reference}",
            scopes=_auth.pull(repository),
            headers={"Accept": MANIFEST_ACCEPT},
            follow=True,
            read_limit=read_limit,
        )

    def head(self, repository: str, reference: str) -> ManifestRef | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        reply = self._fetch("HEAD", repository, reference)
        reply.close()
        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise self.transport.fail(
                reply, f"manifest {repository}:{reference}", repository=repository
            )
        digest = reply.headers.get("Docker-Content-Digest", "")
        media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
        if is_digest(reference):
            digest = reference
        if not is_digest(digest) or not media_type:
            # Some registries omit the digest on HEAD: read the manifest instead.
            try:
                m = self.get(repository, reference)
            except ManifestNotFound:
                return None
            return ManifestRef(m.digest, m.media_type, len(m.raw))
        return ManifestRef(digest, media_type, int(reply.headers.get("Content-Length") or 0))

    def get(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes and Content-Type; its digest is verified on the bytes."""
        reply = self._fetch("GET", repository, reference, MAX_MANIFEST_BYTES)
        what = _what(repository, reference)
        if reply.status_code != 200:
            raise self.transport.fail(reply, what, repository=repository, missing=ManifestNotFound)
        header_digest = reply.headers.get("Docker-Content-Digest", "")
        if is_digest(reference):
            expected: str | None = reference
        else:
            expected = header_digest if is_digest(header_digest) else None
        try:
            return Manifest.from_bytes(reply.content, reply.headers.get("Content-Type"), expected)
        except DigestMismatch as exc:
            raise DigestMismatch(
                f"{self.transport.display}: {what}: {exc}", origin=self.transport
            ) from None

    def put(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Push the exact bytes under ``reference`` (tag or digest); returns the digest."""
        check_repository(repository)
        check_reference(reference)
        what = _what(repository, reference)
        attempt = 0
        while True:
            attempt += 1
            reply = self.transport.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                scopes=_auth.push(repository),
                headers={"Content-Type": manifest.media_type},
                data=manifest.raw,
            )
            reply.close()
            if reply.status_code in (200, 201, 202):
                break
            code = reply.error_code()
            wait = self.transport.retry.after_race(attempt)
            if reply.status_code == 400 and code in _RACY_MANIFEST_CODES and wait is not None:
                # Our bytes hash right, so this is the registry tripping over a concurrent
                # push of the same content.
                log.info("%s for %s (concurrent push?); retry in %.2fs", code, what, wait)
                time.sleep(wait)
                continue
            raise self.transport.fail(
                reply, what, repository=repository, writing=True, manifest_put=True
            )
        stored = reply.headers.get("Docker-Content-Digest")
        if stored and is_digest(stored) and stored != manifest.digest:
            raise DigestMismatch(
                f"{self.transport.display} stored {what} as {stored}, not {manifest.digest}",
                origin=self.transport,
            )
        return manifest.digest
