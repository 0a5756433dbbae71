"""A task finishes only once its plan has recorded that listing is complete (issue 16, #7)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.sync import runner
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.oci import push_image

pytestmark = pytest.mark.slow


def _task_uuid(db, task_id):
    return db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()["id"]


def _items(db, task_uuid) -> int:
    return db.execute(
        "SELECT count(*) AS n FROM sync_items WHERE task_id = %s", (task_uuid,)
    ).fetchone()["n"]


def test_up_to_date_items_do_not_finish_a_task_whose_plan_still_lists(api, settings, db, src, dst):
    s, d = src.session(), dst.session()
    for i in range(8):
        layer = f"layer of r{i}".encode()
        push_image(s, src.url, f"project/r{i}", "v1", layers=[layer])
        push_image(d, dst.url, f"project/r{i}", "v1", layers=[layer])  # already there
    # The catalog in pages of two; the page after project/r5 (the last one) is held.
    with FaultProxy(src.host, catalog_page=2) as proxy:
        last_page = proxy.add(
            Fault("hold", path=r"^/v2/_catalog\?.*last=project(%2F|/)r5", method="GET")
        )
        rule = api.rule("all", api.instance("src", src, url=proxy.url), api.instance("dst", dst))
        task_id = api.trigger(rule)
        task_uuid = _task_uuid(db, task_id)
        with ThreadPoolExecutor(1) as pool:
            planning = pool.submit(runner.plan_task, task_uuid, settings)
            try:
                assert last_page.held.wait(60), proxy.log
                deadline = time.monotonic() + 30
                while _items(db, task_uuid) == 0:
                    assert time.monotonic() < deadline, "the plan wrote no item"
                    time.sleep(0.05)
                # Every item written so far is up to date: nothing is open. Whatever
                # reconciliation and a copy's finish do now, the task must stay open.
                replanned: list = []
                runner.reconcile(settings, lambda *a: None, lambda *a: replanned.append(a))
                runner.reconcile(settings, lambda *a: None, lambda *a: None, stale_seconds=0)
                assert runner.finalize(task_uuid, settings) is None
                early = api.get(f"/tasks/{task_id}")
                assert early["status"] == "InProgress", early
                assert replanned == []  # the plan's lease is live
            finally:
                last_page.release.set()
            result = planning.result(timeout=120)
    assert result.item_ids == []
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Succeeded", task
    assert (task["total"], task["up_to_date"], task["repositories_count"]) == (8, 8, 8)
