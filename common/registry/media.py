"""Media types, manifests as exact bytes, names, and what a tag points to.

A :class:`Manifest` is the registry's bytes plus the Content-Type it was
served with; Ferry never re-serialises it, so digests on the target equal
digests on the source. Digests themselves live in :mod:`common.registry.digest`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from common.domain.vocab import ArtifactKind
from common.errors import DigestMismatch, ManifestInvalid
from common.registry.digest import algorithm_of, check_digest, digest_of, is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# Without every one of these, Distribution silently answers with schema1 or
# with one platform of a multi-arch image.
MANIFEST_ACCEPT = ", ".join(
    [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1]
)

# OCI distribution-spec: registries should accept manifests of at least 4 MiB.
# A bigger answer is refused rather than held in memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


# What a tag points to: the one vocabulary, under the name the registry code uses.
Kind = ArtifactKind


def is_repository(name: object) -> bool:
    """True when ``name`` is a valid repository name (a full match, at most 255 characters)."""
    return isinstance(name, str) and len(name) <= 255 and _REPO_RE.fullmatch(name) is not None


def is_tag(name: object) -> bool:
    """True when ``name`` is a valid tag (a full match: no NUL, newline or 129th character)."""
    return isinstance(name, str) and _TAG_RE.fullmatch(name) is not None


def check_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository name (lowercase path components)."""
    # fullmatch: `$` with match() would let a trailing newline through.
    if not is_repository(name):
        raise ManifestInvalid(f"invalid repository name {str(name)[:80]!r}")
    return name


def check_reference(ref: str) -> str:
    """Return ``ref`` if it is a valid tag or digest."""
    if not (is_digest(ref) or is_tag(ref)):
        raise ManifestInvalid(f"invalid tag or digest {str(ref)[:80]!r}")
    return ref


@dataclass(frozen=True)
class Descriptor:
    """A content reference inside a manifest."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any, where: str) -> Descriptor:
        """Validate one descriptor of a source manifest (digest, size) before it is used."""
        if not isinstance(raw, dict):
            raise ManifestInvalid(f"malformed descriptor in {where}")
        size = raw.get("size")
        if not isinstance(size, int) or size < 0:
            raise ManifestInvalid(f"descriptor without a valid size in {where}")
        urls = raw.get("urls") or ()
        return cls(
            media_type=str(raw.get("mediaType") or ""),
            digest=check_digest(raw.get("digest"), where),
            size=size,
            urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
        )


@dataclass(frozen=True)
class ManifestRef:
    """What a HEAD on a manifest says: digest, media type and size."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry served it; ``digest`` was verified on the bytes."""

    raw: bytes
    media_type: str
    digest: str

    @classmethod
    def from_bytes(
        cls, raw: bytes, content_type: str | None, digest: str | None = None
    ) -> Manifest:
        """Build a manifest, computing (and, if given, checking) its digest."""
        actual = digest_of(raw, algorithm_of(digest) if digest else "sha256")
        if digest and actual != digest:
            raise DigestMismatch(f"manifest bytes hash to {actual}, not {digest}")
        media_type = _media_type(raw, content_type)
        return cls(raw=raw, media_type=media_type, digest=actual)

    @cached_property
    def json(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.raw)
        except ValueError:
            raise ManifestInvalid(f"manifest {self.digest} is not JSON") from None
        if not isinstance(doc, dict):
            raise ManifestInvalid(f"manifest {self.digest} is not a JSON object")
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        """The manifests an index refers to (empty for anything else)."""
        if not self.is_index:
            return []
        items = self.json.get("manifests") or []
        if not isinstance(items, list):
            raise ManifestInvalid(f"index {self.digest} has a malformed manifests list")
        return [Descriptor.parse(d, f"index {self.digest}") for d in items]

    def blobs(self) -> list[Descriptor]:
        """Config, layers and other blobs the manifest needs, de-duplicated, in order."""
        if self.is_index:
            return []
        doc, where = self.json, f"manifest {self.digest}"
        found: list[Descriptor] = []
        if self.media_type in SCHEMA1_TYPES:
            for layer in doc.get("fsLayers") or []:
                digest = check_digest(
                    layer.get("blobSum") if isinstance(layer, dict) else None, where
                )
                # schema1 does not carry sizes; -1 means "unknown".
                found.append(Descriptor("", digest, -1))
        else:
            if doc.get("config") is not None:
                found.append(Descriptor.parse(doc["config"], where))
            for key in ("layers", "blobs"):
                items = doc.get(key) or []
                if not isinstance(items, list):
                    raise ManifestInvalid(f"{where} has a malformed {key} list")
                found.extend(Descriptor.parse(d, where) for d in items)
        seen: set[str] = set()
        unique = []
        for d in found:
            if d.digest not in seen:
                seen.add(d.digest)
                unique.append(d)
        return unique


def _media_type(raw: bytes, content_type: str | None) -> str:
    """The served Content-Type, or what the body says when the registry gave none."""
    ct = (content_type or "").split(";", 1)[0].strip()
    if ct and ct not in ("application/json", "application/octet-stream", "text/plain"):
        return ct
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ManifestInvalid("manifest is not JSON and has no media type") from None
    if isinstance(doc, dict):
        if isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
            return doc["mediaType"]
        if doc.get("schemaVersion") == 1:
            return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
        if "manifests" in doc:
            return OCI_INDEX
        if "config" in doc or "layers" in doc:
            return OCI_MANIFEST
    raise ManifestInvalid("cannot tell the manifest's media type")


def classify(manifest: Manifest) -> Kind:
    """Image, multi-arch index, Helm chart or other artifact, from media types alone."""
    if manifest.is_index:
        return Kind.INDEX
    if manifest.media_type in SCHEMA1_TYPES:
        return Kind.IMAGE
    doc = manifest.json
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    config_type = config.get("mediaType")
    if config_type == HELM_CONFIG:
        return Kind.CHART
    if (
        manifest.media_type in IMAGE_MANIFEST_TYPES
        and config_type in IMAGE_CONFIG_TYPES
        and not doc.get("artifactType")
    ):
        return Kind.IMAGE
    return Kind.ARTIFACT
