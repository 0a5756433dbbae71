"""Notifications: apprise JSON webhooks to a real local endpoint; addresses never shown;
a failing address is retried, recorded, and never fails the task."""

from __future__ import annotations

import time

import pytest

from tests.support.api import assert_error, leaks, raw_rows_text, tenant_api
from tests.support.hooks import HookServer
from tests.support.oci import push_image

pytestmark = pytest.mark.slow

SECRET_PATH = "hooks/T0KEN-s3cret-Path"


def deliveries_when(api, note_id: str, done, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = api.get(f"/notifications/{note_id}/deliveries")
        if done(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def test_task_notifications_reach_a_json_webhook_and_failures_never_fail_the_task(
    api, worker, settings, src, dst
):
    push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst), target_namespace="m")
    other = api.rule("other", api.instance("src2", src), api.instance("dst2", dst),
                     target_namespace="n")  # fmt: skip
    good, flaky, dead = HookServer().start(), HookServer(fail=1).start(), HookServer(fail=-1)
    dead.start()
    try:
        tenant_wide = api.post("/notifications", {
            "name": "all", "urls": [good.apprise_url(SECRET_PATH)],
            "on_task": "always"})  # fmt: skip
        flaky_note = api.post("/notifications", {
            "name": "flaky", "urls": [flaky.apprise_url()], "on_task": "always",
            "rule_id": rule})  # fmt: skip
        dead_note = api.post("/notifications", {
            "name": "dead", "urls": [dead.apprise_url(SECRET_PATH)], "on_task": "always",
            "rule_id": rule})  # fmt: skip
        api.post("/notifications", {"name": "failed-only", "urls": [good.apprise_url("f")],
                                    "on_task": "failed_only"})  # fmt: skip
        api.post("/notifications", {"name": "other-rule", "urls": [good.apprise_url("o")],
                                    "on_task": "always", "rule_id": other})  # fmt: skip

        task = api.wait(api.trigger(rule))
        assert task["status"] == "Succeeded", task  # whatever the notifications do
        body = good.wait_for(lambda path, b: path == "/" + SECRET_PATH)
        assert body["title"] == f"Ferry: r task {task['task_id']} Succeeded"
        assert "1 copied" in body["message"] and body["type"] == "info"
        # Retried once after a 500, then sent; both attempts recorded.
        flaky.wait_for(lambda path, b: True)
        rows = deliveries_when(api, flaky_note["id"], lambda r: r and r[0]["status"] == "sent")
        assert (rows[0]["event"], rows[0]["attempts"]) == ("task_finished", 2)
        # Always refused: given up after 4 attempts, the reason kept without the address.
        rows = deliveries_when(api, dead_note["id"], lambda r: r and r[0]["status"] == "failed")
        assert rows[0]["attempts"] == 4 and rows[0]["last_error"]
        assert SECRET_PATH not in rows[0]["last_error"] and "T0KEN" not in rows[0]["last_error"]
        assert len(dead.received) == 4
        # Not announced: a Succeeded task to failed_only, another rule's notification.
        assert {p for p, _ in good.received} == {"/" + SECRET_PATH}
        assert len(api.get(f"/notifications/{tenant_wide['id']}/deliveries")) == 1
        assert api.get("/tasks/" + task["task_id"])["status"] == "Succeeded"
    finally:
        for server in (good, flaky, dead):
            server.stop()
    # The addresses are secrets: encrypted at rest, never returned.
    assert not leaks(SECRET_PATH, raw_rows_text(settings))
    listed = api.get("/notifications")
    assert SECRET_PATH not in str(listed) and all("urls" not in n for n in listed)
    assert {n["name"]: n["schemes"] for n in listed}["all"] == ["json"]


def test_notification_api_validates_and_scopes(api, client, settings, src, dst):
    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst), target_namespace="m")
    bad = api.request("POST", "/notifications", json={"name": "x", "urls": ["nope://s3cret/b"]})
    body = assert_error(bad, 422, "urls")
    assert "address #1 (nope://...)" in body["message"] and "s3cret" not in str(body)
    assert_error(api.request("POST", "/notifications", json={"name": "x", "urls": []}), 422, "urls")
    metadata = {"name": "x", "urls": ["json://169.254.169.254/latest"]}
    body = assert_error(api.request("POST", "/notifications", json=metadata), 422, "urls")
    assert "network policy" in body["message"]
    hook = "json://127.0.0.1:9/x"
    bad = api.request("POST", "/notifications", json={"name": "x", "urls": [hook], "on_task": "x"})
    assert_error(bad, 422, "on_task")
    made = api.post("/notifications", {"name": "x", "urls": [hook], "rule_id": rule})
    assert made["on_task"] == "not_succeeded" and made["on_health"] and made["on_drift"]
    assert (
        api.request("POST", "/notifications", json={"name": "x", "urls": [hook]}).status_code == 409
    )
    changed = api.patch(f"/notifications/{made['id']}", {"on_task": "failed_only",
                                                           "urls": ["slack://a/b/c"]})  # fmt: skip
    assert changed["on_task"] == "failed_only" and changed["schemes"] == ["slack"]
    assert [n["id"] for n in api.get("/notifications", query_string={"rule_id": rule})] == [
        made["id"]
    ]
    other = tenant_api(client, settings, "other")
    assert other.request("GET", f"/notifications/{made['id']}").status_code == 404
    theirs = other.request("POST", "/notifications", json={"name": "y", "urls": [hook],
                                                             "rule_id": rule})  # fmt: skip
    assert_error(theirs, 404)  # another account's rule
    api.delete(f"/notifications/{made['id']}")
    assert api.request("GET", f"/notifications/{made['id']}").status_code == 404
