"""Selection by version and age against real registries: plan (manual) and push."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.api import post_webhook
from tests.support.oci import get_manifest, push_image

pytestmark = pytest.mark.slow


def image(src, repo, tag, created=None):
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    if created:
        config["created"] = created
    return push_image(src.session(), src.url, repo, tag, config=config)


def copied(api, task_id):
    return sorted(
        f"{i['source_repository']}:{i['source_tag']}"
        for i in api.items(task_id)
        if i["outcome"] in ("copied", "up-to-date")
    )


def test_semver_and_latest_by_version_and_by_age(api, worker, src, dst):
    for tag in ("1.0.0", "1.2.0", "v1.5.0", "1.9.0-rc.1", "2.0.0", "latest", "1.5"):
        image(src, "project/ver", tag)
    times = {"old": "2024-01-01T00:00:00Z", "mid": "2024-06-01T00:00:00.5Z", "new": None}
    times["new"] = "2025-01-01T00:00:00.123456789Z"
    for tag, created in times.items():
        image(src, "project/age", tag, created)
    image(src, "project/age", "undated")  # no created time: oldest
    s, d = api.instance("src", src), api.instance("dst", dst)

    ranged = api.rule("ranged", s, d, target_namespace="m1", semver=">=1.2 <2")
    task = api.wait(api.trigger(ranged))
    assert copied(api, task["task_id"]) == ["project/ver:1.2.0", "project/ver:v1.5.0"]

    newest = api.rule("newest", s, d, target_namespace="m2", latest=2)
    task = api.wait(api.trigger(newest))
    assert task["status"] == "Succeeded", task
    # ver mixes versions and other tags, all undated: by age, so ties by the greater name.
    assert copied(api, task["task_id"]) == [
        "project/age:mid",
        "project/age:new",
        "project/ver:latest",
        "project/ver:v1.5.0",
    ]

    versions = api.rule("versions", s, d, target_namespace="m3", semver="*", latest=2)
    task = api.wait(api.trigger(versions))
    # All versions: version order (2.0.0 > v1.5.0 > 1.2.0), the pre-release left out.
    assert copied(api, task["task_id"]) == ["project/ver:2.0.0", "project/ver:v1.5.0"]
    assert get_manifest(dst.session(), dst.url, "m3/ver", "1.2.0") is None


def push_event(repo, tag, digest):
    target = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest}
    target.update(repository=repo, tag=tag)
    return {"events": [{"id": str(uuid.uuid4()), "action": "push", "target": target}]}


def test_push_outside_latest_n_is_not_copied(api, worker, src, dst, db):
    created = api.create_instance(src, "src")
    s, secret = created["id"], created["webhook_secret"]
    rule = api.rule("newest", s, api.instance("dst", dst), target_namespace="m", latest=1)
    new = image(src, "project/app", "new", "2025-01-01T00:00:00Z")
    old = image(src, "project/app", "old", "2020-01-01T00:00:00Z")
    for tag, pushed in (("old", old), ("new", new)):
        body = push_event("project/app", tag, pushed.digest)
        assert post_webhook(api.client, s, body, secret).status_code == 202
    deadline = time.monotonic() + 30
    while db.execute(
        "SELECT count(*) AS n FROM webhook_events WHERE processed_at IS NULL"
    ).fetchone()["n"]:
        assert time.monotonic() < deadline, "events not processed"
        time.sleep(0.05)
    tasks = api.get(f"/rules/{rule}/tasks")
    done = [api.wait(t["task_id"]) for t in tasks]
    items = [f"{i['source_tag']}:{i['outcome']}" for t in done for i in api.items(t["task_id"])]
    assert items == ["new:copied"]
    assert get_manifest(dst.session(), dst.url, "m/app", "old") is None
