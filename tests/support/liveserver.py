"""The Ferry API on a real HTTP server in a thread (not the Flask test client)."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server

from tests.support.registry import free_port


class LiveServer:
    """Serves a Flask app on 127.0.0.1:<free port> until stopped."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
