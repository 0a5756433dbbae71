"""Encryption at rest of registry passwords (MultiFernet with FERRY_SECRET_KEYS).

The first key encrypts; every key decrypts, so keys can be rotated without
downtime: add a new key in front, run ``ferry keys rotate``, drop the old one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from common.errors import ConfigError
from common.settings import Settings


class SecretBox:
    """Encrypts and decrypts short secrets with the configured keys."""

    def __init__(self, settings: Settings) -> None:
        if not settings.secret_keys:
            raise ConfigError("FERRY_SECRET_KEYS: not set; it is required to store credentials")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in settings.secret_keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise ConfigError(
                "FERRY_SECRET_KEYS: a stored credential cannot be decrypted with any configured key"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the first key (no-op in meaning, new ciphertext)."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise ConfigError(
                "FERRY_SECRET_KEYS: a stored credential cannot be decrypted with any configured key"
            ) from None
