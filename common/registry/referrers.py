"""What refers to a manifest: OCI 1.1 referrers, the fallback index tag, and its upkeep.

- ``GET /v2/<name>/referrers/<digest>`` (optionally ``?artifactType=``) answers an
  OCI image index of descriptors on registries that have the referrers API; a
  registry without it answers 404 (Distribution 2.8), and then
- the referrers tag schema's fallback index ``sha256-<hex>`` (an OCI index tag in
  the same repository) lists them instead. A client that pushes a manifest with a
  ``subject`` to such a registry keeps that index up to date itself: read it, add
  the new descriptor, write it back, never dropping entries it did not add.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from common.domain.referrers import fallback_tag
from common.errors import FerryError, ManifestInvalid, ManifestNotFound
from common.registry import auth as _auth
from common.registry.client import RegistryClient
from common.registry.media import (
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Manifest,
    check_reference,
    check_repository,
)

log = logging.getLogger("ferry.registry")

# A registry's referrers API either exists or not: asked once per registry and process,
# and again after SUPPORT_TTL seconds (a registry may be upgraded, an address reused).
SUPPORT_TTL = 300.0
_SUPPORT: dict[str, tuple[bool, float]] = {}
_PROBE = threading.Lock()  # one probe at a time, so parallel plans ask once


def _known(client: RegistryClient) -> bool | None:
    found = _SUPPORT.get(client.key)
    if found is None or time.monotonic() - found[1] > SUPPORT_TTL:
        return None
    return found[0]


def _remember(client: RegistryClient, supported: bool) -> None:
    _SUPPORT[client.key] = (supported, time.monotonic())


def subject_of(manifest: Manifest) -> str | None:
    """The digest the manifest's ``subject`` names, or None (not a referrer)."""
    if manifest.media_type not in (OCI_INDEX, "application/vnd.oci.image.manifest.v1+json"):
        return None
    subject = manifest.json.get("subject")
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return digest if isinstance(digest, str) and ":" in digest else None


def descriptor_of(manifest: Manifest) -> dict[str, Any]:
    """The descriptor a referrers index lists for ``manifest`` (OCI distribution spec)."""
    doc = manifest.json
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    artifact_type = doc.get("artifactType") or config.get("mediaType")
    out: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(manifest.raw),
    }
    if isinstance(artifact_type, str) and artifact_type:
        out["artifactType"] = artifact_type
    if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
        out["annotations"] = doc["annotations"]
    return out


def _entries(doc: Any) -> list[dict[str, Any]]:
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        raise ManifestInvalid("a referrers index has no manifests list")
    return [m for m in manifests if isinstance(m, dict) and isinstance(m.get("digest"), str)]


def api_referrers(
    client: RegistryClient, repository: str, digest: str, artifact_type: str | None = None
) -> list[dict[str, Any]] | None:
    """The descriptors the referrers API lists for ``digest``; None when the registry
    has no referrers API (it answered 404 with no index)."""
    if _known(client) is None:
        with _PROBE:
            if _known(client) is None:
                return _ask(client, repository, digest, artifact_type)
    if _known(client) is False:
        return None
    return _ask(client, repository, digest, artifact_type)


def _ask(
    client: RegistryClient, repository: str, digest: str, artifact_type: str | None
) -> list[dict[str, Any]] | None:
    check_repository(repository)
    check_reference(digest)
    reply = client.request(
        "GET",
        f"/v2/{repository}/referrers/{digest}",
        scopes=_auth.pull(repository),
        headers={"Accept": OCI_INDEX},
        params={"artifactType": artifact_type} if artifact_type else None,
        read_limit=MAX_MANIFEST_BYTES,
    )
    if reply.status_code == 404:
        reply.close()
        _remember(client, False)
        return None
    if reply.status_code != 200:
        raise client.fail(reply, f"referrers of {repository}@{digest}")
    try:
        found = _entries(json.loads(reply.content))
    except ValueError:
        raise ManifestInvalid(f"{client.display}: referrers of {digest} are not JSON") from None
    _remember(client, True)
    if artifact_type:  # a registry may ignore the filter (no OCI-Filters-Applied)
        found = [d for d in found if d.get("artifactType") == artifact_type]
    return found


def has_referrers_api(client: RegistryClient, repository: str, digest: str) -> bool:
    """True when the registry answers the referrers API (asked once per registry)."""
    if _known(client) is None:
        try:
            api_referrers(client, repository, digest)
        except FerryError:
            return False
    return bool(_known(client))


def fallback_referrers(
    client: RegistryClient, repository: str, digest: str
) -> list[dict[str, Any]]:
    """The descriptors the fallback index tag of ``digest`` lists ([] when absent)."""
    try:
        index = client.get_manifest(repository, fallback_tag(digest))
    except ManifestNotFound:
        return []
    if not index.is_index:
        return []
    return _entries(index.json)


def merge_fallback(
    client: RegistryClient, repository: str, subject: str, descriptor: dict[str, Any]
) -> bool:
    """Add ``descriptor`` to the fallback index of ``subject`` on ``client``; True when
    the index was written (False: it listed that digest already). Entries already
    there are kept as they are, whoever added them. Callers serialise per index."""
    tag = fallback_tag(subject)
    try:
        current = client.get_manifest(repository, tag)
        doc = current.json if current.is_index else None
    except ManifestNotFound:
        doc = None
    if doc is None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    entries = doc.get("manifests") if isinstance(doc.get("manifests"), list) else []
    if any(isinstance(e, dict) and e.get("digest") == descriptor["digest"] for e in entries):
        return False
    doc = {**doc, "manifests": [*entries, descriptor]}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    client.put_manifest(repository, tag, Manifest.from_bytes(raw, OCI_INDEX))
    log.info("fallback index %s:%s now lists %s", repository, tag, descriptor["digest"])
    return True
