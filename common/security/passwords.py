"""Console passwords: generated here, stored only as argon2id hashes (argon2-cffi)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 64 MiB, t=3).
_HASHER = PasswordHasher()


def new_password() -> str:
    """A fresh random password (about 128 bits) for a user created without one."""
    return secrets.token_urlsafe(16)


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt included) stored in place of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash; False for no hash or a mismatch."""
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
