"""Ferry's roles (``ferry api``, ``ferry worker``, ``ferry beat``) as processes of their own,
the way separate hosts run them: each in its own process group, with its own log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

from tests.support.cli import FERRY


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KiB, 0 once it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL ``process`` and its whole group (pool children too), and reap it."""
    if process is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RoleProcess:
    """One ``ferry ARGS`` process; ready when ``ready(self)`` says so."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        ready: Callable[[RoleProcess], bool],
        argv: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv) if argv is not None else [*FERRY, *args]
        self.env = dict(env)
        self.ready = ready
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"ferry-{name}-", suffix=".log")[1])

    def start(self) -> RoleProcess:
        """Start the process (without waiting: see :meth:`wait_ready`)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        """Return once ready; fail with the log if it exits or ``deadline`` passes."""
        assert self.process is not None
        while not self.ready(self):
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start-up:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in time:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def peak_rss_kib(self) -> int:
        """Peak RSS of the process and its children (a prefork pool), in KiB."""
        assert self.process is not None
        import psutil

        try:
            family = [self.process.pid] + [
                c.pid for c in psutil.Process(self.process.pid).children(recursive=True)
            ]
        except psutil.NoSuchProcess:
            return 0
        return sum(peak_rss_kib(pid) for pid in family)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would."""
        kill_group(self.process)
        self.process = None

    def terminate(self) -> None:
        """Ask the process group to stop (SIGTERM) without waiting."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL what is left after ``timeout`` seconds."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        self.kill()


def http_ready(url: str) -> Callable[[RoleProcess], bool]:
    """Ready once ``url`` answers 200."""

    def check(_: RoleProcess) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return check


def log_ready(text: str) -> Callable[[RoleProcess], bool]:
    """Ready once the process has logged ``text``."""
    return lambda proc: text in proc.log()
