"""``ferry up`` with no URLs: embedded servers, every child, a clean stop, data kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.cli import FERRY, ferry
from tests.support.registry import free_port

pytestmark = pytest.mark.slow


def _env(data_dir: Path, api: int, flower: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update(
        FERRY_DATA_DIR=str(data_dir),
        FERRY_API_BIND=f"127.0.0.1:{api}",
        FERRY_FLOWER_BIND=f"127.0.0.1:{flower}",
        FERRY_FLOWER_BASIC_AUTH="admin:s3cret",
    )
    return env


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*FERRY, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _stop(proc: subprocess.Popen) -> tuple[float, list[psutil.Process]]:
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family, "ferry up has no children"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    elapsed = time.monotonic() - start
    time.sleep(0.2)
    return elapsed, [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_up_embedded_reaches_ready_and_stops_clean(tmp_path):
    api, flower = free_port(), free_port()
    env = _env(tmp_path / "data", api, flower)
    proc = _start(env)
    try:
        _wait_ready(f"http://127.0.0.1:{api}/readyz", proc)
        # Flower answers, behind basic auth.
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{flower}/", auth=("admin", "s3cret"), timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "Flower did not answer"
            time.sleep(0.3)
        assert requests.get(f"http://127.0.0.1:{flower}/", timeout=2).status_code == 401
        # A CLI command on the same data dir uses the running embedded servers.
        out = ferry("tenant", "create", "acme", "--json", env=env)
        assert out.returncode == 0, out.stderr
        created = json.loads(out.stdout)
        assert set(created) == {"tenant_id", "token", "user", "password"}
        state = json.loads((tmp_path / "data" / "embedded.json").read_text())
        assert psutil.Process(state["pg_pid"]).is_running()
    finally:
        elapsed, leftovers = _stop(proc)
    assert elapsed < 10
    assert leftovers == []
    assert proc.returncode == 0
    key = tmp_path / "data" / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600

    # Data survives a restart: the tenant name is still taken.
    proc = _start(env)
    try:
        _wait_ready(f"http://127.0.0.1:{api}/readyz", proc)
        again = ferry("tenant", "create", "acme", env=env)
        assert again.returncode == 1
        assert again.stderr.startswith("error: a tenant named 'acme' already exists")
        assert "Traceback" not in again.stderr
    finally:
        _, leftovers = _stop(proc)
    assert leftovers == []


def test_cli_config_error_is_one_line(tmp_path):
    env = _env(tmp_path, free_port(), free_port())
    env["FERRY_API_BIND"] = "nonsense"
    out = ferry("db", "upgrade", env=env, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: FERRY_API_BIND: expected HOST:PORT, got 'nonsense'"


def test_external_urls_require_secret_keys(tmp_path, database_url, redis_url):
    env = _env(tmp_path, free_port(), free_port())
    env.update(FERRY_DATABASE_URL=database_url, FERRY_REDIS_URL=redis_url)
    out = ferry("up", env=env, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: FERRY_SECRET_KEYS:")
