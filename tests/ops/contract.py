"""What a deployment file may name: Ferry's own commands and the variables its settings read.

Shared by the compose and Kubernetes tests, so both hold the same contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from click.testing import CliRunner

from common.cli.main import main as ferry_cli

ROOT = Path(__file__).resolve().parents[2]
# Every FERRY_* name the settings module reads (it is the only reader of the environment).
FERRY_VARIABLES = frozenset(
    re.findall(r'"(FERRY_[A-Z_]+)"', (ROOT / "common" / "settings.py").read_text())
)


def assert_known_variables(names: Iterable[str]) -> None:
    """Every name is one that ``common/settings.py`` reads."""
    unknown = set(names) - FERRY_VARIABLES
    assert not unknown, f"not read by common/settings.py: {sorted(unknown)}"


def assert_ferry_command(command: Sequence[str]) -> None:
    """``command`` is ``ferry`` and a real (sub)command of it, with options it accepts."""
    assert command[0] == "ferry", command
    result = CliRunner().invoke(ferry_cli, [*command[1:], "--help"])
    assert result.exit_code == 0, (command, result.output)
    assert "No such command" not in result.output
