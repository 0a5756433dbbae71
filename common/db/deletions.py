"""What a rule put on its target, as its items record it: the ground for deletions."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import psycopg

from common.db.rows import fetch_dicts
from common.domain.vocab import REFERRER, ItemStatus

# An item's latest word on a target tag: copied there (or found there), or deleted.
_PLACED = (ItemStatus.COPIED, ItemStatus.UP_TO_DATE)


@dataclass(frozen=True)
class Placed:
    """A target tag and the digest the rule last copied there, from its source tag."""

    source_repository: str
    source_tag: str
    target_repository: str
    target_tag: str
    digest: str


_LATEST = """
    SELECT DISTINCT ON (i.target_repository, i.target_tag)
           i.source_repository, i.source_tag, i.target_repository, i.target_tag, i.digest,
           i.status
    FROM sync_items i JOIN sync_tasks t ON t.id = i.task_id
    WHERE t.rule_id = %(rule)s AND i.status = ANY(%(statuses)s)
      AND i.kind IS DISTINCT FROM %(referrer)s AND i.digest IS NOT NULL
      AND (%(repo)s::text IS NULL OR i.source_repository = %(repo)s)
      AND (%(tag)s::text IS NULL OR i.source_tag = %(tag)s)
    ORDER BY i.target_repository, i.target_tag, i.finished_at DESC NULLS LAST, i.id DESC
"""


def placed_by_rule(
    conn: psycopg.Connection,
    rule_id: UUID,
    source_repository: str | None = None,
    source_tag: str | None = None,
) -> list[Placed]:
    """Target tags whose latest item of the rule copied (or found) them, not deleted since;
    optionally only those of one source repository (and tag)."""
    rows = fetch_dicts(
        conn,
        _LATEST,
        {
            "rule": rule_id,
            "repo": source_repository,
            "tag": source_tag,
            "statuses": [*_PLACED, ItemStatus.DELETED],
            "referrer": REFERRER,
        },
    )
    return [
        Placed(
            r["source_repository"],
            r["source_tag"],
            r["target_repository"],
            r["target_tag"],
            r["digest"],
        )
        for r in rows
        if r["status"] in _PLACED
    ]
