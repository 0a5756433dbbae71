"""Incoming rules: other accounts' rules writing into a tenant's instances, and blocking them.

The target account sees only what concerns it (source account id, rule name,
target namespace, last task), never the source's address or credentials.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common import db as database
from common.db import rules as q
from common.errors import NotFound
from common.settings import Settings


def list_incoming(
    settings: Settings,
    tenant_id: UUID,
    *,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the rules writing into the tenant's instances (only those of ``only``)."""
    with database.transaction(settings) as conn:
        return q.list_incoming(conn, tenant_id, limit=limit, offset=offset, only=only)


def get_incoming(settings: Settings, tenant_id: UUID, rule_id: UUID) -> dict[str, Any]:
    """One rule writing into the tenant's instances; NotFound otherwise."""
    with database.transaction(settings) as conn:
        row = q.get_incoming(conn, rule_id, tenant_id)
    if row is None:
        raise NotFound("incoming rule not found")
    return row


def set_blocked(settings: Settings, tenant_id: UUID, rule_id: UUID, blocked: bool) -> dict:
    """Block (or unblock) a rule writing into the tenant's instances; the rule as shown.

    A blocked rule's next tasks end Failed with "blocked by the target account".
    """
    with database.transaction(settings) as conn:
        if not q.set_blocked(conn, rule_id, tenant_id, blocked):
            raise NotFound("incoming rule not found")
        row = q.get_incoming(conn, rule_id, tenant_id)
    assert row is not None
    return row
