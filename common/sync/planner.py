"""Planning: what a rule selects now, and which of it the target already has.

Listing is page by page (the client's iterators); each repository's tags are
resolved concurrently with cheap requests: a GET of the source manifest (its
kind) and a HEAD of the target tag. Nothing here writes to a registry.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from common.domain.models import NewItem, Rule
from common.domain.rules import Selector, map_repository
from common.domain.vocab import ItemStatus
from common.errors import FerryError, ListingLimit, ManifestNotFound
from common.registry import RegistryClient, classify
from common.registry.deadline import carried
from common.registry.media import Kind, Manifest
from common.sync.referrers import referrers_of
from common.sync.selection import view

# Tags resolved at once: the target's HEADs wait on its round trip (a far target), and
# each registry client keeps up to 32 connections alive.
PLAN_THREADS = 16
MAX_REASON_CHARS = 500
REPOSITORY_WINDOW = 4
# Subjects whose referrers are copied: those copied now, or already on the target.
SUBJECT_STATUSES = frozenset({ItemStatus.PENDING, ItemStatus.UP_TO_DATE})


@dataclass(frozen=True)
class Candidate:
    """One selected repository:tag and how it compares with the target."""

    item: NewItem
    target_digest: str | None

    @property
    def target_has_it(self) -> bool:
        return self.target_digest is not None and self.target_digest == self.item.source_digest


# What reading and classifying a source manifest may raise besides a registry error:
# a poison manifest (nested too deep, fields of the wrong types).
UNREADABLE_MANIFEST = (FerryError, RecursionError, TypeError, ValueError, AttributeError)


def read_source(source: RegistryClient, repository: str, tag: str) -> Manifest | None:
    """The manifest of a source tag, or None when the tag vanished meanwhile.

    One GET, not a HEAD then a GET: an OCI manifest may be an image, a chart or
    another artifact and only its config says which, for a body this small a
    GET costs what a HEAD does, and the copy reuses the bytes.
    """
    try:
        return source.get_manifest(repository, tag)
    except ManifestNotFound:
        return None


def kind_of(source: RegistryClient, repository: str, tag: str) -> tuple[str, Kind] | None:
    """(digest, kind) of a source tag, or None when the tag vanished meanwhile."""
    manifest = read_source(source, repository, tag)
    return (manifest.digest, classify(manifest)) if manifest else None


def _resolve(
    source: RegistryClient,
    target: RegistryClient,
    rule: Rule,
    selector: Selector,
    repository: str,
    tag: str,
) -> Candidate | None:
    target_repo = map_repository(repository, rule.source_namespace, rule.target_namespace)
    try:
        manifest = read_source(source, repository, tag)
        kind = classify(manifest) if manifest is not None else None
    except UNREADABLE_MANIFEST as exc:
        # A poison manifest (too deep, wrong types) fails its item, not the plan.
        why = exc if isinstance(exc, FerryError) else f"{type(exc).__name__}: {exc}"
        item = NewItem(
            repository,
            tag,
            target_repo,
            tag,
            status=ItemStatus.FAILED,
            reason=f"cannot read source manifest: {str(why)[:MAX_REASON_CHARS]}",
        )
        return Candidate(item, None)
    if manifest is None or kind is None:
        return None
    digest = manifest.digest
    if not selector.selects_kind(kind):
        return None
    checked = True
    try:
        there = target.head_manifest(target_repo, tag)
    except FerryError:
        # The copy will meet the same problem and report it properly.
        there, checked = None, False
    status, reason = ItemStatus.PENDING, None
    if there is not None and there.digest == digest:
        status = ItemStatus.UP_TO_DATE
    elif there is not None and not rule.override:
        status, reason = ItemStatus.KEPT, f"target tag points to {there.digest}; override is off"
    item = NewItem(
        repository,
        tag,
        target_repo,
        tag,
        kind=str(kind),
        source_digest=digest,
        status=status,
        digest=digest if status != ItemStatus.PENDING else None,
        reason=reason,
        **_planned(manifest, there.digest if there else None, checked, status),
    )
    return Candidate(item, there.digest if there else None)


def _referrers(
    source: RegistryClient, subjects: list[Candidate], tags: set[str]
) -> list[Candidate]:
    """Candidates of kind ``referrer`` for what refers to each subject, once each."""
    out: dict[str, Candidate] = {}
    for subject in subjects:
        item = subject.item
        if item.source_digest is None or item.status not in SUBJECT_STATUSES:
            continue  # a kept or failed subject is not on the target: nor its referrers
        for ref in referrers_of(
            source, item.source_repository, item.target_repository, item.source_digest, tags
        ):
            out.setdefault(ref.source_tag, Candidate(ref, None))
    return list(out.values())


def _planned(
    manifest: Manifest, there: str | None, checked: bool, status: ItemStatus
) -> dict[str, object]:
    """The fields of NewItem that let a pending item's copy skip reading again."""
    if status != ItemStatus.PENDING:
        return {}
    return {
        "manifest": manifest.raw,
        "media_type": manifest.media_type,
        "target_checked": checked,
        "target_digest": there,
    }


def selected_repositories(
    source: RegistryClient, namespace: str, selector: Selector, limit: int | None = None
) -> Iterator[str]:
    """The source's repositories under ``namespace`` that the rule selects, in catalog order.

    ListingLimit once more than ``limit`` repositories were listed (selected or not).
    """
    for listed, repository in enumerate(source.iter_repositories(prefix=namespace + "/"), 1):
        if limit is not None and listed > limit:
            raise ListingLimit(
                f"the source lists more than {limit} repositories under {namespace}/ "
                "(FERRY_MAX_REPOSITORIES_PER_TASK); narrow the rule's namespace or raise it"
            )
        if selector.selects_repository(repository):
            yield repository


class _TagBudget:
    """Tags listed so far in one plan, across its threads; ListingLimit past ``limit``."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.used, self._lock = limit, 0, threading.Lock()

    def take(self) -> None:
        with self._lock:
            self.used += 1
            if self.limit is not None and self.used > self.limit:
                raise ListingLimit(
                    f"the source lists more than {self.limit} tags for this rule "
                    "(FERRY_MAX_TAGS_PER_TASK); narrow the rule or raise it"
                )


def plan(
    source: RegistryClient,
    target: RegistryClient,
    rule: Rule,
    *,
    threads: int = PLAN_THREADS,
    window: int = REPOSITORY_WINDOW,
    max_repositories: int | None = None,
    max_tags: int | None = None,
) -> Iterator[list[Candidate]]:
    """Yield, repository by repository in catalog order, the candidates the rule selects now.

    Up to ``window`` repositories are resolved at once (their tag lists by one
    pool, their tags by another, so neither waits on itself); memory holds at
    most that many repositories' tags. Past ``max_repositories`` listed
    repositories or ``max_tags`` listed tags, ListingLimit.
    """
    selector = Selector.from_rule(rule)
    budget = _TagBudget(max_tags)

    def listed(repository: str) -> Iterator[str]:
        for tag in source.iter_tags(repository):
            budget.take()
            yield tag

    def resolve(repository: str) -> list[Candidate]:
        every = list(listed(repository))
        tags = view(source, repository, rule, selector, every)
        found = tag_pool.map(
            carried(lambda tag: _resolve(source, target, rule, selector, repository, tag)),
            tags,
        )
        chosen = [c for c in found if c is not None]
        if rule.include_referrers:
            chosen.extend(_referrers(source, chosen, set(every)))
        return chosen

    with (
        ThreadPoolExecutor(threads, thread_name_prefix="ferry-plan-tag") as tag_pool,
        ThreadPoolExecutor(window, thread_name_prefix="ferry-plan-repo") as repo_pool,
    ):
        in_flight: deque[Future[list[Candidate]]] = deque()
        repositories = selected_repositories(
            source, rule.source_namespace, selector, max_repositories
        )
        for repository in repositories:
            # A budget set by the caller (the API's preview) holds in the pools too.
            in_flight.append(repo_pool.submit(carried(resolve), repository))
            if len(in_flight) >= window:
                batch = in_flight.popleft().result()
                if batch:
                    yield batch
        while in_flight:
            batch = in_flight.popleft().result()
            if batch:
                yield batch
