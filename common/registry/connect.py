"""Connections that check the network policy when they open, on the address they use.

Every new connection of a registry transport (the registry, its token realm,
a redirect target) resolves its host once, checks every address, and connects
to a checked one: a name that resolves to an allowed address for the check and
an internal one for the connection (DNS rebinding) cannot get through, and
nothing is cached between connections. TLS still verifies the host name.
Each connection joins the guard of the request it carries
(:mod:`common.registry.deadline`), so a deadline or a Stop can cut it off.
"""

from __future__ import annotations

import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.registry import deadline
from common.security.netpolicy import resolve_checked
from common.settings import Settings


class _Checked:
    """Mixin for urllib3 connections: connect to the address the policy checked."""

    ferry_settings: Settings
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        checked = resolve_checked(self._dns_host, self.port, self.ferry_settings)
        host, self._dns_host = self._dns_host, checked
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = host

    def request(self, *args: Any, **kwargs: Any) -> None:
        # The request's deadline and Stop watch this connection from here on.
        deadline.attach_current(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class PolicyAdapter(HTTPAdapter):
    """A requests adapter whose every new connection passes the network policy."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.ferry_settings = settings
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        extra = {"ferry_settings": self.ferry_settings}
        http = type("CheckedHTTPConnection", (_Checked, HTTPConnection), extra)
        https = type("CheckedHTTPSConnection", (_Checked, HTTPSConnection), extra)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
