"""What a rule selects now and whether the target has it: the preview, which copies nothing."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from uuid import UUID

from common import db as database
from common.db.rules import get_rule
from common.errors import NotFound
from common.registry.deadline import budget
from common.settings import Settings
from common.sync.clients import endpoints_for
from common.sync.explain import Explanation, explain
from common.sync.planner import Candidate, plan

# A preview lists the source live: deeper pages than this are refused work.
MAX_PREVIEW_OFFSET = 100_000
# A person waits for the preview: all its registry requests end within this.
PREVIEW_BUDGET_SECONDS = 20.0


@dataclass(frozen=True)
class PreviewPage:
    """One page of candidates; ``item_count`` is known only once the listing ended on it."""

    candidates: list[Candidate]
    item_count: int | None


def preview_rule(
    settings: Settings, tenant_id: UUID, rule_id: UUID, *, offset: int, size: int
) -> PreviewPage:
    """The candidates ``offset`` to ``offset + size`` of what the tenant's rule selects now."""
    with database.transaction(settings) as conn:
        rule = get_rule(conn, rule_id, tenant_id)
        if rule is None:
            raise NotFound(f"rule {rule_id} not found")
        ends = endpoints_for(conn, rule, settings)
    if offset > MAX_PREVIEW_OFFSET:
        return PreviewPage([], None)
    candidates = (c for batch in plan(ends.source, ends.target, rule) for c in batch)
    # One more than the page tells whether another page exists without listing it all.
    with budget(PREVIEW_BUDGET_SECONDS):
        window = list(islice(candidates, offset, offset + size + 1))
    count = offset + len(window) if len(window) <= size else None
    return PreviewPage(window[:size], count)


def explain_empty_preview(settings: Settings, tenant_id: UUID, rule_id: UUID) -> Explanation | None:
    """Why the tenant's rule selects nothing now (which filter excluded what), or None."""
    with database.transaction(settings) as conn:
        rule = get_rule(conn, rule_id, tenant_id)
        if rule is None:
            raise NotFound(f"rule {rule_id} not found")
        ends = endpoints_for(conn, rule, settings)
    return explain(ends.source, rule)
