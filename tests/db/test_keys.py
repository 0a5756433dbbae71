"""Key rotation: every stored secret re-encrypted under the first of FERRY_SECRET_KEYS."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from common.cli.main import main
from common.db import instances, rules
from common.db.tenants import create_tenant
from common.errors import ConfigError
from common.security.crypto import SecretBox
from common.security.tokens import hash_token
from common.services.keys import rotate_secrets

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _store_secrets(db, box: SecretBox) -> None:
    """Two tenants, instances with passwords and a cross-tenant rule, under ``box``."""
    alice, _ = create_tenant(db, "alice-co")
    bob, _ = create_tenant(db, "bob-co")

    def inst(tenant, name, password):
        return instances.insert_instance(
            db,
            tenant,
            {
                "name": name,
                "url": "http://127.0.0.1:5000",
                "username": "u",
                "password_enc": box.encrypt(password) if password else None,
            },
            hash_token(name),
        )

    src = inst(alice, "src", "src-pw")
    inst(alice, "open", None)
    dst = inst(bob, "dst", "dst-pw")
    rules.insert_rule(
        db,
        alice,
        {
            "name": "to-bob",
            "source_instance_id": src.id,
            "source_namespace": "p",
            "target_instance_id": dst.id,
            "target_namespace": "t",
            "cross_tenant": True,
            "target_account_id": bob,
            "target_username": "robot",
            "target_password_enc": box.encrypt("rule-pw"),
            "resource_types": ["image"],
        },
    )


def _stored(db) -> list[bytes]:
    return [
        bytes(r["c"])
        for r in db.execute(
            "SELECT password_enc AS c FROM instances WHERE password_enc IS NOT NULL UNION ALL "
            "SELECT target_password_enc FROM rules WHERE target_password_enc IS NOT NULL"
        )
    ]


def test_rotate_re_encrypts_every_secret_under_the_first_key(settings, db):
    _store_secrets(db, SecretBox(replace(settings, secret_keys=(OLD,))))
    before = _stored(db)
    result = rotate_secrets(settings, SecretBox(replace(settings, secret_keys=(NEW, OLD))))
    assert (result.instance_passwords, result.rule_passwords, result.total) == (2, 1, 3)
    after = _stored(db)
    assert len(after) == 3 and not set(before) & set(after)
    only_new = SecretBox(replace(settings, secret_keys=(NEW,)))
    assert sorted(only_new.decrypt(c) for c in after) == ["dst-pw", "rule-pw", "src-pw"]
    only_old = SecretBox(replace(settings, secret_keys=(OLD,)))
    with pytest.raises(ConfigError):
        only_old.decrypt(after[0])


def test_rotate_is_all_or_nothing_when_a_secret_cannot_be_decrypted(settings, db):
    _store_secrets(db, SecretBox(replace(settings, secret_keys=(OLD,))))
    before = _stored(db)
    with pytest.raises(ConfigError) as info:
        rotate_secrets(settings, SecretBox(replace(settings, secret_keys=(NEW,))))
    assert OLD not in str(info.value) and NEW not in str(info.value)
    assert _stored(db) == before


def test_cli_keys_rotate(settings, db, monkeypatch):
    _store_secrets(db, SecretBox(replace(settings, secret_keys=(OLD,))))
    runner = CliRunner()
    result = runner.invoke(main, ["keys", "rotate"], env={"FERRY_SECRET_KEYS": f"{NEW},{OLD}"})
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 secret(s)" in result.output
    only_new = SecretBox(replace(settings, secret_keys=(NEW,)))
    assert sorted(only_new.decrypt(c) for c in _stored(db)) == ["dst-pw", "rule-pw", "src-pw"]

    # The old key is gone from the configuration: a second rotation needs only the new one.
    result = runner.invoke(main, ["keys", "rotate"], env={"FERRY_SECRET_KEYS": NEW})
    assert result.exit_code == 0, result.output

    result = runner.invoke(main, ["keys", "rotate"], env={"FERRY_SECRET_KEYS": OLD})
    assert result.exit_code == 1
    assert result.output.startswith("error: FERRY_SECRET_KEYS:")
    assert OLD not in result.output and "Traceback" not in result.output


def test_cli_keys_rotate_without_keys_is_one_line_error(settings, monkeypatch):
    monkeypatch.delenv("FERRY_SECRET_KEYS", raising=False)
    result = CliRunner().invoke(main, ["keys", "rotate"], env={"FERRY_SECRET_KEYS": ""})
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "error: FERRY_SECRET_KEYS: not set; it is required to store credentials"
    )


def test_rotate_re_encrypts_api_secret_keys_too(settings, db):
    from common.services.apikeys import create_key, secret_key_for
    from common.services.tenants import create_tenant as new_tenant

    old_settings = replace(settings, secret_keys=(OLD,))
    tenant = new_tenant(old_settings, "acme")
    user_id = db.execute(
        "SELECT id FROM users WHERE tenant_id = %s", (tenant.tenant_id,)
    ).fetchone()["id"]
    pair = create_key(old_settings, tenant.tenant_id, user_id, kind="secret_pair")
    result = rotate_secrets(settings, SecretBox(replace(settings, secret_keys=(NEW, OLD))))
    assert (result.secret_keys, result.total) == (1, 1)
    found = secret_key_for(replace(settings, secret_keys=(NEW,)), pair.key.secret_id)
    assert found == (pair.key.id, pair.secret_key)
