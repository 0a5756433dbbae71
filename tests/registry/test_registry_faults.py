"""Failures injected between Ferry and real registries: what is retried, resumed or refused."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import pytest

from common.errors import ManifestNotFound, PermissionDenied, RegistryError, RegistryUnavailable
from common.registry import copy_artifact
from common.registry.copier import CopyStatus
from tests.support import oci
from tests.support.copyenv import Tenants, client, mode, unique
from tests.support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.usefixtures("no_secret_logs")

UPLOADS = r"/blobs/uploads/"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def proxies(tenants: Tenants) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    src, dst = FaultProxy(tenants.src.host).start(), FaultProxy(tenants.dst.host).start()
    yield src, dst
    src.stop()
    dst.stop()


@pytest.fixture
def sp(proxies) -> FaultProxy:
    proxies[0].clear()
    return proxies[0]


@pytest.fixture
def dp(proxies) -> FaultProxy:
    proxies[1].clear()
    return proxies[1]


def src_client(sp: FaultProxy, **kw):
    c = client(sp.url, "alice", "alice-Secr3t-pw", **kw)
    c.ping()
    sp.clear_log()  # tests count requests made after the auth scheme is known
    return c


def dst_client(dp: FaultProxy, **kw):
    c = client(dp.url, "bob", "bob-Secr3t-pw", **kw)
    c.ping()
    dp.clear_log()
    return c


@pytest.fixture(scope="module")
def image(tenants: Tenants):
    repo = unique("f/")
    pushed = oci.push_image(
        tenants.src.session(),
        tenants.src.url,
        repo,
        "v1",
        layers=[os.urandom(50_000), os.urandom(20_000)],
    )
    return repo, pushed


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", r"/manifests/", status=500, times=2),
        Fault("status", r"/manifests/", status=503, times=3),
        Fault("status", r"/manifests/", status=502, times=1),
        Fault("reset", r"/manifests/", times=2),
        Fault("reset_after", r"/manifests/", times=1),
        Fault("truncate", r"/manifests/", method="GET", times=1),
    ],
    ids=["500x2", "503x3", "502", "reset", "reset-after", "truncated"],
)
def test_transient_failures_are_retried(sp: FaultProxy, image, fault: Fault) -> None:
    repo, pushed = image
    sp.add(fault)
    with src_client(sp) as c:
        m = c.get_manifest(repo, "v1")
    assert m.digest == pushed.digest
    assert sp.count("GET", "/manifests/") == fault.times + 1


def test_429_honours_retry_after(sp: FaultProxy, image) -> None:
    repo, _ = image
    sp.add(Fault("status", r"/manifests/", status=429, headers={"Retry-After": "1"}))
    with src_client(sp) as c:
        started = time.monotonic()
        assert c.head_manifest(repo, "v1") is not None
        assert time.monotonic() - started >= 1.0


def test_a_request_that_hangs_times_out_and_is_retried(sp: FaultProxy, image) -> None:
    repo, pushed = image
    sp.add(Fault("hang", r"/manifests/", method="GET", delay=1.0))
    with src_client(sp, timeout=(2.0, 0.3)) as c:
        assert c.get_manifest(repo, "v1").digest == pushed.digest
    assert sp.count("GET", "/manifests/") == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, RegistryError), (403, PermissionDenied), (404, ManifestNotFound)],
)
def test_client_errors_are_not_retried(sp: FaultProxy, image, status: int, error) -> None:
    repo, _ = image
    sp.add(Fault("status", r"/manifests/", status=status, times=5))
    with src_client(sp) as c, pytest.raises(error) as e:
        c.get_manifest(repo, "v1")
    assert not e.value.retryable
    assert sp.count("GET", "/manifests/") == 1


def test_retries_are_bounded_and_the_error_is_retryable(sp: FaultProxy, image) -> None:
    repo, _ = image
    sp.add(Fault("status", r"/manifests/", status=500, times=100))
    with src_client(sp) as c, pytest.raises(RegistryUnavailable) as e:
        c.get_manifest(repo, "v1")
    assert e.value.retryable and "after 4 attempt(s)" in str(e.value)
    assert sp.count("GET", "/manifests/") == 4


# -- uploads ---------------------------------------------------------------------------

CHUNK = 64 * 1024


def _upload(dp: FaultProxy, tenants: Tenants, data: bytes, chunk: int | None) -> str:
    repo = unique("u/")
    with dst_client(dp, **mode(chunk)) as c:
        c.upload_blob(repo, sha(data), len(data), data)
    r = tenants.dst.session().get(f"{tenants.dst.url}/v2/{repo}/blobs/{sha(data)}")
    assert r.status_code == 200 and r.content == data
    return repo


@pytest.mark.parametrize("action", ["reset", "status"])
def test_chunked_upload_resumes_from_the_server_range(
    dp: FaultProxy, tenants: Tenants, action: str
) -> None:
    data = os.urandom(5 * CHUNK + 123)  # 6 chunks
    dp.add(Fault(action, UPLOADS, method="PATCH", after=2, status=500))
    _upload(dp, tenants, data, chunk=CHUNK)
    assert dp.count("POST", UPLOADS) == 1  # resumed, not restarted
    assert dp.count("GET", UPLOADS) == 1  # asked the server where it stands
    assert dp.count("PATCH", UPLOADS) == 7  # 6 chunks, one of them twice


def test_chunked_upload_restarts_when_the_registry_lost_the_session(
    dp: FaultProxy, tenants: Tenants
) -> None:
    # Half a chunk reaches the registry, then the connection dies: Distribution
    # then refuses the session (BLOB_UPLOAD_INVALID) and the upload starts again.
    # On a loaded machine it sometimes still holds the session when asked for its
    # Range; then the upload resumes instead. Either way the blob arrives exact.
    data = os.urandom(4 * CHUNK)
    dp.add(Fault("partial_body", UPLOADS, method="PATCH", after=1))
    _upload(dp, tenants, data, chunk=CHUNK)
    restarted = dp.count("POST", UPLOADS) == 2
    assert restarted or dp.count("GET", UPLOADS) >= 1, "neither restarted nor resumed"


def test_streamed_upload_restarts_after_a_broken_connection(
    dp: FaultProxy, tenants: Tenants
) -> None:
    data = os.urandom(300_000)
    # The streamed blob travels in the PUT that finalises its session.
    dp.add(Fault("reset", UPLOADS, method="PUT"))
    _upload(dp, tenants, data, chunk=None)
    assert dp.count("POST", UPLOADS) == 2


@pytest.mark.parametrize("chunk", [CHUNK, None], ids=["chunked", "streamed"])
def test_finalising_put_is_retried(dp: FaultProxy, tenants: Tenants, chunk: int | None) -> None:
    data = os.urandom(3 * CHUNK)
    dp.add(Fault("status", UPLOADS, method="PUT", status=503))
    _upload(dp, tenants, data, chunk=chunk)


def test_finalising_put_whose_answer_was_lost(dp: FaultProxy, tenants: Tenants) -> None:
    data = os.urandom(2 * CHUNK)
    dp.add(Fault("reset_after", UPLOADS, method="PUT"))
    _upload(dp, tenants, data, chunk=CHUNK)


@pytest.mark.parametrize("chunk", [CHUNK, None])
def test_broken_source_download_is_reopened(
    sp: FaultProxy, dp: FaultProxy, tenants: Tenants, chunk: int | None
) -> None:
    repo = unique("big/")
    pushed = oci.push_image(
        tenants.src.session(), tenants.src.url, repo, "v1", layers=[os.urandom(6 * CHUNK)]
    )
    sp.add(Fault("truncate", r"/blobs/sha256:", method="GET"))
    with src_client(sp) as s, dst_client(dp, **mode(chunk)) as d:
        out = copy_artifact(s, repo, "v1", d, repo, "v1")
    assert out.status == CopyStatus.COPIED, out.reason
    got = oci.get_manifest(tenants.dst.session(), tenants.dst.url, repo, "v1")
    assert got is not None and got.digest == pushed.digest


def test_copy_succeeds_through_faults_on_both_sides(
    sp: FaultProxy, dp: FaultProxy, tenants: Tenants
) -> None:
    repo = unique("both/")
    pushed = oci.push_index(tenants.src.session(), tenants.src.url, repo, "v1")
    sp.add(Fault("status", r"/blobs/", method="GET", status=500, times=2))
    sp.add(Fault("reset", r"/manifests/", method="GET", times=1))
    dp.add(Fault("status", r"/manifests/", method="PUT", status=502, times=1))
    dp.add(Fault("reset", r"/blobs/", method="HEAD", times=2))
    dp.add(Fault("status", UPLOADS, method="POST", status=503, times=2))
    dp.add(Fault("status", UPLOADS, method="PUT", status=500, times=1))
    with src_client(sp) as s, dst_client(dp) as d:
        out = copy_artifact(s, repo, "v1", d, unique("t/"), "v1")
        assert out.status == CopyStatus.COPIED, out.reason
        again = oci.get_manifest(tenants.dst.session(), tenants.dst.url, out_repo(dp), "v1")
    assert again is not None and again.digest == pushed.digest


def out_repo(dp: FaultProxy) -> str:
    """The target repository of the last manifest PUT seen by the proxy."""
    path = next(p for m, p, o in reversed(dp.log) if m == "PUT" and "/manifests/v1" in p)
    return path.split("/v2/", 1)[1].rsplit("/manifests/", 1)[0]
