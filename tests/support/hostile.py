"""A registry that serves whatever manifests and listings a test gives it, for poison input.

:class:`HostileRegistry` answers ``/v2/``, the catalog, tag lists and manifest
GET/HEAD (by tag or digest) from ``repositories`` (repository → tag → (body,
content type)); ``extra_tags`` adds names to a repository's tag list that have
no manifest (a NUL, a newline, 300 characters...). It needs no credentials.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import ClassVar

from tests.support.servers import HandlerServer, QuietHandler

_MANIFEST = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
_TAGS = re.compile(r"^/v2/(.+)/tags/list$")


class HostileHandler(QuietHandler):
    def _manifest(self, repo: str, ref: str) -> tuple[bytes, str] | None:
        tags = self.owner.repositories.get(repo, {})
        if ref in tags:
            return tags[ref]
        for body, ctype in tags.values():
            if "sha256:" + hashlib.sha256(body).hexdigest() == ref:
                return body, ctype
        return None

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/v2/":
            self.send_json(200, {})
            return
        if path == "/v2/_catalog":
            self.send_json(200, {"repositories": sorted(self.owner.repositories)})
            return
        if m := _TAGS.match(path):
            repo = m.group(1)
            tags = [*sorted(self.owner.repositories.get(repo, {})), *self.owner.extra_tags]
            self.send_json(200, {"name": repo, "tags": tags})
            return
        found = (m := _MANIFEST.match(path)) and self._manifest(m.group(1), m.group(2))
        if not found:
            self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
            return
        body, ctype = found
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_GET = do_HEAD = _handle


@dataclass
class HostileRegistry(HandlerServer):
    """Serves ``repositories`` (repo → tag → (body, content type)); :meth:`start` it."""

    repositories: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    extra_tags: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)

    handler: ClassVar[type[QuietHandler]] = HostileHandler
