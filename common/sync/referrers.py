"""Referrers travel with their subject: found on the source, copied as items of kind
``referrer``, and listed in the target's fallback index when it lacks the referrers API.

What refers to a digest, recursively (at most :data:`MAX_DEPTH` levels):

- the manifests the source's referrers API lists, or, without that API, those its
  fallback index tag ``sha256-<hex>`` lists (copied by digest, with their subject);
- cosign's ``sha256-<hex>.sig``, ``.att`` and ``.sbom`` tags (copied as those tags).

Referrers are copied whatever the rule's tag filters say: they follow their subject.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import redis

from common.domain.models import NewItem
from common.domain.referrers import cosign_tags, fallback_tag
from common.domain.vocab import REFERRER, ItemStatus
from common.errors import FerryError, ManifestNotFound
from common.registry import RegistryClient
from common.registry.referrers import (
    api_referrers,
    descriptor_of,
    fallback_referrers,
    has_referrers_api,
    merge_fallback,
    subject_of,
)

log = logging.getLogger(__name__)

MAX_DEPTH = 3
MAX_REFERRERS = 256  # per subject: a runaway list is cut, not followed
LOCK_SECONDS = 30


def discover(
    source: RegistryClient,
    repository: str,
    digest: str,
    tags: Collection[str] | None = None,
    depth: int = 0,
) -> list[str]:
    """References (cosign tags, or digests) of what refers to ``digest`` on the source.

    ``tags`` is the repository's tag list when the caller listed it (then cosign and
    fallback tags are looked up in it); None to ask the registry for each.
    """
    found = [t for t in cosign_tags(digest) if _has_tag(source, repository, t, tags)]
    listed = api_referrers(source, repository, digest)
    if listed is None and _has_tag(source, repository, fallback_tag(digest), tags):
        listed = fallback_referrers(source, repository, digest)
    digests = [d["digest"] for d in (listed or [])][:MAX_REFERRERS]
    found.extend(digests)
    if depth + 1 < MAX_DEPTH:
        for child in digests:
            found.extend(discover(source, repository, child, tags, depth + 1))
    return list(dict.fromkeys(found))


def _has_tag(
    client: RegistryClient, repository: str, tag: str, tags: Collection[str] | None
) -> bool:
    if tags is not None:
        return tag in tags
    return client.head_manifest(repository, tag) is not None


def referrer_items(repository: str, target_repository: str, references: list[str]) -> list[NewItem]:
    """Pending items of kind ``referrer``, one per reference, copied to the same reference."""
    return [
        NewItem(
            repository,
            ref,
            target_repository,
            ref,
            kind=REFERRER,
            source_digest=ref if ":" in ref else None,
            status=ItemStatus.PENDING,
        )
        for ref in references
    ]


def referrers_of(
    source: RegistryClient,
    repository: str,
    target_repository: str,
    digest: str,
    tags: Collection[str] | None = None,
) -> list[NewItem]:
    """The referrer items of ``digest``; [] (logged) when the source cannot say."""
    try:
        return referrer_items(
            repository, target_repository, discover(source, repository, digest, tags)
        )
    except FerryError as exc:
        log.warning("referrers of %s@%s not listed: %s", repository, digest, exc)
        return []


def list_on_target(
    target: RegistryClient, repository: str, digest: str, redis_client: redis.Redis | None
) -> str | None:
    """After a referrer was copied: when the target lacks the referrers API, add it to
    the fallback index of its subject (serialised per index). A note for the log, or None."""
    try:
        manifest = target.get_manifest(repository, digest)
    except ManifestNotFound:
        return None
    subject = subject_of(manifest)
    if subject is None or has_referrers_api(target, repository, subject):
        return None
    descriptor = descriptor_of(manifest)
    key = f"ferry:fallback:{target.key}/{repository}:{fallback_tag(subject)}"
    if redis_client is None:
        written = merge_fallback(target, repository, subject, descriptor)
    else:
        with redis_client.lock(key, timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS):
            written = merge_fallback(target, repository, subject, descriptor)
    return f"listed in the target's fallback index {fallback_tag(subject)}" if written else None
