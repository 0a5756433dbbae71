"""Key rotation: re-encrypt every stored secret under the first of FERRY_SECRET_KEYS.

Procedure: put the new key first in FERRY_SECRET_KEYS (keep the old ones
after it), restart Ferry, run ``ferry keys rotate``, then drop the old keys.
API bearer tokens and webhook secrets are stored as hashes and need no rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import db as database
from common.db import instances, keys, rules
from common.security.crypto import SecretBox
from common.settings import Settings


@dataclass(frozen=True)
class RotationResult:
    """How many secrets were re-encrypted, by where they are stored."""

    instance_passwords: int
    rule_passwords: int
    # SecretKeys of users' SecretId/SecretKey pairs.
    secret_keys: int = 0

    @property
    def total(self) -> int:
        return self.instance_passwords + self.rule_passwords + self.secret_keys


def rotate_secrets(settings: Settings, box: SecretBox) -> RotationResult:
    """Re-encrypt every stored password under the box's first key, in one transaction.

    All or nothing: if one secret cannot be decrypted with any configured key,
    ConfigError is raised and nothing is changed.
    """
    with database.transaction(settings) as conn:
        rows = instances.encrypted_passwords(conn)
        for instance in rows:
            assert instance.password_enc is not None
            instances.set_encrypted_password(conn, instance.id, box.rotate(instance.password_enc))
        rule_rows = rules.encrypted_passwords(conn)
        for rule in rule_rows:
            assert rule.target_password_enc is not None
            rules.set_encrypted_password(conn, rule.id, box.rotate(rule.target_password_enc))
        key_rows = keys.encrypted_secret_keys(conn)
        for key in key_rows:
            assert key.secret_key_enc is not None
            keys.set_encrypted_secret_key(conn, key.id, box.rotate(key.secret_key_enc))
    return RotationResult(
        instance_passwords=len(rows), rule_passwords=len(rule_rows), secret_keys=len(key_rows)
    )
