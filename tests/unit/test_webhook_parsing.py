"""Parsing registry notifications: what counts as a push, and the de-duplication keys."""

from __future__ import annotations

import json

import pytest

from common.domain.webhooks import parse
from common.errors import ValidationError

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def dist_event(action="push", tag="v1", media_type=DOCKER_V2, repo="project/app", eid="e1"):
    target = {
        "mediaType": media_type,
        "digest": "sha256:" + "a" * 64,
        "repository": repo,
        "size": 10,
        "url": f"http://r/v2/{repo}/manifests/sha256:...",
    }
    if tag:
        target["tag"] = tag
    return {"id": eid, "timestamp": "2026-11-29T10:00:00Z", "action": action, "target": target}


@pytest.mark.parametrize(
    ("events", "pushes", "ignored"),
    [
        ([dist_event()], [("project/app", "v1")], 0),
        (
            [dist_event(media_type=OCI_MANIFEST, tag="1.0.0", repo="project/charts/web")],
            [("project/charts/web", "1.0.0")],
            0,
        ),
        ([dist_event(media_type="application/octet-stream", tag=None)], [], 1),  # blob push
        ([dist_event(action="pull")], [], 1),
        ([dist_event(action="mount", tag=None)], [], 1),
        ([dist_event(tag=None)], [], 1),  # untagged child manifest of an index
        (
            [
                dist_event(eid="a"),
                dist_event(action="pull", eid="b"),
                dist_event(tag="v2", eid="c"),
            ],
            [("project/app", "v1"), ("project/app", "v2")],
            1,
        ),
    ],
)
def test_distribution_envelope(events, pushes, ignored):
    parsed = parse(json.dumps({"events": events}).encode(), "inst")
    assert parsed.format == "distribution"
    assert [(p.repository, p.tag) for p in parsed.pushes] == pushes
    assert parsed.ignored == ignored


def test_distribution_dedup_key_is_the_event_id():
    parsed = parse(json.dumps({"events": [dist_event(eid="abc")]}).encode(), "inst")
    assert parsed.pushes[0].dedup_key == "id:abc"
    assert parsed.pushes[0].digest == "sha256:" + "a" * 64


def harbor(tags=("v1",), type_="PUSH_ARTIFACT", occur_at=1700000000):
    return {
        "type": type_,
        "occur_at": occur_at,
        "operator": "admin",
        "event_data": {
            "resources": [
                {
                    "digest": "sha256:" + "b" * 64,
                    "tag": t,
                    "resource_url": f"harbor.local/project/app:{t}",
                }
                for t in tags
            ],
            "repository": {
                "name": "app",
                "namespace": "project",
                "repo_full_name": "project/app",
                "repo_type": "private",
            },
        },
    }


def test_harbor_payload_and_hash_dedup():
    first = parse(json.dumps(harbor(("v1", "v2"))).encode(), "inst")
    assert first.format == "harbor"
    assert [(p.repository, p.tag) for p in first.pushes] == [
        ("project/app", "v1"),
        ("project/app", "v2"),
    ]
    replay = parse(json.dumps(harbor(("v1", "v2"))).encode(), "inst")
    assert [p.dedup_key for p in replay.pushes] == [p.dedup_key for p in first.pushes]
    later = parse(json.dumps(harbor(("v1",), occur_at=1700000099)).encode(), "inst")
    assert later.pushes[0].dedup_key != first.pushes[0].dedup_key
    other_instance = parse(json.dumps(harbor(("v1",))).encode(), "other")
    assert other_instance.pushes[0].dedup_key != first.pushes[0].dedup_key


def test_harbor_other_event_types_are_ignored():
    parsed = parse(json.dumps(harbor(type_="SCANNING_COMPLETED")).encode(), "inst")
    assert (parsed.pushes, parsed.ignored) == ([], 1)


def cloudevent(type_="harbor.artifact.pushed", tags=("v1",), event_id="ce-1"):
    body = harbor(tags)
    return {
        "specversion": "1.0",
        "id": event_id,
        "requestid": "r-1",
        "source": "/projects/1/webhook/policies/3",
        "type": type_,
        "datacontenttype": "application/json",
        "time": "2026-11-29T10:00:00Z",
        "data": body["event_data"],
        "operator": "robot$ferry",
    }


@pytest.mark.parametrize(
    ("body", "fmt", "expected"),
    [
        (harbor(("v1", "v2")), "harbor", [("push", "v1"), ("push", "v2")]),
        (harbor(("v1",), type_="DELETE_ARTIFACT"), "harbor", [("delete", "v1")]),
        (cloudevent(), "harbor-cloudevents", [("push", "v1")]),
        (cloudevent("harbor.artifact.deleted"), "harbor-cloudevents", [("delete", "v1")]),
        (
            {"events": [dist_event(action="delete", tag="v1", media_type=None)]},
            "distribution",
            [("delete", "v1")],
        ),
    ],
)
def test_pushes_and_deletions_in_every_format(body, fmt, expected):
    parsed = parse(json.dumps(body).encode(), "inst")
    assert parsed.format == fmt
    assert [(p.action, p.tag) for p in parsed.pushes] == expected
    assert all(p.repository == "project/app" for p in parsed.pushes)


def test_distribution_manifest_deletion_without_tag_is_ignored():
    event = dist_event(action="delete", tag=None)
    parsed = parse(json.dumps({"events": [event]}).encode(), "inst")
    assert (parsed.pushes, parsed.ignored) == ([], 1)


@pytest.mark.parametrize("make", [harbor, cloudevent])
def test_harbor_push_by_digest_never_becomes_a_tag(make):
    digest = "sha256:" + "b" * 64
    parsed = parse(json.dumps(make(tags=(digest,))).encode(), "inst")
    [push] = parsed.pushes
    assert (push.tag, push.digest, push.by_digest, push.action) == ("", digest, True, "push")
    deleted = harbor(tags=(digest,), type_="DELETE_ARTIFACT")
    assert parse(json.dumps(deleted).encode(), "inst").pushes == []


def test_a_deletion_and_a_push_of_one_tag_have_distinct_keys():
    pushed = parse(json.dumps(harbor(("v1",))).encode(), "inst").pushes[0]
    deleted = parse(json.dumps(harbor(("v1",), "DELETE_ARTIFACT")).encode(), "inst").pushes[0]
    assert pushed.dedup_key != deleted.dedup_key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"hello": "world"}', "unknown notification shape"),
        (b'{"events": {"a": 1}}', "events must be a list"),
        (
            b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": [], "repository": {}}}',
            "repo_full_name",
        ),
        (b'{"specversion": "1.0", "type": "harbor.artifact.pushed"}', "data must be an object"),
    ],
)
def test_bad_bodies_are_clear_errors(body, message):
    with pytest.raises(ValidationError) as err:
        parse(body, "inst")
    assert message in str(err.value)
