"""Rule health: on-demand and beat checks (source lists, target logs in and opens an upload),
a failed task degrades, webhook silence degrades, a change is announced, `ferry check`."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import replace
from uuid import UUID

import pytest

from common.db import transaction
from common.db.events import store_event
from common.domain.vocab import TaskStatus
from common.services import watch
from common.sync import health
from tests.support.cli import ferry
from tests.support.hooks import HookServer
from worker.celery_app import beat_schedule

pytestmark = pytest.mark.slow


def check(api, rule_id: str, timeout: float = 60.0) -> dict:
    """Ask for a check and return the rule once the check was stored."""
    before = api.post(f"/rules/{rule_id}/check", expect=202)["health_detail"]["checked_at"]
    deadline = time.monotonic() + timeout
    while True:
        rule = api.get(f"/rules/{rule_id}")
        if rule["health_detail"]["checked_at"] not in (None, before):
            return rule
        assert time.monotonic() < deadline, rule
        time.sleep(0.1)


def test_check_finds_a_dead_target_broken_and_announces_it(api, worker, src, dst, live):
    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst), target_namespace="m")
    fresh = api.get(f"/rules/{rule}")
    assert fresh["health"] == "ok"
    assert fresh["health_detail"] == {"state": "ok", "reason": "", "since": None,
                                      "checked_at": None}  # fmt: skip
    hook = HookServer().start()
    try:
        api.post("/notifications", {"name": "ops", "urls": [hook.apprise_url("ops")],
                                    "on_task": "never"})  # fmt: skip
        ok = check(api, rule)
        assert ok["health"] == "ok" and ok["health_detail"]["state"] == "ok"
        # The push probe's upload session was cancelled: nothing was written.
        catalog = dst.session().get(f"{dst.url}/v2/_catalog").json()
        assert not catalog.get("repositories"), catalog

        dst.stop()
        broken = check(api, rule)
        detail = broken["health_detail"]
        assert broken["health"] == "broken" and detail["state"] == "broken", broken
        assert detail["reason"].startswith("the target is unreachable"), detail
        assert detail["since"] is not None
        said = hook.wait_for(lambda path, body: "broken" in body.get("title", ""))
        assert "went from ok to broken" in said["message"]

        env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": api.tenant.token}
        out = ferry("check", "r", env=env)
        assert out.returncode == 3, (out.stdout, out.stderr)
        assert out.stdout.startswith("rule r: broken since ") and "unreachable" in out.stdout

        dst.start()
        again = check(api, rule)
        assert again["health_detail"]["state"] == "ok"
        assert again["health_detail"]["since"] > detail["since"]
        hook.wait_for(lambda path, body: body.get("title", "").endswith("is ok"))
        assert ferry("check", "r", env=env).returncode == 0
    finally:
        hook.stop()


def test_a_failed_task_degrades_and_a_success_clears_it(api, settings, src, dst):
    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst), target_namespace="m")
    note = api.post("/notifications", {"name": "n", "urls": ["json://127.0.0.1:9/x"],
                                       "rule_id": rule})  # fmt: skip
    assert health.after_task(UUID(rule), TaskStatus.SUCCEEDED, "", settings) is None
    change = health.after_task(UUID(rule), TaskStatus.PARTIALLY_SUCCEEDED, "2 failed", settings)
    assert change is not None and change.changed
    shown = api.get(f"/rules/{rule}")
    assert shown["health"] == "degraded"
    assert shown["health_detail"]["reason"] == "last task PartiallySucceeded: 2 failed"
    # A second failure changes nothing: still degraded since the first.
    assert health.after_task(UUID(rule), TaskStatus.FAILED, "x", settings) is None
    cleared = health.after_task(UUID(rule), TaskStatus.SUCCEEDED, "", settings)
    assert cleared is not None and cleared.after.state == "ok"
    assert api.get(f"/rules/{rule}")["health"] == "ok"
    # Each change is announced once to the rule's notification (no worker here to send it).
    assert len(watch.announce_health(settings, change)) == 1
    assert watch.announce_health(settings, change) == []
    assert len(watch.announce_health(settings, cleared)) == 1
    deliveries = api.get(f"/notifications/{note['id']}/deliveries")
    assert [(d["event"], d["status"]) for d in deliveries] == [("health_changed", "pending")] * 2
    assert deliveries[0]["title"] == "Ferry: r is ok"
    assert "went from degraded to ok" in deliveries[0]["body"]


def test_webhook_silence_degrades_when_pushes_are_expected(api, settings, src, dst):
    source = api.create_instance(src, "src")  # every instance has a webhook secret
    rule = api.rule("r", source["id"], api.instance("dst", dst), target_namespace="m")
    now = dt.datetime.now(dt.UTC)
    quiet = replace(settings, webhook_silence_after=60)
    assert health.check_rule(UUID(rule), settings, now + dt.timedelta(days=30)).after.state == "ok"
    silent = health.check_rule(UUID(rule), quiet, now + dt.timedelta(seconds=120))
    assert silent.after.state == "degraded" and silent.changed
    assert "no webhook heard from source instance src (never" in silent.after.reason
    assert "FERRY_WEBHOOK_SILENCE_AFTER=60s" in silent.after.reason
    with transaction(settings) as conn:
        store_event(conn, UUID(source["id"]), dedup_key="k", repository="p/a", tag="v1",
                    digest=None, payload={})  # fmt: skip
    heard = health.check_rule(UUID(rule), quiet, now + dt.timedelta(seconds=30))
    assert heard.after.state == "ok" and heard.changed


def test_beat_checks_every_enabled_rule(api, settings, src, dst):
    assert beat_schedule(settings)["health"]["task"] == "ferry.health_sweep"
    assert beat_schedule(replace(settings, health_check_interval=None)).get("health") is None
    a, b = api.instance("src", src), api.instance("dst", dst)
    on = api.rule("on", a, b, target_namespace="m")
    off = api.rule("off", a, b, target_namespace="n")
    api.post(f"/rules/{off}/disable")
    assert watch.rules_to_check(settings) == [UUID(on)]
