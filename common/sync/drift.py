"""Drift: what a rule selects on the source compared with what the target holds.

It reuses the plan's listing and comparison (:func:`common.sync.planner.plan`), so
"in sync" means exactly what "up-to-date" means to a sync. Target tags under the
mapped paths that the rule's filters would manage but the source does not offer
are ``extra``. Nothing here writes to a registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import UUID

from common.db import drift as q
from common.db import transaction
from common.db.rules import get_rule
from common.domain.models import Rule
from common.domain.operations import DriftEntry, DriftKind, DriftReport, DriftStatus
from common.domain.rules import Selector, map_repository
from common.errors import DatabaseError, FerryError, RepositoryNotFound
from common.registry import RegistryClient
from common.settings import Settings
from common.sync.clients import endpoints_for
from common.sync.planner import Candidate, plan

log = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 500
EXTRA_BATCH = 200


def _entry(candidate: Candidate, override: bool) -> DriftEntry | None:
    item = candidate.item
    if item.source_digest is None:
        return None  # an unreadable source manifest: a sync fails it, there is nothing to compare
    there = candidate.target_digest
    if there is None:
        kind = DriftKind.MISSING
    elif candidate.target_has_it:
        kind = DriftKind.IN_SYNC
    else:
        kind = DriftKind.DIFFERS
    return DriftEntry(
        kind,
        item.source_repository,
        item.source_tag,
        item.target_repository,
        item.target_tag,
        item.source_digest,
        there,
        override if kind == DriftKind.DIFFERS else None,
    )


def _extra(
    target: RegistryClient, rule: Rule, selected: set[tuple[str, str]]
) -> Iterator[list[DriftEntry]]:
    """Target tags under the target namespace whose source-side names the rule's filters
    select, but which the source does not offer (now)."""
    selector = Selector.from_rule(rule)
    namespace = rule.effective_target_namespace
    batch: list[DriftEntry] = []
    for repository in target.iter_repositories(prefix=namespace + "/"):
        if not selector.selects_repository(
            map_repository(repository, namespace, rule.source_namespace)
        ):
            continue
        try:
            tags = [t for t in target.iter_tags(repository) if selector.selects_tag(t)]
        except RepositoryNotFound:
            continue  # listed by the catalog, gone (or empty) by now
        for tag in tags:
            if (repository, tag) in selected:
                continue
            ref = target.head_manifest(repository, tag)
            batch.append(
                DriftEntry(
                    DriftKind.EXTRA, None, None, repository, tag, None, ref.digest if ref else None
                )
            )
            if len(batch) >= EXTRA_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def compare(
    source: RegistryClient,
    target: RegistryClient,
    rule: Rule,
    *,
    max_repositories: int | None = None,
    max_tags: int | None = None,
) -> Iterator[list[DriftEntry]]:
    """Yield the drift entries in batches: the selected tags first, then the extra ones."""
    selected: set[tuple[str, str]] = set()
    batches = plan(source, target, rule, max_repositories=max_repositories, max_tags=max_tags)
    for batch in batches:
        entries = [e for e in (_entry(c, rule.override) for c in batch) if e is not None]
        selected.update((c.item.target_repository, c.item.target_tag) for c in batch)
        if entries:
            yield entries
    yield from _extra(target, rule, selected)


def run_report(report_id: UUID, settings: Settings) -> DriftReport | None:
    """Fill a Pending report and finish it; the finished report (None: already claimed)."""
    with transaction(settings) as conn:
        report = q.start_report(conn, report_id)
        rule = get_rule(conn, report.rule_id) if report and report.rule_id else None
    if report is None:
        return None
    if rule is None:
        with transaction(settings) as conn:
            return q.finish_report(conn, report_id, DriftStatus.FAILED, "the rule was deleted")
    try:
        with transaction(settings) as conn:
            ends = endpoints_for(conn, rule, settings)
        for entries in compare(
            ends.source,
            ends.target,
            rule,
            max_repositories=settings.max_repositories_per_task,
            max_tags=settings.max_tags_per_task,
        ):
            with transaction(settings) as conn:
                q.add_entries(conn, report_id, entries)
    except DatabaseError:
        raise
    except FerryError as exc:
        with transaction(settings) as conn:
            return q.finish_report(
                conn, report_id, DriftStatus.FAILED, str(exc)[:MAX_MESSAGE_CHARS]
            )
    except Exception as exc:  # a crash ends the report with a reason, not in Pending for ever
        log.exception("drift report %s crashed", report_id)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:MAX_MESSAGE_CHARS]
        with transaction(settings) as conn:
            return q.finish_report(conn, report_id, DriftStatus.FAILED, reason)
    with transaction(settings) as conn:
        return q.finish_report(conn, report_id, DriftStatus.SUCCEEDED)
