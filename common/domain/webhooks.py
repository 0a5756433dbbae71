"""Push notifications from registries, parsed into tagged-manifest pushes.

Two shapes are understood, detected from the body:

- CNCF Distribution's notification envelope: ``{"events": [...]}``, one event
  per blob or manifest operation, each with an ``id``.
- Harbor's webhook (TCR sends the same): ``{"type": "PUSH_ARTIFACT",
  "event_data": {"resources": [...], "repository": {...}}}``, without an id.

Only pushes of tagged manifests count; everything else is counted as ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from common.errors import ValidationError

MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


@dataclass(frozen=True)
class Push:
    """One tag pushed: where, what digest, and the key that de-duplicates its delivery."""

    repository: str
    tag: str
    digest: str | None
    dedup_key: str
    media_type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Parsed:
    """The pushes a body carried and how many events were ignored."""

    format: str
    pushes: list[Push]
    ignored: int


def _hash_key(
    instance_id: str, repository: str, tag: str, digest: str | None, timestamp: Any
) -> str:
    text = "\x1f".join([instance_id, repository, tag, digest or "", str(timestamp)])
    return "h:" + hashlib.sha256(text.encode()).hexdigest()


def _distribution(body: dict[str, Any], instance_id: str) -> Parsed:
    events = body["events"]
    if not isinstance(events, list):
        raise ValidationError("events must be a list", {"events": ["must be a list"]})
    pushes, ignored = [], 0
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValidationError(
                f"event {i} is not an object", {f"events.{i}": ["must be an object"]}
            )
        target = event.get("target") if isinstance(event.get("target"), dict) else {}
        repository, tag = target.get("repository"), target.get("tag")
        media_type = target.get("mediaType")
        if (
            event.get("action") != "push"
            or not tag
            or not repository
            or media_type not in MANIFEST_TYPES
        ):
            ignored += 1
            continue
        digest = target.get("digest")
        key = (
            f"id:{event['id']}"
            if event.get("id")
            else _hash_key(instance_id, repository, tag, digest, event.get("timestamp"))
        )
        pushes.append(Push(str(repository), str(tag), digest, key, media_type, event))
    return Parsed("distribution", pushes, ignored)


def _harbor(body: dict[str, Any], instance_id: str) -> Parsed:
    if body.get("type") not in ("PUSH_ARTIFACT", "pushImage"):
        return Parsed("harbor", [], 1)
    data = body.get("event_data")
    if not isinstance(data, dict):
        raise ValidationError("event_data must be an object", {"event_data": ["must be an object"]})
    repo = data.get("repository") if isinstance(data.get("repository"), dict) else {}
    repository = repo.get("repo_full_name") or "/".join(
        p for p in (repo.get("namespace"), repo.get("name")) if p
    )
    if not repository:
        raise ValidationError(
            "event_data.repository has no repo_full_name",
            {"event_data.repository.repo_full_name": ["is required"]},
        )
    resources = data.get("resources")
    if not isinstance(resources, list):
        raise ValidationError(
            "event_data.resources must be a list", {"event_data.resources": ["must be a list"]}
        )
    pushes, ignored = [], 0
    for res in resources:
        tag = res.get("tag") if isinstance(res, dict) else None
        if not tag:
            ignored += 1
            continue
        digest = res.get("digest")
        key = _hash_key(instance_id, repository, tag, digest, body.get("occur_at"))
        pushes.append(Push(str(repository), str(tag), digest, key, None, res))
    return Parsed("harbor", pushes, ignored)


def _has_nul(doc: Any) -> bool:
    """True when a NUL is in any string or key of ``doc`` (walked without recursion)."""
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def parse(raw: bytes, instance_id: str) -> Parsed:
    """Parse a notification body; ValidationError (a 400) for bad JSON or an unknown shape."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValidationError("body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    if _has_nul(body):
        # PostgreSQL stores no NUL in text or JSON, and no name or tag contains one.
        raise ValidationError("body contains a NUL character (\\u0000), which no event may hold")
    if "events" in body:
        return _distribution(body, instance_id)
    if "event_data" in body or "type" in body:
        return _harbor(body, instance_id)
    raise ValidationError(
        'unknown notification shape: expected a Distribution envelope ({"events": [...]}) '
        'or a Harbor/TCR webhook ({"type": ..., "event_data": ...})'
    )
