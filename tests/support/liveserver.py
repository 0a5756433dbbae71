"""The Ferry API on a real HTTP server in a thread, and a client for it shaped like Flask's.

Registries post their notifications and the CLI talks to a real socket, so some
tests need the app served for real; :class:`HttpClient` lets the same helpers
(``tests.support.api``) drive it as they drive Flask's test client.
"""

from __future__ import annotations

from socketserver import TCPServer
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from tests.support.servers import HOST, ThreadedServer

# Headers that describe requests' transfer, not the answer requests already decoded.
_TRANSFER = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class LiveServer(ThreadedServer):
    """Serves a Flask app on 127.0.0.1:<free port> until stopped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def make_server(self) -> TCPServer:
        return make_server(HOST, 0, self.app, threaded=True)

    def client(self) -> HttpClient:
        """A test-client-shaped client for this server."""
        return HttpClient(self.url)


class HttpClient:
    """``open``/``get``/``post``/... like Flask's test client, over real HTTP.

    Answers are werkzeug ``Response`` objects, as the test client's are, so
    ``status_code``, ``get_json()`` and ``get_data(as_text=True)`` read the same.
    """

    def __init__(self, base_url: str, timeout: float = 10.0, verify: bool | str = True) -> None:
        self.base_url = base_url
        self.timeout = timeout
        # requests' verify: True, or the CA bundle an HTTPS server's certificate chains to.
        self.verify = verify

    def open(
        self,
        path: str,
        method: str = "GET",
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        query_string: dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Response:
        """Send one request to ``base_url + path``; the answer as a werkzeug Response."""
        sent = dict(headers or {})
        if content_type:
            sent["Content-Type"] = content_type
        r = requests.request(
            method,
            self.base_url + path,
            headers=sent,
            json=json,
            data=data,
            params=query_string,
            timeout=self.timeout,
            verify=self.verify,
        )
        kept = [(k, v) for k, v in r.headers.items() if k.lower() not in _TRANSFER]
        return Response(r.content, status=r.status_code, headers=kept)

    def get(self, path: str, **kw: Any) -> Response:
        return self.open(path, "GET", **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.open(path, "POST", **kw)

    def put(self, path: str, **kw: Any) -> Response:
        return self.open(path, "PUT", **kw)

    def patch(self, path: str, **kw: Any) -> Response:
        return self.open(path, "PATCH", **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.open(path, "DELETE", **kw)
