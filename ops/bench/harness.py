"""A Ferry for benchmarks: a fresh database, a Redis database, a tenant and real workers.

Uses the PostgreSQL and Redis on 127.0.0.1 (as the tests do) and the Flask app
in-process for API calls; workers are real Celery processes.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from cryptography.fernet import Fernet

from common.domain.vocab import FINAL_TASK_STATUSES
from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# FERRY_BENCH_REDIS_URL: another Redis database, for benchmarks running side by side.
REDIS_URL = os.environ.get("FERRY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass
class Ferry:
    """What a benchmark drives: the app, a token, the settings."""

    app: Any
    token: str
    settings: Any

    def call(self, method: str, path: str, body: object = None) -> Any:
        r = self.app.test_client().open(
            f"/api/v1{path}",
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert r.status_code < 300, (path, r.status_code, r.get_json())
        return r.get_json()

    def instance(self, name: str, registry: Any, user: str, password: str) -> dict:
        return self.call(
            "POST",
            "/instances",
            {"name": name, "url": registry.url, "username": user, "password": password},
        )

    def wait(self, task_id: str) -> dict:
        while True:
            task = self.call("GET", f"/tasks/{task_id}")
            if task["status"] in FINAL_TASK_STATUSES:
                return task
            time.sleep(0.05)

    def serve_api(self) -> tuple[Any, str]:
        """The API as `ferry up` serves it (gunicorn) on a free port, ready: the process
        (stop it) and its URL."""
        from dataclasses import replace

        from common.runtime.supervisor import role_argv
        from common.settings import child_environment
        from tests.support.registry import free_port
        from tests.support.roles import RoleProcess, http_ready

        settings = replace(self.settings, api_bind=("127.0.0.1", free_port()))
        url = "http://{}:{}".format(*settings.api_bind)
        env, ready = child_environment(settings), http_ready(f"{url}/healthz")
        api = RoleProcess("api", [], env, ready, role_argv("api", settings))
        try:
            api.start().wait_ready(time.monotonic() + 60)
        except BaseException:
            api.stop()
            raise
        return api, url

    def worker(self, concurrency: int = DEFAULT_CONCURRENCY, pool: str = DEFAULT_POOL) -> Any:
        """A real Celery worker; `ferry up`'s pool and concurrency unless given."""
        from tests.support.worker import WorkerProcess

        return WorkerProcess(
            self.settings, concurrency=concurrency, name="bench", pool=pool
        ).start()


@contextmanager
def ferry() -> Iterator[Ferry]:
    """A Ferry on a new database (dropped afterwards) and an emptied Redis database."""
    db_name = f"ferry_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    db_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    redis.Redis.from_url(REDIS_URL).flushdb()
    os.environ.update(
        {
            "FERRY_DATABASE_URL": db_url,
            "FERRY_REDIS_URL": REDIS_URL,
            "FERRY_SECRET_KEYS": Fernet.generate_key().decode(),
            "FERRY_DATA_DIR": tempfile.mkdtemp(prefix="ferry-bench-"),
            "FERRY_LOG_LEVEL": "WARNING",
        }
    )
    from api.app import create_app
    from common.db import close_pool, transaction
    from common.db.migrate import upgrade
    from common.db.tenants import create_tenant
    from common.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(db_url)
    with transaction(settings) as conn:
        _, token = create_tenant(conn, "bench")
    try:
        yield Ferry(create_app(settings), token, settings)
    finally:
        close_pool()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
