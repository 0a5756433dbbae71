"""Pushes that are referrers: copied only as referrers of a subject the rule replicated.

A cosign tag (``sha256-<hex>.sig``), a fallback index tag (``sha256-<hex>``) or an
untagged push by digest whose manifest has a ``subject`` names the digest it refers
to. A rule with ``include_referrers`` copies it when its repository is selected and
the target already holds that subject (the rule, or another, replicated it); it
never becomes a tag of its own.
"""

from __future__ import annotations

import logging
from uuid import UUID

import psycopg

from common.db import items as qi
from common.db import tasks as q
from common.db import transaction
from common.domain.models import NewItem, Rule, WebhookEvent
from common.domain.referrers import subject_of as tag_subject
from common.domain.rules import Selector, map_repository
from common.domain.vocab import TaskStatus, Trigger
from common.errors import FerryError
from common.registry.referrers import subject_of
from common.settings import Settings
from common.sync.clients import endpoints_for
from common.sync.referrers import discover, referrer_items

log = logging.getLogger(__name__)


def _what_refers(settings: Settings, rule: Rule, event: WebhookEvent) -> tuple[str, list[str]]:
    """(subject digest, references to copy) of a referrer push; ("", []) if it is none."""
    with transaction(settings) as conn:
        source = endpoints_for(conn, rule, settings).source
    repo = event.repository
    if event.tag:
        subject = tag_subject(event.tag) or ""
        if not subject:
            return "", []
        if "." in event.tag:  # a cosign tag: itself
            return subject, [event.tag]
        return subject, discover(source, repo, subject)  # a fallback index: its entries
    if not event.digest:
        return "", []
    subject = subject_of(source.get_manifest(repo, event.digest)) or ""
    if not subject:
        return "", []
    return subject, [event.digest, *discover(source, repo, event.digest)]


def referrer_push(
    settings: Settings, event: WebhookEvent, rules: list[tuple[Rule, Selector]]
) -> list[tuple[Rule, list[NewItem]]]:
    """The referrer items each rule copies for this push (none when its target lacks the
    subject)."""
    chosen = [
        (r, s) for r, s in rules if r.include_referrers and s.selects_repository(event.repository)
    ]
    if not chosen:
        return []
    try:
        subject, refs = _what_refers(settings, chosen[0][0], event)
    except FerryError as exc:
        log.warning("referrer push %s@%s unreadable: %s", event.repository, event.digest, exc)
        return []
    out = []
    for rule, _ in chosen:
        target_repo = map_repository(event.repository, rule.source_namespace, rule.target_namespace)
        try:
            with transaction(settings) as conn:
                target = endpoints_for(conn, rule, settings).target
            if not refs or target.head_manifest(target_repo, subject) is None:
                continue
        except FerryError as exc:
            log.warning("rule %s: target not checked for %s: %s", rule.id, subject, exc)
            continue
        out.append((rule, referrer_items(event.repository, target_repo, refs)))
    return out


def seed_items(
    conn: psycopg.Connection, rule: Rule, items: list[NewItem], added: list[int]
) -> UUID | None:
    """Add ``items`` to the rule's open push task (or a new one); the new task's id, if one
    was created. Items the open task already has are left as they are."""
    task = q.open_push_task(conn, rule.id, 2.0)
    if task is None:
        created = q.create_task(conn, rule, Trigger.PUSH)
        qi.insert_items(conn, created.id, items)
        return created.id
    for item in items:
        item_id = qi.insert_item(conn, task.id, item)
        if item_id is not None and task.status == TaskStatus.IN_PROGRESS:
            added.append(item_id)
    return None
