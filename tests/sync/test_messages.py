"""What crosses the broker: task names and ids, never credentials."""

from __future__ import annotations

import base64
import json

import redis as redis_lib

from tests.support.oci import push_image


def test_messages_carry_ids_only(api, settings, registry_factory):
    src = registry_factory({"alice": "alice-pw-secret"})
    dst = registry_factory({"bob": "bob-pw-secret"})
    push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst))
    task_id = api.trigger(rule)  # no worker runs: the message stays in Redis

    r = redis_lib.Redis.from_url(settings.require_redis_url())
    raw = r.lrange("plan", 0, -1)
    r.close()
    assert len(raw) == 1
    text = raw[0].decode()
    message = json.loads(text)
    assert message["headers"]["task"] == "ferry.plan"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    with __import__("psycopg").connect(settings.require_database_url()) as conn:
        task_uuid = conn.execute(
            "SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)
        ).fetchone()[0]
    assert (args, kwargs) == ([str(task_uuid)], {})
    for secret in ("alice-pw-secret", "bob-pw-secret", api.tenant.token):
        assert secret not in text
        assert secret not in base64.b64decode(message["body"]).decode()
