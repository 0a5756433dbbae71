"""One lifecycle for the HTTP servers that tests run in a thread on 127.0.0.1.

:class:`ThreadedServer` binds a server to port 0 (the kernel picks a free port, so
nothing can take it between choosing and binding), serves it from a daemon thread
and stops it. ``FaultProxy``, ``TokenServer`` and ``LiveServer`` are built on it;
:class:`HandlerServer` serves one ``BaseHTTPRequestHandler`` class, which reaches
the object that started it as ``self.owner``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Self

HOST = "127.0.0.1"


class Loopback:
    """``host`` and ``url`` of something listening on 127.0.0.1:``self.port``."""

    scheme = "http"
    port: int

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


class ThreadedServer(Loopback):
    """A server on 127.0.0.1:<free port>, served by a daemon thread from start() to stop()."""

    _server: TCPServer | None = None
    _thread: threading.Thread | None = None

    def make_server(self) -> TCPServer:
        """The bound server to run (on ``HOST``, port 0); subclasses say what it serves."""
        raise NotImplementedError

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        server = self.make_server()
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; a stopped server may be started again."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_port

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _OwnedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        super().__init__((HOST, 0), handler)


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and reaches the server object that started it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def owner(self) -> Any:
        """The :class:`HandlerServer` (or subclass) serving this request."""
        return self.server.owner  # type: ignore[attr-defined]

    def send_json(self, status: int, body: Any) -> None:
        """Answer ``status`` with ``body`` as JSON (and a Content-Length)."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class HandlerServer(ThreadedServer):
    """Serves ``handler`` (a ``BaseHTTPRequestHandler`` class) on a thread per request."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.handler = handler

    def make_server(self) -> TCPServer:
        return _OwnedServer(self.handler, self)
