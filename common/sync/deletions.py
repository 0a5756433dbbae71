"""Delete propagation (a rule's ``deletion``): only what this rule put there, never what
the source still has.

A target tag is deleted when the source deleted its tag (a delete event, or a full
rescan that no longer finds it), and only while the target tag still points to the
digest this rule last copied there (its items record it). A registry that deletes
tags does so; one that deletes only manifests (CNCF Distribution) removes every tag
of the digest, so the digest is deleted only when no other tag of the target
repository that the source still has points to it; otherwise the item is ``kept``
with that reason. Tags that merely fell out of ``latest`` are never deleted.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from common.db import transaction
from common.db.deletions import Placed, placed_by_rule
from common.domain.models import NewItem, Rule, WebhookEvent
from common.domain.rules import Selector
from common.domain.vocab import ItemStatus
from common.errors import FerryError, RepositoryNotFound
from common.registry import RegistryClient
from common.registry.deletes import Deleted, delete_reference
from common.settings import Settings
from common.sync.clients import endpoints_for

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 500


def _item(p: Placed, status: ItemStatus, reason: str) -> NewItem:
    return NewItem(
        p.source_repository,
        p.source_tag,
        p.target_repository,
        p.target_tag,
        status=status,
        digest=p.digest,
        reason=reason[:MAX_REASON_CHARS],
    )


def _still_needed(source: RegistryClient, target: RegistryClient, p: Placed) -> str | None:
    """Another tag of the target repository at ``p.digest`` whose source tag still exists
    (deleting the digest would remove it), or None."""
    for tag in target.iter_tags(p.target_repository):
        if tag == p.target_tag:
            continue
        there = target.head_manifest(p.target_repository, tag)
        if there is None or there.digest != p.digest:
            continue
        if source.head_manifest(p.source_repository, tag) is not None:
            return tag
    return None


def decide(source: RegistryClient, target: RegistryClient, p: Placed) -> NewItem:
    """Delete ``p`` on the target if it may be; the item that says what happened."""
    try:
        if source.head_manifest(p.source_repository, p.source_tag) is not None:
            return _item(p, ItemStatus.KEPT, "not deleted: the source has this tag again")
        there = target.head_manifest(p.target_repository, p.target_tag)
        if there is None:
            return _item(p, ItemStatus.DELETED, "already absent on the target")
        if there.digest != p.digest:
            return _item(
                p,
                ItemStatus.KEPT,
                f"not deleted: the target tag points to {there.digest}, not to "
                f"{p.digest} that this rule copied",
            )
        if delete_reference(target, p.target_repository, p.target_tag) != Deleted.REFUSED:
            return _item(p, ItemStatus.DELETED, "the source deleted this tag")
        blocker = _still_needed(source, target, p)
        if blocker is not None:
            return _item(
                p,
                ItemStatus.KEPT,
                f"not deleted: the target deletes by digest, and its tag {blocker} also "
                f"points to {p.digest} while the source still has it",
            )
        delete_reference(target, p.target_repository, p.digest)
        return _item(
            p,
            ItemStatus.DELETED,
            f"the source deleted this tag; deleted by digest {p.digest} "
            "(the target deletes manifests, not tags)",
        )
    except FerryError as exc:
        return _item(p, ItemStatus.FAILED, f"deletion failed: {exc}")


def on_delete_event(
    settings: Settings, event: WebhookEvent, rules: list[tuple[Rule, Selector]]
) -> list[tuple[Rule, list[NewItem]]]:
    """The deletion items of each rule with ``deletion`` that copied the deleted tag."""
    out = []
    for rule, selector in rules:
        if not rule.deletion or not selector.selects_repository(event.repository):
            continue
        with transaction(settings) as conn:
            placed = placed_by_rule(conn, rule.id, event.repository, event.tag)
            ends = endpoints_for(conn, rule, settings) if placed else None
        if ends is not None:
            out.append((rule, [decide(ends.source, ends.target, p) for p in placed]))
    return out


def rescan(
    settings: Settings, rule: Rule, source: RegistryClient, target: RegistryClient
) -> list[NewItem]:
    """After a full listing: deletion items for the tags this rule placed whose source tag
    is gone (a repository the source no longer has counts as empty)."""
    with transaction(settings) as conn:
        placed = placed_by_rule(conn, rule.id)
    by_repository: dict[str, list[Placed]] = defaultdict(list)
    for p in placed:
        by_repository[p.source_repository].append(p)
    out = []
    for repository, entries in by_repository.items():
        try:
            tags = set(source.iter_tags(repository))
        except RepositoryNotFound:
            tags = set()
        except FerryError as exc:
            log.warning("rule %s: %s not listed for deletions: %s", rule.id, repository, exc)
            continue
        out.extend(decide(source, target, p) for p in entries if p.source_tag not in tags)
    return out
