"""FERRY_API_TLS_CERT and FERRY_API_TLS_KEY: both or neither, and readable, or one line."""

from __future__ import annotations

from common.settings import Settings, child_environment
from tests.support.cli import ferry
from tests.support.registry import free_port


def _env(settings: Settings, **tls: str) -> dict[str, str]:
    env = {k: v for k, v in child_environment(settings).items() if not k.startswith("FERRY_API_")}
    env["FERRY_API_BIND"] = f"127.0.0.1:{free_port()}"
    env.update(tls)
    return env


def test_one_without_the_other_is_refused(settings, tmp_path):
    env = _env(settings, FERRY_API_TLS_CERT=str(tmp_path / "api.crt"))
    env["FERRY_DATA_DIR"] = str(tmp_path / "data")
    out = ferry("up", env=env, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: FERRY_API_TLS_KEY: required with FERRY_API_TLS_CERT "
        "(give both for HTTPS, or neither)"
    )
    assert not (tmp_path / "data").exists()  # nothing was started


def test_an_unreadable_file_is_named_by_ferry_api(settings, tmp_path):
    key = tmp_path / "api.key"
    key.write_text("key")
    env = _env(
        settings, FERRY_API_TLS_CERT=str(tmp_path / "nothere.crt"), FERRY_API_TLS_KEY=str(key)
    )
    out = ferry("api", env=env, timeout=30)
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == f"error: FERRY_API_TLS_CERT: no readable file at {tmp_path}/nothere.crt"
    )
    assert "Traceback" not in out.stderr
