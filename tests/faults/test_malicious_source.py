"""A malicious source: wrong bytes, an endless catalog, a 100 MiB manifest, a slow-loris
body, a blob redirect to a loopback service; and a target whose upload Location points
at one. Each ends with a truthful failure, the target intact, and no secret logged."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.faults.source import Listener, MaliciousSource
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.oci import get_manifest, push_image
from tests.support.worker import WorkerProcess

MiB = 1024 * 1024


@pytest.fixture
def listener():
    with Listener() as service:
        yield service


def _run(api, src_url: str, dst, **rule) -> tuple[dict, list[dict], float]:
    """Sync ``src_url``'s namespace ``project`` to ``dst``; the task, its items, seconds."""
    src_id = api.post("/instances", {"name": "src", "url": src_url}, expect=201)["id"]
    rule_id = api.rule("evil", src_id, api.instance("dst", dst), **rule)
    started = time.monotonic()
    task_id = api.trigger(rule_id)
    task = api.wait(task_id, timeout=90)
    return task, api.items(task_id), time.monotonic() - started


def _failed_item(task: dict, items: list[dict], *needles: str) -> str:
    assert task["status"] == "Failed", (task, items)
    assert [i["outcome"] for i in items] == ["failed"], items
    reason = items[0]["reason"] or ""
    for needle in needles:
        assert needle in reason, reason
    return reason


def _worker(settings, case, **changes) -> WorkerProcess:
    proc = WorkerProcess(replace(settings, **changes), name="faults-tuned").start()
    case.watch_log(proc.log_path)
    return proc


def test_a_blob_whose_bytes_do_not_match_its_digest(api, worker, dst, keeper, case):
    with MaliciousSource(wrong_bytes=True) as src:
        task, items, took = _run(api, src.url, dst)
    _failed_item(task, items, "hashes to")
    assert get_manifest(dst.session(), dst.url, "project/app", "v1") is None
    keeper.intact()
    case.no_secret_in_logs()
    case.record("source blob whose bytes do not match its digest", "item Failed (digest)", took)


def test_an_endless_catalog(api, settings, dst, keeper, case):
    proc = _worker(settings, case, max_repositories_per_task=300)
    try:
        with MaliciousSource(endless_catalog=True) as src:
            task, _, took = _run(api, src.url, dst)
            pages = sum(1 for m, p in src.hits if p.startswith("/v2/_catalog"))
    finally:
        proc.stop()
    assert task["status"] == "Failed", task
    assert "FERRY_MAX_REPOSITORIES_PER_TASK" in (task.get("message") or ""), task
    assert pages <= 10, pages  # 50 names a page: stopped right after the cap
    keeper.intact()
    case.no_secret_in_logs()
    case.record("endless catalog", "task Failed (repository cap)", took)


def test_a_100_mib_manifest(api, worker, dst, keeper, case):
    with MaliciousSource(manifest_padding=100 * MiB) as src:
        task, items, took = _run(api, src.url, dst)
    reason = _failed_item(task, items)
    assert "exceeds" in reason or "too large" in reason, reason
    assert get_manifest(dst.session(), dst.url, "project/app", "v1") is None
    keeper.intact()
    case.no_secret_in_logs()
    case.record("100 MiB manifest", "item Failed (size cap)", took)


def test_a_slow_loris_manifest_body(api, settings, dst, keeper, case):
    proc = _worker(settings, case, registry_deadline=2)
    try:
        with MaliciousSource(trickle=0.05, trickle_manifest=True) as src:
            task, items, took = _run(api, src.url, dst)
    finally:
        proc.stop()
    _failed_item(task, items, "did not finish within 2 s")
    keeper.intact()
    case.no_secret_in_logs()
    case.record("slow-loris body (manifest at 20 B/s)", "item Failed (deadline)", took)


def test_a_slow_loris_blob_body(api, settings, dst, keeper, case):
    proc = _worker(settings, case, registry_stall=1)
    try:
        with MaliciousSource(layer_size=64 * 1024, trickle=0.02) as src:
            task, items, took = _run(api, src.url, dst)
    finally:
        proc.stop()
    _failed_item(task, items, "less than 64 KiB in 1 s")
    assert get_manifest(dst.session(), dst.url, "project/app", "v1") is None
    keeper.intact()
    case.no_secret_in_logs()
    case.record("slow-loris blob body (50 B/s)", "item Failed (stalled)", took)


def test_a_blob_redirect_to_a_loopback_service(api, worker, dst, keeper, listener, case):
    with MaliciousSource(redirect_blobs=listener.url) as src:
        task, items, took = _run(api, src.url, dst)
    _failed_item(task, items, "FERRY_REGISTRY_REDIRECT_HOSTS")
    assert listener.hits == []
    keeper.intact()
    case.no_secret_in_logs()
    case.record(
        "source blob redirect to a loopback service", "item Failed; it got 0 requests", took
    )


def test_a_target_upload_location_on_a_loopback_service(
    api, worker, src, dst, keeper, listener, case
):
    push_image(src.session(), src.url, "project/app", "v1")
    with FaultProxy(dst.host) as proxy:
        proxy.add(
            Fault(
                "status",
                path=r"/blobs/uploads/",
                method="POST",
                status=202,
                headers={"Location": f"{listener.url}/upload/1"},
                times=1000,
            )
        )
        src_id = api.instance("src", src)
        dst_id = api.post(
            "/instances",
            {"name": "dst", "url": proxy.url, "username": "bob", "password": "bob-pw"},
            expect=201,
        )["id"]
        started = time.monotonic()
        task_id = api.trigger(api.rule("evil-target", src_id, dst_id))
        task = api.wait(task_id, timeout=90)
        took = time.monotonic() - started
    _failed_item(task, api.items(task_id), "upload sessions stay on the registry")
    assert listener.hits == []
    assert get_manifest(dst.session(), dst.url, "project/app", "v1") is None
    keeper.intact()
    case.no_secret_in_logs()
    case.record(
        "target upload Location to a loopback service", "item Failed; it got 0 requests", took
    )
