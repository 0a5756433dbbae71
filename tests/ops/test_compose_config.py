"""docker-compose.yml parsed and validated by a real Compose implementation.

``docker-compose config`` (the 1.29.2 Python package) interpolates variables and
checks the file against the Compose schema without a Docker daemon. It lives in
``.venv-compose``, which ``ops/test`` builds with ``ops/compose-venv``.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.contract import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
VENV_SCRIPT = ROOT / "ops" / "compose-venv"
DOCKER_COMPOSE = ROOT / ".venv-compose" / "bin" / "docker-compose"
# ${NAME:?message} or ${NAME?message}: compose refuses to run without NAME.
REQUIRED = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE_FILE.read_text())))


@pytest.fixture(scope="module")
def docker_compose() -> Path:
    """The docker-compose executable, built once (under a lock) if ops/test has not."""
    with open(ROOT / ".venv-compose.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not DOCKER_COMPOSE.exists():
            built = subprocess.run(
                ["bash", str(VENV_SCRIPT)], capture_output=True, text=True, timeout=600
            )
            if built.returncode != 0:
                pytest.skip(
                    "docker-compose 1.29.2 could not be installed into .venv-compose "
                    f"(ops/compose-venv failed: {built.stderr.strip()[-300:]})"
                )
    return DOCKER_COMPOSE


def _config(exe: Path, compose_file: Path, *args: str, unset: str | None = None):
    """``docker-compose -f FILE config ARGS`` with dummy values for every required variable."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}
    env.update({name: f"dummy-{name.lower()}" for name in REQUIRED if name != unset})
    return subprocess.run(
        [str(exe), "-f", str(compose_file), "config", *args],
        cwd=compose_file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_is_valid(docker_compose):
    quiet = _config(docker_compose, COMPOSE_FILE, "-q")
    assert quiet.returncode == 0, quiet.stderr
    resolved = _config(docker_compose, COMPOSE_FILE)
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    assert set(services) == set(yaml.safe_load(COMPOSE_FILE.read_text())["services"])


@pytest.mark.parametrize("name", REQUIRED or [pytest.param(None, id="none-required")])
def test_missing_required_secret_fails_clearly(docker_compose, name):
    if name is None:
        pytest.skip("docker-compose.yml has no required (${NAME:?...}) variable")
    out = _config(docker_compose, COMPOSE_FILE, "-q", unset=name)
    assert out.returncode != 0
    assert name in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_broken_file_is_caught(docker_compose, tmp_path):
    """The check can fail: an unknown key in a service is rejected."""
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["api"]["not_a_compose_key"] = True
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    out = _config(docker_compose, path, "-q")
    assert out.returncode != 0
    assert "not_a_compose_key" in out.stderr, out.stderr
