"""Referrers pushed after their image follow it: cosign and fallback index tags from a real
Distribution registry's notifications, and a Harbor push by digest."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.api import post_webhook
from tests.support.oci import (
    get_manifest,
    push_cosign,
    push_fallback_index,
    push_image,
    push_referrer,
)

pytestmark = pytest.mark.slow

SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"


def wait_for(registry, repo, ref, digest, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = get_manifest(registry.session(), registry.url, repo, ref)
        if got is not None and got.digest == digest:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{repo}@{ref} did not reach {registry.url}")


def fallback(registry, repo, digest):
    got = get_manifest(registry.session(), registry.url, repo, digest.replace(":", "-", 1))
    return sorted(m["digest"] for m in json.loads(got.body)["manifests"]) if got else []


def test_signature_pushed_after_its_image_is_replicated(api, worker, src, dst, live):
    created = api.create_instance(src, "src")
    src_id, secret = created["id"], created["webhook_secret"]
    src.notify(f"{live.url}/api/v1/webhooks/{src_id}", secret)
    rule = api.rule(
        "on-push", src_id, api.instance("dst", dst), target_namespace="mirror", tag_filter="v.*"
    )
    s = src.session()
    image = push_image(s, src.url, "project/app", "v1")
    wait_for(dst, "mirror/app", "v1", image.digest)

    # cosign sign: a .sig tag; an ORAS attach to a registry without the API: the
    # referrer by digest, then the fallback index tag.
    cosign = push_cosign(s, src.url, "project/app", image.digest, "sig")
    sig = push_referrer(s, src.url, "project/app", image, SIG)
    push_fallback_index(s, src.url, "project/app", image.digest, [sig])
    base = image.digest.replace(":", "-", 1)
    wait_for(dst, "mirror/app", f"{base}.sig", cosign.digest)
    wait_for(dst, "mirror/app", sig.digest, sig.digest)
    deadline = time.monotonic() + 20
    while fallback(dst, "mirror/app", image.digest) != [sig.digest]:
        assert time.monotonic() < deadline, fallback(dst, "mirror/app", image.digest)
        time.sleep(0.1)

    # Harbor reports a push by digest with the digest in its tag field.
    sbom = push_referrer(s, src.url, "project/app", image, "application/spdx+json")
    body = {
        "type": "PUSH_ARTIFACT",
        "occur_at": 1764410001,
        "operator": "ci",
        "event_data": {
            "resources": [{"digest": sbom.digest, "tag": sbom.digest}],
            "repository": {"name": "app", "namespace": "project", "repo_full_name": "project/app"},
        },
    }
    r = post_webhook(live.client(), src_id, body, secret, content_type="application/json")
    assert r.status_code == 202 and r.get_json()["accepted"] == 1
    wait_for(dst, "mirror/app", sbom.digest, sbom.digest)
    tags = dst.session().get(f"{dst.url}/v2/mirror/app/tags/list").json()["tags"]
    assert sorted(tags) == sorted(["v1", f"{base}.sig", base])  # never a tag "sha256:…"
    kinds = {
        (i["kind"], i["source_tag"])
        for t in api.get(f"/rules/{rule}/tasks")
        for i in api.items(t["task_id"])
    }
    assert {
        ("referrer", f"{base}.sig"),
        ("referrer", sig.digest),
        ("referrer", sbom.digest),
    } <= kinds
