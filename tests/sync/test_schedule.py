"""The cron dispatcher and full rescans, driven by an injected clock (no test sleeps)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.domain.rules import next_run
from common.sync.schedule import dispatch_due, rescan_all

T0 = dt.datetime(2026, 11, 29, 10, 2, tzinfo=dt.UTC)


@pytest.fixture
def rule_factory(db):
    tenant = db.execute("INSERT INTO tenants (name) VALUES ('t') RETURNING id").fetchone()["id"]
    src, dst = (
        db.execute(
            "INSERT INTO instances (tenant_id, name, url) VALUES (%s, %s, %s) RETURNING id",
            (tenant, name, f"http://{name}:5000"),
        ).fetchone()["id"]
        for name in ("src", "dst")
    )

    def make(name="r", schedule="*/5 * * * *", tz="UTC", enabled=True):
        return db.execute(
            "INSERT INTO rules (tenant_id, name, source_instance_id, source_namespace, "
            "target_instance_id, schedule, schedule_timezone, enabled) "
            "VALUES (%s, %s, %s, 'project', %s, %s, %s, %s) RETURNING id",
            (tenant, name, src, dst, schedule, tz, enabled),
        ).fetchone()["id"]

    return make


def tasks_of(db, rule_id):
    return db.execute(
        "SELECT trigger, status, message FROM sync_tasks WHERE rule_id = %s ORDER BY created_at",
        (rule_id,),
    ).fetchall()


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        ("*/5 * * * *", "UTC", T0, dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.UTC)),
        ("0 9 * * *", "Europe/Paris", T0, dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)),
        ("0 9 * * *", "UTC", T0, dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)),
        ("30 2 1 * *", "UTC", T0, dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)),
    ],
)
def test_next_run_in_the_rule_time_zone(expr, tz, after, expected):
    assert next_run(expr, after, tz) == expected


def test_due_rule_triggers_once_per_fire(settings, db, rule_factory):
    rule = rule_factory()
    sent = []
    enqueue = lambda task, trigger: sent.append((task, trigger))  # noqa: E731
    assert dispatch_due(settings, T0, enqueue) == {"started": 0, "skipped": 0}
    assert db.execute("SELECT next_run_at FROM rules").fetchone()["next_run_at"] == dt.datetime(
        2026, 11, 29, 10, 5, tzinfo=dt.UTC
    )
    at = T0.replace(minute=5, second=30)
    assert dispatch_due(settings, at, enqueue)["started"] == 1
    assert dispatch_due(settings, at.replace(second=45), enqueue)["started"] == 0
    assert [t["trigger"] for t in tasks_of(db, rule)] == ["schedule"]
    assert [s[1] for s in sent] == ["schedule"]


def test_two_dispatchers_never_trigger_twice(settings, db, rule_factory):
    rules = [rule_factory(f"r{i}") for i in range(5)]
    db.execute("UPDATE rules SET next_run_at = %s", (T0,))
    sent = []
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: dispatch_due(settings, T0, lambda t, trig: sent.append(t)), range(4))
        )
    assert sum(r["started"] for r in results) == 5
    assert len(sent) == 5
    for rule in rules:
        assert len(tasks_of(db, rule)) == 1


def test_rule_still_running_is_skipped_visibly(settings, db, rule_factory):
    rule = rule_factory()
    db.execute("UPDATE rules SET next_run_at = %s", (T0,))
    dispatch_due(settings, T0, lambda t, trig: None)
    db.execute("UPDATE sync_tasks SET status = 'InProgress'")
    db.execute("UPDATE rules SET next_run_at = %s", (T0 + dt.timedelta(minutes=5),))
    result = dispatch_due(settings, T0 + dt.timedelta(minutes=5), lambda t, trig: None)
    assert result == {"started": 0, "skipped": 1}
    log = tasks_of(db, rule)
    assert [t["status"] for t in log] == ["InProgress", "Skipped"]
    assert "still running" in log[1]["message"]


def test_disabled_or_unscheduled_rules_never_fire(settings, db, rule_factory):
    rule_factory("off", enabled=False)
    rule_factory("manual", schedule=None)
    db.execute("UPDATE rules SET next_run_at = %s", (T0,))
    assert dispatch_due(settings, T0 + dt.timedelta(hours=1), lambda t, trig: None)["started"] == 0


def test_full_rescan_once_per_interval(settings, db, rule_factory):
    rule_factory("a", schedule=None)
    rule_factory("b", schedule=None)
    rule_factory("c", schedule=None, enabled=False)
    sent = []
    enqueue = lambda t, trig: sent.append(trig)  # noqa: E731
    assert rescan_all(settings, T0, 3600, enqueue) == {"started": 2}
    db.execute("UPDATE sync_tasks SET status = 'Succeeded'")
    assert rescan_all(settings, T0 + dt.timedelta(minutes=10), 3600, enqueue) == {"started": 0}
    assert rescan_all(settings, T0 + dt.timedelta(minutes=61), 3600, enqueue) == {"started": 2}
    assert sent == ["schedule"] * 4
