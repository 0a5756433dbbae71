"""``ferry up`` with no URLs: embedded servers, every child, a clean stop, data kept."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import requests

from tests.support.cli import FERRY, ferry
from tests.support.registry import free_port

pytestmark = pytest.mark.slow


def _env(data_dir: Path, api: int, flower: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update(
        FERRY_DATA_DIR=str(data_dir),
        FERRY_API_BIND=f"127.0.0.1:{api}",
        FERRY_FLOWER_BIND=f"127.0.0.1:{flower}",
        FERRY_FLOWER_BASIC_AUTH="admin:s3cret",
    )
    return env


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*FERRY, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _cmdlines(proc: subprocess.Popen) -> list[str]:
    """The command lines of ``proc`` and every descendant."""
    out = []
    for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(" ".join(p.cmdline()))
    return out


def _stop(proc: subprocess.Popen) -> tuple[float, list[psutil.Process]]:
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family, "ferry up has no children"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    elapsed = time.monotonic() - start
    time.sleep(0.2)
    return elapsed, [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir Ferry creates itself, below a directory every account may traverse
    (as root, embedded PostgreSQL runs as an unprivileged account that must reach it)."""
    path = Path(tempfile.gettempdir()) / f"ferry-up-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _embedded_checks(data: Path) -> None:
    """Both embedded servers want the generated password; files are the user's only."""
    state = json.loads((data / "embedded.json").read_text())
    secret = (data / "embedded.secret").read_text().strip()
    assert secret and secret not in json.dumps(state)
    pg = f"postgresql://postgres@127.0.0.1:{state['pg_port']}/ferry"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg, connect_timeout=5).close()
    pg_ok = f"postgresql://postgres:{secret}@127.0.0.1:{state['pg_port']}/ferry"
    with psycopg.connect(pg_ok, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    anonymous = redis.Redis(port=state["redis_port"], socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    authed = redis.Redis(port=state["redis_port"], password=secret, socket_timeout=5)
    assert authed.ping()
    with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
        authed.config_get("dir")
    assert not [c for c in _cmdlines_of(state["redis_pid"]) if secret in c]
    for path in (data / "embedded.secret", data / "embedded.json", *(data / "logs").iterdir()):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (data / "logs").stat().st_mode & 0o777 == 0o700


def _cmdlines_of(pid: int) -> list[str]:
    return [" ".join(psutil.Process(pid).cmdline())]


def test_up_embedded_reaches_ready_and_stops_clean(data_dir):
    api, flower = free_port(), free_port()
    parent_mode = data_dir.parent.stat().st_mode
    env = _env(data_dir, api, flower)
    proc = _start(env)
    try:
        _wait_ready(f"http://127.0.0.1:{api}/readyz", proc)
        # Flower answers, behind basic auth.
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{flower}/", auth=("admin", "s3cret"), timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "Flower did not answer"
            time.sleep(0.3)
        assert requests.get(f"http://127.0.0.1:{flower}/", timeout=2).status_code == 401
        # A CLI command on the same data dir uses the running embedded servers.
        out = ferry("tenant", "create", "acme", "--json", env=env)
        assert out.returncode == 0, out.stderr
        created = json.loads(out.stdout)
        assert set(created) == {"tenant_id", "token", "user", "password"}
        state = json.loads((data_dir / "embedded.json").read_text())
        assert psutil.Process(state["pg_pid"]).is_running()
        _embedded_checks(data_dir)
        # No secret on a command line: any local user can read those in /proc.
        assert not [c for c in _cmdlines(proc) if "s3cret" in c]
    finally:
        elapsed, leftovers = _stop(proc)
    assert elapsed < 10
    assert leftovers == []
    assert proc.returncode == 0
    key = data_dir / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert data_dir.parent.stat().st_mode == parent_mode  # nothing above the data dir changed

    # Data survives a restart: the tenant name is still taken. Flower's password is
    # generated this time: said where it is, never what it is, nor put on a command line.
    # This run logs JSON: every role's log gets one object per line from here on.
    del env["FERRY_FLOWER_BASIC_AUTH"]
    env["FERRY_LOG_FORMAT"] = "json"
    logs = {role: data_dir / "logs" / f"{role}.log" for role in ("api", "worker", "beat")}
    offsets = {role: path.stat().st_size for role, path in logs.items()}
    proc = _start(env)
    try:
        _wait_ready(f"http://127.0.0.1:{api}/readyz", proc)
        again = ferry("tenant", "create", "acme", env=env)
        assert again.returncode == 1
        assert again.stderr.startswith("error: a tenant named 'acme' already exists")
        assert "Traceback" not in again.stderr
        password = (data_dir / "flower.auth").read_text().split(":", 1)[1].strip()
        assert not [c for c in _cmdlines(proc) if password in c]
        _metrics_and_json_logs(api, data_dir, logs, offsets)
    finally:
        _, leftovers = _stop(proc)
    assert leftovers == []
    output = proc.stdout.read()
    assert "flower.auth" in output and password not in output


def _metrics_and_json_logs(api: int, data_dir: Path, logs: dict, offsets: dict) -> None:
    """GET /metrics answers from the shared directory; api, worker and beat log JSON."""
    text = requests.get(f"http://127.0.0.1:{api}/metrics", timeout=10).text
    assert "ferry_queue_depth" in text and "ferry_tasks" in text
    metrics_dir = data_dir / "metrics"
    assert metrics_dir.stat().st_mode & 0o777 == 0o700
    deadline = time.monotonic() + 30
    while True:
        fresh = {r: p.read_bytes()[offsets[r] :].decode() for r, p in logs.items()}
        if all(t.strip() for t in fresh.values()) and "ready." in fresh["worker"]:
            break
        assert time.monotonic() < deadline, {r: t[-500:] for r, t in fresh.items()}
        time.sleep(0.3)
    for role, written in fresh.items():
        for line in written.splitlines():
            if line.strip():
                assert line.startswith("{"), (role, line)
                assert isinstance(json.loads(line), dict), (role, line)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another account")
def test_an_unreachable_data_dir_is_named_and_left_alone(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    env = _env(closed / "data", free_port(), free_port())
    out = ferry("up", env=env, timeout=60)
    assert out.returncode == 1
    assert "cannot traverse" in out.stderr and str(closed / "data") in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert closed.stat().st_mode & 0o777 == 0o700


def test_cli_config_error_is_one_line(tmp_path):
    env = _env(tmp_path, free_port(), free_port())
    env["FERRY_API_BIND"] = "nonsense"
    out = ferry("db", "upgrade", env=env, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: FERRY_API_BIND: expected HOST:PORT, got 'nonsense'"


def test_external_urls_require_secret_keys(tmp_path, database_url, redis_url):
    env = _env(tmp_path, free_port(), free_port())
    env.update(FERRY_DATABASE_URL=database_url, FERRY_REDIS_URL=redis_url)
    out = ferry("up", env=env, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: FERRY_SECRET_KEYS:")


def test_a_trust_cluster_of_an_older_ferry_is_moved_to_password_auth(data_dir):
    import subprocess as sp

    from common.runtime.embedded import PG_USER, EmbeddedServers, prepare_data_dir

    servers = EmbeddedServers(data_dir)
    prepare_data_dir(data_dir)
    ident, uid, gid = servers._pg_user()
    servers.pgdata.mkdir(mode=0o700)
    if uid is not None:
        os.chown(servers.pgdata, uid, gid)
    # What Ferry's initdb did before: trust for every local connection.
    old = [servers._pg_bin("initdb"), "-D", str(servers.pgdata), "--auth=trust", "-U", PG_USER]
    assert sp.run(old, capture_output=True, cwd="/", **ident).returncode == 0
    state = servers.start()
    try:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{state.pg_port}/ferry", connect_timeout=5
            ).close()
        with psycopg.connect(state.database_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        servers.stop()


def _worker_leader(proc: subprocess.Popen) -> psutil.Process | None:
    for child in psutil.Process(proc.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if "worker" in child.cmdline() and "celery" in " ".join(child.cmdline()):
                return child
    return None


def test_a_killed_worker_is_restarted_while_the_api_stays_up(data_dir):
    api, flower = free_port(), free_port()
    env = _env(data_dir, api, flower)
    proc = _start(env)
    try:
        _wait_ready(f"http://127.0.0.1:{api}/readyz", proc)
        deadline = time.monotonic() + 30
        while (doomed := _worker_leader(proc)) is None:
            assert time.monotonic() < deadline, "no worker"
            time.sleep(0.2)
        os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool
        deadline = time.monotonic() + 60
        while True:
            # The API answers throughout, and ferry up keeps running.
            assert requests.get(f"http://127.0.0.1:{api}/readyz", timeout=5).status_code == 200
            assert proc.poll() is None
            fresh = _worker_leader(proc)
            if fresh is not None and fresh.pid != doomed.pid:
                break
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.3)
    finally:
        _, leftovers = _stop(proc)
    assert leftovers == []
    output = proc.stdout.read()
    assert "worker exited with -9; restarting it in 1s" in output, output
