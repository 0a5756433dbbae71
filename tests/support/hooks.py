"""A JSON webhook receiver on 127.0.0.1 for notification tests (apprise's ``json://``)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.support.servers import HandlerServer, QuietHandler


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status = self.owner.record(self.path, body)
        self.send_json(status, {"ok": status < 300})


class HookServer(HandlerServer):
    """Records every POST (path, JSON body); answers 500 to the first ``fail`` of them
    (``fail=-1``: to all of them)."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__(_Handler)
        self.fail = fail
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def record(self, path: str, body: bytes) -> int:
        with self._lock:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {"raw": body.decode(errors="replace")}
            self.received.append((path, parsed))
            failing = self.fail < 0 or len(self.received) <= self.fail
            return 500 if failing else 200

    def wait_for(self, match: Any, timeout: float = 60.0) -> dict[str, Any]:
        """The first received body for which ``match(path, body)`` holds (polled)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [b for p, b in self.received if match(p, b)]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"nothing matched; received {self.received}"
            time.sleep(0.1)

    def apprise_url(self, path: str = "hook") -> str:
        """The apprise address that posts JSON here."""
        return f"json://{self.host}/{path}"
