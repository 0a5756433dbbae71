"""A worker killed with SIGKILL mid-blob (see also tests/sync/test_sync_pipeline.py
::test_worker_killed_mid_run_finishes_exactly_after_restart, which drives reconcile by
hand): restarted under its name, it resumes the task at once and it ends exact."""

from __future__ import annotations

import os
import time
import uuid

from tests.support.faultproxy import Fault, FaultProxy
from tests.support.oci import get_manifest, push_image
from tests.support.worker import WorkerProcess

MiB = 1024 * 1024


def test_a_worker_killed_mid_blob_resumes_when_it_is_back(api, settings, src, dst, keeper, case):
    names = []
    for i in range(4):
        push_image(src.session(), src.url, f"project/r{i}", "v1", layers=[os.urandom(3 * MiB)])
        names.append(f"project/r{i}")
    hostname = f"faults-{uuid.uuid4().hex[:8]}@localhost"
    with FaultProxy(src.host) as proxy:
        # The first layer download is held mid-way: the worker dies while copying a blob.
        held = proxy.add(Fault("hold", path=r"/blobs/sha256:", method="GET"))
        src_id = api.post(
            "/instances",
            {"name": "src", "url": proxy.url, "username": "alice", "password": "alice-pw"},
            expect=201,
        )["id"]
        rule = api.rule("all", src_id, api.instance("dst", dst))
        first = WorkerProcess(settings, hostname=hostname).start()
        case.watch_log(first.log_path)
        task_id = api.trigger(rule)
        assert held.held.wait(60), "no blob download started"
        first.kill()
        held.release.set()
        assert api.get(f"/tasks/{task_id}")["status"] == "InProgress"
        second = WorkerProcess(settings, hostname=hostname).start()
        case.watch_log(second.log_path)
        back = time.monotonic()
        try:
            task = api.wait(task_id, timeout=90)
        finally:
            second.stop()
        took = time.monotonic() - back
    items = api.items(task_id)
    assert task["status"] == "Succeeded", (task, items)
    assert (task["total"], task["copied"] + task["up_to_date"], task["failed"]) == (4, 4, 0)
    for repo in names:
        want = get_manifest(src.session(), src.url, repo, "v1")
        assert get_manifest(dst.session(), dst.url, repo, "v1").digest == want.digest
    assert took < 30, f"resumed only {took:.1f} s after the worker was back"
    keeper.intact()
    case.no_secret_in_logs()
    case.record("worker SIGKILL mid-blob, restarted under its name", "Succeeded, exact", took)
