"""Ferry's own infrastructure fails under ``ferry up``: every worker process killed, the
embedded Redis restarted, the embedded PostgreSQL restarted, each mid-task. The
servers are the stack's own (never the machine's shared 5432/6379)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.faults.stack import Pinger, Stack, wait_final
from tests.support.oci import get_manifest, push_image

MiB = 1024 * 1024
IMAGES = 10


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    up = Stack()
    try:
        up.wait_ready()
        yield up
    finally:
        up.stop()


def _start_sync(stack: Stack, src, dst, name: str):
    api = stack.tenant_api(name)
    names = []
    for i in range(IMAGES):
        push_image(src.session(), src.url, f"project/r{i:02d}", "v1", layers=[os.urandom(2 * MiB)])
        names.append(f"project/r{i:02d}")
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    return api, api.trigger(rule), names


def _wait_copied(api, task_id: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while api.get(f"/tasks/{task_id}")["copied"] < at_least:
        assert time.monotonic() < deadline, "copies did not start"
        time.sleep(0.05)


def _exact(api, task_id: str, task: dict, src, dst, names: list[str]) -> None:
    items = api.items(task_id)
    failed = [(i["source_repository"], i["reason"]) for i in items if i["outcome"] != "copied"]
    assert task["status"] == "Succeeded", (task["status"], failed)
    assert (task["total"], task["copied"] + task["up_to_date"], task["failed"]) == (
        IMAGES,
        IMAGES,
        0,
    ), task
    for repo in names:
        want = get_manifest(src.session(), src.url, repo, "v1")
        assert get_manifest(dst.session(), dst.url, repo, "v1").digest == want.digest, repo


def test_every_worker_process_killed_under_ferry_up(stack, src, dst, keeper, case):
    api, task_id, names = _start_sync(stack, src, dst, "kill-all")
    _wait_copied(api, task_id, 2)
    with Pinger(stack) as pinger:
        killed = stack.kill_workers()
        assert killed, "no worker to kill"
        deadline = time.monotonic() + 60
        while not [p for p in stack.workers() if p.pid not in killed]:
            assert time.monotonic() < deadline, "ferry up did not restart the worker"
            time.sleep(0.1)
        back = time.monotonic()
        task = wait_final(api, task_id, timeout=120)
        took = time.monotonic() - back
    assert stack.proc.poll() is None, stack.log()[-2000:]
    assert pinger.asked > 0 and pinger.failed == 0, (pinger.asked, pinger.failed)
    _exact(api, task_id, task, src, dst, names)
    assert took < 60, f"the task ended {took:.1f} s after the worker was back"
    keeper.intact()
    case.watch_log(*stack.logs())
    case.no_secret_in_logs(secrets=(stack.servers.password(), FLOWER_PW))
    case.record("every worker process SIGKILLed under ferry up", "Succeeded, exact; API up", took)


def test_redis_restarted_mid_task(stack, src, dst, keeper, case):
    api, task_id, names = _start_sync(stack, src, dst, "redis")
    _wait_copied(api, task_id, 2)
    stack.restart_redis()
    back = time.monotonic()
    task = wait_final(api, task_id, timeout=120)
    took = time.monotonic() - back
    _exact(api, task_id, task, src, dst, names)
    keeper.intact()
    case.watch_log(*stack.logs())
    case.no_secret_in_logs(secrets=(stack.servers.password(), FLOWER_PW))
    case.record("Redis restarted mid-task", "Succeeded, exact", took)


def test_postgresql_restarted_mid_task(stack, src, dst, keeper, case):
    api, task_id, names = _start_sync(stack, src, dst, "postgres")
    _wait_copied(api, task_id, 2)
    stack.restart_postgres()
    back = time.monotonic()
    task = wait_final(api, task_id, timeout=150)
    took = time.monotonic() - back
    _exact(api, task_id, task, src, dst, names)
    keeper.intact()
    case.watch_log(*stack.logs())
    case.no_secret_in_logs(secrets=(stack.servers.password(), FLOWER_PW))
    case.record("PostgreSQL restarted mid-task", "Succeeded, exact", took)


FLOWER_PW = "flower-Fault-pw"
