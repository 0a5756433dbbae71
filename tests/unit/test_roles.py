"""The command lines of Ferry's roles: a worker's Celery hostname is its own or a default."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from common.cli.main import main as ferry_cli
from common.runtime.supervisor import role_argv
from common.settings import load_settings

SETTINGS = load_settings({"FERRY_DATA_DIR": str(Path("/nonexistent/ferry"))})


def _hostname(argv: list[str]) -> str:
    return argv[argv.index("--hostname") + 1]


@pytest.mark.parametrize(
    ("queues", "hostname", "expected"),
    [
        ("plan,copy", None, "ferry-plan-copy@%h"),
        ("push", None, "ferry-push@%h"),
        ("plan,copy", "copy-a@node-1", "copy-a@node-1"),
    ],
)
def test_worker_hostname(queues, hostname, expected):
    argv = role_argv("worker", SETTINGS, queues=queues, hostname=hostname)
    assert _hostname(argv) == expected
    assert argv[argv.index("--queues") + 1] == queues


@pytest.mark.parametrize("bad", ["", "two words"])
def test_worker_hostname_without_spaces(bad):
    result = CliRunner().invoke(ferry_cli, ["worker", "--hostname", bad])
    assert result.exit_code == 2
    assert "--hostname" in result.output and "without spaces" in result.output
