"""/api/v1/rules: validation, PUT/PATCH, enable/disable, delete, listing, schedules."""

from __future__ import annotations

import json

import pytest

from tests.support.api import assert_error, rule_body

RULE_KEYS = {
    "id",
    "name",
    "description",
    "source",
    "resource_types",
    "target",
    "override",
    "include_referrers",  # issue 14
    "deletion",  # issue 14
    "enabled",
    "schedule",
    "schedule_timezone",
    "next_run_at",
    "health",  # issue 11: ok, blocked by the target account, or why it is suspended
    "number",  # issue 13: per-account, read-only (the TCR-compatible API's policy ID)
    "health_detail",  # issue 15: state (ok, degraded, broken), reason, since, checked_at
    "created_at",
    "updated_at",
}


SOURCE_KEYS = {
    "instance_id",
    "namespace",
    "repository_filter",
    "tag_filter",
    "repository_exclude",
    "tag_exclude",
    "filter_syntax",
    "semver",  # issue 14
    "latest",  # issue 14
}


TARGET_KEYS = {
    "instance_id",
    "namespace",
    "cross_tenant",
    "account_id",
    "username",
    "has_credentials",
}


def test_create_returns_the_rule_with_defaults(world):
    r = world.post(world.rule())
    assert r.status_code == 201, r.get_json()
    rule = r.get_json()
    assert set(rule) == RULE_KEYS
    assert set(rule["source"]) == SOURCE_KEYS and set(rule["target"]) == TARGET_KEYS
    assert rule["number"] == 1
    assert rule["name"] == "sync-prod" and rule["description"] == ""
    assert rule["source"] == {
        "instance_id": world.src["id"],
        "namespace": "project",
        "repository_filter": "",
        "tag_filter": "",
        "repository_exclude": "",
        "tag_exclude": "",
        "filter_syntax": "regex",
        "semver": "",
        "latest": None,
    }
    assert (rule["include_referrers"], rule["deletion"]) == (True, False)
    assert rule["resource_types"] == ["image", "chart"]
    assert rule["target"] == {
        "instance_id": world.dst["id"],
        "namespace": "mirror",
        "cross_tenant": False,
        "account_id": None,
        "username": None,
        "has_credentials": False,
    }
    assert (rule["override"], rule["enabled"], rule["schedule"], rule["next_run_at"]) == (
        False,
        True,
        None,
        None,
    )
    got = world.alice.request("GET", f"/rules/{rule['id']}")
    assert got.status_code == 200 and got.get_json() == rule


@pytest.mark.parametrize(
    "extra",
    [
        {
            "source": {
                "repository_filter": "sub1/.*",
                "tag_filter": "v[0-9]+\\..*",
                "repository_exclude": "tmp/.*",
                "tag_exclude": ".*-rc",
            }
        },
        {
            "source": {
                "filter_syntax": "glob",
                "repository_filter": "**/app-*",
                "tag_filter": "{v1,v2}.*",
                "tag_exclude": "*-debug",
            }
        },
        {"resource_types": ["chart"]},
        {"resource_types": ["image"]},
        {"schedule": "*/15 * * * *"},
        {"override": True, "enabled": False, "description": "Nightly copy"},
        {"target_namespace": "team-a"},
        {"name": "a" * 64},
        {"name": "0.rule_x-y"},
    ],
)
def test_valid_rules_are_accepted(world, extra):
    r = world.post(
        world.rule(**extra)
        if "target_namespace" in extra
        else world.rule(**extra, target_namespace="mirror")
    )
    assert r.status_code == 201, r.get_json()
    rule = r.get_json()
    if "schedule" in extra:
        assert rule["schedule"] == "*/15 * * * *" and rule["next_run_at"] is not None


def test_same_instance_is_fine_with_another_namespace(world):
    r = world.post(
        rule_body(world.src["id"], world.src["id"], "mirror-ns", target_namespace="backup")
    )
    assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"name": "Sync"}, "name", "lowercase"),
        ({"name": "-sync"}, "name", "starting with a letter or digit"),
        ({"name": "a" * 65}, "name", ""),
        ({"name": "sp ace"}, "name", ""),
        ({"name": ""}, "name", ""),
        ({"description": "d" * 1025}, "description", ""),
        ({"source": {"namespace": ""}}, "source.namespace", ""),
        ({"source": {"namespace": "a/b"}}, "source.namespace", "one path level"),
        ({"source": {"namespace": "Project"}}, "source.namespace", "lowercase"),
        ({"source": {"namespace": None}}, "source.namespace", ""),
        (
            {"source": {"repository_filter": "sub1/(.*"}},
            "source.repository_filter",
            "at position 5",
        ),
        ({"source": {"tag_filter": "v[0-9"}}, "source.tag_filter", "at position 1"),
        ({"source": {"repository_exclude": "*x"}}, "source.repository_exclude", "at position 0"),
        ({"source": {"tag_exclude": "a)"}}, "source.tag_exclude", "at position 1"),
        (
            {"source": {"filter_syntax": "glob", "tag_filter": "{v1,v2"}},
            "source.tag_filter",
            "unclosed '{' at position 0",
        ),
        (
            {"source": {"filter_syntax": "glob", "repository_filter": "a/[bc"}},
            "source.repository_filter",
            "unclosed '[' at position 2",
        ),
        ({"source": {"filter_syntax": "wildcard"}}, "source.filter_syntax", ""),
        ({"source": {"instance_id": "not-a-uuid"}}, "source.instance_id", ""),
        ({"resource_types": []}, "resource_types", ""),
        ({"resource_types": ["helm"]}, "resource_types.0", ""),
        ({"resource_types": "image"}, "resource_types", ""),
        ({"target": {"namespace": "a/b"}}, "target.namespace", ""),
        ({"target": {"namespace": "Team"}}, "target.namespace", ""),
        ({"schedule": "@daily"}, "schedule", "5 fields"),
        ({"schedule": "61 * * * *"}, "schedule", "invalid cron"),
        ({"schedule": "0 0 30 2 *"}, "schedule", "never fires"),
        ({"schedule": ""}, "schedule", "5 fields"),
        (
            {"schedule": "0 3 * * *", "schedule_timezone": "Mars/Olympus"},
            "schedule_timezone",
            "unknown time zone",
        ),
        ({"override": "false"}, "override", ""),
        ({"source": {"semver": ">=1.2 <"}}, "source.semver", "invalid version constraint"),
        ({"source": {"semver": "latest"}}, "source.semver", "'>=1.2 <2'"),
        ({"source": {"latest": 0}}, "source.latest", ""),
        ({"source": {"latest": "3"}}, "source.latest", ""),
        ({"source": {"latest": 100_001}}, "source.latest", ""),
        ({"include_referrers": "yes"}, "include_referrers", ""),
        ({"deletion": 1}, "deletion", ""),
        ({"enabled": 0}, "enabled", ""),
        ({"surprise": True}, "surprise", "Unknown field"),
        ({"target": {"username": "robot"}}, "target.username", "only when cross_tenant"),
        ({"target": {"password": "pw"}}, "target.password", "only when cross_tenant"),
        (
            {"target": {"account_id": "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"}},
            "target.account_id",
            "only when cross_tenant",
        ),
    ],
)
def test_invalid_rules_are_422_naming_the_field(world, extra, field, fragment):
    body = assert_error(world.post(world.rule(**extra)), 422, field)
    assert fragment in " ".join(body["errors"][field])


def test_every_field_error_is_reported_at_once(world):
    body = assert_error(
        world.post(
            world.rule(name="Bad", source={"tag_filter": "(", "namespace": "A"}, schedule="x")
        ),
        422,
        "name",
        "source.tag_filter",
        "source.namespace",
        "schedule",
    )
    assert "source.tag_filter" in body["message"]


@pytest.mark.parametrize("missing", ["name", "source", "target"])
def test_required_fields(world, missing):
    body = world.rule()
    del body[missing]
    assert_error(world.post(body), 422, missing)


def test_required_nested_fields(world):
    body = world.rule()
    del body["source"]["namespace"], body["target"]["instance_id"]
    assert_error(world.post(body), 422, "source.namespace", "target.instance_id")


@pytest.mark.parametrize("target_namespace", ["", "project"])
def test_source_and_target_may_not_be_the_same_repository_set(world, target_namespace):
    body = rule_body(world.src["id"], world.src["id"], target_namespace=target_namespace)
    assert (
        "same repository set" in assert_error(world.post(body), 422, "target.namespace")["message"]
    )
    # Two instances of one registry URL are the same registry too.
    body = rule_body(world.src["id"], world.dst["id"], target_namespace=target_namespace)
    assert_error(world.post(body), 422, "target.namespace")


def test_names_are_unique_per_source_instance(world):
    assert world.post(world.rule("dup")).status_code == 201
    assert "already exists" in assert_error(world.post(world.rule("dup")), 409)["message"]
    other_source = rule_body(world.dst["id"], world.src["id"], "dup", target_namespace="m")
    assert world.post(other_source).status_code == 201


def test_unknown_or_foreign_instances_are_refused(world):
    foreign = world.bob.create_instance(world.bob_registry, "bob-src")
    body = rule_body(foreign["id"], world.dst["id"])
    assert_error(world.post(body), 422, "source.instance_id")
    # Bob's instance cannot be a same-tenant target of Alice's.
    body = rule_body(world.src["id"], world.bob_dst["id"])
    assert_error(world.post(body), 422, "target.instance_id")
    body = rule_body(world.src["id"], "00000000-0000-4000-8000-000000000000")
    assert_error(world.post(body), 422, "target.instance_id")


def test_put_replaces_and_a_get_body_can_be_sent_back(world):
    rule = world.post(world.rule(schedule="0 3 * * *", description="x")).get_json()
    path = f"/rules/{rule['id']}"
    edited = {**rule, "description": "edited", "override": True}
    r = world.alice.request("PUT", path, json=edited)
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert got["description"] == "edited" and got["override"] is True
    assert got["next_run_at"] == rule["next_run_at"]  # schedule unchanged
    # PUT is a replacement: omitted optional fields return to their defaults.
    r = world.alice.request("PUT", path, json=world.rule())
    assert r.get_json()["description"] == "" and r.get_json()["schedule"] is None
    assert_error(
        world.alice.request("PUT", path, json=world.rule(name="Bad")),
        422,
        "name",
    )


def test_patch_merges_then_validates_the_whole_rule(world):
    rule = world.post(world.rule()).get_json()
    path = f"/rules/{rule['id']}"
    r = world.alice.request("PATCH", path, json={"source": {"tag_filter": "v.*"}, "enabled": False})
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert got["source"]["tag_filter"] == "v.*" and got["enabled"] is False
    assert got["source"]["namespace"] == "project" and got["target"] == rule["target"]
    assert_error(
        world.alice.request("PATCH", path, json={"source": {"tag_filter": "v("}}),
        422,
        "source.tag_filter",
    )
    # Merged validation: "a}" is a valid regex, but switching to glob makes it invalid.
    r = world.alice.request("PATCH", path, json={"source": {"repository_filter": "a}"}})
    assert r.status_code == 200, r.get_json()
    r = world.alice.request("PATCH", path, json={"source": {"filter_syntax": "glob"}})
    assert "unmatched '}' at position 1" in " ".join(
        assert_error(r, 422, "source.repository_filter")["errors"]["source.repository_filter"]
    )
    # ... and a target namespace equal to the source's makes the same repository set.
    assert_error(
        world.alice.request("PATCH", path, json={"target": {"namespace": "project"}}),
        422,
        "target.namespace",
    )
    r = world.alice.request("PATCH", path, json={})
    assert r.status_code == 200


def test_enable_and_disable(world):
    rule = world.post(world.rule(schedule="*/5 * * * *")).get_json()
    path = f"/rules/{rule['id']}"
    r = world.alice.request("POST", f"{path}/disable")
    assert r.status_code == 200 and r.get_json()["enabled"] is False
    r = world.alice.request("POST", f"{path}/enable")
    assert r.status_code == 200 and r.get_json()["enabled"] is True
    assert r.get_json()["next_run_at"] is not None


def test_delete(world):
    rule = world.post(world.rule()).get_json()
    path = f"/rules/{rule['id']}"
    r = world.alice.request("DELETE", path)
    assert r.status_code == 204 and r.data == b""
    assert_error(world.alice.request("GET", path), 404)
    assert_error(world.alice.request("DELETE", path), 404)


def test_list_filters_by_source_and_paginates(world):
    for name in ("c", "a", "b"):
        assert world.post(world.rule(name)).status_code == 201
    other = rule_body(world.dst["id"], world.src["id"], "z", target_namespace="m")
    assert world.post(other).status_code == 201
    r = world.alice.request("GET", "/rules?page_size=2")
    assert [x["name"] for x in r.get_json()] == ["a", "b"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 4
    r = world.alice.request(
        "GET", f"/rules?source_instance_id={world.src['id']}&page=2&page_size=2"
    )
    assert [x["name"] for x in r.get_json()] == ["c"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 3
    assert_error(
        world.alice.request("GET", "/rules?source_instance_id=nope"),
        422,
        "source_instance_id",
    )


def test_schedule_in_the_rule_time_zone(world):
    rule = world.post(world.rule(schedule="0 9 * * *", schedule_timezone="Asia/Tokyo")).get_json()
    assert rule["schedule_timezone"] == "Asia/Tokyo"
    # 09:00 in Tokyo is 00:00 UTC.
    assert rule["next_run_at"].endswith("T00:00:00+00:00")
    plain = world.post(world.rule(name="plain", schedule="0 9 * * *")).get_json()
    assert plain["schedule_timezone"] == "UTC" and plain["next_run_at"].endswith("T09:00:00+00:00")


def test_selection_and_referrer_options_are_stored_and_patched(world):
    rule = world.post(
        world.rule(source={"semver": " >=1.2 <2 ", "latest": 3}, include_referrers=False)
    ).get_json()
    assert (rule["source"]["semver"], rule["source"]["latest"]) == (">=1.2 <2", 3)
    assert (rule["include_referrers"], rule["deletion"]) == (False, False)
    path = f"/rules/{rule['id']}"
    r = world.alice.request("PATCH", path, json={"source": {"latest": None}, "deletion": True})
    got = r.get_json()
    assert r.status_code == 200, got
    assert (got["source"]["semver"], got["source"]["latest"], got["deletion"]) == (
        ">=1.2 <2",
        None,
        True,
    )
    assert world.alice.request("GET", path).get_json() == got
