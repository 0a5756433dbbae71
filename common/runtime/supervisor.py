"""``ferry up``: run the API, a worker, beat and Flower as children, and stop them all.

Each child runs in its own process group so that its own children (gunicorn
and Celery workers) are stopped with it. A child that dies is restarted with
backoff while the others keep running; only one that crash-loops
(:data:`MAX_RESTARTS` deaths within :data:`CRASH_WINDOW` seconds) stops
everything, saying which and why. SIGINT/SIGTERM stop everything, embedded
servers included, within :data:`STOP_TIMEOUT` seconds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.domain.vocab import QueueName
from common.errors import ConfigError
from common.runtime.private import PRIVATE_DIR, ensure_dir, open_private
from common.settings import MULTIPROC_ENV, Settings, child_environment

STOP_TIMEOUT = 10.0
# A dead child is restarted after 1, 2, 4 ... seconds (at most BACKOFF_MAX); more than
# MAX_RESTARTS deaths within CRASH_WINDOW seconds is a crash loop.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
MAX_RESTARTS = 5
CRASH_WINDOW = 120.0
# Children get most of the budget; the embedded servers need well under a second.
CHILD_STOP_TIMEOUT = 6.0


@dataclass
class Child:
    name: str
    argv: list[str]
    # Added to the child's environment: secrets go here, never on the command line,
    # which any local user can read in /proc.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    process: subprocess.Popen | None = None
    deaths: list[float] = field(default_factory=list)
    restart_at: float = 0.0


ALL_QUEUES = ",".join((QueueName.PUSH, QueueName.PLAN, QueueName.COPY))

# A worker's Celery pool. Copies wait on registries most of the time: threads in one
# process cost about a third less CPU per tag than prefork children fed over pipes,
# and were as fast or faster (ops/bench/sync_results.md). prefork stays a choice.
POOLS = ("threads", "prefork")
DEFAULT_POOL = "threads"
DEFAULT_CONCURRENCY = 8


def api_tls_argv(settings: Settings) -> list[str]:
    """gunicorn's HTTPS options for FERRY_API_TLS_CERT and FERRY_API_TLS_KEY (none without)."""
    if settings.api_tls_cert is None or settings.api_tls_key is None:
        return []
    for name, path in (
        ("FERRY_API_TLS_CERT", settings.api_tls_cert),
        ("FERRY_API_TLS_KEY", settings.api_tls_key),
    ):
        if not os.access(path, os.R_OK) or not path.is_file():
            raise ConfigError(f"{name}: no readable file at {path}")
    return ["--certfile", str(settings.api_tls_cert), "--keyfile", str(settings.api_tls_key)]


def _api_argv(settings: Settings, level: str) -> list[str]:
    host, port = settings.api_bind
    gunicorn = ["--bind", f"{host}:{port}", "--workers", "2", "--threads", "4"]
    gunicorn += ["--graceful-timeout", "4", "--access-logfile", "-", "--log-level", level]
    gunicorn += api_tls_argv(settings)
    gunicorn += ["--config", "python:api.gunicorn_conf"]
    return [sys.executable, "-m", "gunicorn", *gunicorn, "api.wsgi:app"]


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


def default_hostname(queues: str) -> str:
    """The worker's Celery hostname when none is given: its queues at this host."""
    return f"ferry-{queues.replace(',', '-')}@%h"


def _worker_argv(
    queues: str, concurrency: int, pool: str, level: str, hostname: str | None
) -> list[str]:
    hostname = hostname or default_hostname(queues)
    return _celery(
        "worker", "--queues", queues, "--concurrency", str(concurrency), "--pool", pool,
        "--hostname", hostname, "--loglevel", level,
    )  # fmt: skip


def _quiet(argv: list[str]) -> list[str]:
    """A celery command line with its global --quiet (before the sub-command)."""
    at = argv.index("worker.celery_app") + 1
    return [*argv[:at], "--quiet", *argv[at:]]


def _beat_argv(settings: Settings, level: str) -> list[str]:
    schedule = str(settings.data_dir / "celerybeat-schedule")
    return _celery("beat", "--schedule", schedule, "--loglevel", level)


def _flower_argv(settings: Settings) -> list[str]:
    host, port = settings.flower_bind
    return _celery(
        "flower", f"--address={host}", f"--port={port}",
        f"--db={settings.data_dir / 'flower.db'}", "--persistent=False",
    )  # fmt: skip


def role_env(role: str, settings: Settings, *, flower_auth: str | None = None) -> dict[str, str]:
    """Environment a role needs besides Ferry's settings: Flower's basic auth, which Flower
    reads from FLOWER_BASIC_AUTH (an environment is private to its user; argv is not)."""
    auth = flower_auth or settings.flower_basic_auth
    if role == "flower" and auth:
        return {"FLOWER_BASIC_AUTH": auth}
    return {}


def role_argv(
    role: str,
    settings: Settings,
    *,
    queues: str = ALL_QUEUES,
    concurrency: int = DEFAULT_CONCURRENCY,
    pool: str = DEFAULT_POOL,
    hostname: str | None = None,
) -> list[str]:
    """The command line of one Ferry process role, using this interpreter (no secret in it:
    see :func:`role_env`)."""
    level = settings.log_level.lower()
    if role == "api":
        return _api_argv(settings, level)
    if role in ("worker", "beat"):
        argv = (
            _worker_argv(queues, concurrency, pool, level, hostname)
            if role == "worker"
            else _beat_argv(settings, level)
        )
        # JSON logs: no start-up banner, which is text printed besides the log.
        return _quiet(argv) if settings.log_format == "json" else argv
    if role == "flower":
        return _flower_argv(settings)
    raise ValueError(f"unknown role {role!r}")


def child_commands(settings: Settings, flower_auth: str) -> list[Child]:
    """The processes ``ferry up`` runs: API, one worker for all queues, beat and Flower."""
    return [
        Child("api", role_argv("api", settings)),
        Child("worker", role_argv("worker", settings)),
        Child("beat", role_argv("beat", settings)),
        Child(
            "flower",
            role_argv("flower", settings),
            env=role_env("flower", settings, flower_auth=flower_auth),
        ),
    ]


def ensure_secret_key(settings: Settings, say: Callable[[str], None]) -> Settings:
    """In embedded mode, a generated key in the data dir stands in for FERRY_SECRET_KEYS."""
    if settings.secret_keys:
        return settings
    from cryptography.fernet import Fernet

    from common.errors import ConfigError

    if not settings.embedded:
        raise ConfigError("FERRY_SECRET_KEYS: required when FERRY_DATABASE_URL/REDIS_URL are set")
    path = settings.data_dir / "secret.key"
    if not path.exists():
        ensure_dir(settings.data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
        say(f"generated an encryption key in {path} (mode 0600); back it up with the data dir")
    from dataclasses import replace

    return replace(settings, secret_keys=(path.read_text().strip(),))


def ensure_flower_auth(settings: Settings, say: Callable[[str], None]) -> str:
    """Flower's USER:PASSWORD: configured, or generated once into the data dir."""
    if settings.flower_basic_auth:
        return settings.flower_basic_auth
    path = settings.data_dir / "flower.auth"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"ferry:{secrets.token_urlsafe(16)}")
        # Where it is, never what it is: terminals and their logs are not private.
        say(
            f"generated Flower credentials in {path} (mode 0600, user ferry); "
            "set FERRY_FLOWER_BASIC_AUTH to choose your own"
        )
    return path.read_text().strip()


class Supervisor:
    """Starts the children, watches them, and stops everything on a signal."""

    def __init__(self, settings: Settings, flower_auth: str, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.say = say
        self.children = child_commands(settings, flower_auth)
        self._stopping = False

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        """Run until a signal or a child's death; returns the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        env = child_environment(self.settings)
        env[MULTIPROC_ENV] = str(prepare_metrics_dir(self.settings.data_dir))
        log_dir = self.settings.data_dir / "logs"
        ensure_dir(log_dir)
        if stat.S_IMODE(log_dir.stat().st_mode) != PRIVATE_DIR:
            log_dir.chmod(PRIVATE_DIR)  # Ferry's own directory
        code = 0
        try:
            for child in self.children:
                child.process = self._spawn(child, env, log_dir)
            while not self._stopping:
                for child in self.children:
                    if not self._tend(child, env, log_dir):
                        self._stopping, code = True, 1
                        break
                time.sleep(0.2)
        finally:
            self.stop_children()
        return code

    def _tend(self, child: Child, env: dict[str, str], log_dir: Path) -> bool:
        """Restart ``child`` if it died and its backoff is over; False on a crash loop."""
        now = time.monotonic()
        if child.process is None:
            if now >= child.restart_at:
                child.process = self._spawn(child, env, log_dir)
            return True
        if child.process.poll() is None:
            return True
        status = child.process.returncode
        # Orphans of the dead leader (a worker's pool) stay in its group: end them too.
        _signal_group(child.process.pid, signal.SIGKILL)
        child.process = None
        child.deaths = [t for t in child.deaths if now - t < CRASH_WINDOW] + [now]
        log = log_dir / f"{child.name}.log"
        if len(child.deaths) > MAX_RESTARTS:
            self.say(
                f"{child.name} died {len(child.deaths)} times within {CRASH_WINDOW:.0f}s "
                f"(last exit status {status}); see {log}; stopping"
            )
            return False
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (len(child.deaths) - 1))
        child.restart_at = now + delay
        self.say(f"{child.name} exited with {status}; restarting it in {delay:.0f}s (see {log})")
        return True

    def _spawn(self, child: Child, env: dict[str, str], log_dir: Path) -> subprocess.Popen:
        with open(open_private(log_dir / f"{child.name}.log"), "ab") as log:
            return subprocess.Popen(
                child.argv,
                env={**env, **child.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop_children(self) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after the budget."""
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for proc in running:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT
        while time.monotonic() < deadline and any(p.poll() is None for p in running):
            time.sleep(0.05)
        for child in self.children:
            if child.process is not None:
                # Kill the whole group even if the leader is gone: orphans stay in it.
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait()


def prepare_metrics_dir(data_dir: Path) -> Path:
    """An empty private directory where every child writes its Prometheus values
    (multiprocess mode), so GET /metrics adds up the API, the workers and beat.

    Emptied at start: the counters of a previous run would be added to this one's.
    """
    directory = data_dir / "metrics"
    ensure_dir(directory)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
