"""copy_artifact between two tenants' real registries; every digest is checked independently."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest
import requests

from common.registry import InProcessCoordinator, Kind, ProgressEvent, copy_artifact
from common.registry.copier import CopyOutcome, CopyStatus
from tests.support import oci
from tests.support.copyenv import Tenants, client, corrupt_blob, mode, unique
from tests.support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.usefixtures("no_secret_logs")


def _blobs_of(body: bytes) -> list[str]:
    import json

    doc = json.loads(body)
    return [doc["config"]["digest"]] + [layer["digest"] for layer in doc["layers"]]


def assert_same_on_target(
    t: Tenants, src_repo: str, src_ref: str, dst_repo: str, dst_ref: str
) -> oci.Pushed:
    """Independent check: target manifest (and children, and blobs) hash like the source."""
    ss, ds = t.src.session(), t.dst.session()
    want = oci.get_manifest(ss, t.src.url, src_repo, src_ref)
    got = oci.get_manifest(ds, t.dst.url, dst_repo, dst_ref)
    assert want is not None and got is not None
    assert got.digest == want.digest and got.body == want.body
    assert got.media_type == want.media_type
    import json

    doc = json.loads(got.body)
    children = [m["digest"] for m in doc.get("manifests", [])]
    for child in children:
        c = oci.get_manifest(ds, t.dst.url, dst_repo, child)
        assert c is not None and c.digest == child
        for blob in _blobs_of(c.body):
            r = ds.get(f"{t.dst.url}/v2/{dst_repo}/blobs/{blob}")
            assert oci.sha256(r.content) == blob
    if not children:
        for blob in _blobs_of(got.body):
            r = ds.get(f"{t.dst.url}/v2/{dst_repo}/blobs/{blob}")
            assert oci.sha256(r.content) == blob
    return got


def copy(t: Tenants, src_repo: str, src_ref: str, dst_repo: str, dst_tag: str, **kw) -> CopyOutcome:
    client_kw = kw.pop("dst_kw", {})
    with t.src_client() as s, t.dst_client(**client_kw) as d:
        return copy_artifact(s, src_repo, src_ref, d, dst_repo, dst_tag, **kw)


PUSHERS: dict[str, tuple[Callable[..., oci.Pushed], Kind]] = {
    "docker-schema2": (lambda s, u, r, t: oci.push_image(s, u, r, t, oci=False), Kind.IMAGE),
    "oci-image": (lambda s, u, r, t: oci.push_image(s, u, r, t, oci=True), Kind.IMAGE),
    "oci-index": (lambda s, u, r, t: oci.push_index(s, u, r, t, oci=True), Kind.INDEX),
    "docker-list": (
        lambda s, u, r, t: oci.push_index(
            s, u, r, t, oci=False, platforms=("amd64", "arm64", "ppc64le")
        ),
        Kind.INDEX,
    ),
    "helm-chart": (oci.push_chart, Kind.CHART),
}


@pytest.mark.parametrize("what", list(PUSHERS))
def test_copy_each_kind_exactly_and_idempotently(tenants: Tenants, what: str) -> None:
    push, kind = PUSHERS[what]
    src_repo = f"{unique('proj/')}/sub1/sub2"  # three levels deep
    dst_repo = f"{unique('team/')}/sub1/sub2"
    pushed = push(tenants.src.session(), tenants.src.url, src_repo, "1.0")

    first = copy(tenants, src_repo, "1.0", dst_repo, "1.0")
    assert first.status == CopyStatus.COPIED, first.reason
    assert (first.digest, first.kind) == (pushed.digest, kind)
    assert first.blobs_uploaded > 0 and first.bytes_transferred > 0
    assert_same_on_target(tenants, src_repo, "1.0", dst_repo, "1.0")

    again = copy(tenants, src_repo, "1.0", dst_repo, "1.0")
    assert again.status == CopyStatus.UP_TO_DATE
    assert again.bytes_transferred == 0 and again.blobs_uploaded == 0

    # Another tag in the same repository: every blob (and child) is already there.
    other = copy(tenants, src_repo, "1.0", dst_repo, "other")
    assert other.status == CopyStatus.COPIED
    assert other.bytes_transferred == 0 and other.blobs_uploaded == 0
    assert_same_on_target(tenants, src_repo, "1.0", dst_repo, "other")


def test_override_off_keeps_and_on_replaces(tenants: Tenants) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    new_layer = os.urandom(3000)
    pushed = oci.push_image(
        tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[new_layer]
    )
    old = oci.push_image(tenants.dst.session(), tenants.dst.url, dst_repo, "v1")

    kept = copy(tenants, src_repo, "v1", dst_repo, "v1")
    assert kept.status == CopyStatus.KEPT and kept.target_digest == old.digest
    assert kept.ok and "override is off" in (kept.note or "")
    still = oci.get_manifest(tenants.dst.session(), tenants.dst.url, dst_repo, "v1")
    assert still is not None and still.digest == old.digest
    # Nothing was written: not even the new layer.
    r = tenants.dst.session().head(f"{tenants.dst.url}/v2/{dst_repo}/blobs/{oci.sha256(new_layer)}")
    assert r.status_code == 404

    replaced = copy(tenants, src_repo, "v1", dst_repo, "v1", override=True)
    assert replaced.status == CopyStatus.COPIED and replaced.digest == pushed.digest
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


def test_blobs_are_mounted_from_another_repository_of_the_target(tenants: Tenants) -> None:
    src_repo = unique("p/")
    oci.push_image(
        tenants.src.session(),
        tenants.src.url,
        src_repo,
        "v1",
        layers=[os.urandom(5000), os.urandom(7000)],
    )
    coordinator = InProcessCoordinator()
    first = copy(tenants, src_repo, "v1", unique("a/"), "v1", coordinator=coordinator)
    assert first.blobs_uploaded == 3
    second_repo = unique("b/")
    second = copy(tenants, src_repo, "v1", second_repo, "v1", coordinator=coordinator)
    assert second.status == CopyStatus.COPIED
    assert (second.blobs_mounted, second.blobs_uploaded, second.bytes_transferred) == (3, 0, 0)
    assert_same_on_target(tenants, src_repo, "v1", second_repo, "v1")


def test_stale_coordinator_hints_are_checked_by_the_registry(tenants: Tenants) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    layer = os.urandom(4000)
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[layer])
    coordinator = InProcessCoordinator()
    with tenants.dst_client() as d:
        coordinator.remember(d.key, oci.sha256(layer), unique("nowhere/"))  # wrong hint
    out = copy(tenants, src_repo, "v1", dst_repo, "v1", coordinator=coordinator)
    assert out.status == CopyStatus.COPIED and out.blobs_uploaded == 2
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


def test_a_stale_hint_about_the_target_repository_is_caught_by_the_manifest_push(
    tenants: Tenants,
) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    layer = os.urandom(4000)
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[layer])
    coordinator = InProcessCoordinator()
    with tenants.dst_client() as d:
        # Wrong: the repository never had it (as after a registry reset).
        coordinator.remember(d.key, oci.sha256(layer), dst_repo)
    out = copy(tenants, src_repo, "v1", dst_repo, "v1", coordinator=coordinator)
    assert out.status == CopyStatus.COPIED, out.reason
    # The second pass found the config it had just sent and sent the layer.
    assert (out.blobs_uploaded, out.blobs_skipped) == (1, 1)
    assert out.bytes_transferred > len(layer)
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


def test_same_registry_copy_mounts_from_the_source_repository(tenants: Tenants) -> None:
    a, b = unique("p/"), unique("q/")
    oci.push_image(tenants.src.session(), tenants.src.url, a, "v1")
    with tenants.src_client() as c:
        out = copy_artifact(c, a, "v1", c, b, "v1", coordinator=InProcessCoordinator())
    assert out.status == CopyStatus.COPIED
    assert (out.blobs_mounted, out.bytes_transferred) == (2, 0)


@pytest.mark.parametrize("chunk", [16 * 1024, None], ids=["chunked", "streamed"])
def test_large_blobs_go_in_chunks_or_one_stream(tenants: Tenants, chunk: int | None) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    layer = os.urandom(200_000)
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[layer])
    proxy = FaultProxy(tenants.dst.host).start()
    try:
        with (
            tenants.src_client() as s,
            client(proxy.url, "bob", "bob-Secr3t-pw", **mode(chunk)) as d,
        ):
            out = copy_artifact(s, src_repo, "v1", d, dst_repo, "v1")
        assert out.status == CopyStatus.COPIED, out.reason
        patches = proxy.count("PATCH", "/blobs/uploads/")
        assert patches == (13 if chunk else 0)  # 200000 / 16384 -> 13 chunks
        # Streamed: the PUT that finalises each upload carries its blob (config + layer).
        assert proxy.count("PUT", "/blobs/uploads/") == 2
    finally:
        proxy.stop()
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


def test_chunked_copy_resumes_after_a_broken_chunk(tenants: Tenants) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    oci.push_image(
        tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[os.urandom(100_000)]
    )
    proxy = FaultProxy(tenants.dst.host).start()
    proxy.add(Fault("reset", "/blobs/uploads/", method="PATCH", after=3))
    try:
        with (
            tenants.src_client() as s,
            client(proxy.url, "bob", "bob-Secr3t-pw", **mode(16 * 1024)) as d,
        ):
            out = copy_artifact(s, src_repo, "v1", d, dst_repo, "v1")
        assert out.status == CopyStatus.COPIED, out.reason
        assert proxy.count("GET", "/blobs/uploads/") == 1  # asked for the Range, then resumed
        assert proxy.count("POST", "/blobs/uploads/") == 2  # config + layer: no restart
    finally:
        proxy.stop()
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


@pytest.mark.parametrize("side", ["source", "target"])
def test_wrong_password_is_a_clear_failure(tenants: Tenants, side: str) -> None:
    src_repo = unique("p/")
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1")
    bad_pw = "definitely-Wr0ng-pw"
    from tests.support.copyenv import secret

    secret(bad_pw)
    src = client(tenants.src, "alice", bad_pw if side == "source" else None)
    dst = client(tenants.dst, "bob", bad_pw if side == "target" else None)
    with src, dst:
        out = copy_artifact(src, src_repo, "v1", dst, unique("t/"), "v1")
    assert out.status == CopyStatus.FAILED and not out.retryable
    host, user = (tenants.src.host, "alice") if side == "source" else (tenants.dst.host, "bob")
    assert out.reason is not None
    assert out.reason.startswith(f"{side}: {host} refused the credentials for user {user}")
    assert bad_pw not in out.reason


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(3000, 1 << 20), (150_000, 16 * 1024), (150_000, None)],
    ids=["small", "chunked", "streamed"],
)
def test_corrupted_source_blob_fails_and_creates_no_tag(
    tenants: Tenants, size: int, chunk: int | None
) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    layer = os.urandom(size)
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[layer])
    corrupt_blob(tenants.src, oci.sha256(layer))
    out = copy(tenants, src_repo, "v1", dst_repo, "v1", dst_kw=mode(chunk))
    assert out.status == CopyStatus.FAILED
    assert f"blob {oci.sha256(layer)} read from {tenants.src.host}/{src_repo} hashes to" in (
        out.reason or ""
    )
    ds = tenants.dst.session()
    assert oci.get_manifest(ds, tenants.dst.url, dst_repo, "v1") is None
    r = ds.head(f"{tenants.dst.url}/v2/{dst_repo}/blobs/{oci.sha256(layer)}")
    assert r.status_code == 404


def test_missing_source_tag(tenants: Tenants) -> None:
    out = copy(tenants, unique("p/"), "v1", unique("t/"), "v1")
    assert out.status == CopyStatus.FAILED and "not found" in (out.reason or "")
    assert out.reason and out.reason.startswith("source: ")


def test_registry_down_after_retries_is_retryable(tenants: Tenants) -> None:
    src_repo = unique("p/")
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1")
    proxy = FaultProxy(tenants.dst.host).start()
    proxy.add(Fault("status", "/v2/", status=503, times=1000))
    try:
        with tenants.src_client() as s, client(proxy.url, "bob", "bob-Secr3t-pw") as d:
            out = copy_artifact(s, src_repo, "v1", d, unique("t/"), "v1")
    finally:
        proxy.stop()
    assert out.status == CopyStatus.FAILED and out.retryable
    assert "503" in (out.reason or "") and out.reason.startswith("target: ")


@pytest.mark.parametrize("shared", [True, False], ids=["one-process", "two-processes"])
def test_two_copies_of_the_same_item_at_once(tenants: Tenants, shared: bool) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    pushed = oci.push_index(tenants.src.session(), tenants.src.url, src_repo, "v1")
    one = InProcessCoordinator()
    coordinators = [one, one] if shared else [InProcessCoordinator(), InProcessCoordinator()]
    outs: list[CopyOutcome] = []
    barrier = threading.Barrier(2)

    def run(c: InProcessCoordinator) -> None:
        barrier.wait()
        outs.append(copy(tenants, src_repo, "v1", dst_repo, "v1", coordinator=c))

    threads = [threading.Thread(target=run, args=(c,)) for c in coordinators]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(outs) == 2 and all(o.ok for o in outs), [o.reason for o in outs]
    assert all(o.digest == pushed.digest for o in outs)
    if shared:  # 2 children x (config + layer): each blob uploaded by one of the two
        assert sum(o.blobs_uploaded for o in outs) == 4
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "v1")


def test_a_blob_needed_by_two_items_at_once_crosses_once(tenants: Tenants) -> None:
    shared = os.urandom(2_000_000)
    a, b = unique("p/"), unique("p/")
    ss = tenants.src.session()
    oci.push_image(ss, tenants.src.url, a, "v1", layers=[shared, os.urandom(1000)])
    oci.push_image(
        ss,
        tenants.src.url,
        b,
        "v1",
        layers=[shared, os.urandom(1000)],
        config={"architecture": "arm64", "os": "linux"},
    )
    coordinator = InProcessCoordinator()
    outs: list[CopyOutcome] = []
    barrier = threading.Barrier(2)

    def run(repo: str) -> None:
        barrier.wait()
        outs.append(copy(tenants, repo, "v1", unique("t/"), "v1", coordinator=coordinator))

    threads = [threading.Thread(target=run, args=(r,)) for r in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(o.status == CopyStatus.COPIED for o in outs), [o.reason for o in outs]
    assert sum(o.bytes_transferred for o in outs) < 2 * len(shared)
    assert sum(o.blobs_mounted + o.blobs_skipped for o in outs) >= 1


def test_should_stop_stops_between_chunks(tenants: Tenants) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    oci.push_image(
        tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[os.urandom(300_000)]
    )
    events: list[ProgressEvent] = []
    out = copy(
        tenants,
        src_repo,
        "v1",
        dst_repo,
        "v1",
        dst_kw=mode(16 * 1024),
        progress=events.append,
        should_stop=lambda: sum(e.phase == "blob" for e in events) >= 3,
    )
    assert out.status == CopyStatus.STOPPED and "target tag was not changed" in (out.reason or "")
    assert oci.get_manifest(tenants.dst.session(), tenants.dst.url, dst_repo, "v1") is None
    assert out.bytes_transferred < 300_000


def test_progress_reports_blobs_and_bytes(tenants: Tenants) -> None:
    src_repo = unique("p/")
    oci.push_index(tenants.src.session(), tenants.src.url, src_repo, "v1")
    events: list[ProgressEvent] = []
    out = copy(tenants, src_repo, "v1", unique("t/"), "v1", progress=events.append)
    assert out.status == CopyStatus.COPIED
    last = events[-1]
    assert last.phase == "done" and last.blobs_done == last.blobs_total == 4
    assert last.bytes_done == last.bytes_total > 0
    assert {"blobs", "blob", "manifests", "done"} <= {e.phase for e in events}


def test_expected_digest_that_moved_is_noted(tenants: Tenants) -> None:
    src_repo = unique("p/")
    pushed = oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1")
    stale = "sha256:" + "0" * 64
    out = copy(tenants, src_repo, "v1", unique("t/"), "v1", expected_digest=stale)
    assert out.status == CopyStatus.COPIED and out.digest == pushed.digest
    assert out.note and stale in out.note and pushed.digest in out.note


def test_copy_by_digest(tenants: Tenants) -> None:
    src_repo, dst_repo = unique("p/"), unique("t/")
    pushed = oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1")
    out = copy(tenants, src_repo, pushed.digest, dst_repo, "pinned")
    assert out.status == CopyStatus.COPIED
    assert_same_on_target(tenants, src_repo, "v1", dst_repo, "pinned")


def test_outcome_serialises(tenants: Tenants) -> None:
    out = copy(tenants, unique("p/"), "v1", unique("t/"), "v1")
    d = out.to_dict()
    assert d["status"] == "failed" and isinstance(d["seconds"], float)
    requests.utils.to_key_val_list(d)  # plain dict of JSON-able values
