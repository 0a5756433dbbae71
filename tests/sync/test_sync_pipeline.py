"""The sync pipeline end to end: API trigger → real worker → real registries → task log."""

from __future__ import annotations

import os

import pytest

from common.db import transaction
from common.sync import runner
from tests.support.api import tenant_api
from tests.support.oci import get_manifest, push_blob, push_chart, push_image, push_index
from worker.dispatch import enqueue_copy, enqueue_plan

pytestmark = pytest.mark.slow


def seed(src):
    """A namespace with images, an index, a Docker list, charts, three levels, and noise."""
    s, u = src.session(), src.url
    base = os.urandom(64 * 1024)  # a shared base layer
    pushed = {
        "project/app:v1": push_image(s, u, "project/app", "v1", layers=[base, os.urandom(900)]),
        "project/app:v2": push_image(
            s, u, "project/app", "v2", oci=False, layers=[base, os.urandom(900)]
        ),
        "project/team/svc/api:1.0": push_image(s, u, "project/team/svc/api", "1.0", layers=[base]),
        "project/multi:latest": push_index(s, u, "project/multi", "latest"),
        "project/multi:list": push_index(s, u, "project/multi", "list", oci=False),
        "project/charts/web:1.0.0": push_chart(s, u, "project/charts/web", "1.0.0"),
        "project/charts/web:1.1.0": push_chart(s, u, "project/charts/web", "1.1.0"),
    }
    push_image(s, u, "other/app", "v1")  # another namespace: never selected
    return pushed


def target_digests(dst, names):
    s = dst.session()
    out = {}
    for name in names:
        repo, tag = name.rsplit(":", 1)
        got = get_manifest(s, dst.url, repo, tag)
        out[name] = got.digest if got else None
    return out


def test_full_sync_then_noop_rescan(api, worker, src, dst):
    pushed = seed(src)
    rule = api.rule(
        "all", api.instance("src", src), api.instance("dst", dst), target_namespace="mirror"
    )
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    assert (task["total"], task["copied"], task["failed"]) == (7, 7, 0)
    assert task["repositories_count"] == 4
    assert float(task["success_rate"]) == 1.0
    assert task["bytes_transferred"] > 0
    mapped = {k.replace("project/", "mirror/", 1): v.digest for k, v in pushed.items()}
    assert target_digests(dst, mapped) == mapped
    assert get_manifest(dst.session(), dst.url, "other/app", "v1") is None
    kinds = {
        f"{i['source_repository']}:{i['source_tag']}": i["kind"] for i in api.items(task["task_id"])
    }
    assert kinds["project/multi:latest"] == "index"
    assert kinds["project/charts/web:1.0.0"] == "chart"
    assert kinds["project/app:v2"] == "image"

    again = api.wait(api.trigger(rule))
    assert again["status"] == "Succeeded"
    assert (again["total"], again["up_to_date"], again["copied"]) == (7, 7, 0)
    assert again["bytes_transferred"] == 0
    # Up-to-date items were decided while planning: no copy ever claimed them.
    assert all(i["attempts"] == 0 for i in api.items(again["task_id"]))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"repository_filter": "app|team/.*", "tag_filter": "v1|1\\.0"},
            {"project/app:v1", "project/team/svc/api:1.0"},
        ),
        (
            {
                "filter_syntax": "glob",
                "repository_filter": "**",
                "repository_exclude": "charts/*",
                "tag_exclude": "v*",
            },
            {"project/team/svc/api:1.0", "project/multi:latest", "project/multi:list"},
        ),
        ({"resource_types": ["chart"]}, {"project/charts/web:1.0.0", "project/charts/web:1.1.0"}),
        (
            {"resource_types": ["image"], "filter_syntax": "glob", "tag_filter": "{v2,list}"},
            {"project/app:v2", "project/multi:list"},
        ),
    ],
)
def test_filters_and_resource_types(api, worker, src, dst, fields, expected):
    pushed = seed(src)
    rule = api.rule("filtered", api.instance("src", src), api.instance("dst", dst), **fields)
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    names = {f"{i['source_repository']}:{i['source_tag']}" for i in api.items(task["task_id"])}
    assert names == expected
    got = target_digests(dst, pushed)
    assert {k for k, v in got.items() if v} == expected
    assert all(got[k] == pushed[k].digest for k in expected)


def test_override_off_keeps_and_on_replaces(api, worker, src, dst):
    source = push_image(src.session(), src.url, "project/app", "v1")
    other = push_image(dst.session(), dst.url, "project/app", "v1")
    src_id, dst_id = api.instance("src", src), api.instance("dst", dst)
    keep = api.rule("keep", src_id, dst_id)
    task = api.wait(api.trigger(keep))
    assert (task["status"], task["kept"], float(task["success_rate"])) == ("Succeeded", 1, 1.0)
    [item] = api.items(task["task_id"])
    assert item["outcome"] == "kept" and "override" in item["reason"]
    assert target_digests(dst, ["project/app:v1"]) == {"project/app:v1": other.digest}

    replace = api.rule("replace", src_id, dst_id, override=True)
    task = api.wait(api.trigger(replace))
    assert (task["status"], task["copied"]) == ("Succeeded", 1)
    assert target_digests(dst, ["project/app:v1"]) == {"project/app:v1": source.digest}


def test_cross_tenant_target_with_its_own_credentials(
    api, client, settings, worker, src, registry_factory
):
    other_registry = registry_factory({"owner": "owner-pw", "writer": "writer-pw"})
    other = tenant_api(client, settings, "globex")
    target = other.instance("theirs", other_registry, user="owner")
    pushed = push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule(
        "cross",
        api.instance("src", src),
        target,
        cross_tenant=True,
        account_id=other.tenant.id,
        username="writer",
        password="writer-pw",
    )
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    got = get_manifest(other_registry.session("owner"), other_registry.url, "project/app", "v1")
    assert got is not None and got.digest == pushed.digest


def _delete_blob(registry, repo, digest):
    r = registry.session().delete(f"{registry.url}/v2/{repo}/blobs/{digest}")
    assert r.status_code == 202, r.text


def test_missing_blob_fails_one_item_then_retry_after_fix(api, worker, src, dst):
    s = src.session()
    broken_layer = os.urandom(4096)
    push_image(s, src.url, "project/app", "good")
    push_image(s, src.url, "project/lib", "v1")
    broken = push_image(s, src.url, "project/app", "broken", layers=[broken_layer])
    layer_digest = __import__("json").loads(broken.body)["layers"][0]["digest"]
    _delete_blob(src, "project/app", layer_digest)

    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    task = api.wait(api.trigger(rule))
    assert task["status"] == "PartiallySucceeded"
    assert (task["total"], task["copied"], task["failed"]) == (3, 2, 1)
    assert float(task["success_rate"]) == pytest.approx(2 / 3, abs=1e-4)
    [failed] = api.items(task["task_id"], status="failed")
    assert failed["source_tag"] == "broken"
    assert layer_digest in failed["reason"] and "not found" in failed["reason"].lower()
    assert get_manifest(dst.session(), dst.url, "project/app", "broken") is None

    # Fix the cause (the blob is back) and retry only the failed item.
    push_blob(s, src.url, "project/app", broken_layer)
    retried = api.post(f"/tasks/{task['task_id']}/retry", expect=202)
    done = api.wait(retried["task_id"])
    assert (done["status"], done["total"], done["copied"]) == ("Succeeded", 1, 1)
    got = get_manifest(dst.session(), dst.url, "project/app", "broken")
    assert got is not None and got.digest == broken.digest


def test_disabled_rule_cannot_be_triggered(api, src, dst):
    rule = api.rule("off", api.instance("src", src), api.instance("dst", dst), enabled=False)
    body = api.post(f"/rules/{rule}/trigger", expect=409)
    assert "disabled" in body["message"]


def test_rule_selecting_nothing_finishes_at_once(api, worker, src, dst):
    push_image(src.session(), src.url, "other/app", "v1")
    rule = api.rule("empty", api.instance("src", src), api.instance("dst", dst))
    task = api.wait(api.trigger(rule))
    assert (task["status"], task["total"]) == ("Succeeded", 0)
    assert task["message"]


def test_stop_before_copies_start(api, settings, src, dst):
    s = src.session()
    for i in range(5):
        push_image(s, src.url, f"project/r{i}", "v1")
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    task_id = api.trigger(rule)
    # No worker yet: plan by hand, so the items exist but no copy has run.
    with transaction(settings) as conn:
        row = conn.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    runner.plan_task(row["id"], settings)
    stopped = api.post(f"/tasks/{task_id}/stop", expect=(200, 202))
    assert stopped["status"] == "Stopped"
    assert {i["outcome"] for i in api.items(task_id)} == {"stopped"}
    assert api.post(f"/tasks/{task_id}/stop", expect=409)["code"] == 409


def test_worker_killed_mid_run_finishes_exactly_after_restart(api, settings, src, dst):
    from tests.support.worker import WorkerProcess

    s = src.session()
    names = []
    for i in range(12):
        push_image(s, src.url, f"project/r{i:02d}", "v1", layers=[os.urandom(3 * 1024 * 1024)])
        names.append(f"project/r{i:02d}:v1")
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    first = WorkerProcess(settings, concurrency=2, name="doomed").start()
    task_id = api.trigger(rule)
    try:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            task = api.get(f"/tasks/{task_id}")
            if task["copied"] >= 2:
                break
            time.sleep(0.05)
        assert task["copied"] >= 2, task
    finally:
        first.kill()
    assert api.get(f"/tasks/{task_id}")["status"] == "InProgress"

    # What the beat job does each minute, with the clock moved past every lease.
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(seconds=runner.LEASE_SECONDS + 5)
    counts = runner.reconcile(settings, enqueue_copy, enqueue_plan, stale_seconds=0, now=later)
    assert counts["requeued_items"] > 0
    second = WorkerProcess(settings, concurrency=2, name="fresh").start()
    try:
        task = api.wait(task_id, timeout=90)
    finally:
        second.stop()
    items = api.items(task_id)
    assert task["status"] == "Succeeded", (task, items)
    # An item whose manifest landed just before the kill is found up to date.
    assert (task["total"], task["copied"] + task["up_to_date"], task["failed"]) == (12, 12, 0)
    assert len({(i["source_repository"], i["source_tag"]) for i in items}) == len(items) == 12
    dst_names = target_digests(dst, names)
    assert all(dst_names.values())


def test_shared_layer_crosses_the_wire_once(api, src, dst, settings):
    from tests.support.worker import WorkerProcess

    shared = os.urandom(20 * 1024 * 1024)
    s = src.session()
    # Tags of one repository and other repositories all need it at once.
    for repo in ("project/a", "project/b", "project/c"):
        for tag in ("v1", "v2"):
            push_image(s, src.url, repo, tag, layers=[shared, os.urandom(1024)])
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    proc = WorkerProcess(settings, concurrency=4, name="sharing").start()
    try:
        task = api.wait(api.trigger(rule))
    finally:
        proc.stop()
    assert (task["status"], task["copied"]) == ("Succeeded", 6)
    items = api.items(task["task_id"])
    # 20 MiB once, plus six small layers and configs.
    assert len(shared) <= task["bytes_transferred"] < len(shared) + 64 * 1024
    assert sum(i["blobs_mounted"] + i["blobs_skipped"] for i in items) >= 5


def test_task_log_and_items_api(api, worker, src, dst):
    push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    task_id = api.wait(api.trigger(rule))["task_id"]
    log = api.get(f"/rules/{rule}/tasks")
    assert [t["task_id"] for t in log] == [task_id]
    fields = {
        "task_id",
        "trigger",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "time_spent_seconds",
        "success_rate",
        "repositories_count",
        "total",
        "copied",
        "up_to_date",
        "kept",
        "failed",
        "bytes_transferred",
    }
    assert fields <= set(log[0])
    assert log[0]["trigger"] == "manual"
    [item] = api.items(task_id)
    assert {
        "source_repository",
        "source_tag",
        "target_repository",
        "target_tag",
        "kind",
        "digest",
        "outcome",
        "reason",
        "bytes_transferred",
        "started_at",
        "finished_at",
        "worker",
    } <= set(item)
    # The Celery hostname of the worker that copied it (WorkerProcess names it test-...).
    assert item["worker"].startswith("test-"), item
    assert api.items(task_id, status="failed") == []
    preview = api.get(f"/rules/{rule}/preview")
    assert preview == [
        {
            **preview[0],
            "source_repository": "project/app",
            "source_tag": "v1",
            "target_repository": "project/app",
            "target_has_it": True,
        }
    ]


def test_another_tenant_sees_no_task(api, client, settings, worker, src, dst):
    push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))
    task_id = api.wait(api.trigger(rule))["task_id"]
    other = tenant_api(client, settings, "globex")
    for path in (
        f"/tasks/{task_id}",
        f"/tasks/{task_id}/items",
        f"/rules/{rule}/tasks",
        f"/rules/{rule}/preview",
    ):
        assert other.get(path, expect=404)["code"] == 404
    for path in (f"/tasks/{task_id}/stop", f"/tasks/{task_id}/retry", f"/rules/{rule}/trigger"):
        assert other.post(path, expect=404)["code"] == 404
