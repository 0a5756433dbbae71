"""The `ferry` CLI against a live API and a real worker: instances, rules, preview (and why it
selects nothing), tasks, items, stop and retry; errors are one line."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.cli import ferry
from tests.support.oci import push_image

pytestmark = pytest.mark.slow


def _ok(out) -> str:
    assert out.returncode == 0, out.stderr
    return out.stdout


def _one_line_error(out, start: str) -> None:
    assert out.returncode == 1, out.stdout
    assert out.stderr.startswith(start), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_instances_rules_and_preview_explaining_an_empty_selection(api, live, src, dst):
    push_image(src.session(), src.url, "project/app", "v1.0")
    env = {
        **os.environ,
        "FERRY_URL": live.url,
        "FERRY_TOKEN": api.tenant.token,
        "SRC_PW": "alice-pw",
        "DST_PW": "bob-pw",
    }
    made = json.loads(
        _ok(
            ferry(
                "instances",
                "add",
                "src",
                "--url",
                src.url,
                "--username",
                "alice",
                "--password-env",
                "SRC_PW",
                "--json",
                env=env,
            )
        )
    )
    assert made["webhook_secret"] and "alice-pw" not in json.dumps(made)
    text = _ok(
        ferry(
            "instances",
            "add",
            "dst",
            "--url",
            dst.url,
            "--username",
            "bob",
            "--password-env",
            "DST_PW",
            env=env,
        )
    )
    assert "webhook secret: fwh_" in text and "bob-pw" not in text
    rows = [line.split() for line in _ok(ferry("instances", "list", env=env)).splitlines()]
    assert rows[0][:3] == ["ID", "NAME", "URL"] and [r[1] for r in rows[1:]] == ["dst", "src"]

    _ok(
        ferry(
            "rules",
            "create",
            "web",
            "--source",
            "src",
            "--namespace",
            "project",
            "--target",
            "dst",
            "--tag-filter",
            "^v",
            env=env,
        )
    )
    empty = ferry("rules", "preview", "web", env=env)
    assert _ok(empty).splitlines()[0].split() == ["SOURCE", "KIND", "TARGET", "TARGET-HAS-IT"]
    assert empty.stderr.strip() == (
        "nothing selected: source.tag_filter '^v' matched none of the 1 tags listed, "
        "e.g. 'v1.0'; it matches only part of 'v1.0', but filters match the whole name "
        "(like re.fullmatch): write e.g. 'v.*'"
    )
    explained = json.loads(_ok(ferry("rules", "preview", "web", "--json", env=env)))
    assert explained["items"] == []
    assert explained["explanation"]["filter"] == "source.tag_filter"
    assert explained["explanation"]["example"] == "v1.0"

    _ok(ferry("rules", "edit", "web", "--tag-filter", "v.*", env=env))
    found = _ok(ferry("rules", "preview", "web", env=env)).splitlines()
    assert [line.split() for line in found[1:]] == [
        ["project/app:v1.0", "image", "project/app:v1.0", "no"]
    ]

    assert _ok(ferry("rules", "disable", "web", env=env)).strip() == "rule web disabled"
    shown = json.loads(_ok(ferry("rules", "show", "web", "--json", env=env)))
    assert shown["enabled"] is False and shown["source"]["tag_filter"] == "v.*"
    listed = _ok(ferry("rules", "list", env=env)).splitlines()
    assert listed[1].split()[1:5] == ["web", "src:project", "tag_filter=v.*", "dst:project"]

    bad = ferry(
        "rules",
        "create",
        "bad",
        "--source",
        "src",
        "--namespace",
        "project",
        "--target",
        "dst",
        "--tag-filter",
        "(",
        env=env,
    )
    _one_line_error(bad, "error: 422 The rule is invalid: source.tag_filter: invalid regular")
    _one_line_error(ferry("rules", "show", "nope", env=env), "error: no rule named 'nope'")
    _one_line_error(ferry("instances", "rm", "src", env=env), "error: 409")
    assert _ok(ferry("rules", "rm", "web", env=env)).strip() == "deleted rule web"
    assert _ok(ferry("instances", "rm", "dst", env=env)).strip() == "deleted instance dst"
    help_text = _ok(ferry("rules", "create", "--help", env=env))
    assert "WHOLE name" in help_text


def test_trigger_tasks_items_stop_and_retry(api, live, worker, src, dst):
    push_image(src.session(), src.url, "project/app", "v1")
    push_image(src.session(), src.url, "project/lib", "v1")
    rule = api.rule("cli-all", api.instance("src", src), api.instance("dst", dst))
    env = {**os.environ, "FERRY_URL": live.url, "FERRY_TOKEN": api.tenant.token}
    done = json.loads(_ok(ferry("rules", "trigger", "cli-all", "--wait", "--json", env=env)))
    assert done["status"] == "Succeeded" and done["copied"] == 2
    task_id = done["task_id"]
    tasks = json.loads(_ok(ferry("tasks", "--json", env=env)))
    assert [(t["task_id"], t["rule_id"]) for t in tasks] == [(task_id, rule)]
    items = _ok(ferry("items", task_id, env=env)).splitlines()
    assert items[0].split()[:4] == ["SOURCE", "TARGET", "KIND", "OUTCOME"]
    assert sorted(line.split()[0] for line in items[1:]) == ["project/app:v1", "project/lib:v1"]
    assert {line.split()[3] for line in items[1:]} == {"copied"}
    failed = json.loads(_ok(ferry("items", task_id, "--status", "failed", "--json", env=env)))
    assert failed == []
    _one_line_error(ferry("retry", task_id, env=env), "error: 409")
    _one_line_error(ferry("stop", task_id, env=env), "error: 409")
    _one_line_error(ferry("items", "no-such-task", env=env), "error: 404")
