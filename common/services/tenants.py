"""Tenants as the API sees them: create one, and who holds this key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from common import db as database
from common.db import keys as qk
from common.db import tenants as q
from common.domain.permissions import Principal
from common.domain.vocab import Role
from common.security.passwords import hash_password, new_password
from common.security.tokens import hash_token
from common.settings import Settings


@dataclass(frozen=True)
class NewTenant:
    """A tenant just created, with its user ``admin``'s secrets (shown once, never stored)."""

    tenant_id: UUID
    user_name: str
    password: str = field(repr=False)
    token: str = field(repr=False)


def principal_from_row(found: dict[str, Any]) -> Principal:
    """The Principal of a key lookup (``common.db.keys.principal_for_*``)."""
    return Principal(
        tenant_id=found["tenant_id"],
        user_id=found["user_id"],
        user_name=found["user_name"],
        role=Role(found["role"]),
        grants=tuple(found["grants"]),
        key_id=found["key_id"],
    )


def authenticate(settings: Settings, token: str) -> Principal | None:
    """Who holds a live bearer ``token`` (not revoked, not expired), or None.

    Read from the database on every request, so a revocation made through any
    API process counts on the next request everywhere. The token is looked up
    by its SHA-256, so neither the token nor timing reveals stored tokens.
    """
    with database.transaction(settings) as conn:
        found = qk.principal_for_token(conn, hash_token(token))
        if found is None:
            return None
        if found["use_stale"]:
            qk.touch_key(conn, found["key_id"])
        return principal_from_row(found)


def create_tenant(settings: Settings, name: str) -> NewTenant:
    """A new tenant with its user ``admin``, a console password and an API token
    (returned once; only an argon2id hash and a SHA-256 are kept)."""
    password = new_password()
    password_hash = hash_password(password)
    with database.transaction(settings) as conn:
        tenant_id, token = q.create_tenant(conn, name, password_hash)
    return NewTenant(tenant_id, q.ADMIN_USER, password, token)
