"""Listing ends: looping pagination is detected, and each task caps the repositories and
tags it lists, failing with a reason that names the setting (issue 16, #5)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from common.errors import ListingLimit
from common.registry.listing import Lister
from common.registry.transport import Transport
from common.sync import runner
from tests.support.hostile import HostileRegistry
from tests.support.servers import HandlerServer, QuietHandler

OCI = "application/vnd.oci.image.manifest.v1+json"
CONFIG = {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:" + "c" * 64,
    "size": 2,
}
MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": OCI, "config": CONFIG, "layers": []}
).encode()


class LoopingCatalog(QuietHandler):
    """Page 1 links to page 2, which links back to page 1: an endless catalog."""

    def do_GET(self):
        if self.path == "/v2/":
            self.send_json(200, {})
            return
        page = 2 if "page=1" in self.path or "page" not in self.path else 1
        body = {"repositories": [f"project/r{page}"]}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Link", f'</v2/_catalog?page={page}>; rel="next"')
        data = json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_a_looping_catalog_is_detected(base_settings):
    with HandlerServer(LoopingCatalog) as server:
        transport = Transport(server.url, settings=base_settings)
        with pytest.raises(ListingLimit, match="loops"):
            list(Lister(transport).repositories(prefix="project/"))


@pytest.fixture
def three_repositories():
    repos = {f"project/r{i}": {"v1": (MANIFEST, OCI)} for i in range(3)}
    with HostileRegistry(repositories=repos) as server:
        yield server


@pytest.mark.parametrize(
    ("cap", "setting"),
    [
        ({"max_repositories_per_task": 2}, "FERRY_MAX_REPOSITORIES_PER_TASK"),
        ({"max_tags_per_task": 2}, "FERRY_MAX_TAGS_PER_TASK"),
    ],
)
def test_a_task_past_its_listing_cap_fails_naming_the_setting(
    api, settings, db, registry, three_repositories, cap, setting
):
    rule = api.rule(
        "capped", api.instance("src", three_repositories), api.instance("dst", registry)
    )
    task_id = api.trigger(rule)
    row = db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    result = runner.plan_task(row["id"], replace(settings, **cap))
    assert result.item_ids == [] and result.retry_in is None
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Failed", task
    assert task["message"].startswith("listing stopped:") and setting in task["message"]
    # Without the cap the same rule lists everything.
    again = api.trigger(rule)
    row = db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (again,)).fetchone()
    assert len(runner.plan_task(row["id"], settings).item_ids) == 3


def test_a_stored_pattern_re2_refuses_fails_the_task_naming_the_filter(
    api, settings, db, registry, three_repositories
):
    rule = api.rule(
        "legacy", api.instance("src", three_repositories), api.instance("dst", registry)
    )
    # Saved before patterns were matched by RE2: the API refuses it now, the plan must too.
    db.execute("UPDATE rules SET tag_filter = %s WHERE id = %s", (r"(a)\1", rule))
    task_id = api.trigger(rule)
    row = db.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    result = runner.plan_task(row["id"], settings)
    assert result.item_ids == [] and result.retry_in is None
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Failed", task
    assert task["message"].startswith("the rule's filters cannot be used"), task["message"]
    assert "tag_filter" in task["message"]
