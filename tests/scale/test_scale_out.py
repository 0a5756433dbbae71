"""Scale-out, proven on one machine: the roles as separate processes share one PostgreSQL and
one Redis; copies spread over the copy workers, a killed worker loses nothing, and a second
beat started by mistake fires nothing twice."""

from __future__ import annotations

import ast
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
import redis

from common.services.tasks import trigger_rule
from common.sync import runner
from common.sync.leases import TargetSemaphore
from tests.scale.conftest import COPY_WORKERS, Cluster
from tests.support.api import Api
from tests.support.oci import get_manifest, push_image
from tests.support.registry import RegistryServer
from tests.support.roles import RoleProcess, log_ready
from worker.dispatch import enqueue_copy, enqueue_plan

pytestmark = pytest.mark.slow

# Tiny images, distinct digests: enough items to spread, small enough for a loaded 2-core box.
REPOSITORIES = 4
TAGS_PER_REPOSITORY = 50
# What a worker logs when a reconcile ends: its counts.
RECONCILED = re.compile(r"ferry\.reconcile\[[^\]]+\] succeeded in [^:]+: (\{[^}]*\})")


def seed(src: RegistryServer) -> dict[str, str]:
    """``REPOSITORIES`` x ``TAGS_PER_REPOSITORY`` tiny images sharing one layer; digests."""
    s = src.session()
    layer = os.urandom(512)
    digests = {}
    for r in range(REPOSITORIES):
        for t in range(TAGS_PER_REPOSITORY):
            repo, tag = f"project/app{r}", f"v{t}"
            config = {"architecture": "amd64", "os": "linux", "created": f"{repo}:{tag}"}
            config["rootfs"] = {"type": "layers", "diff_ids": []}
            digests[f"{repo}:{tag}"] = push_image(s, src.url, repo, tag, layers=[layer],
                                                  config=config).digest  # fmt: skip
    return digests


def all_items(api: Api, task_id: str) -> list[dict[str, Any]]:
    """Every item of the task, page by page."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = api.get(f"/tasks/{task_id}/items", query_string={"page": page, "page_size": 100})
        items += batch
        if len(batch) < 100:
            return items
        page += 1


def sync_rule(cluster: Cluster, src: RegistryServer, dst: RegistryServer) -> str:
    """A rule from the whole ``project`` namespace of ``src`` to ``dst`` (no copy cap in play)."""
    api = cluster.apis[0]
    source = api.instance("src", src)
    target = api.instance("dst", dst, max_concurrent_copies=32)
    return api.rule("all", source, target)


def assert_exact(dst: RegistryServer, items: list[dict[str, Any]], pushed: dict[str, str]) -> None:
    """One item per pushed tag, and every tag on the target has the source's digest."""
    assert sorted(f"{i['source_repository']}:{i['source_tag']}" for i in items) == sorted(pushed)
    s = dst.session()
    for name, digest in pushed.items():
        repo, tag = name.rsplit(":", 1)
        got = get_manifest(s, dst.url, repo, tag)
        assert got is not None and got.digest == digest, name


def test_a_sync_spreads_over_both_copy_workers(cluster, src, dst):
    pushed = seed(src)
    rule = sync_rule(cluster, src, dst)
    first, second = cluster.apis
    task_id = first.trigger(rule)
    # The other API process reads what the first one started.
    task = second.wait(task_id, timeout=240)
    assert (task["status"], task["total"], task["copied"]) == ("Succeeded", len(pushed), 200)
    items = all_items(second, task_id)
    assert_exact(dst, items, pushed)
    by_worker: dict[str, int] = {}
    for item in items:
        by_worker[item["worker"]] = by_worker.get(item["worker"], 0) + 1
    assert set(by_worker) == {cluster.hostname(w) for w in COPY_WORKERS}, by_worker


def _leases(settings, task_id: str) -> list[tuple[str, datetime]]:
    with psycopg.connect(settings.require_database_url()) as conn:
        return conn.execute(
            """SELECT i.worker, i.lease_until FROM sync_items i JOIN sync_tasks t
               ON t.id = i.task_id WHERE t.task_id = %s AND i.status = 'running'""",
            (task_id,),
        ).fetchall()


def test_a_copy_worker_killed_mid_run_loses_nothing(cluster, settings, src, dst):
    pushed = seed(src)
    rule = sync_rule(cluster, src, dst)
    api = cluster.apis[1]
    task_id = api.trigger(rule)
    deadline = time.monotonic() + 120
    while (task := api.get(f"/tasks/{task_id}"))["copied"] < 20:
        assert task["status"] in ("Pending", "InProgress"), task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    doomed = cluster.hostname("copy-b")
    cluster.roles["copy-b"].kill()
    assert api.get(f"/tasks/{task_id}")["status"] == "InProgress"

    # The dead worker's leases lapse within LEASE_SECONDS; the survivor renews its own every
    # second. Reconcile (what beat does each minute) at the instant the dead worker's leases
    # have lapsed and no live one has, instead of waiting for the clock.
    lapse = max((u for w, u in _leases(settings, task_id) if w == doomed), default=None)
    at = (lapse or datetime.now(UTC)) + timedelta(milliseconds=1)
    deadline = time.monotonic() + 30
    while any(u <= at for w, u in _leases(settings, task_id) if w != doomed):
        assert time.monotonic() < deadline, "the survivor did not renew its leases"
        time.sleep(0.1)
    runner.reconcile(settings, enqueue_copy, enqueue_plan, stale_seconds=0, now=at)

    task = api.wait(task_id, timeout=240)
    items = all_items(api, task_id)
    assert task["status"] == "Succeeded", task
    # An item whose manifest landed just before the kill is found up to date.
    assert (task["total"], task["copied"] + task["up_to_date"], task["failed"]) == (200, 200, 0)
    assert_exact(dst, items, pushed)
    assert cluster.hostname("copy-a") in {i["worker"] for i in items}


def _fast_beat(cluster: Cluster, name: str) -> RoleProcess:
    env = {**cluster.env, "FERRY_DATA_DIR": cluster.env["FERRY_DATA_DIR"] + f"-{name}"}
    os.makedirs(env["FERRY_DATA_DIR"], exist_ok=True)
    argv = [sys.executable, "-m", "celery", "-A", "tests.scale.fast_beat", "beat",
            "--schedule", os.path.join(env["FERRY_DATA_DIR"], "celerybeat-schedule"),
            "--loglevel", "INFO"]  # fmt: skip
    return RoleProcess(name, [], env, log_ready("beat: Starting"), argv=argv)


def _ticks(proc: RoleProcess) -> int:
    return proc.log().count("Sending due task schedule (ferry.schedule)")


def _reconciled(cluster: Cluster) -> dict[str, int]:
    """The sums of what every reconcile run by the plan+copy workers reported."""
    sums: dict[str, int] = {}
    for worker in COPY_WORKERS:
        for found in RECONCILED.findall(cluster.roles[worker].log()):
            for key, value in ast.literal_eval(found).items():
                sums[key] = sums.get(key, 0) + value
    return sums


def _stranded_task(settings, api: Api, rule: str) -> str:
    """A task planned ten minutes ago whose copy messages were lost; its task id."""
    task = trigger_rule(settings, api.tenant.id, UUID(rule))
    assert runner.plan_task(task.id, settings).item_ids
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute("UPDATE sync_tasks SET started_at = now() - interval '10 minutes' "
                     "WHERE id = %s", (task.id,))  # fmt: skip
    return task.task_id


def test_a_second_beat_fires_nothing_twice(cluster, settings, src, dst):
    """Two more beats ticking every second: a due schedule starts one task, and stranded
    copies are re-sent once although they stay stranded for many ticks."""
    s = src.session()
    for tag in ("v1", "v2", "v3"):
        push_image(s, src.url, "project/app", tag)
    api = cluster.apis[0]
    source, target = api.instance("src", src), api.instance("dst", dst)
    scheduled = api.rule("nightly", source, target, namespace="empty", schedule="0 3 1 1 *")
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute("UPDATE rules SET next_run_at = now() - interval '1 second' WHERE id = %s",
                     (scheduled,))  # fmt: skip
    stranded = _stranded_task(settings, api, api.rule("stranded", source, target))
    # Hold every copy slot of the target: the re-sent copies cannot start, so the task stays
    # stranded and every tick of every beat would re-send its items without the claim.
    slots = TargetSemaphore(redis.Redis.from_url(settings.require_redis_url()), target, 8, 600)
    held = [slots.try_acquire() for _ in range(8)]
    assert all(held)
    beats = [_fast_beat(cluster, "beat-1"), _fast_beat(cluster, "beat-2")]
    cluster.start(*beats)
    deadline = time.monotonic() + 120
    while min(_ticks(b) for b in beats) < 5 or _reconciled(cluster).get("requeued_items", 0) < 3:
        assert time.monotonic() < deadline, [b.log()[-2000:] for b in beats]
        time.sleep(0.2)
    log = api.get(f"/rules/{scheduled}/tasks")
    assert [t["trigger"] for t in log] == ["schedule"], log
    assert api.wait(log[0]["task_id"])["status"] == "Succeeded"
    assert _reconciled(cluster)["requeued_items"] == 3
    for token in held:
        slots.release(token)
    task = api.wait(stranded, timeout=120)
    assert (task["status"], task["copied"]) == ("Succeeded", 3), task
