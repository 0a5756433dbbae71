"""API keys of users: create, list, revoke and rotate bearer tokens and SecretId/SecretKey pairs.

A bearer token is kept as its SHA-256 only. A SecretKey is kept encrypted
(FERRY_SECRET_KEYS), because checking a request's signature needs the key
itself. Either secret is returned once, when the key is created or rotated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from common import db as database
from common.db import keys as q
from common.db import users as qu
from common.domain.models import ApiKey
from common.domain.vocab import KeyKind
from common.errors import ConfigError, Conflict, NotFound, ValidationError
from common.security.crypto import SecretBox
from common.security.tokens import display_prefix, hash_token, new_secret_pair, new_token
from common.settings import Settings

MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class NewKey:
    """A key just created, with its secret (shown once, never stored in clear)."""

    key: ApiKey
    token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", {field_name: [message]})


def _check(kind: str, description: str, expires_at: dt.datetime | None) -> KeyKind:
    try:
        parsed = KeyKind(kind)
    except ValueError:
        raise _invalid("kind", f"must be one of {', '.join(KeyKind)}") from None
    if len(description) > MAX_DESCRIPTION:
        raise _invalid("description", f"must be at most {MAX_DESCRIPTION} characters")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise _invalid("expires_at", "must name its time zone (e.g. 2027-01-31T00:00:00Z)")
        if expires_at <= dt.datetime.now(dt.UTC):
            raise _invalid("expires_at", "must be in the future")
    return parsed


def _insert(
    conn: psycopg.Connection,
    settings: Settings,
    tenant_id: UUID,
    user_id: UUID,
    kind: KeyKind,
    description: str,
    expires_at: dt.datetime | None,
) -> NewKey:
    common = {"kind": kind, "description": description, "expires_at": expires_at}
    if kind == KeyKind.BEARER:
        token = new_token()
        row = q.insert_key(
            conn,
            tenant_id,
            user_id,
            prefix=display_prefix(token),
            token_hash=hash_token(token),
            **common,
        )
        return NewKey(row, token=token)
    secret_id, secret_key = new_secret_pair()
    row = q.insert_key(
        conn,
        tenant_id,
        user_id,
        prefix=secret_id,
        secret_id=secret_id,
        secret_key_enc=SecretBox(settings).encrypt(secret_key),
        **common,
    )
    return NewKey(row, secret_key=secret_key)


def _user_of_tenant(conn: psycopg.Connection, tenant_id: UUID, user_id: UUID) -> None:
    if qu.get_user(conn, user_id, tenant_id) is None:
        raise NotFound("user not found")


def create_key(
    settings: Settings,
    tenant_id: UUID,
    user_id: UUID,
    *,
    kind: str = KeyKind.BEARER,
    description: str = "",
    expires_at: dt.datetime | None = None,
) -> NewKey:
    """A new key of the tenant's user, with its secret (returned once)."""
    parsed = _check(kind, description, expires_at)
    if parsed == KeyKind.SECRET_PAIR and not settings.secret_keys:
        raise ConfigError("FERRY_SECRET_KEYS: not set; it is required to store a SecretKey")
    with database.transaction(settings) as conn:
        _user_of_tenant(conn, tenant_id, user_id)
        return _insert(conn, settings, tenant_id, user_id, parsed, description, expires_at)


def list_keys(
    settings: Settings, tenant_id: UUID, user_id: UUID, *, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    """One page of the user's unrevoked keys (expired ones included), newest first."""
    with database.transaction(settings) as conn:
        _user_of_tenant(conn, tenant_id, user_id)
        return q.list_keys(conn, user_id, tenant_id, limit=limit, offset=offset)


def revoke_key(settings: Settings, tenant_id: UUID, user_id: UUID, key_id: UUID) -> None:
    """Revoke the key now: the next request with it fails, in every API process."""
    with database.transaction(settings) as conn:
        if not q.revoke_key(conn, key_id, user_id, tenant_id):
            raise NotFound("key not found")


def rotate_key(settings: Settings, tenant_id: UUID, user_id: UUID, key_id: UUID) -> NewKey:
    """Revoke the key and create one of the same kind, description and expiry, atomically."""
    with database.transaction(settings) as conn:
        old = q.get_key(conn, key_id, user_id, tenant_id)
        if (
            old is None
            or old.revoked_at is not None
            or not q.revoke_key(conn, key_id, user_id, tenant_id)
        ):
            raise NotFound("key not found")
        if old.expires_at is not None and old.expires_at <= dt.datetime.now(dt.UTC):
            # Its replacement would be born expired; an expired key is replaced by a new one.
            raise Conflict("the key has expired; create a new key instead")
        return _insert(
            conn, settings, tenant_id, user_id, KeyKind(old.kind), old.description, old.expires_at
        )


def secret_key_for(settings: Settings, secret_id: str) -> tuple[UUID, str] | None:
    """(key id, SecretKey) of a live SecretId, for checking a signed request; else None."""
    with database.transaction(settings) as conn:
        found = q.principal_for_secret_id(conn, secret_id)
    if found is None:
        return None
    return found["key_id"], SecretBox(settings).decrypt(found["secret_key_enc"])
