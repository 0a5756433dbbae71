"""The audit log of a tenant: record a change, read the log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common import db as database
from common.db import audit as q
from common.domain.models import AuditEntry
from common.domain.permissions import Principal
from common.settings import Settings

# Request fields whose value never goes into the log (names of changed fields do).
SECRET_FIELDS = frozenset({"password", "token", "secret_key", "webhook_secret"})


def record(
    settings: Settings,
    who: Principal,
    *,
    object_type: str,
    object_id: str,
    action: str,
    source_ip: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry for a change ``who`` made (``details`` must hold no secret)."""
    with database.transaction(settings) as conn:
        q.record(
            conn,
            who.tenant_id,
            who.user_id,
            who.user_name,
            object_type=object_type,
            object_id=object_id,
            action=action,
            source_ip=source_ip,
            details=details or {},
        )


def list_entries(
    settings: Settings,
    tenant_id: UUID,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    user_id: UUID | None = None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """One page of the tenant's log, newest first, and the total."""
    return database.in_transaction(
        settings,
        q.list_entries,
        tenant_id,
        object_type=object_type,
        object_id=object_id,
        user_id=user_id,
        limit=limit,
        offset=offset,
    )
