"""Stop during a 1 GiB blob whose source stalls mid-way: honoured within 2 s."""

from __future__ import annotations

import time

from tests.faults.source import MaliciousSource
from tests.support.oci import get_manifest

GiB = 1024 * 1024 * 1024
MiB = 1024 * 1024


def test_stop_during_a_1_gib_blob_is_honoured_within_2_s(api, worker, dst, keeper, case):
    # The layer is generated as a stream; the source sends 48 MiB, then nothing.
    with MaliciousSource(layer_size=GiB, stall_after=48 * MiB) as src:
        rule = api.rule("big", api.instance("src", src), api.instance("dst", dst))
        task_id = api.trigger(rule)
        src.wait_stalled(60)
        asked = time.monotonic()
        api.post(f"/tasks/{task_id}/stop", expect=202)
        task = api.wait(task_id, timeout=30)
        took = time.monotonic() - asked
    items = api.items(task_id)
    assert task["status"] == "Stopped", task
    assert [i["outcome"] for i in items] == ["stopped"], items
    assert took < 2.0, f"Stop took {took:.2f} s"
    assert get_manifest(dst.session(), dst.url, "project/app", "v1") is None
    keeper.intact()
    case.no_secret_in_logs()
    case.record("Stop during a 1 GiB blob (source stalled at 48 MiB)", "Stopped", took)
