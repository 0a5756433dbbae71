"""The docker-registry fixture itself: credentials enforced, pushes work."""

from __future__ import annotations

import requests

from tests.support.oci import get_manifest, push_image


def test_push_with_credentials_and_refuse_wrong_ones(registry):
    s = registry.session()
    pushed = push_image(s, registry.url, "project/app", "v1")
    got = get_manifest(s, registry.url, "project/app", "v1")
    assert got is not None and got.digest == pushed.digest and got.body == pushed.body
    assert requests.get(f"{registry.url}/v2/", auth=("alice", "wrong")).status_code == 401
    assert requests.get(f"{registry.url}/v2/").status_code == 401
    r = requests.post(f"{registry.url}/v2/project/app/blobs/uploads/", auth=("mallory", "x"))
    assert r.status_code == 401


def test_registry_stops_by_pid(registry_factory):
    server = registry_factory()
    pid = server.process.pid
    server.stop()
    import os

    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
