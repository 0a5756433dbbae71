"""Registry errors from the target: 5xx, 429 with Retry-After, a token that expires
mid-upload. Each task still ends exact."""

from __future__ import annotations

import os
import time

import pytest

from common.registry import Manifest, RegistryClient
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.oci import get_manifest, push_image
from tests.support.registry import RegistryServer
from tests.support.tokenserver import TokenServer, User

MiB = 1024 * 1024
TOKEN_PW = "bob-Token-pw-77"


def _exact(api, task_id: str, src, dst_reader, names: list[str]) -> dict:
    task = api.wait(task_id, timeout=90)
    items = api.items(task_id)
    assert task["status"] == "Succeeded", (task, items)
    assert task["failed"] == 0 and task["copied"] == len(names), task
    for name in names:
        repo, tag = name.split(":")
        want = get_manifest(src.session(), src.url, repo, tag)
        assert dst_reader(repo, tag) == want.digest, name
    return task


def test_5xx_and_429_with_retry_after_from_the_target(api, worker, src, dst, keeper, case):
    names = []
    for i in range(3):
        push_image(src.session(), src.url, f"project/r{i}", "v1", layers=[os.urandom(4096)])
        names.append(f"project/r{i}:v1")
    with FaultProxy(dst.host) as proxy:
        proxy.add(Fault("status", path=r"/blobs/uploads/", method="POST", status=503, times=3))
        proxy.add(Fault("status", path=r"/manifests/", method="PUT", status=500, times=2))
        proxy.add(
            Fault("status", path=r"/blobs/uploads/", method="PUT", status=429, times=2,
                  headers={"Retry-After": "1"})
        )  # fmt: skip
        src_id = api.instance("src", src)
        dst_id = api.post(
            "/instances",
            {"name": "dst", "url": proxy.url, "username": "bob", "password": "bob-pw"},
            expect=201,
        )["id"]
        started = time.monotonic()
        task_id = api.trigger(api.rule("through-faults", src_id, dst_id))

        def on_target(repo: str, tag: str) -> str | None:
            got = get_manifest(dst.session(), dst.url, repo, tag)
            return got.digest if got else None

        _exact(api, task_id, src, on_target, names)
        took = time.monotonic() - started
        assert proxy.count("PUT", r"/blobs/uploads/", "status") == 2
        assert proxy.count("PUT", r"/manifests/", "status") == 2
    assert took >= 1.0  # Retry-After: 1 was honoured
    keeper.intact()
    case.no_secret_in_logs()
    case.record("target 503/500 and 429 + Retry-After: 1", "Succeeded, exact", took)


@pytest.fixture
def token_dst():
    tokens = TokenServer(users={"bob": User(TOKEN_PW, [("*", {"*"})])}).start()
    registry = RegistryServer(extra_config=tokens.registry_config()).start()
    yield tokens, registry
    registry.cleanup()
    tokens.stop()


def test_a_token_that_expires_mid_upload(api, worker, src, token_dst, case):
    tokens, registry = token_dst
    layer = os.urandom(2 * MiB)
    push_image(src.session(), src.url, "project/app", "v1", layers=[layer])
    reader = RegistryClient(registry.url, username="bob", password=TOKEN_PW)
    # The keeper, pushed with Ferry's own client (the target speaks bearer tokens only).
    keep = Manifest.from_bytes(
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":'
        b'"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},'
        b'"layers":[]}',
        "application/vnd.oci.image.manifest.v1+json",
    )
    reader.upload_blob("keep/app", keep.blobs()[0].digest, 2, b"{}")
    reader.put_manifest("keep/app", "v1", keep)
    with FaultProxy(registry.host) as proxy:
        # What a registry answers once the token expired: 401 with a fresh challenge.
        challenge = (
            f'Bearer realm="{tokens.realm}",service="ferry-test-registry",'
            'scope="repository:project/app:pull,push",error="invalid_token"'
        )
        expired = proxy.add(
            Fault("status", path=r"/blobs/uploads/.+digest=", method="PUT", status=401,
                  headers={"WWW-Authenticate": challenge})
        )  # fmt: skip
        src_id = api.instance("src", src)
        dst_id = api.post(
            "/instances",
            {"name": "dst", "url": proxy.url, "username": "bob", "password": TOKEN_PW},
            expect=201,
        )["id"]
        issued_before = len(tokens.issued)
        started = time.monotonic()
        task_id = api.trigger(api.rule("token", src_id, dst_id))

        def on_target(repo: str, tag: str) -> str | None:
            ref = reader.head_manifest(repo, tag)
            return ref.digest if ref else None

        _exact(api, task_id, src, on_target, ["project/app:v1"])
        took = time.monotonic() - started
        assert expired.seen >= 1
    assert len(tokens.issued) > issued_before or tokens.requests  # a new token was fetched
    assert reader.head_manifest("keep/app", "v1").digest == keep.digest
    reader.close()
    case.no_secret_in_logs(secrets=(TOKEN_PW,))
    case.record("token expired mid-upload (401 on the finalising PUT)", "Succeeded, exact", took)
