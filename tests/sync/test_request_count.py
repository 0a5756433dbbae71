"""A sync sends only the registry requests the data needs: counted on the registries' own
access logs, by kind and side, against the minimum of issue 10 (tests/support/requestlog)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.oci import push_chart, push_image, push_index
from tests.support.registry import RegistryServer
from tests.support.requestlog import count, minimum_for

pytestmark = pytest.mark.slow


@pytest.fixture
def logged() -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """A source (alice) and a target (bob) registry that log every request."""
    src = RegistryServer(users={"alice": "alice-pw"}, access_log=True).start()
    dst = RegistryServer(users={"bob": "bob-pw"}, access_log=True).start()
    yield src, dst
    src.cleanup()
    dst.cleanup()


def seed(src: RegistryServer) -> list[str]:
    """Repositories with shared base layers, several tags each, an index and a chart."""
    s, u = src.session(), src.url
    base, other_base = os.urandom(48 * 1024), os.urandom(40 * 1024)
    for repo, tags, layer in (
        ("project/app", 3, base),
        ("project/web", 2, base),
        ("project/tools/cli", 1, other_base),
    ):
        for t in range(tags):
            push_image(s, u, repo, f"v{t}", layers=[layer, os.urandom(2000 + t)])
    push_index(s, u, "project/multi", "latest")
    push_chart(s, u, "project/charts/web", "1.0.0")
    return [
        "project/app",
        "project/web",
        "project/tools/cli",
        "project/multi",
        "project/charts/web",
    ]


def _sides(src: RegistryServer, dst: RegistryServer, run) -> tuple[Counter, Counter]:
    """Requests by kind on each side while ``run`` runs (the marker requests themselves
    are unauthenticated: answered 401, so never counted)."""
    marks = src.mark(), dst.mark()
    run()
    return (
        count(src.requests_between(marks[0], src.mark())),
        count(dst.requests_between(marks[1], dst.mark())),
    )


def probes(counted: Counter) -> int:
    """Take out the referrers API probes (issue 14): a source without the API (404) is
    asked once per worker process every few minutes, so at most once per pool child."""
    return counted.pop("referrers", 0)


def test_cold_sync_and_noop_rescan_send_the_minimum_of_requests(api, worker, logged):
    src, dst = logged
    repos = seed(src)
    least = minimum_for(src.session(), src.url, {r: r for r in repos})
    rule = api.rule("all", api.instance("src", src), api.instance("dst", dst))

    tasks = []
    source, target = _sides(src, dst, lambda: tasks.append(api.wait(api.trigger(rule))))
    assert tasks[0]["status"] == "Succeeded", tasks[0]
    assert tasks[0]["copied"] == 8
    asked = probes(source)
    assert 1 <= asked <= worker.concurrency
    assert (source, target) == (least.source, least.target)

    source, target = _sides(src, dst, lambda: tasks.append(api.wait(api.trigger(rule))))
    assert (tasks[1]["status"], tasks[1]["up_to_date"]) == ("Succeeded", 8)
    assert asked + probes(source) <= worker.concurrency
    assert (source, target) == (
        least.noop_source,
        least.noop_target,
    )
