"""Poison input ends items and tasks with outcomes and reasons (issue 16, #6).

A manifest too deep to parse, a schema1 manifest with wrong types, tags no
database could store, an item whose worker dies on it again and again, and a
plan that crashes: each ends with a status and a reason, never a crash loop.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from common.sync import plan_run, runner
from tests.support.hostile import HostileRegistry

pytestmark = pytest.mark.slow

OCI = "application/vnd.oci.image.manifest.v1+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DEPTH = 50_000


def deep_manifest() -> bytes:
    """A valid-looking OCI manifest whose annotations nest deeper than any parser recurses."""
    head = json.dumps({"schemaVersion": 2, "mediaType": OCI, "layers": []})[:-1]
    return f'{head}, "annotations": {{"x": {"[" * DEPTH}{"]" * DEPTH}}}}}'.encode()


SCHEMA1_BAD = json.dumps(
    {"schemaVersion": 1, "name": "project/s1", "tag": "v1", "fsLayers": 5, "history": []}
).encode()


@pytest.fixture
def hostile():
    server = HostileRegistry(
        repositories={
            "project/deep": {"v1": (deep_manifest(), OCI)},
            "project/s1": {"v1": (SCHEMA1_BAD, SCHEMA1)},
        },
        extra_tags=["bad\x00tag", "x" * 300, "v2\n"],
    )
    with server:
        yield server


@pytest.fixture
def rds(settings):
    client = redis.Redis.from_url(settings.require_redis_url())
    yield client
    client.close()


def _start(api, db, hostile, dst) -> tuple[str, object]:
    rule = api.rule("poison", api.instance("src", hostile), api.instance("dst", dst))
    task_id = api.trigger(rule)
    row = db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    return task_id, row["id"]


def _by_name(api, task_id) -> dict[str, dict]:
    return {f"{i['source_repository']}:{i['source_tag']}": i for i in api.items(task_id)}


def test_poison_manifests_and_tags_end_as_failed_items(api, settings, db, rds, hostile, dst):
    task_id, task_uuid = _start(api, db, hostile, dst)
    planned = runner.plan_task(task_uuid, settings)
    assert planned.retry_in is None
    for item_id in planned.item_ids:
        assert runner.copy_item(item_id, settings, rds).status == "failed"
    task = api.get(f"/tasks/{task_id}")
    items = _by_name(api, task_id)
    assert task["status"] == "Failed", task
    # The unstorable tags were skipped while listing; each real tag has an outcome.
    assert sorted(items) == ["project/deep:v1", "project/s1:v1"]
    deep, s1 = items["project/deep:v1"], items["project/s1:v1"]
    assert deep["outcome"] == "failed" and "RecursionError" in deep["reason"], deep
    assert s1["outcome"] == "failed" and "TypeError" in s1["reason"], s1
    assert len(deep["reason"]) <= 600 and len(s1["reason"]) <= 600


def test_attempts_are_capped_then_the_item_fails_with_the_last_reason(
    api, settings, db, rds, hostile, dst
):
    task_id, task_uuid = _start(api, db, hostile, dst)
    runner.plan_task(task_uuid, settings)
    # The s1 copy's worker died four times (its last error kept); then a fifth time.
    db.execute(
        "UPDATE sync_items SET status = 'running', attempts = %s, reason = 'attempt 4: boom', "
        "lease_until = now() - interval '1 minute' WHERE task_id = %s AND source_repository = "
        "'project/s1'",
        (runner.MAX_ITEM_ATTEMPTS, task_uuid),
    )
    requeued: list[int] = []
    later = datetime.now(UTC) + timedelta(seconds=5)
    runner.reconcile(
        settings, lambda i, t: requeued.append(i), lambda *a: None, stale_seconds=0, now=later
    )
    assert requeued == []
    s1 = _by_name(api, task_id)["project/s1:v1"]
    assert s1["outcome"] == "failed", s1
    assert s1["reason"] == (
        f"gave up after {runner.MAX_ITEM_ATTEMPTS} attempts; last: its worker was lost"
    )
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Failed", task


def test_a_message_past_the_cap_fails_its_item_without_copying(
    api, settings, db, rds, hostile, dst
):
    task_id, task_uuid = _start(api, db, hostile, dst)
    [item_id] = runner.plan_task(task_uuid, settings).item_ids
    db.execute(
        "UPDATE sync_items SET attempts = %s, reason = 'attempt 5: registry answered 503' "
        "WHERE id = %s",
        (runner.MAX_ITEM_ATTEMPTS, item_id),
    )
    assert runner.copy_item(item_id, settings, rds).status == "failed"
    s1 = _by_name(api, task_id)["project/s1:v1"]
    assert s1["reason"] == (
        f"gave up after {runner.MAX_ITEM_ATTEMPTS} attempts; last: attempt 5: registry answered 503"
    )
    assert api.get(f"/tasks/{task_id}")["status"] == "Failed"


def test_a_crashing_plan_is_retried_then_fails_the_task(
    api, settings, db, hostile, dst, monkeypatch
):
    real_plan = plan_run.plan

    def crashing_plan(*args, **kwargs):
        for batch in real_plan(*args, **kwargs):
            yield batch
            raise RuntimeError("planner bug")

    monkeypatch.setattr(plan_run, "plan", crashing_plan)
    task_id, task_uuid = _start(api, db, hostile, dst)
    for attempt in range(1, runner.MAX_PLAN_ATTEMPTS):
        result = runner.plan_task(task_uuid, settings)
        assert result.retry_in is not None and result.item_ids == []
        task = api.get(f"/tasks/{task_id}")
        assert task["status"] == "InProgress", task
        assert task["message"] == f"attempt {attempt}: listing crashed: RuntimeError: planner bug"
        # The first batch's item is written and done, yet the task must not finish.
        assert runner.finalize(task_uuid, settings) is None
        assert runner.reconcile(settings, lambda *a: None, lambda *a: None)["finalized_tasks"] == 0
    result = runner.plan_task(task_uuid, settings)
    assert result.retry_in is None
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Failed", task
    assert task["message"] == (
        f"planning gave up after {runner.MAX_PLAN_ATTEMPTS} attempts; "
        "last: listing crashed: RuntimeError: planner bug"
    )
    # Nothing more happens on a late retry message.
    assert runner.plan_task(task_uuid, settings).item_ids == []
    assert api.get(f"/tasks/{task_id}")["status"] == "Failed"
