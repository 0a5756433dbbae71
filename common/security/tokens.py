"""API tokens and webhook secrets: generated here, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "fry_"


def new_token() -> str:
    """A fresh random token (256 bits), recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """The 32-byte digest stored in place of a token.

    A plain SHA-256 suffices: tokens are 256 random bits, so there is nothing
    for a slow hash to protect against.
    """
    return hashlib.sha256(token.encode()).digest()


def matches(token: str, *stored: bytes | None) -> bool:
    """True when ``token`` hashes to one of ``stored``, compared in constant time."""
    digest = hash_token(token)
    ok = False
    for candidate in stored:
        if candidate is not None:
            ok |= hmac.compare_digest(digest, bytes(candidate))
    return ok


SECRET_ID_PREFIX = "FRYID"
PREFIX_LENGTH = 12


def display_prefix(token: str) -> str:
    """The first characters of a token, shown in key lists so a person can tell keys apart."""
    return token[:PREFIX_LENGTH]


def new_secret_pair() -> tuple[str, str]:
    """A SecretId (public identifier) and a SecretKey (the signing secret)."""
    return SECRET_ID_PREFIX + secrets.token_hex(16).upper(), secrets.token_urlsafe(30)
