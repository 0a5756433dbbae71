"""Settings: defaults, and one-line errors that name the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from common.errors import ConfigError
from common.settings import load_settings


def test_defaults_are_embedded_mode():
    s = load_settings({})
    assert s.database_url is None and s.redis_url is None
    assert s.embedded
    # Root's default avoids /root (0700), which the embedded PostgreSQL's account cannot cross.
    expected = "/var/lib/ferry" if os.geteuid() == 0 else "~/.local/share/ferry"
    assert s.data_dir == Path(expected).expanduser()
    assert s.api_bind == ("127.0.0.1", 8000)
    assert s.flower_bind == ("127.0.0.1", 5555)
    assert s.log_level == "INFO"
    assert s.secret_keys == ()


def test_values_are_parsed():
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    s = load_settings(
        {
            "FERRY_DATABASE_URL": "postgresql://u@db:5432/ferry",
            "FERRY_REDIS_URL": "redis://cache:6379/1",
            "FERRY_SECRET_KEYS": f"{k1}, {k2}",
            "FERRY_DATA_DIR": "/var/lib/ferry",
            "FERRY_API_BIND": "0.0.0.0:9000",
            "FERRY_FLOWER_BIND": "[::1]:5556",
            "FERRY_LOG_LEVEL": "debug",
            "FERRY_REGISTRY_DENY_NETWORKS": "10.0.0.0/8",
        }
    )
    assert not s.embedded
    assert s.secret_keys == (k1, k2)
    assert s.data_dir == Path("/var/lib/ferry")
    assert s.api_bind == ("0.0.0.0", 9000)
    assert s.flower_bind == ("::1", 5556)
    assert s.log_level == "DEBUG"
    assert [str(n) for n in s.registry_deny_networks] == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FERRY_DATABASE_URL", "mysql://x"),
        ("FERRY_REDIS_URL", "http://redis"),
        ("FERRY_SECRET_KEYS", "not-a-key"),
        ("FERRY_SECRET_KEYS", " , "),
        ("FERRY_API_BIND", "8000"),
        ("FERRY_API_BIND", "127.0.0.1:99999"),
        ("FERRY_FLOWER_BIND", "localhost:"),
        ("FERRY_LOG_LEVEL", "LOUD"),
        ("FERRY_REGISTRY_ALLOW_NETWORKS", "10.0.0.0/33"),
        ("FERRY_REGISTRY_DENY_NETWORKS", "banana"),
        ("FERRY_FLOWER_BASIC_AUTH", "nocolon"),
        ("FERRY_FULL_RESCAN_INTERVAL", "soon"),
    ],
)
def test_malformed_value_names_the_variable(name, value):
    with pytest.raises(ConfigError) as err:
        load_settings({name: value})
    message = str(err.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_secret_key_never_echoed():
    bad = "c2VjcmV0LXNob3J0LWtleQ=="
    with pytest.raises(ConfigError) as err:
        load_settings({"FERRY_SECRET_KEYS": bad})
    assert bad not in str(err.value)


def test_only_settings_reads_the_environment():
    root = Path(__file__).resolve().parents[2]
    readers = [
        str(p.relative_to(root))
        for pkg in ("api", "worker", "common")
        for p in (root / pkg).rglob("*.py")
        if "os.environ" in p.read_text() or "os.getenv" in p.read_text()
    ]
    assert readers == ["common/settings.py"]


def test_webhook_grace_and_rate_limit():
    s = load_settings({})
    assert (s.webhook_secret_grace, s.webhook_rate_limit) == (86400, "600/minute")
    s = load_settings(
        {"FERRY_WEBHOOK_SECRET_GRACE": "0", "FERRY_WEBHOOK_RATE_LIMIT": "30 per Second"}
    )
    assert (s.webhook_secret_grace, s.webhook_rate_limit) == (0, "30/second")
    assert load_settings(s.to_env()).webhook_rate_limit == "30/second"
    for name, value in (
        ("FERRY_WEBHOOK_SECRET_GRACE", "1d"),
        ("FERRY_WEBHOOK_RATE_LIMIT", "0/minute"),
        ("FERRY_WEBHOOK_RATE_LIMIT", "lots"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})


def test_repr_hides_secrets_and_url_credentials():
    key = Fernet.generate_key().decode()
    s = load_settings(
        {
            "FERRY_DATABASE_URL": "postgresql://ferry:db-pw@db:5432/ferry?sslpassword=ssl-pw",
            "FERRY_REDIS_URL": "redis://:redis-pw@cache:6379/1",
            "FERRY_SECRET_KEYS": key,
            "FERRY_FLOWER_BASIC_AUTH": "admin:flower-pw",
            "FERRY_TOKEN": "api-token",
            "FERRY_SRC_CREDS": "u:src-pw",
        }
    )
    text = repr(s) + str(s)
    for secret in ("db-pw", "ssl-pw", "redis-pw", key, "flower-pw", "api-token", "src-pw"):
        assert secret not in text, secret
    assert "postgresql://ferry:***@db:5432/ferry" in text and "cache:6379/1" in text


def test_flowers_password_goes_by_environment_not_argv():
    from common.runtime.supervisor import child_commands, role_argv, role_env

    s = load_settings({"FERRY_FLOWER_BASIC_AUTH": "admin:flower-pw"})
    assert not any("flower-pw" in a for a in role_argv("flower", s))
    assert role_env("flower", s) == {"FLOWER_BASIC_AUTH": "admin:flower-pw"}
    assert role_env("api", s) == {}
    for child in child_commands(s, "ferry:generated-pw"):
        assert not any("pw" in a for a in child.argv), child.argv
    flower = next(c for c in child_commands(s, "ferry:generated-pw") if c.name == "flower")
    assert flower.env == {"FLOWER_BASIC_AUTH": "ferry:generated-pw"}


def test_api_tls_needs_both_files_and_gives_gunicorn_both(tmp_path):
    from common.runtime.supervisor import role_argv

    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    for given in ({"FERRY_API_TLS_CERT": str(cert)}, {"FERRY_API_TLS_KEY": str(key)}):
        with pytest.raises(ConfigError) as exc:
            load_settings(given)
        assert "FERRY_API_TLS_" in str(exc.value) and "both" in str(exc.value)
    s = load_settings({"FERRY_API_TLS_CERT": str(cert), "FERRY_API_TLS_KEY": str(key)})
    assert s.api_url == "https://127.0.0.1:8000"
    assert load_settings(s.to_env()).api_tls_key == key
    with pytest.raises(ConfigError, match="FERRY_API_TLS_CERT: no readable file"):
        role_argv("api", s)
    cert.write_text("cert")
    key.write_text("key")
    argv = role_argv("api", s)
    assert argv[argv.index("--certfile") + 1] == str(cert)
    assert argv[argv.index("--keyfile") + 1] == str(key)
    assert "--certfile" not in role_argv("api", load_settings({}))
