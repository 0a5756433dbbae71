"""Harbor's CloudEvents format and pushes by digest, through the API to a real target."""

from __future__ import annotations

import time

import pytest

from tests.support.api import post_webhook
from tests.support.oci import get_manifest, push_image

pytestmark = pytest.mark.slow


def cloudevent(image_digest, tag, event_id):
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/projects/1/webhook/policies/3",
        "type": "harbor.artifact.pushed",
        "datacontenttype": "application/json",
        "time": "2026-11-29T10:00:00Z",
        "data": {
            "resources": [
                {"digest": image_digest, "tag": tag, "resource_url": f"h/project/app:{tag}"}
            ],
            "repository": {"name": "app", "namespace": "project", "repo_full_name": "project/app"},
        },
        "operator": "robot$ci",
    }


def wait_processed(db, timeout=20.0):
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) AS n FROM webhook_events WHERE processed_at IS NULL"
    while db.execute(query).fetchone()["n"]:
        assert time.monotonic() < deadline, "events not processed"
        time.sleep(0.05)


def test_cloudevents_push_replicates_and_a_push_by_digest_never_becomes_a_tag(
    api, worker, src, dst, db
):
    created = api.create_instance(src, "src")
    s, secret = created["id"], created["webhook_secret"]
    rule = api.rule("on-push", s, api.instance("dst", dst), target_namespace="mirror")
    image = push_image(src.session(), src.url, "project/app", "v7")
    untagged = push_image(src.session(), src.url, "project/app", None)

    r = post_webhook(api.client, s, cloudevent(image.digest, "v7", "ce-1"), secret)
    assert r.status_code == 202 and r.get_json()["format"] == "harbor-cloudevents"
    by_digest = cloudevent(untagged.digest, untagged.digest, "ce-2")
    r = post_webhook(api.client, s, by_digest, secret)
    assert r.get_json()["accepted"] == 1
    wait_processed(db)
    [task] = api.get(f"/rules/{rule}/tasks")
    api.wait(task["task_id"])
    assert [(i["source_tag"], i["outcome"]) for i in api.items(task["task_id"])] == [
        ("v7", "copied")
    ]
    assert get_manifest(dst.session(), dst.url, "mirror/app", "v7").digest == image.digest
    tags = dst.session().get(f"{dst.url}/v2/mirror/app/tags/list").json()["tags"]
    assert tags == ["v7"]
    stored = db.execute("SELECT tag, digest FROM webhook_events ORDER BY id").fetchall()
    assert [(e["tag"], e["digest"]) for e in stored] == [
        ("v7", image.digest),
        ("", untagged.digest),
    ]
