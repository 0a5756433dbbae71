"""Hostile input: a ReDoS pattern and a ReDoS tag, each answered within a second."""

from __future__ import annotations

import json
import time
import uuid

from tests.support.api import post_webhook
from tests.support.hostile import HostileRegistry

OCI = "application/vnd.oci.image.manifest.v1+json"
EVIL = "(a+)+b"  # about a day per 40-character tag in a backtracking engine
LONG_TAG = "a" * 128  # the longest tag the spec allows


def _manifest() -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI, "layers": []}).encode()


def test_a_redos_pattern_previewed_and_synced(api, worker, dst, keeper, case):
    tags = {"a" * 40: (_manifest(), OCI), "v1": (_manifest(), OCI)}
    with HostileRegistry(repositories={"project/app": tags}) as evil:
        src_id = api.create_instance(evil, "evil")["id"]
        rule = api.rule("redos", src_id, api.instance("dst", dst), tag_filter=EVIL)
        started = time.monotonic()
        preview = api.get(f"/rules/{rule}/preview")
        took = time.monotonic() - started
        task_id = api.trigger(rule)
        task = api.wait(task_id, timeout=30)
    assert preview == [] and took < 1.0, f"preview took {took:.2f} s"
    # Nothing matches the pattern: the task selected nothing, and says so.
    assert task["status"] == "Succeeded" and task["total"] == 0, task
    keeper.intact()
    case.no_secret_in_logs()
    case.record(
        "ReDoS pattern (a+)+b, preview over a 40-char tag", "answered, nothing selected", took
    )


def test_a_redos_tag_in_a_webhook(api, worker, settings, db, src, dst, keeper, client, case):
    created = api.create_instance(src, "src")
    src_id, secret = created["id"], created["webhook_secret"]
    api.rule("redos", src_id, api.instance("dst", dst), tag_filter=EVIL)
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-29T10:00:00Z",
        "action": "push",
        "target": {"mediaType": OCI, "digest": "sha256:" + "c" * 64, "repository": "project/app",
                   "tag": LONG_TAG},
    }  # fmt: skip
    started = time.monotonic()
    answer = post_webhook(client, src_id, {"events": [event]}, secret)
    took = time.monotonic() - started
    assert answer.status_code == 202 and took < 1.0, (answer.status_code, took)
    # The worker matches the tag against the rule's filter at once too: no task.
    deadline = time.monotonic() + 10
    while db.execute("SELECT count(*) AS n FROM webhook_events WHERE processed_at IS NULL")\
            .fetchone()["n"]:  # fmt: skip
        assert time.monotonic() < deadline, "the event was not processed"
        time.sleep(0.05)
    processed = time.monotonic() - started
    assert db.execute("SELECT count(*) AS n FROM sync_tasks").fetchone()["n"] == 0
    keeper.intact()
    case.no_secret_in_logs(secrets=(secret,))
    case.record(
        "ReDoS tag (128 x 'a') in a push webhook", f"202, processed in {processed:.1f} s", took
    )
