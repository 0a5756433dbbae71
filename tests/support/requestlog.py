"""Registry requests counted from docker-registry's own access log, and the least a sync needs.

A :class:`~tests.support.registry.RegistryServer` started with ``access_log=True``
writes one combined-log line per request. :func:`kind_of` names what a request
did (``manifest GET``, ``blob HEAD``, ``upload POST`` ...); :func:`count` tallies
a slice of the log by kind, leaving out answers that carry no work of the
client's (401 challenges, and 429/5xx answers a retry repeated).
:func:`minimum_for` computes, from the source alone, the requests an exact
sync of some repositories cannot do without (issue 10):

- list the source (the catalog, and the tags of each repository);
- GET each source manifest once (tags, and the children of indexes);
- HEAD each target tag once;
- for each blob a target repository lacks, one POST (a mount, or the upload
  session of a refused mount); one PUT per unique blob (its upload), and the
  blob's GET from the source;
- one PUT per manifest.

A no-op rescan needs the listing, the GETs of the tags and the HEADs of the targets.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests

from tests.support import oci

_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')
_NAME = r"(?:[a-z0-9._-]+/)*[a-z0-9._-]+"
_KINDS = [
    (re.compile(r"^/v2/?$"), "ping"),
    (re.compile(r"^/v2/_catalog"), "catalog"),
    (re.compile(rf"^/v2/{_NAME}/tags/list"), "tags"),
    (re.compile(rf"^/v2/{_NAME}/manifests/"), "manifest"),
    (re.compile(rf"^/v2/{_NAME}/blobs/uploads/"), "upload"),
    (re.compile(rf"^/v2/{_NAME}/blobs/"), "blob"),
    (re.compile(rf"^/v2/{_NAME}/referrers/"), "referrers"),
]
# Answers that are not work of the client's own: auth challenges and refusals a retry repeats.
NOT_COUNTED = frozenset({401, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Request:
    """One line of the access log."""

    method: str
    path: str
    status: int

    @property
    def kind(self) -> str:
        return kind_of(self.method, self.path)


def kind_of(method: str, path: str) -> str:
    """``catalog``, ``tags``, ``ping``, or ``<manifest|blob|upload> <METHOD>``; else ``other``."""
    for pattern, name in _KINDS:
        if pattern.match(path):
            return name if name in ("ping", "catalog", "tags", "referrers") else f"{name} {method}"
    return f"other {method}"


def parse(lines: Iterable[str]) -> list[Request]:
    """The requests of access-log lines (other log lines are skipped)."""
    out = []
    for line in lines:
        m = _LINE.search(line)
        if m:
            out.append(Request(m.group(1), m.group(2), int(m.group(3))))
    return out


def count(requests_: Iterable[Request]) -> Counter[str]:
    """Requests by kind, without 401 challenges and answers that a retry repeats."""
    return Counter(r.kind for r in requests_ if r.status not in NOT_COUNTED)


def mark(server_url: str, log_text: Callable[[], str], timeout: float = 30.0) -> int:
    """Send a marker request and wait until the log shows it; the log's length up to it.

    Lines of requests answered before the marker was sent are in the log by then
    (the registry logs a request before it finishes the answer).
    """
    token = uuid.uuid4().hex
    requests.get(f"{server_url}/v2/ferry-mark/{token}/tags/list", timeout=10).close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_text()
        at = text.find(token)
        if at >= 0:
            end = text.find("\n", at)
            return len(text) if end < 0 else end + 1
        time.sleep(0.05)
    raise TimeoutError(f"marker {token} not in the registry log after {timeout}s")


@dataclass
class Minimum:
    """The requests an exact cold sync (and a no-op rescan) needs, by side and kind."""

    source: Counter[str] = field(default_factory=Counter)
    target: Counter[str] = field(default_factory=Counter)
    noop_source: Counter[str] = field(default_factory=Counter)
    noop_target: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.source.values()) + sum(self.target.values())

    @property
    def noop_total(self) -> int:
        return sum(self.noop_source.values()) + sum(self.noop_target.values())


def _doc(s: requests.Session, url: str, repo: str, ref: str) -> dict:
    got = oci.get_manifest(s, url, repo, ref)
    assert got is not None, f"{repo}:{ref} vanished"
    return json.loads(got.body)


def minimum_for(
    s: requests.Session, url: str, repositories: dict[str, str], catalog_pages: int = 1
) -> Minimum:
    """The minimum to sync every tag of ``repositories`` (source name → target name)
    from the registry at ``url`` to an empty target."""
    m = Minimum()
    pairs: set[tuple[str, str]] = set()  # (target repository, blob)
    blobs: set[str] = set()
    for repo, target_repo in repositories.items():
        tags = s.get(f"{url}/v2/{repo}/tags/list").json()["tags"] or []
        children: set[str] = set()
        for tag in tags:
            doc = _doc(s, url, repo, tag)
            images = [doc]
            for child in doc.get("manifests", []):
                if child["digest"] not in children:
                    children.add(child["digest"])
                    images.append(_doc(s, url, repo, child["digest"]))
            for image in images:
                for d in ([image["config"]] if "config" in image else []) + image.get("layers", []):
                    pairs.add((target_repo, d["digest"]))
                    blobs.add(d["digest"])
        for side in (m.source, m.noop_source):
            side["tags"] += 1
            side["manifest GET"] += len(tags)
        m.source["manifest GET"] += len(children)
        m.noop_target["manifest HEAD"] += len(tags)
        m.target["manifest HEAD"] += len(tags)
        m.target["manifest PUT"] += len(tags) + len(children)
    m.source["catalog"] = m.noop_source["catalog"] = catalog_pages
    m.source["blob GET"] = len(blobs)
    m.target["upload POST"] = len(pairs)
    m.target["upload PUT"] = len(blobs)
    return m
