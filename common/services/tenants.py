"""Tenants as the API sees them: whose token is this."""

from __future__ import annotations

from uuid import UUID

from common import db as database
from common.db import tenants as q
from common.settings import Settings


def authenticate(settings: Settings, token: str) -> UUID | None:
    """The tenant owning an unrevoked API ``token``, or None.

    The token is looked up by its SHA-256 (see ``common.db.tenants``), so
    neither the token nor timing reveals stored tokens.
    """
    with database.transaction(settings) as conn:
        return q.tenant_for_token(conn, token)


def create_tenant(settings: Settings, name: str) -> tuple[UUID, str]:
    """A new tenant and its first API token (the token is returned once; only its hash is kept)."""
    with database.transaction(settings) as conn:
        return q.create_tenant(conn, name)
