"""From a stored push event to push tasks: match rules, coalesce bursts, seed one item.

A burst of pushes for the same rule within :data:`COALESCE_SECONDS` lands in
one task. The item carries the digest from the event; the copier notes when
the tag has moved on since and copies what it points to now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from common.db import events as ev
from common.db import items as qi
from common.db import tasks as q
from common.db import transaction
from common.db.rules import enabled_rules_on_source
from common.domain.models import NewItem, Rule, WebhookEvent
from common.domain.referrers import is_referrer_tag
from common.domain.rules import Selector, map_repository
from common.domain.vocab import TaskStatus, Trigger
from common.errors import FerryError, ValidationError
from common.registry.media import is_repository, is_tag
from common.settings import Settings
from common.sync.clients import endpoints_for
from common.sync.deletions import on_delete_event
from common.sync.planner import UNREADABLE_MANIFEST, kind_of
from common.sync.push_referrers import referrer_push, seed_items
from common.sync.referrers import referrers_of
from common.sync.selection import candidate_tags, view

log = logging.getLogger(__name__)

COALESCE_SECONDS = 2.0


@dataclass
class PushResult:
    """What to enqueue after the commit: plans of new tasks, copies of added items."""

    new_tasks: list[UUID] = field(default_factory=list)
    added_items: list[int] = field(default_factory=list)
    rules_matched: int = 0


def _kind(settings: Settings, rule: Rule, event: WebhookEvent) -> str | None:
    """The kind of what the event's tag points to, read from the source."""
    with transaction(settings) as conn:
        source = endpoints_for(conn, rule, settings).source
    found = kind_of(source, event.repository, event.digest or event.tag)
    if found is None and event.digest:
        found = kind_of(source, event.repository, event.tag)
    return str(found[1]) if found else None


def _seed(
    conn: psycopg.Connection,
    rule: Rule,
    event: WebhookEvent,
    kind: str | None,
    result: PushResult,
) -> None:
    item = NewItem(
        source_repository=event.repository,
        source_tag=event.tag,
        target_repository=map_repository(
            event.repository, rule.source_namespace, rule.target_namespace
        ),
        target_tag=event.tag,
        kind=kind,
        source_digest=event.digest,
    )
    task = q.open_push_task(conn, rule.id, COALESCE_SECONDS)
    if task is not None:
        item_id = qi.insert_item(conn, task.id, item)
        if item_id is not None:
            # A Pending task's plan will fan the item out; a running one needs a message.
            if task.status == TaskStatus.IN_PROGRESS:
                result.added_items.append(item_id)
            return
        # The same tag is already in that task: a newer push needs its own copy.
    created = q.create_task(conn, rule, Trigger.PUSH)
    qi.insert_items(conn, created.id, [item])
    result.new_tasks.append(created.id)


def _selectors(rules: Iterable[Rule]) -> Iterator[tuple[Rule, Selector]]:
    """Each rule with its compiled filters; a rule whose stored filters cannot be compiled
    (saved before RE2 matched them) is skipped here and fails its own scans."""
    for rule in rules:
        try:
            yield rule, Selector.from_rule(rule)
        except ValidationError as exc:
            log.warning("rule %s is skipped for pushes: %s", rule.id, exc)


def _in_view(settings: Settings, rule: Rule, selector: Selector, event: WebhookEvent) -> bool:
    """True when the pushed tag is in the rule's view of its repository: always without
    ``latest``; with it, only when the tag is among the N newest the source has now."""
    if not candidate_tags(rule, selector, [event.tag]):
        return False
    if selector.latest is None:
        return True
    try:
        with transaction(settings) as conn:
            source = endpoints_for(conn, rule, settings).source
        tags = source.iter_tags(event.repository)
        return event.tag in view(source, event.repository, rule, selector, tags)
    except FerryError as exc:
        # The copy meets the same problem and records it on the item.
        log.warning(
            "push of %s:%s: cannot list its repository: %s", event.repository, event.tag, exc
        )
        return True


def _with_referrers(settings: Settings, rule: Rule, event: WebhookEvent) -> list[NewItem]:
    """The referrer items of a pushed tag (cosign tags, fallback index, referrers API)."""
    if not rule.include_referrers or not event.digest:
        return []
    with transaction(settings) as conn:
        source = endpoints_for(conn, rule, settings).source
    target_repo = map_repository(event.repository, rule.source_namespace, rule.target_namespace)
    return referrers_of(source, event.repository, target_repo, event.digest)


@dataclass
class _Seeds:
    """What one event adds, per rule: the pushed tag (with its kind) and referrer items."""

    tags: list[tuple[Rule, str | None]] = field(default_factory=list)
    referrers: list[tuple[Rule, list[NewItem]]] = field(default_factory=list)
    deletions: list[tuple[Rule, list[NewItem]]] = field(default_factory=list)


def _tag_seeds(
    settings: Settings, event: WebhookEvent, on_source: list[tuple[Rule, Selector]], out: _Seeds
) -> None:
    """The rules that copy the pushed tag as a tag, with its kind and referrers."""
    rules = [(r, s) for r, s in on_source if s.selects(event.repository, event.tag)]
    rules = [(r, s) for r, s in rules if _in_view(settings, r, s, event)]
    if not rules:
        return
    try:
        kind = _kind(settings, rules[0][0], event)
    except UNREADABLE_MANIFEST as exc:
        # The copy will meet the same problem and record it on the item.
        log.warning("push of %s:%s: cannot read its kind: %s", event.repository, event.tag, exc)
        kind = None
    for rule, selector in rules:
        if kind is None or selector.selects_kind(kind):
            out.tags.append((rule, kind))
            extra = _with_referrers(settings, rule, event)
            if extra:
                out.referrers.append((rule, extra))


def handle_event(event_id: int, settings: Settings) -> PushResult:
    """Turn one stored event into tasks for every enabled rule that selects it."""
    result = PushResult()
    with transaction(settings) as conn:
        event = ev.get_event(conn, event_id)
        if event is None or event.processed_at is not None:
            return result
        on_source = list(_selectors(enabled_rules_on_source(conn, event.instance_id)))
    seeds = _Seeds()
    if not is_repository(event.repository):
        log.warning("event %s names an invalid repository; ignored", event_id)
    elif event.action == "delete":
        seeds.deletions = on_delete_event(settings, event, on_source)
    elif not event.tag:
        # An untagged push (by digest) is never a tag: a referrer of its subject, or nothing.
        seeds.referrers = referrer_push(settings, event, on_source)
    elif is_referrer_tag(event.tag):
        # A cosign or fallback index tag follows its subject where referrers are on.
        seeds.referrers = referrer_push(settings, event, on_source)
        plain = [(r, s) for r, s in on_source if not r.include_referrers]
        _tag_seeds(settings, event, plain, seeds)
    elif is_tag(event.tag):
        _tag_seeds(settings, event, on_source, seeds)
    else:
        log.warning("push event %s names an invalid repository or tag; ignored", event_id)
    with transaction(settings) as conn:
        # Claimed in the same transaction as the tasks: a crash before the
        # commit leaves the event for reconciliation, never half-handled.
        if ev.claim_event(conn, event_id) is None:
            return result
        for rule, kind in seeds.tags:
            result.rules_matched += 1
            _seed(conn, rule, event, kind, result)
        for rule, items in seeds.referrers:
            result.rules_matched += rule not in [r for r, _ in seeds.tags]
            created = seed_items(conn, rule, items, result.added_items)
            if created is not None:
                result.new_tasks.append(created)
        for rule, items in seeds.deletions:
            # A task of its own: the items have their outcome, its plan finishes it.
            result.rules_matched += 1
            task = q.create_task(conn, rule, Trigger.PUSH)
            qi.insert_items(conn, task.id, items)
            result.new_tasks.append(task.id)
    return result
