"""RegistryClient against real docker-registry instances: auth, listing, manifests, blobs."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest

from common.errors import (
    AuthError,
    BlobNotFound,
    DigestMismatch,
    ManifestNotFound,
    RepositoryNotFound,
)
from common.registry import Kind, Manifest, classify
from common.registry.media import OCI_INDEX, OCI_MANIFEST
from tests.support import oci
from tests.support.copyenv import Tenants, client, corrupt_blob, mode, unique
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.usefixtures("no_secret_logs")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- auth (Basic) ----------------------------------------------------------------------


def test_ping_with_good_and_bad_credentials(tenants: Tenants) -> None:
    with tenants.src_client() as c:
        c.ping()
    with client(tenants.src, "alice", "wrong-password-123") as c, pytest.raises(AuthError) as e:
        c.ping()
    assert str(e.value).startswith(f"{tenants.src.host} refused the credentials for user alice")
    assert "wrong-password-123" not in str(e.value)
    with client(tenants.src) as c, pytest.raises(AuthError, match="requires credentials"):
        c.ping()


def test_check_push_leaves_nothing_behind(tenants: Tenants) -> None:
    repo = unique("push/")
    with tenants.dst_client() as c:
        c.check_push(repo)
        assert repo not in list(c.iter_repositories())
    with client(tenants.dst, "bob", "nope") as c, pytest.raises(AuthError):
        c.check_push(repo)


# -- listing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(tenants: Tenants) -> list[str]:
    """23 repositories in 3 namespaces, plus look-alike names around the prefix."""
    s = tenants.src.session()
    names = [f"cat/r{i:02d}" for i in range(12)] + [f"cat/deep/x/y{i}" for i in range(3)]
    names += ["cat", "cat-other/a", "catz/b", "cas/c", "cat0/z", "cat/zz"]
    names += [f"dog/d{i:02d}" for i in range(12)]
    for name in names:
        oci.push_image(s, tenants.src.url, name, "t", layers=[b"same-layer"])
    return names


def test_catalog_beyond_one_page(tenants: Tenants, catalog: list[str]) -> None:
    with tenants.src_client() as c:
        listed = list(c.iter_repositories(page_size=4))
    assert set(catalog) <= set(listed) and len(listed) == len(set(listed))


def test_catalog_with_namespace_prefix_skips_ahead_and_stops(
    tenants: Tenants, catalog: list[str]
) -> None:
    proxy = FaultProxy(tenants.src.host).start()
    try:
        with client(proxy.url, "alice", "alice-Secr3t-pw") as c:
            c.ping()  # learn the auth scheme; afterwards credentials go pre-emptively
            proxy.clear()
            got = list(c.iter_repositories(prefix="cat", page_size=5))
        assert sorted(got) == sorted(n for n in catalog if n == "cat" or n.startswith("cat/"))
        below = list(c.iter_repositories(prefix="cat/", page_size=5))
        assert sorted(below) == sorted(n for n in catalog if n.startswith("cat/"))
        first = next(p for m, p, _ in proxy.log if "_catalog" in p)
        assert "last=" in first  # started next to the namespace, not at the beginning
        # Each listing: 4 pages up to "cat/zz" and one past the prefix; paging on
        # through the 12 "dog/*" repositories would take 3 more.
        assert proxy.count("GET", "_catalog") <= 2 * 5
    finally:
        proxy.stop()


def test_catalog_copes_with_a_registry_refusing_large_n(tenants: Tenants, catalog) -> None:
    # Distribution 2.8 answers 400 PAGINATION_NUMBER_INVALID for n > 1000.
    with tenants.src_client() as c:
        assert set(catalog) <= set(c.iter_repositories(page_size=5000))


def test_tags_when_the_registry_ignores_n(tenants: Tenants) -> None:
    repo = unique("tags/")
    s = tenants.src.session()
    for i in range(7):
        oci.push_image(s, tenants.src.url, repo, f"v{i}", layers=[b"l"])
    with tenants.src_client() as c:
        assert sorted(c.iter_tags(repo, page_size=2)) == [f"v{i}" for i in range(7)]
        with pytest.raises(RepositoryNotFound):
            list(c.iter_tags(unique("missing/")))


@pytest.mark.parametrize("absolute", [False, True])
def test_tags_follow_link_headers(tenants: Tenants, absolute: bool) -> None:
    repo = unique("paged/")
    s = tenants.src.session()
    for i in range(11):
        oci.push_image(s, tenants.src.url, repo, f"t{i:02d}", layers=[b"l"])
    proxy = FaultProxy(tenants.src.host, paginate_tags=3, absolute_links=absolute).start()
    try:
        with client(proxy.url, "alice", "alice-Secr3t-pw") as c:
            c.ping()
            proxy.clear()
            tags = list(c.iter_tags(repo, page_size=100))
        assert tags == [f"t{i:02d}" for i in range(11)]
        assert proxy.count("GET", "tags/list") == 4
    finally:
        proxy.stop()


# -- manifests -------------------------------------------------------------------------


def test_manifest_head_get_keep_exact_bytes(tenants: Tenants) -> None:
    repo = unique("m/")
    s = tenants.src.session()
    pushed = oci.push_index(s, tenants.src.url, repo, "multi")
    with tenants.src_client() as c:
        ref = c.head_manifest(repo, "multi")
        assert ref is not None
        assert (ref.digest, ref.media_type, ref.size) == (
            pushed.digest,
            OCI_INDEX,
            len(pushed.body),
        )
        m = c.get_manifest(repo, "multi")
        assert m.raw == pushed.body and m.digest == pushed.digest and classify(m) == Kind.INDEX
        child = c.get_manifest(repo, m.children()[0].digest)
        assert child.media_type == OCI_MANIFEST
        assert c.head_manifest(repo, "nope") is None
        with pytest.raises(ManifestNotFound, match="not found"):
            c.get_manifest(repo, "nope")


def test_put_manifest_pushes_same_bytes_and_type(tenants: Tenants) -> None:
    repo = unique("put/")
    s = tenants.dst.session()
    img = oci.push_image(s, tenants.dst.url, repo, None, oci=False)
    with tenants.dst_client() as c:
        m = Manifest.from_bytes(img.body, img.media_type)
        assert c.put_manifest(repo, "copy", m) == img.digest
    again = oci.get_manifest(s, tenants.dst.url, repo, "copy")
    assert again is not None and again.body == img.body and again.media_type == img.media_type


def test_corrupted_manifest_is_detected(tenants: Tenants) -> None:
    repo = unique("badm/")
    s = tenants.src.session()
    img = oci.push_image(s, tenants.src.url, repo, "t")
    corrupt_blob(tenants.src, img.digest)
    with tenants.src_client() as c, pytest.raises(DigestMismatch, match="hash"):
        c.get_manifest(repo, "t")


# -- blobs -----------------------------------------------------------------------------


def test_blob_exists_and_streaming_download(tenants: Tenants) -> None:
    repo = unique("b/")
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = oci.push_blob(tenants.src.session(), tenants.src.url, repo, data)
    with tenants.src_client() as c:
        assert c.blob_exists(repo, digest)
        assert not c.blob_exists(repo, sha(b"absent"))
        out = io.BytesIO()
        assert c.download_blob(repo, digest, out) == len(data) and out.getvalue() == data
        reader = c.open_blob(repo, digest, offset=1000)
        assert b"".join(reader.chunks(4096)) == data[1000:]
        with pytest.raises(BlobNotFound):
            c.open_blob(repo, sha(b"absent"))


@pytest.mark.parametrize(
    ("size", "threshold", "chunk"),
    [
        (5000, 1 << 20, 1 << 20),  # monolithic
        (300_000, 10_000, 64 * 1024),  # chunked PATCH with Content-Range (5 chunks)
        (300_000, 10_000, None),  # one streamed PUT with Content-Length
        (-1, 10_000, None),  # size unknown: one streamed PATCH (chunked), then the PUT
        (0, 10_000, None),  # empty blob
    ],
)
def test_upload_modes(tenants: Tenants, size: int, threshold: int, chunk: int | None) -> None:
    repo = unique("up/")
    data = os.urandom(150_000 if size < 0 else size)
    with tenants.dst_client(**mode(chunk, threshold)) as c:
        sent = c.upload_blob(repo, sha(data), size, data)
        assert sent == len(data)
        assert c.blob_exists(repo, sha(data))
    r = tenants.dst.session().get(f"{tenants.dst.url}/v2/{repo}/blobs/{sha(data)}")
    assert r.content == data


@pytest.mark.parametrize("chunk", [64 * 1024, None])
def test_upload_refuses_bytes_that_do_not_match(tenants: Tenants, chunk: int | None) -> None:
    repo = unique("mis/")
    data = os.urandom(200_000)
    wrong = sha(b"something else")
    with tenants.dst_client(**mode(chunk, 1000)) as c:
        with pytest.raises(DigestMismatch, match="upload cancelled"):
            c.upload_blob(repo, wrong, len(data), data)
        assert not c.blob_exists(repo, wrong)
        # Nor under the bytes' own digest: the upload was cut off before its last byte.
        assert not c.blob_exists(repo, sha(data))


def test_mount_and_declined_mount(tenants: Tenants) -> None:
    a, b = unique("ma/"), unique("mb/")
    data = os.urandom(10_000)
    digest = oci.push_blob(tenants.dst.session(), tenants.dst.url, a, data)
    with tenants.dst_client() as c:
        assert c.mount_blob(b, digest, a) is True
        assert c.blob_exists(b, digest)
        # Not in the named repository: the registry answers 202 and opens an upload,
        # which continues as a normal upload.
        other = os.urandom(5000)
        session = c.start_upload(unique("mc/"), mount=sha(other), from_repository=a)
        assert session is not None
        c.upload_blob(session.repository, sha(other), len(other), other, session=session)
        assert c.blob_exists(session.repository, sha(other))


def test_listing_json_is_bounded_by_pages(tenants: Tenants, catalog) -> None:
    """Pages are asked with n, so no answer carries more than one page."""
    proxy = FaultProxy(tenants.src.host).start()
    try:
        with client(proxy.url, "alice", "alice-Secr3t-pw") as c:
            c.ping()
            proxy.clear()
            it = c.iter_repositories(page_size=3)
            first = [next(it) for _ in range(3)]
        assert len(first) == 3 and proxy.count("GET", "_catalog") == 1
    finally:
        proxy.stop()
    assert json.dumps(first)
