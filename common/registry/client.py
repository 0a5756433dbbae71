"""RegistryClient: one registry endpoint, as the rest of Ferry sees it.

A thin facade over parts that each do one thing and share one
:class:`~common.registry.transport.Transport` (connections, auth, retries,
network policy): :class:`~common.registry.listing.Lister` (catalog, tags),
:class:`~common.registry.manifests.ManifestClient`,
:class:`~common.registry.blob_reader.BlobReader` and
:class:`~common.registry.uploader.Uploader` (over
:class:`~common.registry.upload_session.UploadSession`). Callers that need
only one of them may use it directly (``client.blobs``, ``client.manifests``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from common.errors import FerryError
from common.registry.auth import Authenticator
from common.registry.blob_reader import BlobBody, BlobReader
from common.registry.listing import Lister
from common.registry.manifests import ManifestClient
from common.registry.media import Manifest, ManifestRef, check_repository
from common.registry.retry import RetryPolicy
from common.registry.transport import Transport
from common.registry.upload_session import UploadSession
from common.registry.uploader import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNKED_THRESHOLD,
    DEFAULT_MONOLITHIC_THRESHOLD,
    Uploader,
)
from common.settings import Settings


class RegistryClient:
    """A client for one registry; thread-safe; close it (or use ``with``) when done."""

    def __init__(
        self,
        url: str,
        *,
        monolithic_threshold: int = DEFAULT_MONOLITHIC_THRESHOLD,
        chunked_threshold: int | None = DEFAULT_CHUNKED_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **connection: Any,
    ) -> None:
        """``connection`` goes to :class:`Transport` (username, password, verify_tls,
        settings, timeout, retry, pool_size, token_cache); the rest to :class:`Uploader`."""
        self.transport = Transport(url, **connection)
        self.listing = Lister(self.transport)
        self.manifests = ManifestClient(self.transport)
        self.blobs = BlobReader(self.transport)
        self.uploader = Uploader(
            self.transport,
            self.blobs,
            monolithic_threshold=monolithic_threshold,
            chunked_threshold=chunked_threshold,
            chunk_size=chunk_size,
        )
        # Raw requests (registry-specific APIs, e.g. Harbor projects), the error for an
        # unexpected answer, and uploads are the components' own methods, bound here.
        self.request = self.transport.request
        self.fail = self.transport.fail
        self.upload_blob = self.uploader.upload

    # -- identity and lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        """``scheme://host[:port]`` of the registry."""
        return self.transport.url

    @property
    def key(self) -> str:
        """Identifies the registry (not the credentials): ``scheme://host[:port]``."""
        return self.transport.url

    @property
    def display(self) -> str:
        """``host[:port]``, as messages name the registry."""
        return self.transport.display

    @property
    def host(self) -> str:
        return self.transport.host

    @property
    def settings(self) -> Settings:
        return self.transport.settings

    @property
    def retry(self) -> RetryPolicy:
        return self.transport.retry

    @property
    def auth(self) -> Authenticator:
        return self.transport.auth

    def raised(self, exc: FerryError) -> bool:
        """True when ``exc`` came from a request to this client's registry."""
        return exc.origin is self.transport

    def close(self) -> None:
        """Release pooled connections."""
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r}, username={self.auth.username!r})"

    def scrub(self, text: str) -> str:
        """``text`` with every known secret (password, tokens) masked."""
        return self.transport.scrub(text)

    # -- checks ------------------------------------------------------------------------
    def ping(self) -> None:
        """Succeeds when the registry speaks API v2 and accepts the credentials."""
        reply = self.transport.request("GET", "/v2/")
        if reply.status_code != 200:
            raise self.transport.fail(reply, "the API root /v2/")
        reply.close()

    def check_push(self, repository: str) -> None:
        """Succeeds when the credentials may push to ``repository`` (an upload is started
        and cancelled; nothing stays on the registry)."""
        session = self.start_upload(check_repository(repository))
        if session is not None:
            session.cancel()

    # -- listing -----------------------------------------------------------------------
    def iter_repositories(self, prefix: str | None = None, page_size: int = 100) -> Iterator[str]:
        """Repository names from the catalog (below ``prefix``), one page at a time."""
        return self.listing.repositories(prefix, page_size)

    def iter_tags(self, repository: str, page_size: int = 100) -> Iterator[str]:
        """Tags of ``repository``, following pagination when the registry offers it."""
        return self.listing.tags(repository, page_size)

    # -- manifests ---------------------------------------------------------------------
    def head_manifest(self, repository: str, reference: str) -> ManifestRef | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        return self.manifests.head(repository, reference)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes and Content-Type; its digest is verified on the bytes."""
        return self.manifests.get(repository, reference)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Push the exact bytes under ``reference`` (tag or digest); returns the digest."""
        return self.manifests.put(repository, reference, manifest)

    # -- blobs -------------------------------------------------------------------------
    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when the blob is present (and linked) in ``repository``."""
        return self.blobs.exists(repository, digest)

    def open_blob(self, repository: str, digest: str, offset: int = 0) -> BlobBody:
        """A streaming body of the blob from ``offset`` (Range request when > 0)."""
        return self.blobs.open(repository, digest, offset)

    def download_blob(self, repository: str, digest: str, out: BinaryIO) -> int:
        """Stream the blob into ``out``; raises DigestMismatch unless the bytes hash right."""
        return self.blobs.download(repository, digest, out)

    def start_upload(
        self, repository: str, *, mount: str | None = None, from_repository: str | None = None
    ) -> UploadSession | None:
        """Open an upload session; with ``mount``, None means the blob was mounted (201)."""
        return UploadSession.start(
            self.transport, self.blobs, repository, mount=mount, from_repository=from_repository
        )

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; False (and nothing left open) when the registry declined."""
        session = self.start_upload(repository, mount=digest, from_repository=from_repository)
        if session is None:
            return True
        session.cancel()
        return False
