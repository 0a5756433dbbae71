"""Drift reports of a tenant's rules: start one (a worker fills it), read it in pages."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from common import db as database
from common.db import drift as q
from common.db.rules import get_rule
from common.domain.operations import DriftEntry, DriftKind, DriftReport
from common.errors import found
from common.settings import Settings


@dataclass(frozen=True)
class DriftPage:
    """A report with one page of each of its lists (and each list's total)."""

    report: DriftReport
    lists: dict[DriftKind, tuple[list[DriftEntry], int]]


def start_drift(settings: Settings, tenant_id: UUID, rule_id: UUID) -> DriftReport:
    """A new Pending drift report of the tenant's rule; enqueue it after this returns."""
    with database.transaction(settings) as conn:
        found(get_rule(conn, rule_id, tenant_id), "rule not found")
        return q.create_report(conn, tenant_id, rule_id)


def get_drift(
    settings: Settings,
    tenant_id: UUID,
    report_id: UUID,
    *,
    limit: int,
    offset: int,
    kinds: tuple[DriftKind, ...] = tuple(DriftKind),
) -> DriftPage:
    """The tenant's report with entries ``offset`` to ``offset + limit`` of each list."""
    with database.transaction(settings) as conn:
        report = found(q.get_report(conn, report_id, tenant_id), "drift report not found")
        lists = {
            kind: q.entries_page(conn, report.id, kind, limit=limit, offset=offset)
            for kind in kinds
        }
    return DriftPage(report, lists)
