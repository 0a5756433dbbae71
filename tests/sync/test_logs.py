"""FERRY_LOG_FORMAT=json: one JSON object per line with the ids of the work, from the API
and the worker, and no secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import replace

import pytest

from common.observe.logs import JsonFormatter, bound, clear, redact
from tests.support.api import post_webhook
from tests.support.oci import push_image
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.slow

APPRISE = (
    "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
    "json://hook-user:hook-pass@notify.example.com/ferry",
    "mailtos://ops:mail-pass@smtp.example.com",
    "tgram://123456789:AAHxyzBotToken/987654",
)


def _lines(text: str) -> list[dict]:
    """Every line parsed as one JSON object (a line that is not one fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def json_worker(settings):
    proc = WorkerProcess(replace(settings, log_format="json", log_level="DEBUG")).start()
    yield proc
    proc.stop()


@pytest.fixture
def api_log():
    """The root logger's records as JSON lines, as the API process writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_json_logs_carry_ids_and_no_secret(api, live, json_worker, src, dst, api_log):
    created = api.create_instance(src, "src")
    dst_id = api.instance("dst", dst)
    image = push_image(src.session(), src.url, "project/app", "v1")
    rule = api.rule("logged", created["id"], dst_id)
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded"
    client = live.client()
    body = {"events": [{"id": "e1", "action": "push", "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.digest,
        "repository": "project/app", "tag": "v1"}}]}  # fmt: skip
    assert post_webhook(client, created["id"], body, created["webhook_secret"]).status_code == 202
    assert post_webhook(client, created["id"], body, "fwh_wrong").status_code == 401
    for url in APPRISE:  # whatever code logs a notification address, it is masked
        logging.getLogger("ferry.test").warning("sending to %s failed", url)

    secrets = [
        "alice-pw",
        "bob-pw",
        api.tenant.token,
        created["webhook_secret"],
        "fwh_wrong",
        *APPRISE,
        "hook-pass",
        "mail-pass",
        "AAHxyzBotToken",
    ]
    worker_text = json_worker.log()
    api_text = api_log.getvalue()
    for secret in secrets:
        assert secret not in worker_text, secret
        assert secret not in api_text, secret

    worker_lines = [line for line in worker_text.splitlines() if line.strip()]
    records = _lines("\n".join(line for line in worker_lines if line.startswith("{")))
    assert len(records) >= len(worker_lines) - 40  # only Celery's start-up banner is not JSON
    copies = [r for r in records if "item_id" in r and r.get("task_id") == task["task_id"]]
    assert copies, records[-20:]
    assert {r["rule_id"] for r in copies} == {rule}
    assert {r["tenant_id"] for r in copies} == {str(api.tenant.id)}
    plans = [r for r in records if r.get("task_id") == task["task_id"] and "item_id" not in r]
    assert plans, "the plan's records carry the task id"
    api_records = _lines(api_text)
    assert any(r.get("tenant_id") == str(api.tenant.id) for r in api_records), api_records[-5:]
    masked = [r["message"] for r in api_records if r["logger"] == "ferry.test"]
    assert masked == [f"sending to {u.split('://')[0]}://*** failed" for u in APPRISE]


def test_redact_and_bound_ids():
    clear()  # the test client ran requests on this thread before
    assert redact("login https://robot:pa55@reg.example.com/v2/") == (
        "login https://***@reg.example.com/v2/"
    )
    assert redact('body {"password": "hunter2", "name": "x"}') == (
        'body {"password": "***", "name": "x"}'
    )
    assert redact("Authorization: Bearer fry_abc") == "Authorization: *** ***"
    assert redact("GET /v2/x?access_token=abc&n=1") == "GET /v2/x?access_token=***&n=1"
    record = logging.LogRecord("ferry", logging.INFO, __file__, 1, "copy of %s", ("x",), None)
    with bound(tenant_id="t", rule_id="r", task_id="k", item_id=7):
        inside = json.loads(JsonFormatter().format(record))
    outside = json.loads(JsonFormatter().format(record))
    assert (inside["tenant_id"], inside["rule_id"], inside["task_id"], inside["item_id"]) == (
        "t", "r", "k", "7"
    )  # fmt: skip
    assert "tenant_id" not in outside and outside["message"] == "copy of x"
    assert os.environ.get("FERRY_LOG_FORMAT") in (None, "", "text")
