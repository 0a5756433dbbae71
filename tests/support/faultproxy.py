"""A small HTTP proxy in front of a real registry that injects faults, for tests.

Each :class:`Fault` matches requests by method and a regular expression on
the path (query included) and acts on the first ``times`` of them (after
skipping ``after``):

* ``status``: answer ``status`` (500, 503, 429 + Retry-After, 403 ...) without forwarding;
* ``reset``: reset the connection without forwarding;
* ``reset_after``: forward the request, then reset instead of answering;
* ``partial_body``: forward half of the request body, then cut both connections;
* ``truncate``: forward, send the headers and half of the response body, then reset;
* ``hang``: wait ``delay`` seconds, then forward (for client timeouts);
* ``hold``: wait until the test sets ``release`` (60 s at most), then forward.

``paginate_tags=N`` makes ``tags/list`` paginate like the OCI spec says
(n/last, ``Link`` header, relative or absolute), which Distribution 2.8 does
not do by itself. ``catalog_page=N`` caps the catalog's ``n`` at N, so that
Distribution pages it (with its own ``Link`` headers). The Host header is
forwarded unchanged, so the registry's Location headers point back at the proxy.
Every request is recorded in ``log``.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.servers import HandlerServer, QuietHandler

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}


@dataclass
class Fault:
    action: str
    path: str = ""
    method: str | None = None
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    delay: float = 0.0
    seen: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)

    def take(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if not re.search(self.path, path):
            return False
        self.seen += 1
        return self.after < self.seen <= self.after + self.times


class ProxyHandler(QuietHandler):
    """Forwards to ``owner.upstream``, acting out the first matching :class:`Fault`."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _headers_out(self, body: bytes) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.pop("Content-Length", None)
        if body or self.command in ("PUT", "PATCH", "POST"):
            headers["Content-Length"] = str(len(body))
        return headers

    def _forward(self, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.owner.upstream, timeout=30)
        try:
            conn.request(self.command, path, body=body or None, headers=self._headers_out(body))
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def _reply(
        self,
        status: int,
        headers: list[tuple[str, str]],
        data: bytes,
        truncate: bool = False,
    ) -> None:
        self.send_response(status)
        has_length = False
        for k, v in headers:
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "content-length":
                if self.command == "HEAD":
                    has_length = True
                    self.send_header(k, v)
                continue
            self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        elif not has_length:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(data)

    def _handle(self) -> None:
        path = self.path
        body = self._body()
        fault = self.owner.match(self.command, path)
        action = fault.action if fault else "forward"
        self.owner.record(self.command, path, action)
        self.owner.record_auth(self.headers.get("Authorization"))
        if fault and fault.action == "status":
            data = json.dumps(
                {"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}
            ).encode()
            hdrs = [("Content-Type", "application/json"), *fault.headers.items()]
            self._reply(fault.status, hdrs, data)
            return
        if fault and fault.action == "reset":
            self._reset()
            return
        if fault and fault.action == "hang":
            time.sleep(fault.delay)
        if fault and fault.action == "hold":
            fault.held.set()
            fault.release.wait(60)
        if self.owner.catalog_page and path.startswith("/v2/_catalog"):
            path = self._capped_catalog(path)
        if fault and fault.action == "partial_body":
            self._partial(path, body)
            self._reset()
            return
        if self.owner.paginate_tags and self.command == "GET" and "/tags/list" in path:
            self._paginated_tags(path)
            return
        status, headers, data = self._forward(path, body)
        if fault and fault.action == "reset_after":
            self._reset()
            return
        self._reply(status, headers, data, truncate=bool(fault and fault.action == "truncate"))

    def _capped_catalog(self, path: str) -> str:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["n"] = str(min(int(query.get("n", 100)), self.owner.catalog_page))
        return f"{parts.path}?{urlencode(query)}"

    def _partial(self, path: str, body: bytes) -> None:
        host, port = self.owner.upstream.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            lines = [f"{self.command} {path} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in self._headers_out(body).items()]
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            s.sendall(body[: len(body) // 2])

    def _paginated_tags(self, path: str) -> None:
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        status, headers, data = self._forward(parts.path, b"")
        if status != 200:
            self._reply(status, headers, data)
            return
        doc = json.loads(data)
        tags = sorted(doc.get("tags") or [])
        n = min(int(query.get("n", [self.owner.paginate_tags])[0]), self.owner.paginate_tags or 0)
        last = query.get("last", [""])[0]
        rest = [t for t in tags if t > last] if last else tags
        page = rest[:n]
        doc["tags"] = page
        out = [("Content-Type", "application/json")]
        if len(rest) > n:
            link = f"{parts.path}?n={n}&last={page[-1]}"
            if self.owner.absolute_links:
                link = f"http://{self.headers['Host']}{link}"
            out.append(("Link", f'<{link}>; rel="next"'))
        self._reply(200, out, json.dumps(doc).encode())

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


@dataclass
class FaultProxy(HandlerServer):
    """The proxy in front of ``upstream``; :meth:`start` it, then point clients at ``url``."""

    upstream: str  # host:port
    faults: list[Fault] = field(default_factory=list)
    paginate_tags: int | None = None
    catalog_page: int | None = None
    absolute_links: bool = False
    log: list[tuple[str, str, str]] = field(default_factory=list)
    # The Authorization header of every request (None when it had none).
    authorizations: list[str | None] = field(default_factory=list)

    handler: ClassVar[type[QuietHandler]] = ProxyHandler

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget faults and the request log."""
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def count(self, method: str, pattern: str, outcome: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for m, p, o in self.log
                if m == method and re.search(pattern, p) and (outcome is None or o == outcome)
            )

    def match(self, method: str, path: str) -> Fault | None:
        """The first fault that takes this request (counting it), if any."""
        with self._lock:
            for fault in self.faults:
                if fault.take(method, path):
                    return fault
        return None

    def record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.append((method, path, outcome))

    def record_auth(self, authorization: str | None) -> None:
        with self._lock:
            self.authorizations.append(authorization)
