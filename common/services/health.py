"""Readiness checks shared by the API (/readyz) and the CLI."""

from __future__ import annotations

import redis

from common.db import connect, first_line
from common.db.bootstrap import ping
from common.db.migrate import pending
from common.errors import FerryError
from common.settings import Settings


def readiness(settings: Settings) -> dict[str, str]:
    """``{"postgresql"|"redis"|"migrations": "ok" | reason}``; never raises."""
    checks: dict[str, str] = {}
    try:
        with connect(settings.require_database_url()) as conn:
            ping(conn)
            checks["postgresql"] = "ok"
            todo = pending(conn)
            checks["migrations"] = (
                "ok" if not todo else f"{len(todo)} pending (run `ferry db upgrade`)"
            )
    except FerryError as exc:
        checks["postgresql"] = str(exc)
        checks["migrations"] = "unknown: PostgreSQL is unreachable"
    try:
        client = redis.Redis.from_url(
            settings.require_redis_url(), socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
        checks["redis"] = "ok"
    except (redis.RedisError, FerryError) as exc:
        checks["redis"] = f"Redis is unreachable: {first_line(exc)}"
    return checks
