"""Delete propagation against real registries: a real Distribution registry's own delete
notifications, the by-digest trap, target tags changed by others, and full rescans."""

from __future__ import annotations

import time

import pytest

from tests.support.api import post_webhook
from tests.support.oci import get_manifest, push_image, push_manifest

pytestmark = pytest.mark.slow


def wait_until(check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def digest_at(registry, repo, tag):
    got = get_manifest(registry.session(), registry.url, repo, tag)
    return got.digest if got else None


def delete_digest(registry, repo, digest):
    r = registry.session().delete(f"{registry.url}/v2/{repo}/manifests/{digest}")
    assert r.status_code == 202, r.text


def deletion_items(api, rule):
    return sorted(
        (i["source_tag"], i["outcome"], i["reason"])
        for t in api.get(f"/rules/{rule}/tasks")
        for i in api.items(t["task_id"])
        if i["outcome"] in ("deleted", "failed") or (i["reason"] or "").startswith("not deleted")
    )


def test_distribution_delete_events_propagate_and_the_by_digest_trap_keeps(
    api, worker, src, dst, live
):
    created = api.create_instance(src, "src")
    src_id, secret = created["id"], created["webhook_secret"]
    src.notify(f"{live.url}/api/v1/webhooks/{src_id}", secret)
    rule = api.rule(
        "mirror-del", src_id, api.instance("dst", dst), target_namespace="mirror", deletion=True
    )
    s, d = src.session(), dst.session()
    a = push_image(s, src.url, "project/app", "v1")
    push_manifest(s, src.url, "project/app", "v1-alias", a.body, a.media_type)  # same digest
    b = push_image(s, src.url, "project/app", "v2")
    c = push_image(s, src.url, "project/app", "v3")
    for tag, digest in (("v1", a.digest), ("v1-alias", a.digest), ("v2", b.digest)):
        wait_until(lambda t=tag, g=digest: digest_at(dst, "mirror/app", t) == g, tag)
    wait_until(lambda: digest_at(dst, "mirror/app", "v3") == c.digest, "v3")

    # v1 alone leaves the source: moved to another manifest, which is then deleted.
    moved = push_image(s, src.url, "project/app", "v1")
    delete_digest(src, "project/app", moved.digest)
    # v2 leaves the source: its digest is deleted (Distribution's only way).
    delete_digest(src, "project/app", b.digest)
    # v3 is changed on the target by someone else, then deleted at the source.
    other = push_image(d, dst.url, "mirror/app", "v3")
    delete_digest(src, "project/app", c.digest)

    wait_until(lambda: digest_at(dst, "mirror/app", "v2") is None, "v2 not deleted")
    wait_until(lambda: len(deletion_items(api, rule)) >= 3, "deletions not logged")
    items = {tag: (outcome, reason) for tag, outcome, reason in deletion_items(api, rule)}
    assert items["v2"][0] == "deleted" and "by digest" in items["v2"][1]
    assert items["v1"][0] == "kept" and "v1-alias" in items["v1"][1], items
    assert items["v3"][0] == "kept" and other.digest in items["v3"][1], items
    # The trap: the target keeps both tags of the shared digest, and the changed v3.
    assert digest_at(dst, "mirror/app", "v1") == a.digest
    assert digest_at(dst, "mirror/app", "v1-alias") == a.digest
    assert digest_at(dst, "mirror/app", "v3") == other.digest
    tasks = [api.wait(t["task_id"]) for t in api.get(f"/rules/{rule}/tasks")]
    assert sum(t["deleted"] for t in tasks) == 1


def test_rescan_deletes_what_the_source_lost_but_not_what_fell_out_of_latest(api, worker, src, dst):
    s = src.session()
    pushed = {tag: push_image(s, src.url, "project/app", tag) for tag in ("1.0.0", "2.0.0")}
    push_image(s, src.url, "project/other", "1.0.0")
    si, di = api.instance("src", src), api.instance("dst", dst)
    rule = api.rule("newest", si, di, target_namespace="m", latest=1, deletion=True)
    first = api.wait(api.trigger(rule))
    assert (first["copied"], first["deleted"]) == (2, 0)
    pushed["3.0.0"] = push_image(s, src.url, "project/app", "3.0.0")
    second = api.wait(api.trigger(rule))
    assert (second["copied"], second["deleted"]) == (1, 0)
    # 2.0.0 fell out of the newest 1, but the source still has it: kept on the target.
    assert digest_at(dst, "m/app", "2.0.0") == pushed["2.0.0"].digest

    delete_digest(src, "project/app", pushed["3.0.0"].digest)
    delete_digest(src, "project/other", digest_at(src, "project/other", "1.0.0"))
    third = api.wait(api.trigger(rule))
    assert third["status"] == "Succeeded", third
    outcomes = sorted(
        (i["source_repository"], i["source_tag"], i["outcome"]) for i in api.items(third["task_id"])
    )
    assert outcomes == [
        ("project/app", "2.0.0", "up-to-date"),
        ("project/app", "3.0.0", "deleted"),
        ("project/other", "1.0.0", "deleted"),
    ]
    assert third["deleted"] == 2 and float(third["success_rate"]) == 1.0
    assert digest_at(dst, "m/app", "3.0.0") is None and digest_at(dst, "m/other", "1.0.0") is None
    assert digest_at(dst, "m/app", "1.0.0") is None  # never among the newest 1

    fourth = api.wait(api.trigger(rule))  # nothing deleted twice
    assert fourth["deleted"] == 0


def test_deletion_is_off_by_default(api, worker, src, dst):
    s = src.session()
    image = push_image(s, src.url, "project/app", "v1")
    rule = api.rule("keep", api.instance("src", src), api.instance("dst", dst))
    api.wait(api.trigger(rule))
    delete_digest(src, "project/app", image.digest)
    task = api.wait(api.trigger(rule))
    assert (task["total"], task["deleted"]) == (0, 0)
    assert digest_at(dst, "project/app", "v1") == image.digest


def test_harbor_delete_event_deletes_what_the_rule_copied(api, worker, src, dst):
    created = api.create_instance(src, "src")
    src_id, secret = created["id"], created["webhook_secret"]
    rule = api.rule("h", src_id, api.instance("dst", dst), target_namespace="mirror", deletion=True)
    image = push_image(src.session(), src.url, "project/app", "v1")
    api.wait(api.trigger(rule))
    assert digest_at(dst, "mirror/app", "v1") == image.digest
    delete_digest(src, "project/app", image.digest)
    body = {
        "specversion": "1.0",
        "id": "del-1",
        "type": "harbor.artifact.deleted",
        "time": "2026-11-29T10:00:00Z",
        "data": {
            "resources": [{"digest": image.digest, "tag": "v1"}],
            "repository": {"name": "app", "namespace": "project", "repo_full_name": "project/app"},
        },
    }
    r = post_webhook(api.client, src_id, body, secret, content_type="application/json")
    assert r.status_code == 202 and r.get_json()["accepted"] == 1
    wait_until(lambda: digest_at(dst, "mirror/app", "v1") is None, "v1 not deleted")
    wait_until(lambda: any(t["deleted"] for t in api.get(f"/rules/{rule}/tasks")), "no task")
