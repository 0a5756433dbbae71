"""A source registry that misbehaves on purpose, for the fault suite.

:class:`MaliciousSource` serves one image ``project/app:v1`` (a config blob and
one layer) and can, per test:

* ``layer_size`` / ``layer_block``: a layer generated as a stream (``layer_block``
  repeated), so a 1 GiB blob is never stored;
* ``stall_after``: send that many layer bytes, then nothing until ``release``;
* ``trickle``: send the layer (or, with ``trickle_manifest``, the manifest) one
  byte every ``trickle`` seconds (slow loris);
* ``wrong_bytes``: serve a layer whose bytes do not hash to its digest;
* ``manifest_padding``: make the manifest that many bytes (a 100 MiB manifest);
* ``endless_catalog``: a catalog whose every page links to another, new one;
* ``redirect_blobs``: answer blob GETs with a 307 to that URL.

Every request is counted in ``hits`` (method, path).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

from tests.support.servers import HandlerServer, QuietHandler

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Handler(QuietHandler):
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        src: MaliciousSource = self.owner
        path = self.path.split("?", 1)[0]
        src.hit(self.command, self.path)
        if path == "/v2/":
            self._send(200, b"{}", "application/json")
        elif path == "/v2/_catalog":
            self._catalog()
        elif path == "/v2/project/app/tags/list":
            self._send(200, json.dumps({"tags": ["v1"]}).encode(), "application/json")
        elif path.endswith("/tags/list"):  # the endless catalog's repositories: no tags
            self._send(200, b'{"tags":[]}', "application/json")
        elif path in ("/v2/project/app/manifests/v1", f"/v2/project/app/manifests/{src.digest}"):
            self._manifest()
        elif path == f"/v2/project/app/blobs/{src.config_digest}":
            self._send(200, CONFIG, "application/octet-stream")
        elif path == f"/v2/project/app/blobs/{src.layer_digest}":
            self._layer()
        else:
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json")

    do_HEAD = do_GET

    def _catalog(self) -> None:
        src: MaliciousSource = self.owner
        if not src.endless_catalog:
            self._send(200, b'{"repositories":["project/app"]}', "application/json")
            return
        page = src.next_page()
        names = [f"project/r{page:06d}-{i}" for i in range(50)]
        link = f'</v2/_catalog?n=50&last={names[-1]}>; rel="next"'
        self._send(200, json.dumps({"repositories": names}).encode(), "application/json", {
            "Link": link
        })  # fmt: skip

    def _manifest(self) -> None:
        src: MaliciousSource = self.owner
        body = src.manifest
        headers = {"Docker-Content-Digest": src.digest}
        if not src.trickle_manifest:
            self._send(200, body, MANIFEST_TYPE, headers)
            return
        self._headers(len(body), MANIFEST_TYPE, headers)
        if self.command == "GET":
            self._drip(body)

    def _headers(self, length: int, ctype: str, extra: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()

    def _drip(self, body: bytes) -> None:
        src: MaliciousSource = self.owner
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            if src.release.wait(src.trickle):
                return

    def _layer(self) -> None:
        src: MaliciousSource = self.owner
        if src.redirect_blobs:
            self.send_response(307)
            self.send_header("Location", f"{src.redirect_blobs}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._headers(src.layer_size, "application/octet-stream", {})
        if self.command == "HEAD":
            return
        if src.trickle:
            self._drip(src.layer_bytes(0, src.layer_size))
            return
        sent = 0
        try:
            for chunk in src.layer_stream():
                if src.stall_after is not None and sent + len(chunk) > src.stall_after:
                    self.wfile.write(chunk[: src.stall_after - sent])
                    self.wfile.flush()
                    src.stalled.set()
                    src.release.wait(120)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                src.sent = sent
        except OSError:
            return  # the client hung up (a Stop, a deadline)


@dataclass
class MaliciousSource(HandlerServer):
    """One image whose layer, manifest or catalog misbehaves as configured (see above)."""

    layer_size: int = 64 * 1024
    layer_block: bytes = field(default_factory=lambda: os.urandom(1024 * 1024))
    stall_after: int | None = None
    trickle: float = 0.0
    trickle_manifest: bool = False
    wrong_bytes: bool = False
    manifest_padding: int = 0
    endless_catalog: bool = False
    redirect_blobs: str | None = None
    hits: list[tuple[str, str]] = field(default_factory=list)
    sent: int = 0
    users: dict[str, str] = field(default_factory=dict)  # none: no credentials needed

    handler: ClassVar[type[QuietHandler]] = _Handler

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._page = 0
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.config_digest = _digest(CONFIG)
        self.layer_digest = self._hash_layer()
        doc: dict = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self.config_digest,
                "size": len(CONFIG),
            },
            "layers": [
                {"mediaType": LAYER_TYPE, "digest": self.layer_digest, "size": self.layer_size}
            ],
        }
        if self.manifest_padding:
            doc["annotations"] = {"pad": "x" * self.manifest_padding}
        self.manifest = json.dumps(doc).encode()
        self.digest = _digest(self.manifest)

    def _hash_layer(self) -> str:
        h = hashlib.sha256()
        for chunk in self.layer_stream(honest=True):
            h.update(chunk)
        return "sha256:" + h.hexdigest()

    def layer_stream(self, honest: bool = False):
        """The layer's bytes, generated block by block (never all in memory)."""
        left, first = self.layer_size, True
        while left > 0:
            chunk = self.layer_block[: min(left, len(self.layer_block))]
            if first and self.wrong_bytes and not honest:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            first = False
            yield chunk
            left -= len(chunk)

    def layer_bytes(self, start: int, end: int) -> bytes:
        return b"".join(self.layer_stream())[start:end]

    def next_page(self) -> int:
        with self._lock:
            self._page += 1
            return self._page

    def hit(self, method: str, path: str) -> None:
        with self._lock:
            self.hits.append((method, path))

    def wait_stalled(self, timeout: float = 60.0) -> None:
        assert self.stalled.wait(timeout), f"the source never stalled (sent {self.sent})"

    def stop(self) -> None:
        self.release.set()
        super().stop()


class Listener(HandlerServer):
    """An internal service on 127.0.0.2 that records every request it receives."""

    def __init__(self) -> None:
        super().__init__(_ListenerHandler)
        self.hits: list[tuple[str, str]] = []

    @property
    def host(self) -> str:
        return f"127.0.0.2:{self.port}"

    def make_server(self):  # type: ignore[override]
        from tests.support.servers import _OwnedServer

        class _On2(_OwnedServer):
            def __init__(self, handler, owner):
                self.owner = owner
                super(_OwnedServer, self).__init__(("127.0.0.2", 0), handler)

        return _On2(self.handler, self)


class _ListenerHandler(QuietHandler):
    def _any(self) -> None:
        self.owner.hits.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = do_HEAD = _any


def wait_for(predicate, timeout: float, what: str, poll: float = 0.05):
    """The first truthy value of ``predicate()``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
