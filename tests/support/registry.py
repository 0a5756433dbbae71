"""A real CNCF Distribution (Debian's docker-registry) on 127.0.0.1, for tests.

Each server gets a free port, its own storage directory and htpasswd users,
and is stopped by its process id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import requests

from tests.support import requestlog
from tests.support.servers import Loopback

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@dataclass
class RegistryServer(Loopback):
    """One running docker-registry; ``users`` maps user names to passwords."""

    users: dict[str, str] = field(default_factory=dict)
    extra_config: dict[str, Any] = field(default_factory=dict)
    access_log: bool = False  # one line per request in ``log_path`` (see requestlog)
    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-reg-")))
    process: subprocess.Popen | None = None

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "version": 0.1,
            "log": {
                "level": "warn" if self.access_log else "info",
                "accesslog": {"disabled": not self.access_log},
            },
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "ferry-test-secret"},
        }
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                    for u, p in self.users.items()
                )
            )
            cfg["auth"] = {"htpasswd": {"realm": "ferry-test", "path": str(htpasswd)}}
        cfg.update(self.extra_config)
        return cfg

    def start(self) -> RegistryServer:
        self.port = self.port or free_port()
        self.storage.mkdir(parents=True, exist_ok=True)
        cfg_path = self.root / "config.yml"
        # JSON is valid YAML: no YAML writer needed.
        cfg_path.write_text(json.dumps(self.config()))
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(cfg_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            tail = self.log_path.read_text()[-2000:]
            raise RuntimeError(f"docker-registry did not start: {tail}") from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def notify(self, url: str, secret: str, threshold: int = 3, backoff: str = "200ms") -> None:
        """Restart on the same port and storage, now posting push notifications to ``url``
        with ``secret`` as the bearer token (as a Ferry instance's webhook expects)."""
        self.stop()
        self.extra_config["notifications"] = {
            "endpoints": [
                {
                    "name": "ferry",
                    "url": url,
                    "headers": {"Authorization": [f"Bearer {secret}"]},
                    "timeout": "2s",
                    "threshold": threshold,
                    "backoff": backoff,
                }
            ]
        }
        self.start()

    def mark(self) -> int:
        """Where the access log stands now (after a marker request it shows)."""
        return requestlog.mark(self.url, lambda: self.log_path.read_text(errors="replace"))

    def requests_between(self, start: int, end: int) -> list[requestlog.Request]:
        """The requests the access log shows between two :meth:`mark` positions."""
        text = self.log_path.read_text(errors="replace")[start:end]
        return requestlog.parse(text.splitlines())

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def session(self, user: str | None = None) -> requests.Session:
        """A requests session authenticated as ``user`` (first user by default)."""
        s = requests.Session()
        if self.users:
            user = user or next(iter(self.users))
            s.auth = (user, self.users[user])
        return s
