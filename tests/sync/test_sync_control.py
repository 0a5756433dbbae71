"""Controlling sync tasks: stopping a running copy, deleting a rule, and the CLI."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.cli import ferry
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.oci import get_manifest, push_image

pytestmark = pytest.mark.slow


@pytest.fixture
def slow_source(src):
    """The source registry behind a proxy (that the test tells to hold blob downloads)."""
    with FaultProxy(src.host) as proxy:
        yield src, proxy


def test_stop_ends_a_running_copy_within_seconds(api, worker, slow_source, dst):
    src, proxy = slow_source
    push_image(
        src.session(),
        src.url,
        "project/big",
        "v1",
        layers=[os.urandom(256 * 1024) for _ in range(12)],
    )
    src_id = api.instance("src", src, url=proxy.url)
    rule = api.rule("slow", src_id, api.instance("dst", dst))
    proxy.add(Fault("hang", path=r"/blobs/sha256:", method="GET", times=100, delay=2.0))
    task_id = api.trigger(rule)
    deadline = time.monotonic() + 20
    while not any(i["outcome"] == "running" for i in api.items(task_id)):
        assert time.monotonic() < deadline, api.items(task_id)
        time.sleep(0.05)
    asked = time.monotonic()
    api.post(f"/tasks/{task_id}/stop", expect=202)
    task = api.wait(task_id, timeout=20)
    took = time.monotonic() - asked
    assert task["status"] == "Stopped"
    assert [i["outcome"] for i in api.items(task_id)] == ["stopped"]
    assert took < 12, f"stopping took {took:.1f}s"
    assert get_manifest(dst.session(), dst.url, "project/big", "v1") is None


def test_deleting_a_rule_stops_its_tasks_and_keeps_the_log(api, settings, src, dst):
    from common.db import transaction
    from common.sync import runner

    for i in range(3):
        push_image(src.session(), src.url, f"project/r{i}", "v1")
    rule = api.rule("doomed", api.instance("src", src), api.instance("dst", dst))
    task_id = api.trigger(rule)
    with transaction(settings) as conn:
        row = conn.execute("SELECT id FROM sync_tasks WHERE task_id = %s", (task_id,)).fetchone()
    runner.plan_task(row["id"], settings)  # items exist, no worker runs them
    api.delete(f"/rules/{rule}")
    task = api.get(f"/tasks/{task_id}")
    assert task["status"] == "Stopped" and task["rule_id"] is None
    assert {i["outcome"] for i in api.items(task_id)} == {"stopped"}


def test_cli_trigger_wait_and_tasks(api, live, worker, src, dst):
    push_image(src.session(), src.url, "project/app", "v1")
    push_image(src.session(), src.url, "project/lib", "v1")
    api.rule("cli-rule", api.instance("src", src), api.instance("dst", dst))
    env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": api.tenant.token}
    run = ferry("trigger", "cli-rule", "--wait", env=env)
    assert run.returncode == 0, run.stderr
    assert "Succeeded" in run.stdout and "2 copied" in run.stdout
    assert "2/2 items" in run.stderr  # the progress display
    log = ferry("tasks", "cli-rule", env=env)
    assert log.returncode == 0, log.stderr
    header, row = log.stdout.splitlines()[:2]
    assert header.split()[:3] == ["TASK", "TRIGGER", "STATUS"]
    assert row.split()[1:3] == ["manual", "Succeeded"]
    bad = ferry("trigger", "no-such-rule", env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: no rule named 'no-such-rule'"
    anon = ferry("tasks", "cli-rule", env={**env, "FERRY_TOKEN": ""})
    assert anon.returncode == 1 and anon.stderr.startswith("error: FERRY_TOKEN:")


@pytest.fixture
def harbor_like(dst):
    """A real registry behind a front that answers Harbor's project API (Harbor cannot run
    here; only POST /api/v2.0/projects is answered by the front, the rest is the registry)."""
    with FaultProxy(dst.host) as front:
        yield dst, front


@pytest.mark.parametrize(("answer", "outcome"), [(201, "copied"), (403, "failed")])
def test_harbor_target_project_is_created_first(api, worker, src, harbor_like, answer, outcome):
    registry, front = harbor_like
    front.add(Fault("status", path=r"^/api/v2\.0/projects", method="POST", status=answer, times=1))
    front.add(Fault("status", path=r"^/api/v2\.0/projects", method="POST", status=409, times=100))
    for repo in ("project/a", "project/b"):
        push_image(src.session(), src.url, repo, "v1")
    dst_id = api.instance("harbor", registry, url=front.url, kind="harbor")
    rule = api.rule("to-harbor", api.instance("src", src), dst_id, target_namespace="team")
    task = api.wait(api.trigger(rule))
    outcomes = [i["outcome"] for i in api.items(task["task_id"])]
    assert front.count("POST", r"^/api/v2\.0/projects") >= 1
    if answer == 201:
        assert outcomes == ["copied", "copied"]
        assert get_manifest(registry.session(), registry.url, "team/a", "v1") is not None
    else:
        # The first copy is refused the project; a later one may see 409 (it exists).
        assert "failed" in outcomes
        failed = api.items(task["task_id"], status="failed")[0]
        assert "cannot create Harbor project 'team'" in failed["reason"]
