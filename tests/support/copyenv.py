"""Helpers for the registry client and copier tests (their fixtures: tests/registry/conftest.py)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path

from common.registry import RegistryClient, RetryPolicy
from common.settings import Settings, load_settings
from tests.support.registry import RegistryServer

FAST_RETRY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=5)

# Everything that must never appear in a log line or an error message.
SECRETS: set[str] = set()


def secret(value: str) -> str:
    """Register ``value`` (and its Basic-auth encodings) as a secret; returns it."""
    SECRETS.add(value)
    return value


def register_user(user: str, password: str) -> None:
    secret(password)
    SECRETS.add(base64.b64encode(f"{user}:{password}".encode()).decode())


def mode(chunk: int | None, threshold: int = 10_000) -> dict[str, int | None]:
    """Client options for blobs above ``threshold``: ``chunk`` -> chunked PATCH with
    Content-Range of that size; None -> one streamed PATCH."""
    if chunk:
        return {"monolithic_threshold": threshold, "chunked_threshold": 0, "chunk_size": chunk}
    return {"monolithic_threshold": threshold, "chunked_threshold": None}


def settings(**env: str) -> Settings:
    """Settings from an explicit environment (never the process's)."""
    return load_settings(env)


def unique(prefix: str = "r") -> str:
    """A repository path segment no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def client(
    server_or_url: RegistryServer | str, user: str | None = None, password: str | None = None, **kw
) -> RegistryClient:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
    if isinstance(server_or_url, RegistryServer) and user and password is None:
        password = server_or_url.users[user]
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("settings", settings())
    return RegistryClient(url, username=user, password=password, **kw)


def blob_path(server: RegistryServer, digest: str) -> Path:
    """Where docker-registry's filesystem driver keeps a blob's bytes."""
    algo, hexd = digest.split(":")
    return server.storage / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"


def corrupt_blob(server: RegistryServer, digest: str) -> None:
    """Flip bytes of a stored blob (same length) so it no longer matches its digest."""
    path = blob_path(server, digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@dataclass
class Tenants:
    """Two registries, each with its own htpasswd user: two tenants."""

    src: RegistryServer
    dst: RegistryServer
    src_user: str = "alice"
    dst_user: str = "bob"

    def src_client(self, **kw) -> RegistryClient:
        return client(self.src, self.src_user, **kw)

    def dst_client(self, **kw) -> RegistryClient:
        return client(self.dst, self.dst_user, **kw)
