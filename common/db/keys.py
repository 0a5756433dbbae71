"""API keys of users (table ``api_tokens``): bearer tokens and SecretId/SecretKey pairs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import fetch_all, fetch_dict, fetch_one, fetch_page, fetch_value
from common.domain.models import ApiKey
from common.domain.vocab import KeyKind

COLUMNS = (
    "id, tenant_id, user_id, kind, prefix, description, secret_id, token_hash, secret_key_enc, "
    "created_at, last_used_at, expires_at, revoked_at"
)
# A key's last use is written at most this often (also in _PRINCIPAL's use_stale),
# so that reads do not become writes.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def insert_key(
    conn: psycopg.Connection,
    tenant_id: UUID,
    user_id: UUID,
    *,
    kind: KeyKind,
    prefix: str,
    description: str,
    expires_at: dt.datetime | None,
    token_hash: bytes | None = None,
    secret_id: str | None = None,
    secret_key_enc: bytes | None = None,
) -> ApiKey:
    """Store a new key of the user (a hash or an encrypted SecretKey, never the secret)."""
    row = fetch_one(
        conn,
        ApiKey,
        "INSERT INTO api_tokens (tenant_id, user_id, kind, prefix, description, expires_at, "
        "token_hash, secret_id, secret_key_enc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"RETURNING {COLUMNS}",
        (
            tenant_id,
            user_id,
            kind.value,
            prefix,
            description,
            expires_at,
            token_hash,
            secret_id,
            secret_key_enc,
        ),
    )
    assert row is not None
    return row


def get_key(
    conn: psycopg.Connection, key_id: UUID, user_id: UUID, tenant_id: UUID
) -> ApiKey | None:
    """The user's key (revoked ones included), or None."""
    return fetch_one(
        conn,
        ApiKey,
        f"SELECT {COLUMNS} FROM api_tokens WHERE id = %s AND user_id = %s AND tenant_id = %s",
        (key_id, user_id, tenant_id),
    )


def list_keys(
    conn: psycopg.Connection, user_id: UUID, tenant_id: UUID, *, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    """One page of the user's unrevoked keys, newest first, and the total."""
    return fetch_page(
        conn,
        ApiKey,
        columns=COLUMNS,
        source="api_tokens",
        where="user_id = %s AND tenant_id = %s AND revoked_at IS NULL",
        params=(user_id, tenant_id),
        order_by="created_at DESC, id",
        limit=limit,
        offset=offset,
    )


def revoke_key(conn: psycopg.Connection, key_id: UUID, user_id: UUID, tenant_id: UUID) -> bool:
    """Revoke the user's key now; False when it does not exist or was already revoked."""
    revoked = fetch_value(
        conn,
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND user_id = %s "
        "AND tenant_id = %s AND revoked_at IS NULL RETURNING id",
        (key_id, user_id, tenant_id),
    )
    return revoked is not None


_LIVE = "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
_PRINCIPAL = (
    "SELECT k.id AS key_id, k.tenant_id, k.user_id, u.name AS user_name, u.role, u.grants, "
    "(k.last_used_at IS NULL OR k.last_used_at <= now() - interval '1 minute') AS use_stale "
    "FROM api_tokens k JOIN users u ON u.id = k.user_id "
)


def principal_for_token(conn: psycopg.Connection, token_hash: bytes) -> dict[str, Any] | None:
    """Key, user, role and grants of a live bearer token, looked up by its hash."""
    return fetch_dict(
        conn,
        _PRINCIPAL + f"WHERE k.token_hash = %s AND k.kind = %s AND {_LIVE}",
        (token_hash, KeyKind.BEARER.value),
    )


def principal_for_secret_id(conn: psycopg.Connection, secret_id: str) -> dict[str, Any] | None:
    """Key, user, role, grants and encrypted SecretKey of a live SecretId."""
    return fetch_dict(
        conn,
        _PRINCIPAL.replace("SELECT ", "SELECT k.secret_key_enc, ", 1)
        + f"WHERE k.secret_id = %s AND k.kind = %s AND {_LIVE}",
        (secret_id, KeyKind.SECRET_PAIR.value),
    )


def touch_key(conn: psycopg.Connection, key_id: UUID) -> None:
    """Record a use of the key, unless one was recorded within the last minute.

    The condition is in the UPDATE, so concurrent requests write it once.
    """
    conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = %s "
        "AND (last_used_at IS NULL OR last_used_at <= now() - %s)",
        (key_id, LAST_USED_RESOLUTION),
    )


def encrypted_secret_keys(conn: psycopg.Connection) -> list[ApiKey]:
    """Every key holding an encrypted SecretKey, locked for update (key rotation)."""
    return fetch_all(
        conn,
        ApiKey,
        f"SELECT {COLUMNS} FROM api_tokens WHERE secret_key_enc IS NOT NULL ORDER BY id FOR UPDATE",
    )


def set_encrypted_secret_key(conn: psycopg.Connection, key_id: UUID, secret_key_enc: bytes) -> None:
    """Replace a key's encrypted SecretKey (same plaintext, new ciphertext)."""
    conn.execute(
        "UPDATE api_tokens SET secret_key_enc = %s WHERE id = %s", (secret_key_enc, key_id)
    )
