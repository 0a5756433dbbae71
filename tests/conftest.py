"""Fixtures every layer shares: real PostgreSQL, real Redis, settings, the app, registries.

PostgreSQL: one database per test session (and per xdist worker), migrated with
the real migrations; tables are emptied after each test that used it.
Redis: the local server, one database index per test process (each xdist worker
claims its own with a lock key, so no two sessions share one), emptied after use.
Each folder's conftest.py holds the fixtures only that layer uses.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis as redis_lib
from cryptography.fernet import Fernet

from common.runtime.embedded import pid_alive
from common.settings import Settings, get_settings, load_settings
from tests.support.databases import create_database, drop_database
from tests.support.registry import RegistryServer

# Where the test Redis is; CI and developer machines run it locally.
REDIS_BASE = os.environ.get("FERRY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_KEY = Fernet.generate_key().decode()


def _worker_index(config: pytest.Config) -> int:
    wid = getattr(config, "workerinput", {}).get("workerid", "gw0")
    return int(wid[2:]) if wid.startswith("gw") else 0


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with every migration applied, dropped at the end."""
    from common.db.migrate import upgrade

    name = f"ferry_test_{_worker_index(request.config)}_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    upgrade(url)
    yield url
    from common.db import close_pool

    close_pool()
    drop_database(name)


REDIS_LOCK = "ferry:test-session"


# Take a claim over only if it still names the dead holder we saw (atomic).
_TAKEOVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
CLAIM_SECONDS = 6 * 3600


def _claim_redis_db() -> int:
    """A Redis database index no other live test process uses (15 is left to ops/bench).

    Celery workers of two test sessions on one Redis database would consume
    each other's messages, so each session claims a database with a lock key,
    taken over (atomically) only when its holder's process is gone.
    """
    me = str(os.getpid())
    for index in range(1, 15):
        client = redis_lib.Redis.from_url(f"{REDIS_BASE}/{index}")
        try:
            claimed = bool(client.set(REDIS_LOCK, me, nx=True, ex=CLAIM_SECONDS))
            if not claimed:
                holder = client.get(REDIS_LOCK)
                if holder and not pid_alive(int(holder)):
                    claimed = bool(client.eval(_TAKEOVER, 1, REDIS_LOCK, holder, me, CLAIM_SECONDS))
            if claimed:
                _empty_but_the_claim(client)
                return index
        finally:
            client.close()
    raise RuntimeError("no free Redis database for this test session (1-14 all claimed)")


def _empty_but_the_claim(client: redis_lib.Redis) -> None:
    """Delete every key of the database but this session's claim on it."""
    for key in client.scan_iter(count=1000):
        if key != REDIS_LOCK.encode():
            client.delete(key)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database index of its own for this test process, released at the end."""
    index = _claim_redis_db()
    yield f"{REDIS_BASE}/{index}"
    client = redis_lib.Redis.from_url(f"{REDIS_BASE}/{index}")
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def base_settings(database_url: str, redis_url: str, tmp_path_factory) -> Iterator[Settings]:
    """Settings of the test session, also exported to the environment for child processes."""
    env = {
        "FERRY_DATABASE_URL": database_url,
        "FERRY_REDIS_URL": redis_url,
        "FERRY_SECRET_KEYS": TEST_KEY,
        "FERRY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "FERRY_LOG_LEVEL": "INFO",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield load_settings()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture
def settings(base_settings: Settings) -> Iterator[Settings]:
    """Test settings with an empty database and an empty Redis database afterwards."""
    yield base_settings
    _truncate(base_settings.require_database_url())
    client = redis_lib.Redis.from_url(base_settings.require_redis_url())
    _empty_but_the_claim(client)
    client.close()


def _truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'ferry_migrations'"
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection to the test database (autocommit), emptied after the test."""
    from psycopg.rows import dict_row

    with psycopg.connect(
        settings.require_database_url(), autocommit=True, row_factory=dict_row
    ) as conn:
        yield conn


@pytest.fixture
def app(settings: Settings):
    """The Flask app on the test settings."""
    from api.app import create_app

    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    """Flask's test client for ``app``."""
    return app.test_client()


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., RegistryServer]]:
    """Start docker-registry servers on free ports; all are stopped after the test."""
    started: list[RegistryServer] = []

    def start(users: dict[str, str] | None = None, **extra_config) -> RegistryServer:
        server = RegistryServer(users=users or {}, extra_config=extra_config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def registry(registry_factory) -> RegistryServer:
    """One registry with user ``alice`` / ``alice-pw``."""
    return registry_factory({"alice": "alice-pw"})


@pytest.fixture
def src(registry_factory) -> RegistryServer:
    """A source registry with user ``alice`` / ``alice-pw`` (pipeline and scale tests)."""
    return registry_factory({"alice": "alice-pw"})


@pytest.fixture
def dst(registry_factory) -> RegistryServer:
    """A target registry with user ``bob`` / ``bob-pw``."""
    return registry_factory({"bob": "bob-pw"})
