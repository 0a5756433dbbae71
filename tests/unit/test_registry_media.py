"""Pure parts of the registry client: media types, kinds, challenges, token cache, ranges."""

from __future__ import annotations

import json
import os

import pytest

from common.errors import DigestMismatch, ManifestInvalid, RegistryUnavailable
from common.registry import Kind, Manifest, classify
from common.registry.auth import Challenge, TokenCache, _host_allowed, parse_challenges
from common.registry.blob_reader import BytesSource
from common.registry.digest import digest_of
from common.registry.listing import _just_before
from common.registry.media import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    HELM_CONFIG,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
)
from common.registry.retry import RetryPolicy, retry_after
from common.registry.upload_session import _received
from common.registry.uploader import _Refill

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _m(doc: dict, content_type: str | None) -> Manifest:
    return Manifest.from_bytes(json.dumps(doc).encode(), content_type)


def _image(config_type: str, **extra) -> dict:
    return {
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": D1, "size": 2},
        "layers": [{"mediaType": "x", "digest": D2, "size": 3}],
        **extra,
    }


@pytest.mark.parametrize(
    ("doc", "content_type", "kind"),
    [
        (_image("application/vnd.docker.container.image.v1+json"), DOCKER_MANIFEST, Kind.IMAGE),
        (_image("application/vnd.oci.image.config.v1+json"), OCI_MANIFEST, Kind.IMAGE),
        ({"schemaVersion": 2, "manifests": []}, OCI_INDEX, Kind.INDEX),
        ({"schemaVersion": 2, "manifests": []}, DOCKER_LIST, Kind.INDEX),
        (_image(HELM_CONFIG), OCI_MANIFEST, Kind.CHART),
        (_image("application/vnd.example.thing+json"), OCI_MANIFEST, Kind.ARTIFACT),
        (
            _image("application/vnd.oci.image.config.v1+json", artifactType="application/x.sbom"),
            OCI_MANIFEST,
            Kind.ARTIFACT,
        ),
        (
            {"schemaVersion": 1, "fsLayers": [{"blobSum": D1}], "signatures": []},
            DOCKER_SCHEMA1_SIGNED,
            Kind.IMAGE,
        ),
        # No usable Content-Type: the body decides.
        (
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []},
            "application/json",
            Kind.INDEX,
        ),
        (_image(HELM_CONFIG), None, Kind.CHART),
    ],
)
def test_classify(doc: dict, content_type: str | None, kind: Kind) -> None:
    assert classify(_m(doc, content_type)) == kind


def test_accept_list_names_every_modern_manifest_type() -> None:
    for media_type in (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST):
        assert media_type in MANIFEST_ACCEPT


def test_manifest_keeps_bytes_and_checks_digest() -> None:
    raw = b'{"schemaVersion": 2,\n   "mediaType": "%s", "manifests": []}' % OCI_INDEX.encode()
    m = Manifest.from_bytes(raw, OCI_INDEX + "; charset=utf-8", digest_of(raw))
    assert m.raw is raw and m.digest == digest_of(raw) and m.media_type == OCI_INDEX
    with pytest.raises(DigestMismatch):
        Manifest.from_bytes(raw, OCI_INDEX, D1)


def test_blobs_are_deduplicated_and_children_listed() -> None:
    doc = _image("application/vnd.oci.image.config.v1+json")
    doc["layers"].append({"mediaType": "x", "digest": D2, "size": 3})
    assert [b.digest for b in _m(doc, OCI_MANIFEST).blobs()] == [D1, D2]
    index = _m({"manifests": [{"mediaType": OCI_MANIFEST, "digest": D1, "size": 5}]}, OCI_INDEX)
    assert [c.digest for c in index.children()] == [D1] and index.blobs() == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "sha256:abc", "md5:" + "0" * 32, None])
def test_descriptor_with_bad_digest_is_refused(bad) -> None:
    doc = _image("application/vnd.oci.image.config.v1+json")
    doc["layers"][0]["digest"] = bad
    with pytest.raises(ManifestInvalid):
        _m(doc, OCI_MANIFEST).blobs()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.example/token",
                        "service": "reg",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
        ),
        (
            'Bearer realm="r", error="insufficient_scope", scope="a b"',
            [Challenge("bearer", {"realm": "r", "error": "insufficient_scope", "scope": "a b"})],
        ),
        (
            'Basic realm="x", Bearer realm="y",service=s',
            [
                Challenge("basic", {"realm": "x"}),
                Challenge("bearer", {"realm": "y", "service": "s"}),
            ],
        ),
        ('Bearer realm="quoted \\"q\\""', [Challenge("bearer", {"realm": 'quoted "q"'})]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_challenge_scopes() -> None:
    (c,) = parse_challenges('Bearer realm="r",scope="repository:a:pull repository:b:pull"')
    assert c.scopes == {"repository:a:pull", "repository:b:pull"}


def test_token_cache_refreshes_before_expiry() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put(("k",), "tok", expires_in=60)
    assert cache.get(("k",)) == "tok"
    now[0] += 44
    assert cache.get(("k",)) == "tok"
    now[0] += 2  # 46 s: inside the last quarter of the lifetime -> fetch a fresh one
    assert cache.get(("k",)) is None
    cache.put(("k",), "tok2", expires_in=60)
    cache.invalidate(("k",), "other")  # someone else's stale token: keep ours
    assert cache.get(("k",)) == "tok2"
    cache.invalidate(("k",), "tok2")
    assert cache.get(("k",)) is None


@pytest.mark.parametrize(
    ("host", "port", "allowed", "ok"),
    [
        ("auth.example", 443, ("auth.example",), True),
        ("auth.example", 443, ("AUTH.example:443",), True),
        ("auth.example", 8443, ("auth.example:443",), False),
        ("evil.example", 443, ("auth.example",), False),
        ("::1", 5001, ("[::1]:5001",), True),
        ("auth.example", 443, (), False),
    ],
)
def test_realm_host_allowlist(host: str, port: int, allowed: tuple, ok: bool) -> None:
    assert _host_allowed(host, port, allowed) is ok


@pytest.mark.parametrize(
    ("header", "hint", "expected"),
    [
        ("0-0", 0, 0),
        ("0-0", 1, 1),
        ("0-1023", 0, 1024),
        ("bytes=0-99", 0, 100),
        (None, 0, None),
        ("garbage", 5, None),
    ],
)
def test_upload_range_header(header, hint, expected) -> None:
    assert _received(header, hint) == expected


def test_backoff_grows_is_jittered_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0, max_retry_after=30)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8)], 1):
        assert low <= policy.delay(attempt) <= high
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(1, retry_after=500) == 30


def test_retry_after_parsing() -> None:
    class R:
        headers = {"Retry-After": "3"}

    assert retry_after(R.headers) == 3.0
    R.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert retry_after(R.headers) == 0.0


@pytest.mark.parametrize("prefix", ["proj", "a", "team-1", "x.y", "ns0"])
def test_catalog_skip_ahead_sorts_before_prefix(prefix: str) -> None:
    last = _just_before(prefix)
    assert last < prefix
    # Nothing made of repository-name characters lies between `last` and `prefix`.
    for c in "abcdefghijklmnopqrstuvwxyz0123456789._-/":
        assert not (last < prefix[:-1] + c < prefix) or c == prefix[-1]


# Three tries, no waiting between them.
_NO_WAIT = RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0)


@pytest.mark.parametrize(
    ("size", "n"),
    [
        (0, 16384),
        (5, 3),
        (5000, 3),
        (16384 * 3, 16384),
        (200_000, 16384),
        (200_000, 1 << 20),
        (3 * 1024 * 1024 + 7, 16384),
        (3 * 1024 * 1024 + 7, 1 << 20),
    ],
)
def test_chunk_reader_cuts_exact_pieces(size: int, n: int) -> None:
    data = os.urandom(size)
    reader = _Refill(BytesSource(data), _NO_WAIT)
    pieces = []
    while piece := reader.read(n):
        pieces.append(bytes(piece))
    assert b"".join(pieces) == data
    assert all(len(p) == n for p in pieces[:-1]) and all(0 < len(p) <= n for p in pieces)


def test_chunk_reader_reopens_the_source_where_it_broke() -> None:
    data = os.urandom(5000)
    opened: list[int] = []

    class Flaky:
        where = "flaky"

        def open(self, offset: int = 0):
            opened.append(offset)
            yield data[offset : offset + 1500]
            if len(opened) == 1:
                raise RegistryUnavailable("broke")
            yield data[offset + 1500 :]

    reader = _Refill(Flaky(), _NO_WAIT)
    assert bytes(reader.read(4000)) + bytes(reader.read(4000)) == data
    assert opened == [0, 1500]
