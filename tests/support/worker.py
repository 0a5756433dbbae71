"""A real Celery worker process for integration tests (never eager mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.runtime.supervisor import ALL_QUEUES
from common.settings import Settings, child_environment
from tests.support.roles import kill_group


class WorkerProcess:
    """``celery -A worker.celery_app worker`` on every queue, stopped by process group."""

    def __init__(
        self,
        settings: Settings,
        *,
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        name: str = "test",
        pool: str = "prefork",
        hostname: str | None = None,
    ) -> None:
        self.settings = settings
        self.queues = queues
        self.concurrency = concurrency
        self.name = name
        self.pool = pool
        # A fixed Celery node name: a restart under the same name (as `ferry up` does).
        self.hostname = hostname
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="ferry-worker-", suffix=".log")[1])

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        env = child_environment(self.settings)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "worker.celery_app",
                    "worker",
                    "--queues",
                    self.queues,
                    "--concurrency",
                    str(self.concurrency),
                    "--pool",
                    self.pool,
                    "--hostname",
                    self.hostname or f"{self.name}-{os.getpid()}-{time.monotonic_ns()}@%h",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited at start-up:\n{self.log()[-3000:]}")
            if "ready." in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        kill_group(self.process)
        self.process = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        self.kill()
