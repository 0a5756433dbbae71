"""Notifications from registries, parsed into pushes and deletions of tags.

Three shapes are understood, detected from the body:

- CNCF Distribution's notification envelope: ``{"events": [...]}``, one event
  per blob or manifest operation, each with an ``id``. A ``push`` of a tagged
  manifest is a push; a ``delete`` naming a tag is a deletion (Distribution
  deletes by digest and then announces each tag that pointed there).
- Harbor's webhook (TCR sends the same): ``{"type": "PUSH_ARTIFACT" |
  "DELETE_ARTIFACT", "event_data": {"resources": [...], "repository": {...}}}``,
  without an id.
- Harbor's CloudEvents format: ``{"specversion": "1.0", "type":
  "harbor.artifact.pushed" | "harbor.artifact.deleted", "id": ..., "data": {...}}``,
  the same resources under ``data``.

When Harbor reports a push by digest, its ``tag`` field holds the digest itself;
that is an untagged push (``tag`` empty, ``by_digest``): it never becomes a tag.
Everything else is counted as ignored.
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


PUSH, DELETE = "push", "delete"
HARBOR_PUSH_TYPES = frozenset({"PUSH_ARTIFACT", "pushImage", "harbor.artifact.pushed"})
HARBOR_DELETE_TYPES = frozenset({"DELETE_ARTIFACT", "deleteImage", "harbor.artifact.deleted"})


@dataclass(frozen=True)
class Push:
    """One tag pushed or deleted (``action``): where, what digest, and the key that
    de-duplicates its delivery. An untagged push by digest has an empty ``tag``."""

    repository: str
    tag: str
    digest: str | None
    dedup_key: str
    media_type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    action: str = PUSH

    @property
    def by_digest(self) -> bool:
        """True for an untagged push (Harbor names the digest where the tag would be)."""
        return self.tag == "" and self.digest is not None


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
        media_type, action = target.get("mediaType"), event.get("action")
        pushed = action == PUSH and media_type in MANIFEST_TYPES
        # A tag deletion names the tag and no media type (the manifest deletion before
        # it names only the digest, which says nothing about tags: ignored).
        if not (pushed or action == DELETE) or not tag or not repository:
            ignored += 1
            continue
        digest = target.get("digest")
        key = (
            f"id:{event['id']}"
            if event.get("id")
            else _hash_key(instance_id, repository, tag, digest, event.get("timestamp"))
        )
        pushes.append(Push(str(repository), str(tag), digest, key, media_type, event, str(action)))
    return Parsed("distribution", pushes, ignored)


def _harbor(body: dict[str, Any], instance_id: str) -> Parsed:
    cloud = "specversion" in body
    fmt, where = ("harbor-cloudevents", "data") if cloud else ("harbor", "event_data")
    kind = body.get("type")
    if kind in HARBOR_PUSH_TYPES:
        action = PUSH
    elif kind in HARBOR_DELETE_TYPES:
        action = DELETE
    else:
        return Parsed(fmt, [], 1)
    data = body.get(where)
    if not isinstance(data, dict):
        raise ValidationError(f"{where} must be an object", {where: ["must be an object"]})
    repo = data.get("repository") if isinstance(data.get("repository"), dict) else {}
    repository = repo.get("repo_full_name") or "/".join(
        p for p in (repo.get("namespace"), repo.get("name")) if p
    )
    if not repository:
        raise ValidationError(
            f"{where}.repository has no repo_full_name",
            {f"{where}.repository.repo_full_name": ["is required"]},
        )
    resources = data.get("resources")
    if not isinstance(resources, list):
        raise ValidationError(
            f"{where}.resources must be a list", {f"{where}.resources": ["must be a list"]}
        )
    when = body.get("time") if cloud else body.get("occur_at")
    pushes, ignored = [], 0
    for res in resources:
        push = _harbor_resource(res, str(repository), action, instance_id, when)
        if push is None:
            ignored += 1
        else:
            pushes.append(push)
    return Parsed(fmt, pushes, ignored)


def _harbor_resource(
    res: Any, repository: str, action: str, instance_id: str, when: Any
) -> Push | None:
    """One resource of a Harbor event; None when it names neither a tag nor (for a push)
    a digest."""
    if not isinstance(res, dict):
        return None
    tag, digest = res.get("tag"), res.get("digest")
    tag = str(tag) if tag else ""
    if tag.startswith(("sha256:", "sha512:")):
        # A push by digest: Harbor puts the digest where the tag would be.
        digest, tag = digest or tag, ""
    if not tag and (action == DELETE or not isinstance(digest, str) or not digest):
        return None
    key_action = "\x1fdelete" if action == DELETE else ""
    key = _hash_key(instance_id, repository, tag + key_action, digest, when)
    return Push(repository, tag, digest, key, None, res, action)


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
    if "event_data" in body or "type" in body or "specversion" in body:
        return _harbor(body, instance_id)
    raise ValidationError(
        'unknown notification shape: expected a Distribution envelope ({"events": [...]}), '
        'a Harbor/TCR webhook ({"type": ..., "event_data": ...}) or Harbor CloudEvents '
        '({"specversion": "1.0", "type": ..., "data": ...})'
    )
