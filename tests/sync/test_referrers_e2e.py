"""Signatures, SBOMs and attestations travel with their image, against real registries.

docker-registry 2.8 has no referrers API: there, referrers are found through the
fallback index tag ``sha256-<hex>`` and cosign's tags, and the target's fallback
index is kept up to date by Ferry. The other path goes through a front that adds
only the referrers API over a real registry's storage.
"""

from __future__ import annotations

import json

import pytest

from common.registry import RegistryClient
from common.registry.referrers import api_referrers
from tests.support.oci import (
    get_manifest,
    push_cosign,
    push_fallback_index,
    push_image,
    push_referrer,
)
from tests.support.referrersfront import ReferrersFront

pytestmark = pytest.mark.slow

SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"


def by_kind(api, task_id):
    return sorted((i["kind"], i["source_tag"], i["outcome"]) for i in api.items(task_id))


def fallback_digests(registry, repo, digest):
    got = get_manifest(registry.session(), registry.url, repo, digest.replace(":", "-", 1))
    return [m["digest"] for m in json.loads(got.body)["manifests"]] if got else None


def same_bytes(src, dst, src_repo, dst_repo, ref):
    a = get_manifest(src.session(), src.url, src_repo, ref)
    b = get_manifest(dst.session(), dst.url, dst_repo, ref)
    assert a is not None and b is not None, ref
    assert (a.digest, a.body) == (b.digest, b.body), ref


def test_signed_image_travels_through_fallback_and_cosign_tags(api, worker, src, dst):
    s, d = src.session(), dst.session()
    image = push_image(s, src.url, "project/app", "v1")
    push_image(s, src.url, "project/app", "v2")  # not selected: its referrers stay
    sig = push_referrer(s, src.url, "project/app", image, SIG)
    sbom = push_referrer(s, src.url, "project/app", image, SBOM)
    sbom_sig = push_referrer(s, src.url, "project/app", sbom, SIG)  # a referrer's referrer
    push_fallback_index(s, src.url, "project/app", image.digest, [sig, sbom])
    push_fallback_index(s, src.url, "project/app", sbom.digest, [sbom_sig])
    cosign_sig = push_cosign(s, src.url, "project/app", image.digest, "sig")
    cosign_sbom = push_cosign(s, src.url, "project/app", image.digest, "sbom")
    # The target already lists a referrer Ferry did not put there.
    foreign_subject = push_image(d, dst.url, "mirror/app", None)
    foreign = push_referrer(d, dst.url, "mirror/app", image, SIG)
    push_fallback_index(d, dst.url, "mirror/app", image.digest, [foreign])
    del foreign_subject

    si, di = api.instance("src", src), api.instance("dst", dst)
    rule = api.rule("signed", si, di, target_namespace="mirror", tag_filter="v1")
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    cosign_base = image.digest.replace(":", "-", 1)
    assert by_kind(api, task["task_id"]) == sorted(
        [
            ("image", "v1", "copied"),
            ("referrer", sig.digest, "copied"),
            ("referrer", sbom.digest, "copied"),
            ("referrer", sbom_sig.digest, "copied"),
            ("referrer", f"{cosign_base}.sig", "copied"),
            ("referrer", f"{cosign_base}.sbom", "copied"),
        ]
    )
    # Byte for byte: a signature verified against the source verifies against the target.
    for ref in ("v1", sig.digest, sbom.digest, sbom_sig.digest):
        same_bytes(src, dst, "project/app", "mirror/app", ref)
    for ref in (f"{cosign_base}.sig", f"{cosign_base}.sbom"):
        same_bytes(src, dst, "project/app", "mirror/app", ref)
    assert get_manifest(d, dst.url, "mirror/app", f"{cosign_base}.sig").digest == cosign_sig.digest
    assert cosign_sbom.digest
    # The target's fallback index: the foreign entry kept, Ferry's added once each.
    listed = fallback_digests(dst, "mirror/app", image.digest)
    assert listed[0] == foreign.digest and sorted(listed[1:]) == sorted([sig.digest, sbom.digest])
    assert fallback_digests(dst, "mirror/app", sbom.digest) == [sbom_sig.digest]
    assert get_manifest(d, dst.url, "mirror/app", "v2") is None

    again = api.wait(api.trigger(rule))
    assert {i["outcome"] for i in api.items(again["task_id"])} == {"up-to-date"}
    assert fallback_digests(dst, "mirror/app", image.digest) == listed

    plain = api.rule(
        "plain", si, di, target_namespace="bare", tag_filter="v1", include_referrers=False
    )
    task = api.wait(api.trigger(plain))
    assert by_kind(api, task["task_id"]) == [("image", "v1", "copied")]
    assert fallback_digests(dst, "bare/app", image.digest) is None


@pytest.fixture
def front(src):
    with ReferrersFront(upstream=src.host, storage=src.storage) as proxy:
        yield proxy


def test_referrers_api_of_the_source_is_used(api, worker, src, dst, front):
    s = src.session()
    image = push_image(s, src.url, "project/app", "v1")
    sig = push_referrer(s, src.url, "project/app", image, SIG)
    sbom = push_referrer(s, src.url, "project/app", image, SBOM)

    # The front answers the API (and its artifactType filter); the registry does not.
    with RegistryClient(front.url, username="alice", password="alice-pw") as client:
        listed = api_referrers(client, "project/app", image.digest)
        assert sorted(d["digest"] for d in listed) == sorted([sig.digest, sbom.digest])
        only = api_referrers(client, "project/app", image.digest, artifact_type=SBOM)
        assert [d["digest"] for d in only] == [sbom.digest]
    with RegistryClient(src.url, username="alice", password="alice-pw") as client:
        assert api_referrers(client, "project/app", image.digest) is None

    body = {"name": "src-api", "url": front.url, "username": "alice", "password": "alice-pw"}
    si = api.post("/instances", body, expect=201)["id"]
    rule = api.rule("via-api", si, api.instance("dst", dst), target_namespace="mirror")
    task = api.wait(api.trigger(rule))
    assert task["status"] == "Succeeded", task
    assert by_kind(api, task["task_id"]) == sorted(
        [
            ("image", "v1", "copied"),
            ("referrer", sig.digest, "copied"),
            ("referrer", sbom.digest, "copied"),
        ]
    )
    assert front.count("GET", r"/referrers/") >= 1
    for ref in ("v1", sig.digest, sbom.digest):
        same_bytes(src, dst, "project/app", "mirror/app", ref)
    # The target (docker-registry) has no referrers API: Ferry wrote its fallback index.
    assert sorted(fallback_digests(dst, "mirror/app", image.digest)) == sorted(
        [sig.digest, sbom.digest]
    )
