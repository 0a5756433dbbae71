"""The ``ferry`` command line as a real subprocess, for tests that need a process of its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

FERRY = [sys.executable, "-m", "common.cli"]


def ferry(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``ferry ARGS`` to completion in ``env``; its exit code and text output."""
    return subprocess.run([*FERRY, *args], env=env, capture_output=True, text=True, timeout=timeout)
