"""Registry clients kept alive for the life of a worker process.

Building a client per copy would throw away its keep-alive connections and
token cache; a sync task of hundreds of items reuses one per registry and
identity instead.
"""

from __future__ import annotations

import hashlib
import os
import threading

from common.registry import RegistryClient
from common.settings import Settings

_lock = threading.Lock()
_clients: dict[tuple, RegistryClient] = {}
_pid = os.getpid()


def client_for(url: str, username: str | None, password: str | None, verify_tls: bool,
               settings: Settings) -> RegistryClient:
    """The process's client for this registry and identity (created on first use)."""
    global _pid
    # The password enters the key only as a hash: the dict may end up in a dump.
    secret = hashlib.sha256((password or "").encode()).hexdigest()
    key = (url.rstrip("/"), username or "", secret, verify_tls)
    with _lock:
        if _pid != os.getpid():
            # A forked child must not share the parent's sockets.
            _clients.clear()
            _pid = os.getpid()
        client = _clients.get(key)
        if client is None:
            client = RegistryClient(url, username=username, password=password,
                                    verify_tls=verify_tls, settings=settings)
            _clients[key] = client
        return client


def close_all() -> None:
    """Close every cached client (worker shutdown, tests)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
