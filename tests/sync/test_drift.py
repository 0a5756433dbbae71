"""Drift reports: a finished sync leaves no drift; a hand edit on the target shows up as
`differs` and `extra`; nothing is written; `ferry drift` prints it; drift is announced."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.cli import ferry
from tests.support.hooks import HookServer
from tests.support.oci import get_manifest, push_image

pytestmark = pytest.mark.slow


def drift(api, rule_id: str, timeout: float = 60.0, **query) -> dict:
    """Start a drift report of the rule and return it once it has ended."""
    report_id = api.post(f"/rules/{rule_id}/drift", expect=202)["id"]
    deadline = time.monotonic() + timeout
    while True:
        report = api.get(f"/drift/{report_id}", query_string=query)
        if report["status"] in ("Succeeded", "Failed"):
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.1)


def names(listed: dict) -> set[str]:
    return {f"{e['target_repository']}:{e['target_tag']}" for e in listed["items"]}


def test_drift_is_empty_after_a_sync_and_shows_hand_edits(api, worker, src, dst, live):
    s = src.session()
    pushed = {t: push_image(s, src.url, "project/app", t) for t in ("v1", "v2", "v3")}
    push_image(s, src.url, "project/lib", "1.0")
    push_image(s, src.url, "other/app", "v1")  # another namespace: never compared
    rule = api.rule(
        "all", api.instance("src", src), api.instance("dst", dst), target_namespace="mirror"
    )
    before = drift(api, rule)
    assert before["status"] == "Succeeded", before
    assert before["counts"] == {"missing": 4, "differs": 0, "extra": 0, "in_sync": 0}
    assert names(before["missing"]) == {"mirror/app:v1", "mirror/app:v2", "mirror/app:v3",
                                        "mirror/lib:1.0"}  # fmt: skip

    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    after = drift(api, rule)
    # A finished sync whose drift is not empty is a bug.
    assert after["counts"] == {"missing": 0, "differs": 0, "extra": 0, "in_sync": 4}, after
    assert {e["source_digest"] for e in after["in_sync"]["items"]} >= {
        p.digest for p in pushed.values()
    }

    # Hand edits on the target: a tag replaced, a tag added under the mapped path.
    d = dst.session()
    edited = push_image(d, dst.url, "mirror/app", "v2")
    push_image(d, dst.url, "mirror/app", "hand-made")
    push_image(d, dst.url, "elsewhere/app", "v9")  # outside the mapped paths: not extra
    hook = HookServer().start()
    try:
        api.post("/notifications", {"name": "drift", "urls": [hook.apprise_url("drift")],
                                    "on_task": "never", "rule_id": rule})  # fmt: skip
        report = drift(api, rule, page_size=2)
        assert report["counts"] == {"missing": 0, "differs": 1, "extra": 1, "in_sync": 3}
        [differs] = report["differs"]["items"]
        assert differs["target_repository"] == "mirror/app" and differs["target_tag"] == "v2"
        assert differs["source_digest"] == pushed["v2"].digest
        assert differs["target_digest"] == edited.digest
        assert differs["override_changes"] is False  # override is off: a sync keeps it
        assert names(report["extra"]) == {"mirror/app:hand-made"}
        # Lists are paged: 3 in sync, 2 on this page.
        assert report["in_sync"]["total"] == 3 and len(report["in_sync"]["items"]) == 2
        # The report wrote nothing: the edit is still there.
        assert get_manifest(d, dst.url, "mirror/app", "v2").digest == edited.digest
        message = hook.wait_for(lambda path, body: path == "/drift")
        assert "1 differ" in message["message"] and "1 extra" in message["message"]

        env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": api.tenant.token}
        out = ferry("drift", "all", env=env)
        assert out.returncode == 0, out.stderr
        assert "0 missing, 1 differ, 1 extra, 3 in sync" in out.stdout
        assert f"mirror/app:v2  source {pushed['v2'].digest}  target {edited.digest}" in out.stdout
        assert ferry("drift", "all", "--exit-code", env=env).returncode == 4
        missing = ferry("drift", "no-such-rule", env=env)
        assert missing.returncode == 1 and missing.stderr.startswith("error: ")
        assert "Traceback" not in missing.stderr
    finally:
        hook.stop()


def test_drift_of_another_accounts_report_is_404(api, client, settings, src, dst):
    from tests.support.api import tenant_api

    rule = api.rule("r", api.instance("src", src), api.instance("dst", dst), target_namespace="m")
    report_id = api.post(f"/rules/{rule}/drift", expect=202)["id"]
    other = tenant_api(client, settings, "other")
    assert other.request("GET", f"/drift/{report_id}").status_code == 404
    assert other.request("POST", f"/rules/{rule}/drift").status_code == 404
    assert (
        api.request("GET", f"/drift/{report_id}", query_string={"kind": "nope"}).status_code == 422
    )
