"""GET /metrics after real syncs (push and manual) through a real worker: the Prometheus
text, parsed by prometheus-client's parser, agrees with the task log."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from common.domain.vocab import FINAL_TASK_STATUSES
from tests.support.api import post_webhook
from tests.support.oci import push_image

pytestmark = pytest.mark.slow


def scrape(client, token: str | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics as {(name, sorted labels): value}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _envelope(digest: str, event_id: str) -> dict:
    target = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "repository": "project/app",
        "tag": "v1",
    }
    return {"events": [{"id": event_id, "action": "push", "target": target}]}


def _settled(api, rule: str, expected: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        log = api.get(f"/rules/{rule}/tasks")
        if len(log) >= expected and all(t["status"] in FINAL_TASK_STATUSES for t in log):
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.1)


def test_metrics_agree_with_the_task_log(api, live, worker, src, dst, db):
    created = api.create_instance(src, "src")
    src_id, secret = created["id"], created["webhook_secret"]
    dst_id = api.instance("dst", dst)
    rule = api.rule("metered", src_id, dst_id, target_namespace="mirror")
    client = live.client()
    before = scrape(client)

    image = push_image(src.session(), src.url, "project/app", "v1", layers=[b"a" * 4096])
    push_image(src.session(), src.url, "project/lib", "v1", layers=[b"b" * 8192])
    manual = api.wait(api.trigger(rule))
    assert manual["status"] == "Succeeded" and manual["copied"] == 2
    # A push of a tag already copied: a push task whose item ends up-to-date.
    body = _envelope(image.digest, f"evt-{uuid.uuid4()}")
    assert post_webhook(client, src_id, body, secret).status_code == 202
    assert post_webhook(client, src_id, body, secret).status_code == 202  # a replay
    assert post_webhook(client, src_id, body, "wrong-secret").status_code == 401
    log = _settled(api, rule, expected=2)
    after = scrape(client)

    by_trigger = Counter((t["trigger"], t["status"]) for t in log)
    assert by_trigger == {("manual", "Succeeded"): 1, ("push", "Succeeded"): 1}
    for (trigger, status), n in by_trigger.items():
        assert value(after, "ferry_tasks", trigger=trigger, status=status) == n
    items = [i for t in log for i in api.items(t["task_id"])]
    outcomes = Counter(i["outcome"] for i in items)
    assert outcomes == {"copied": 2, "up-to-date": 1}
    for outcome, n in outcomes.items():
        assert value(after, "ferry_items", outcome=outcome) == n
    # Counted by the worker's processes, added up across them.
    assert delta(before, after, "ferry_copy_items_total", outcome="copied") == 2
    assert delta(before, after, "ferry_copy_items_total", outcome="up-to-date") == 1
    assert delta(before, after, "ferry_copy_items_total", outcome="failed") == 0
    copied_bytes = sum(t["bytes_transferred"] for t in log)
    assert copied_bytes > 12288
    assert delta(before, after, "ferry_bytes_copied_total") == copied_bytes
    durations = delta(before, after, "ferry_copy_duration_seconds_count", outcome="copied")
    assert durations == 2
    assert delta(before, after, "ferry_push_to_replica_seconds_count") == 1
    # Counted by the API process.
    assert delta(before, after, "ferry_webhook_events_total", result="received") == 1
    assert delta(before, after, "ferry_webhook_events_total", result="duplicate") == 1
    assert delta(before, after, "ferry_webhook_events_total", result="refused") == 1
    # Read from PostgreSQL and Redis at scrape time.
    assert value(after, "ferry_rule_health", rule=rule, state="ok", enabled="true") == 1
    assert value(after, "ferry_queue_depth", queue="copy") == 0
    assert ("ferry_queue_depth", (("queue", "push"),)) in after
    slots = ("ferry_target_copy_slots_in_use", (("instance", dst_id),))
    assert after[slots] == 0


def test_metrics_token_guards_the_route(settings):
    guarded = create_app(replace(settings, metrics_token="metrics-s3cret")).test_client()
    refused = guarded.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    samples = scrape(guarded, token="metrics-s3cret")
    assert ("ferry_queue_depth", (("queue", "plan"),)) in samples
