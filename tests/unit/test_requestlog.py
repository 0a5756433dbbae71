"""The access-log reader that the request-count test and the sync benchmark rely on."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.requestlog import count, kind_of, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/v2/", "ping"),
        ("GET", "/v2/_catalog?n=100", "catalog"),
        ("GET", "/v2/p/a/b/tags/list?n=100", "tags"),
        ("HEAD", "/v2/p/app/manifests/v1", "manifest HEAD"),
        ("PUT", f"/v2/p/app/manifests/{D}", "manifest PUT"),
        ("GET", f"/v2/p/app/blobs/{D}", "blob GET"),
        ("POST", f"/v2/p/app/blobs/uploads/?mount={D}&from=p%2Fx", "upload POST"),
        ("PUT", f"/v2/p/app/blobs/uploads/0d89?_state=x&digest={D}", "upload PUT"),
        ("PATCH", "/v2/p/app/blobs/uploads/0d89?_state=x", "upload PATCH"),
        ("GET", "/debug/vars", "other GET"),
    ],
)
def test_kinds(method: str, path: str, kind: str) -> None:
    assert kind_of(method, path) == kind


def test_count_leaves_out_challenges_and_retried_answers() -> None:
    lines = [
        '127.0.0.1 - - [03/Dec/2026:07:15:23 +0000] "GET /v2/p/a/manifests/v1 HTTP/1.1" 401 87 ""',
        '127.0.0.1 - - [03/Dec/2026:07:15:23 +0000] "GET /v2/p/a/manifests/v1 HTTP/1.1" 503 87 ""',
        '127.0.0.1 - - [03/Dec/2026:07:15:23 +0000] "GET /v2/p/a/manifests/v1 HTTP/1.1" 200 87 ""',
        'time="2026-12-03T07:15:23Z" level=error msg="response completed with error"',
        '127.0.0.1 - - [03/Dec/2026:07:15:23 +0000] "HEAD /v2/p/a/manifests/v1 HTTP/1.1" 404 0 ""',
    ]
    assert count(parse(lines)) == Counter({"manifest GET": 1, "manifest HEAD": 1})
