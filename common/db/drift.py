"""Drift reports: the report row, its entries in pages, and its life from Pending to the end."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import psycopg

from common.db.rows import Table, fetch_one
from common.domain.operations import DriftEntry, DriftReport, DriftStatus

REPORT_COLUMNS = (
    "id, tenant_id, rule_id, status, message, missing, differs, extra, in_sync, "
    "created_at, started_at, finished_at"
)
REPORTS = Table(DriftReport, REPORT_COLUMNS, "drift_reports", order_by="created_at DESC")
ENTRY_COLUMNS = (
    "kind, source_repository, source_tag, target_repository, target_tag, source_digest, "
    "target_digest, override_changes"
)
ENTRIES = Table(DriftEntry, ENTRY_COLUMNS, "drift_entries", order_by="id")


def create_report(conn: psycopg.Connection, tenant_id: UUID, rule_id: UUID) -> DriftReport:
    """A new Pending report of the rule."""
    row = fetch_one(
        conn,
        DriftReport,
        f"INSERT INTO drift_reports (tenant_id, rule_id) VALUES (%s, %s) "
        f"RETURNING {REPORT_COLUMNS}",
        (tenant_id, rule_id),
    )
    assert row is not None
    return row


def get_report(
    conn: psycopg.Connection, report_id: UUID, tenant_id: UUID | None = None
) -> DriftReport | None:
    """The report, or None; with ``tenant_id``, only that tenant's."""
    if tenant_id is None:
        return REPORTS.one(conn, "id = %s", (report_id,))
    return REPORTS.one(conn, "id = %s AND tenant_id = %s", (report_id, tenant_id))


def start_report(conn: psycopg.Connection, report_id: UUID) -> DriftReport | None:
    """Claim a Pending report (a redelivered message finds it taken: None)."""
    return fetch_one(
        conn,
        DriftReport,
        f"UPDATE drift_reports SET status = %s, started_at = now() "
        f"WHERE id = %s AND status = %s RETURNING {REPORT_COLUMNS}",
        (DriftStatus.IN_PROGRESS, report_id, DriftStatus.PENDING),
    )


def add_entries(conn: psycopg.Connection, report_id: UUID, entries: Iterable[DriftEntry]) -> None:
    """Append entries to the report."""
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO drift_entries (report_id, {ENTRY_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    report_id,
                    e.kind,
                    e.source_repository,
                    e.source_tag,
                    e.target_repository,
                    e.target_tag,
                    e.source_digest,
                    e.target_digest,
                    e.override_changes,
                )
                for e in entries
            ],
        )


def finish_report(
    conn: psycopg.Connection, report_id: UUID, status: DriftStatus, message: str = ""
) -> DriftReport | None:
    """End the report with its counts taken from its entries."""
    return fetch_one(
        conn,
        DriftReport,
        f"""UPDATE drift_reports r SET status = %s, message = %s, finished_at = now(),
              missing = c.missing, differs = c.differs, extra = c.extra, in_sync = c.in_sync
            FROM (SELECT count(*) FILTER (WHERE kind = 'missing') AS missing,
                         count(*) FILTER (WHERE kind = 'differs') AS differs,
                         count(*) FILTER (WHERE kind = 'extra') AS extra,
                         count(*) FILTER (WHERE kind = 'in_sync') AS in_sync
                  FROM drift_entries WHERE report_id = %s) c
            WHERE r.id = %s RETURNING {", ".join("r." + c for c in REPORT_COLUMNS.split(", "))}""",
        (status, message, report_id, report_id),
    )


def entries_page(
    conn: psycopg.Connection, report_id: UUID, kind: str, *, limit: int, offset: int
) -> tuple[list[DriftEntry], int]:
    """One page of the report's entries of ``kind``, and their total."""
    return ENTRIES.page(
        conn, "report_id = %s AND kind = %s", (report_id, kind), limit=limit, offset=offset
    )
